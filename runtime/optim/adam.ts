// Adam (torch.optim.Adam, PyTorch 1.13's single-tensor update), and the update AdamW shares.
import { backendFor } from '../backend.js';
import { full, zerosLike } from '../creation.js';
import { maximum } from '../ops/index.js';
import type { Tensor } from '../tensor.js';
import { checkOption, defined, Optimizer, type ParamGroup, type ParamGroupInput, type ParamState } from './optimizer.js';

export interface AdamOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
}

export function adamOptions(options: Partial<AdamOptions>, weightDecay: number): AdamOptions {
  const o: AdamOptions = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay, amsgrad: false, maximize: false, ...defined(options) };
  checkOption(o.lr >= 0, 'learning rate', o.lr);
  checkOption(o.eps >= 0, 'epsilon value', o.eps);
  checkOption(o.betas[0] >= 0 && o.betas[0] < 1, 'beta parameter at index 0', o.betas[0]);
  checkOption(o.betas[1] >= 0 && o.betas[1] < 1, 'beta parameter at index 1', o.betas[1]);
  checkOption(o.weightDecay >= 0, 'weightDecay value', o.weightDecay);
  return { ...o, betas: [o.betas[0], o.betas[1]] };
}

/**
 * One Adam update of `p`. Weight decay is L2 (added to the gradient) or, for AdamW, decoupled
 * (`p *= 1 - lr * weightDecay` before the moments).
 */
export function adamUpdate(p: Tensor, grad: Tensor, state: ParamState, group: AdamOptions, decoupled: boolean): void {
  const { lr, betas: [b1, b2], eps, weightDecay, amsgrad, maximize } = group;
  if (Object.keys(state).length === 0) {
    // A tensor, as in PyTorch 1.12+: a compiled training step then counts it inside the graph.
    state.step = full([], 0, { dtype: 'float32', device: p.device });
    state.exp_avg = zerosLike(p);
    state.exp_avg_sq = zerosLike(p);
    if (amsgrad) state.max_exp_avg_sq = zerosLike(p);
  }
  let g = maximize ? grad.neg() : grad;
  const stepT = state.step as Tensor;
  stepT.add_(1);
  if (weightDecay !== 0) {
    if (decoupled) p.mul_(1 - lr * weightDecay);
    else g = g.add(p, { alpha: weightDecay });
  }
  const expAvg = state.exp_avg as Tensor;
  const expAvgSq = state.exp_avg_sq as Tensor;
  expAvg.mul_(b1).add_(g, { alpha: 1 - b1 });
  expAvgSq.mul_(b2).addcmul_(g, g, { value: 1 - b2 });
  // Bias corrections in float64 from the step tensor (PyTorch computes them in Python floats),
  // or float32 on devices without float64 (WebGPU).
  const hp = backendFor(p.device).supports('float64') ? 'float64' : 'float32';
  const step = stepT.to(hp);
  const stepSize = full([], b1, { dtype: hp, device: p.device }).pow(step).neg().add(1).reciprocal().mul(lr);
  const bc2Sqrt = full([], b2, { dtype: hp, device: p.device }).pow(step).neg().add(1).sqrt();
  let second = expAvgSq;
  if (amsgrad) {
    const max = state.max_exp_avg_sq as Tensor;
    max.copy_(maximum(max, expAvgSq));
    second = max;
  }
  const denom = second.sqrt().div(bc2Sqrt.to(p.dtype)).add(eps);
  p.sub_(expAvg.div(denom).mul(stepSize.to(p.dtype)));
}

export class Adam extends Optimizer<AdamOptions> {
  /** Defaults: lr 1e-3, betas [0.9, 0.999], eps 1e-8, no weight decay. */
  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInput<AdamOptions>>, options: Partial<AdamOptions> = {}) {
    super(params, adamOptions(options, 0));
  }

  protected updateGroup(group: ParamGroup<AdamOptions>): void {
    for (const p of group.params) if (p.grad !== null) adamUpdate(p, p.grad, this.stateOf(p), group, false);
  }
}
