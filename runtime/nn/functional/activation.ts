// Activations, softmax and dropout as composites over elementwise primitives.
import { normalizeDim } from '../../../ir/index.js';
import { rand } from '../../creation.js';
import { add, amax, cast, erf, exp, gt, lift, log, lt, mul, relu as reluOp, sigmoid as sigmoidOp, sub, sum, tanh as tanhOp, where } from '../../ops/index.js';
import type { Tensor } from '../../tensor.js';
import { requireFloat } from './utils.js';

export const relu = (x: Tensor): Tensor => reluOp(x);
export const sigmoid = (x: Tensor): Tensor => sigmoidOp(x);
export const tanh = (x: Tensor): Tensor => tanhOp(x);

/** x where x > 0, else negativeSlope * x (the gradient at 0 is negativeSlope, as PyTorch). */
export function leakyRelu(x: Tensor, negativeSlope = 0.01): Tensor {
  return where(gt(x, 0), x, mul(x, negativeSlope));
}

/** x where x > 0, else alpha * (exp(x) - 1). */
export function elu(x: Tensor, alpha = 1): Tensor {
  const pos = gt(x, 0);
  // exp only sees the non-positive side, so a large x cannot overflow into a 0 * inf gradient.
  const neg = where(pos, lift(0, x), x);
  return where(pos, x, mul(sub(exp(neg), 1), alpha));
}

/** GELU: x * Phi(x) with the exact normal CDF (via erf), or PyTorch's tanh approximation. */
export function gelu(x: Tensor, opts: { approximate?: 'none' | 'tanh' } = {}): Tensor {
  requireFloat(x, 'gelu');
  const approximate = opts.approximate ?? 'none';
  if (approximate === 'tanh') {
    const inner = mul(add(x, mul(mul(mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
    return mul(mul(x, 0.5), add(tanhOp(inner), 1));
  }
  if (approximate !== 'none') throw new Error(`gelu: approximate must be 'none' or 'tanh', got ${JSON.stringify(approximate)}`);
  return mul(mul(x, 0.5), add(erf(mul(x, Math.SQRT1_2)), 1));
}

/** exp(x - max) normalised along `dim`; the max is detached (it cancels out of the value and the gradient). */
export function softmax(x: Tensor, dim: number): Tensor {
  requireFloat(x, 'softmax');
  const d = normalizeDim(dim, x.ndim, 'softmax');
  const e = exp(sub(x, amax(x.detach(), d, true)));
  return e.div(sum(e, d, true));
}

/** x - logsumexp(x) along `dim`, computed as (x - max) - log(sum(exp(x - max))) so it never overflows. */
export function logSoftmax(x: Tensor, dim: number): Tensor {
  requireFloat(x, 'logSoftmax');
  const d = normalizeDim(dim, x.ndim, 'logSoftmax');
  const z = sub(x, amax(x.detach(), d, true));
  return sub(z, log(sum(exp(z), d, true)));
}

/** Inverted dropout: zeroes each element with probability p and scales the rest by 1 / (1 - p). */
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout: probability has to be between 0 and 1, but got ${p}`);
  requireFloat(x, 'dropout');
  if (!training || p === 0) return x;
  if (p === 1) return mul(x, 0);
  const keep = cast(lt(rand([...x.shape], { dtype: x.dtype, device: x.device }), 1 - p), x.dtype);
  return mul(x, mul(keep, 1 / (1 - p)));
}
