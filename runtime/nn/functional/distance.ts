// Distances and similarities between batches of vectors.
import { broadcastShapes, normalizeDim } from '../../../ir/index.js';
import { add, clamp, div, mul, norm, sub, sum } from '../../ops/index.js';
import type { Tensor } from '../../tensor.js';
import { requireFloat } from './utils.js';

/**
 * sum(x1/max(|x1|, eps) * x2/max(|x2|, eps)) along dim (PyTorch 1.13 normalises each side first).
 * Where a norm is below eps the gradient is that of v / eps; PyTorch's differs there (its backward
 * reads the norm it clamped in place), so only the forward matches it in that corner.
 */
export function cosineSimilarity(x1: Tensor, x2: Tensor, opts: { dim?: number; eps?: number } = {}): Tensor {
  const { dim = 1, eps = 1e-8 } = opts;
  requireFloat(x1, 'cosineSimilarity', 'x1');
  requireFloat(x2, 'cosineSimilarity', 'x2');
  const shape = broadcastShapes(x1.shape, x2.shape, 'cosineSimilarity');
  const d = normalizeDim(dim, shape.length, 'cosineSimilarity');
  const a = x1.expand(shape);
  const b = x2.expand(shape);
  const unit = (v: Tensor) => div(v, clamp(norm(v, 2, d, true), { min: eps }));
  return sum(mul(unit(a), unit(b)), d);
}

/** ||x1 - x2 + eps||_p over the last dim (PyTorch adds eps to the difference to avoid a kink at 0). */
export function pairwiseDistance(x1: Tensor, x2: Tensor, opts: { p?: number; eps?: number; keepdim?: boolean } = {}): Tensor {
  const { p = 2, eps = 1e-6, keepdim = false } = opts;
  requireFloat(x1, 'pairwiseDistance', 'x1');
  requireFloat(x2, 'pairwiseDistance', 'x2');
  return norm(add(sub(x1, x2), eps), p, -1, keepdim);
}
