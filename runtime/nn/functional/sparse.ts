// Embedding lookup over indexSelect (so the weight's gradient is a scatter-add of the rows used).
import { fmtShape } from '../../../ir/index.js';
import { eq, indexSelect, where } from '../../ops/index.js';
import type { Tensor } from '../../tensor.js';

/** Rows of weight [num, dim] at int32 `indices` (any shape) -> [*indices.shape, dim]; rows at paddingIdx get no gradient. */
export function embedding(indices: Tensor, weight: Tensor, opts: { paddingIdx?: number | null } = {}): Tensor {
  if (indices.dtype !== 'int32') throw new TypeError(`embedding: indices must be an int32 tensor, got ${indices.dtype}`);
  if (weight.ndim !== 2) throw new Error(`embedding: weight must be 2-D [num_embeddings, embedding_dim], got ${fmtShape(weight.shape)}`);
  const [num, dim] = weight.shape;
  const rows = indexSelect(weight, 0, indices.reshape([-1])).reshape([...indices.shape, dim]);
  if (opts.paddingIdx === undefined || opts.paddingIdx === null) return rows;
  const p = opts.paddingIdx;
  if (!Number.isInteger(p) || p < -num || p >= num) throw new RangeError(`embedding: paddingIdx ${p} must be within num_embeddings (${num})`);
  // Same values, but the padding positions read a detached copy so no gradient reaches that row.
  const isPad = eq(indices, p < 0 ? p + num : p).unsqueeze(-1);
  return where(isPad, rows.detach(), rows);
}
