// Movement ops. reshape, permute, expand, slice are primitives (views where possible); the rest are
// composites over them.
import { fmtShape, isContiguous, normalizeDim, numel, OPS } from '../../ir/index.js';
import { bind } from '../dispatch.js';
import type { Tensor } from '../tensor.js';

/** Resolves one -1 in `shape` against `total` elements. */
function inferShape(shape: readonly number[], total: number, input: readonly number[], op: string): number[] {
  const out = [...shape];
  const free = out.indexOf(-1);
  if (out.some((d, i) => !Number.isInteger(d) || d < -1 || (d === -1 && i !== free))) {
    throw new Error(`${op}: invalid shape ${fmtShape(shape)} (sizes are non-negative integers, with at most one -1)`);
  }
  if (free >= 0) {
    const known = out.reduce((p, d, i) => (i === free ? p : p * d), 1);
    if (known === 0 || total % known !== 0) {
      throw new Error(`${op}: shape ${fmtShape(shape)} is invalid for input of shape ${fmtShape(input)} (${total} elements)`);
    }
    out[free] = total / known;
  }
  if (numel(out) !== total) {
    throw new Error(`${op}: shape ${fmtShape(shape)} is invalid for input of shape ${fmtShape(input)} (${total} elements)`);
  }
  return out;
}

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  return bind(OPS.reshape, [x], { shape: inferShape(shape, x.numel(), x.shape, 'reshape') });
}

/** Like reshape, but never copies: a layout that cannot be re-viewed is an error, as in PyTorch. */
export function view(x: Tensor, shape: readonly number[]): Tensor {
  const resolved = inferShape(shape, x.numel(), x.shape, 'view');
  if (x._view && !isContiguous(x._view)) {
    throw new Error(`view: the input of shape ${fmtShape(x.shape)} is not contiguous, so it cannot be viewed as ${fmtShape(resolved)}; use .reshape(...) (which copies) or call .contiguous() first`);
  }
  return bind(OPS.reshape, [x], { shape: resolved });
}

export function permute(x: Tensor, dims: readonly number[]): Tensor {
  return bind(OPS.permute, [x], { perm: dims.map((d) => normalizeDim(d, x.ndim, 'permute')) });
}

export function transpose(x: Tensor, dim0: number, dim1: number): Tensor {
  const perm = [...x.shape.keys()];
  const a = normalizeDim(dim0, x.ndim, 'transpose');
  const b = normalizeDim(dim1, x.ndim, 'transpose');
  [perm[a], perm[b]] = [perm[b], perm[a]];
  return bind(OPS.permute, [x], { perm });
}

export function t(x: Tensor): Tensor {
  if (x.ndim > 2) throw new Error(`t: expects a tensor with <= 2 dimensions, got ${fmtShape(x.shape)}; use transpose(dim0, dim1)`);
  return x.ndim < 2 ? x : transpose(x, 0, 1);
}

export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const lead = shape.length - x.ndim;
  const resolved = shape.map((d, i) => (d === -1 && i >= lead ? x.shape[i - lead] : d));
  return bind(OPS.expand, [x], { shape: resolved });
}

export function squeeze(x: Tensor, dim?: number): Tensor {
  if (dim === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const d = normalizeDim(dim, x.ndim, 'squeeze');
  return x.shape[d] === 1 ? reshape(x, x.shape.filter((_, i) => i !== d)) : x;
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normalizeDim(dim, x.ndim + 1, 'unsqueeze');
  const shape = [...x.shape];
  shape.splice(d, 0, 1);
  return reshape(x, shape);
}

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normalizeDim(startDim, x.ndim, 'flatten');
  const e = normalizeDim(endDim, x.ndim, 'flatten');
  const shape = [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)];
  return reshape(x, shape);
}

/** x[..., start:end:step, ...] along `dim`, with Python's clamping of out-of-range bounds. */
export function slice(x: Tensor, dim: number, start?: number | null, end?: number | null, step = 1): Tensor {
  const d = normalizeDim(dim, x.ndim, 'slice');
  if (!Number.isInteger(step) || step < 1) throw new Error(`slice: step must be a positive integer, got ${step}`);
  const size = x.shape[d];
  const clampIdx = (i: number) => Math.min(size, Math.max(0, i < 0 ? i + size : i));
  const s = clampIdx(start ?? 0);
  const e = Math.max(s, clampIdx(end ?? size));
  const starts = x.shape.map((_, i) => (i === d ? s : 0));
  const ends = x.shape.map((n, i) => (i === d ? e : n));
  const steps = x.shape.map((_, i) => (i === d ? step : 1));
  return bind(OPS.slice, [x], { starts, ends, steps });
}

