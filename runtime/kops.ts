// KilnOps on concrete tensors: what VJP rules call during eager backward. Every entry is a public op.
import { OPS, type KilnOps } from '../ir/index.js';
import { bind } from './dispatch.js';
import { full } from './creation.js';
import * as ops from './ops/index.js';
import type { Tensor } from './tensor.js';

export const tensorOps: KilnOps<Tensor> = {
  shape: (x) => x.shape,
  dtype: (x) => x.dtype,
  columnMajor: (x) => {
    const v = x._view; // none while tracing
    return v !== undefined && x.ndim === 2 && x.shape[0] > 1 && x.shape[1] > 1 && v.strides[0] === 1 && v.strides[1] === x.shape[0];
  },
  add: (a, b) => ops.add(a, b),
  sub: (a, b) => ops.sub(a, b),
  mul: ops.mul,
  div: ops.div,
  pow: ops.pow,
  neg: ops.neg,
  exp: ops.exp,
  log: ops.log,
  sin: ops.sin,
  cos: ops.cos,
  sign: ops.sign,
  gt: ops.gt,
  eq: ops.eq,
  where: ops.where,
  cast: ops.cast,
  zerosLike: (x) => full(x.shape, 0, { dtype: x.dtype, device: x.device }),
  zeros: (shape, like) => full(shape, 0, { dtype: like.dtype, device: like.device }),
  sum: (x, dims, keepdim) => ops.sum(x, dims, keepdim),
  sumToShape: ops.sumToShape,
  reshape: ops.reshape,
  permute: ops.permute,
  expand: ops.expand,
  transpose: ops.transpose,
  matmul: ops.matmul,
  slice: (x, starts, ends, steps) => ops.sliceAll(x, starts, ends, steps),
  pad: (x, lo, hi, interior, value) => ops.padGeneral(x, lo, hi, interior, value),
  gather: ops.gather,
  scatterAdd: ops.scatterAdd,
  unfold: (x, attrs) => bind(OPS.unfold, [x], attrs),
  fold: (x, attrs) => bind(OPS.fold, [x], attrs),
};
