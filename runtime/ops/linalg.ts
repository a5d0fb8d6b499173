// mm, bmm, mv, dot and PyTorch's matmul (1-D cases included) over the one `matmul` primitive.
import { fmtShape, OPS } from '../../ir/index.js';
import { bind } from '../dispatch.js';
import type { Tensor } from '../tensor.js';
import { reshape, squeeze, unsqueeze } from './shape.js';

function checkInner(op: string, a: Tensor, b: Tensor, ka: number, kb: number): void {
  if (ka !== kb) {
    throw new Error(`${op}: shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} cannot be multiplied (inner dimensions ${ka} and ${kb} differ)`);
  }
}

export function mm(a: Tensor, b: Tensor): Tensor {
  if (a.ndim !== 2 || b.ndim !== 2) throw new Error(`mm: expected 2-D tensors, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  checkInner('mm', a, b, a.shape[1], b.shape[0]);
  return bind(OPS.matmul, [a, b]);
}

export function bmm(a: Tensor, b: Tensor): Tensor {
  if (a.ndim !== 3 || b.ndim !== 3) throw new Error(`bmm: expected 3-D tensors, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  if (a.shape[0] !== b.shape[0]) throw new Error(`bmm: batch sizes differ: ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  checkInner('bmm', a, b, a.shape[2], b.shape[1]);
  return bind(OPS.matmul, [a, b]);
}

export function mv(a: Tensor, v: Tensor): Tensor {
  if (a.ndim !== 2 || v.ndim !== 1) throw new Error(`mv: expected a 2-D matrix and a 1-D vector, got ${fmtShape(a.shape)} and ${fmtShape(v.shape)}`);
  checkInner('mv', a, v, a.shape[1], v.shape[0]);
  return squeeze(bind(OPS.matmul, [a, unsqueeze(v, 1)]), -1);
}

export function dot(a: Tensor, b: Tensor): Tensor {
  if (a.ndim !== 1 || b.ndim !== 1) throw new Error(`dot: expected 1-D tensors, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  checkInner('dot', a, b, a.shape[0], b.shape[0]);
  return reshape(bind(OPS.matmul, [unsqueeze(a, 0), unsqueeze(b, 1)]), []);
}

/** torch.matmul: 1-D operands are promoted to matrices and the added dim removed afterwards. */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim === 0 || b.ndim === 0) throw new Error(`matmul: both arguments need at least 1 dimension, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
  if (a.ndim === 1 && b.ndim === 1) return dot(a, b);
  const a2 = a.ndim === 1 ? unsqueeze(a, 0) : a;
  const b2 = b.ndim === 1 ? unsqueeze(b, 1) : b;
  checkInner('matmul', a, b, a2.shape[a2.ndim - 1], b2.shape[b2.ndim - 2]);
  let out = bind(OPS.matmul, [a2, b2]);
  if (b.ndim === 1) out = squeeze(out, -1);
  if (a.ndim === 1) out = squeeze(out, -2);
  return out;
}