export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  const d = normalizeDim(dim, x.ndim, 'narrow');
  const s = start < 0 ? start + x.shape[d] : start;
  if (s < 0 || length < 0 || s + length > x.shape[d]) {
    throw new RangeError(`narrow: start ${start} and length ${length} exceed dimension ${d} of size ${x.shape[d]}`);
  }
  return slice(x, d, s, s + length);
}

export function select(x: Tensor, dim: number, index: number): Tensor {
  const d = normalizeDim(dim, x.ndim, 'select');
  const size = x.shape[d];
  if (index < -size || index >= size) throw new RangeError(`select: index ${index} is out of range for dimension ${d} of size ${size}`);
  return squeeze(narrow(x, d, index < 0 ? index + size : index, 1), d);
}

export function split(x: Tensor, size: number | readonly number[], dim = 0): Tensor[] {
  const d = normalizeDim(dim, x.ndim, 'split');
  const n = x.shape[d];
  const sizes = typeof size === 'number' ? Array.from({ length: Math.max(1, Math.ceil(n / size)) }, (_, i) => Math.min(size, n - i * size)) : [...size];
  if (sizes.reduce((a, b) => a + b, 0) !== n) throw new Error(`split: sizes ${JSON.stringify(sizes)} do not add up to dimension ${d} of size ${n}`);
  let at = 0;
  return sizes.map((len) => narrow(x, d, (at += len) - len, len));
}

export const chunk = (x: Tensor, chunks: number, dim = 0): Tensor[] =>
  split(x, Math.ceil(x.shape[normalizeDim(dim, x.ndim, 'chunk')] / chunks), dim);

export const unbind = (x: Tensor, dim = 0): Tensor[] =>
  Array.from({ length: x.shape[normalizeDim(dim, x.ndim, 'unbind')] }, (_, i) => select(x, dim, i));

export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new Error('cat: expected a non-empty list of tensors');
  const d = normalizeDim(dim, tensors[0].ndim, 'cat');
  for (const x of tensors) {
    if (x.ndim !== tensors[0].ndim) {
      throw new Error(`cat: tensors must have the same number of dimensions, got ${tensors.map((y) => fmtShape(y.shape)).join(' and ')}`);
    }
  }
  return tensors.length === 1 ? tensors[0] : bind(OPS.cat, tensors, { dim: d });
}

export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new Error('stack: expected a non-empty list of tensors');
  const first = tensors[0].shape;
  for (const x of tensors) {
    if (fmtShape(x.shape) !== fmtShape(first)) {
      throw new Error(`stack: expects each tensor to be equal size, got ${tensors.map((y) => fmtShape(y.shape)).join(' and ')}`);
    }
  }
  const d = normalizeDim(dim, first.length + 1, 'stack');
  return cat(tensors.map((x) => unsqueeze(x, d)), d);
}

/**
 * Constant padding, PyTorch's F.pad order: `pads` lists (before, after) pairs starting from the
 * last dim. Negative pads crop.
 */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  if (pads.length % 2 !== 0 || pads.length / 2 > x.ndim) {
    throw new Error(`pad: padding length ${pads.length} must be even and at most twice the number of dims (${x.ndim})`);
  }
  const lo = x.shape.map(() => 0);
  const hi = x.shape.map(() => 0);
  for (let i = 0; i < pads.length / 2; i++) {
    lo[x.ndim - 1 - i] = pads[2 * i];
    hi[x.ndim - 1 - i] = pads[2 * i + 1];
  }
  // Crop first (a slice), then pad what remains.
  const cropped = lo.some((p) => p < 0) || hi.some((p) => p < 0)
    ? bind(OPS.slice, [x], { starts: lo.map((p) => Math.max(0, -p)), ends: x.shape.map((n, i) => n - Math.max(0, -hi[i])), steps: lo.map(() => 1) })
    : x;
  const plo = lo.map((p) => Math.max(0, p));
  const phi = hi.map((p) => Math.max(0, p));
  if (plo.every((p) => p === 0) && phi.every((p) => p === 0)) return cropped;
  return bind(OPS.pad, [cropped], { lo: plo, hi: phi, interior: lo.map(() => 0), value });
}

/** The same values in a contiguous layout (the tensor itself when it already is). */
export function contiguous(x: Tensor): Tensor {
  return x.isContiguous() ? x : bind(OPS.copy, [x]);
}

export function clone(x: Tensor): Tensor {
  return bind(OPS.copy, [x]);
}

/** The slice primitive with a start, end and step for every dim. */
export function sliceAll(x: Tensor, starts: readonly number[], ends: readonly number[], steps: readonly number[]): Tensor {
  return bind(OPS.slice, [x], { starts, ends, steps });
}

/** The pad primitive: lo/hi padding and interior padding (between neighbours) for every dim. */
export function padGeneral(x: Tensor, lo: readonly number[], hi: readonly number[], interior: readonly number[], value: number): Tensor {
  return bind(OPS.pad, [x], { lo, hi, interior, value });
}
