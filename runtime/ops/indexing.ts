// gather / scatterAdd primitives and indexSelect over gather.
import { fmtShape, normalizeDim, OPS } from '../../ir/index.js';
import { bind } from '../dispatch.js';
import type { Tensor } from '../tensor.js';
import { expand, reshape } from './shape.js';

export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  return bind(OPS.gather, [x, index], { dim: normalizeDim(dim, x.ndim, 'gather') });
}

export function scatterAdd(x: Tensor, dim: number, index: Tensor, src: Tensor): Tensor {
  return bind(OPS.scatterAdd, [x, index, src], { dim: normalizeDim(dim, x.ndim, 'scatterAdd') });
}

/** The slices of `x` at positions `index` (1-D, int32) along `dim`. */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  const d = normalizeDim(dim, x.ndim, 'indexSelect');
  if (index.ndim !== 1) throw new Error(`indexSelect: index must be 1-D, got ${fmtShape(index.shape)}`);
  const outShape = x.shape.map((n, i) => (i === d ? index.shape[0] : n));
  const idx = expand(reshape(index, x.shape.map((_, i) => (i === d ? -1 : 1))), outShape);
  return gather(x, d, idx);
}
