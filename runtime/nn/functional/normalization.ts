// Batch and layer normalisation as composites (mean, var, rsqrt), so their gradients come for free.
import { fmtShape } from '../../../ir/index.js';
import { noGrad } from '../../autograd/grad-mode.js';
import { add, mean, mul, rsqrt, sub, variance } from '../../ops/index.js';
import type { Tensor } from '../../tensor.js';
import { requireFloat } from './utils.js';

export interface BatchNormOptions {
  training?: boolean;
  momentum?: number;
  eps?: number;
}

/**
 * Normalises each channel (dim 1) over every other dim. Training uses the biased batch variance
 * and updates runningMean / runningVar in place with the unbiased one (what PyTorch does);
 * evaluation uses the running statistics.
 */
export function batchNorm(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, weight?: Tensor | null, bias?: Tensor | null, opts: BatchNormOptions = {}): Tensor {
  const { training = false, momentum = 0.1, eps = 1e-5 } = opts;
  requireFloat(x, 'batchNorm');
  if (x.ndim < 2) throw new Error(`batchNorm: expected an input of at least 2 dims [N, C, *], got ${fmtShape(x.shape)}`);
  const c = x.shape[1];
  const stat = [1, c, ...x.shape.slice(2).map(() => 1)];
  for (const [name, t] of [['runningMean', runningMean], ['runningVar', runningVar], ['weight', weight], ['bias', bias]] as const) {
    if (t && (t.ndim !== 1 || t.shape[0] !== c)) throw new Error(`batchNorm: ${name} must have shape [${c}] (the channels of input ${fmtShape(x.shape)}), got ${fmtShape(t.shape)}`);
  }
  const dims = [0, ...x.shape.slice(2).map((_, i) => i + 2)];
  let mu: Tensor;
  let v: Tensor;
  if (training) {
    const count = x.numel() / c;
    if (count <= 1) throw new Error(`batchNorm: expected more than 1 value per channel when training, got input of shape ${fmtShape(x.shape)}`);
    mu = mean(x, dims, true);
    v = variance(x, dims, { unbiased: false, keepdim: true });
    noGrad(() => {
      if (runningMean) runningMean.mul_(1 - momentum).add_(mul(mu.detach().reshape([c]), momentum));
      if (runningVar) runningVar.mul_(1 - momentum).add_(mul(v.detach().reshape([c]), (momentum * count) / (count - 1)));
    });
  } else {
    if (!runningMean || !runningVar) throw new Error('batchNorm: runningMean and runningVar are required when training is false');
    mu = runningMean.reshape(stat);
    v = runningVar.reshape(stat);
  }
  let y = mul(sub(x, mu), rsqrt(add(v, eps)));
  if (weight) y = mul(y, weight.reshape(stat));
  if (bias) y = add(y, bias.reshape(stat));
  return y;
}

/** Normalises over the trailing dims given by normalizedShape (biased variance), then scales and shifts. */
export function layerNorm(x: Tensor, normalizedShape: number | readonly number[], weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  requireFloat(x, 'layerNorm');
  const shape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
  const k = shape.length;
  if (k === 0 || k > x.ndim || fmtShape(x.shape.slice(x.ndim - k)) !== fmtShape(shape)) {
    throw new Error(`layerNorm: given normalizedShape=${fmtShape(shape)}, expected input with shape [*, ${shape.join(', ')}], but got input of size ${fmtShape(x.shape)}`);
  }
  for (const [name, t] of [['weight', weight], ['bias', bias]] as const) {
    if (t && fmtShape(t.shape) !== fmtShape(shape)) throw new Error(`layerNorm: ${name} must have shape ${fmtShape(shape)} (normalizedShape), got ${fmtShape(t.shape)}`);
  }
  const dims = shape.map((_, i) => x.ndim - k + i);
  const y0 = mul(sub(x, mean(x, dims, true)), rsqrt(add(variance(x, dims, { unbiased: false, keepdim: true }), eps)));
  let y = y0;
  if (weight) y = mul(y, weight);
  if (bias) y = add(y, bias);
  return y;
}
