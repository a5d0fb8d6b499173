// Movement ops. reshape/permute/expand/slice are views (re-striding, no copy) wherever the input
// layout allows; pad and cat write new tensors. transpose, t, squeeze, unsqueeze, flatten, view,
// narrow and stack are composites in the runtime.
import { promoteTypes } from '../dtype.js';
import { defineOp, type Layout } from '../op.js';
import { contiguousStrides, fmtShape, numel } from '../shape.js';

/** Is `l` laid out row-major contiguous (strides of size-1 dims do not matter)? Allocates nothing. */
export function isContiguous(l: Pick<Layout, 'shape' | 'strides'>): boolean {
  let expected = 1;
  for (let i = l.shape.length - 1; i >= 0; i--) {
    if (l.shape[i] !== 1 && l.strides[i] !== expected) return false;
    expected *= l.shape[i];
  }
  return true;
}

/** Does `l` cover a storage of `length` elements exactly: contiguous from offset 0, nothing left over? */
export function coversWhole(l: Layout, length: number): boolean {
  return l.offset === 0 && numel(l.shape) === length && isContiguous(l);
}

export const reshape = defineOp<{ shape: readonly number[] }>({
  name: 'reshape',
  arity: 1,
  infer: ([x], a) => {
    if (numel(a.shape) !== numel(x.shape)) {
      throw new Error(`reshape: shape ${fmtShape(a.shape)} is invalid for input of shape ${fmtShape(x.shape)} (${numel(x.shape)} elements)`);
    }
    return { shape: a.shape, dtype: x.dtype };
  },
  lowering: {
    kind: 'view',
    layout: (x, a) => {
      const strides = viewStrides(x.shape, x.strides, a.shape);
      return strides ? { shape: a.shape, strides, offset: x.offset } : null;
    },
  },
  vjp: (g, c, K) => [() => K.reshape(g, c.inputs[0].shape)],
});

/**
 * Strides that show a tensor of `shape`/`strides` as `newShape` without copying, or null when no
 * such view exists (PyTorch's computeStride): each run of input dims that is contiguous in memory
 * (a "chunk") may be split or merged freely; dims are never moved across chunks.
 */
export function viewStrides(shape: readonly number[], strides: readonly number[], newShape: readonly number[]): number[] | null {
  if (shape.length === 0 || numel(shape) === 0) return contiguousStrides(newShape);
  const out = new Array<number>(newShape.length).fill(0);
  let viewD = newShape.length - 1;
  let chunkBase = strides[strides.length - 1];
  let tensorNumel = 1;
  let viewNumel = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    tensorNumel *= shape[d];
    const chunkEnds = d === 0 || (shape[d - 1] !== 1 && strides[d - 1] !== tensorNumel * chunkBase);
    if (!chunkEnds) continue;
    while (viewD >= 0 && (viewNumel < tensorNumel || newShape[viewD] === 1)) {
      out[viewD] = viewNumel * chunkBase;
      viewNumel *= newShape[viewD];
      viewD--;
    }
    if (viewNumel !== tensorNumel) return null;
    if (d > 0) {
      chunkBase = strides[d - 1];
      tensorNumel = 1;
      viewNumel = 1;
    }
  }
  return viewD === -1 ? out : null;
}

export const permute = defineOp<{ perm: readonly number[] }>({
  name: 'permute',
  arity: 1,
  infer: ([x], a) => {
    const n = x.shape.length;
    const ok = a.perm.length === n && [...a.perm].sort((p, q) => p - q).every((p, i) => p === i);
    if (!ok) throw new Error(`permute: ${JSON.stringify(a.perm)} is not a permutation of the ${n} dims of ${fmtShape(x.shape)}`);
    return { shape: a.perm.map((p) => x.shape[p]), dtype: x.dtype };
  },
  lowering: {
    kind: 'view',
    layout: (x, a) => ({ shape: a.perm.map((p) => x.shape[p]), strides: a.perm.map((p) => x.strides[p]), offset: x.offset }),
  },
  vjp: (g, c, K) => [() => K.permute(g, inversePermutation(c.attrs.perm))],
});

export function inversePermutation(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return inv;
}

export const expand = defineOp<{ shape: readonly number[] }>({
  name: 'expand',
  arity: 1,
  infer: ([x], a) => {
    const lead = a.shape.length - x.shape.length;
    const bad = lead < 0 || x.shape.some((d, i) => d !== 1 && d !== a.shape[lead + i]);
    if (bad) throw new Error(`expand: cannot expand shape ${fmtShape(x.shape)} to ${fmtShape(a.shape)}`);
    return { shape: a.shape, dtype: x.dtype };
  },
  lowering: {
    kind: 'view',
    layout: (x, a) => {
      const lead = a.shape.length - x.shape.length;
      const strides = a.shape.map((d, i) => (i < lead || x.shape[i - lead] !== d ? 0 : x.strides[i - lead]));
      return { shape: a.shape, strides, offset: x.offset };
    },
  },
  // The engine sums the gradient back to the input's shape.
  vjp: (g) => [() => g],
});

export interface SliceAttrs {
  readonly starts: readonly number[];
  readonly ends: readonly number[];
  readonly steps: readonly number[];
}

export function sliceShape(shape: readonly number[], a: SliceAttrs): number[] {
  return shape.map((_, i) => Math.max(0, Math.ceil((a.ends[i] - a.starts[i]) / a.steps[i])));
}

export const slice = defineOp<SliceAttrs>({
  name: 'slice',
  arity: 1,
  infer: ([x], a) => {
    const n = x.shape.length;
    const ok = [a.starts, a.ends, a.steps].every((v) => v.length === n) &&
      x.shape.every((d, i) => a.steps[i] >= 1 && 0 <= a.starts[i] && a.starts[i] <= a.ends[i] && a.ends[i] <= d);
    if (!ok) throw new Error(`slice: starts ${JSON.stringify(a.starts)}, ends ${JSON.stringify(a.ends)}, steps ${JSON.stringify(a.steps)} do not fit shape ${fmtShape(x.shape)}`);
    return { shape: sliceShape(x.shape, a), dtype: x.dtype };
  },
  lowering: {
    kind: 'view',
    layout: (x, a) => ({
      shape: sliceShape(x.shape, a),
      strides: x.strides.map((s, i) => s * a.steps[i]),
      offset: x.offset + x.strides.reduce((o, s, i) => o + s * a.starts[i], 0),
    }),
  },
  // Scatter the gradient back into zeros: a pad with interior padding for strided slices (XLA's trick).
  vjp: (g, c, K) => [() => {
    const { starts, steps } = c.attrs;
    const out = c.output.shape;
    const lo = starts;
    const hi = c.inputs[0].shape.map((d, i) => d - (out[i] === 0 ? starts[i] : starts[i] + (out[i] - 1) * steps[i] + 1));
    return K.pad(g, lo, hi, steps.map((s) => s - 1), 0);
  }],
});

export interface PadAttrs {
  readonly lo: readonly number[];
  readonly hi: readonly number[];
  /** Elements inserted between neighbours (the VJP of a strided slice). */
  readonly interior: readonly number[];
  readonly value: number;
}

export function padShape(shape: readonly number[], a: PadAttrs): number[] {
  return shape.map((d, i) => a.lo[i] + a.hi[i] + d + Math.max(0, d - 1) * a.interior[i]);
}

export const pad = defineOp<PadAttrs>({
  name: 'pad',
  arity: 1,
  infer: ([x], a) => {
    const n = x.shape.length;
    const ok = [a.lo, a.hi, a.interior].every((v) => v.length === n && v.every((p) => Number.isInteger(p) && p >= 0));
    if (!ok) throw new Error(`pad: lo ${JSON.stringify(a.lo)}, hi ${JSON.stringify(a.hi)}, interior ${JSON.stringify(a.interior)} must be ${n} non-negative integers each for shape ${fmtShape(x.shape)}`);
    return { shape: padShape(x.shape, a), dtype: x.dtype };
  },
  lowering: { kind: 'routine', routine: 'pad' },
  vjp: (g, c, K) => [() => {
    const { lo, interior } = c.attrs;
    const x = c.inputs[0].shape;
    return K.slice(g, lo, x.map((d, i) => lo[i] + Math.max(0, (d - 1) * (interior[i] + 1) + 1)), interior.map((p) => p + 1));
  }],
});

export const cat = defineOp<{ dim: number }>({
  name: 'cat',
  arity: -1,
  infer: (ins, a) => {
    if (ins.length === 0) throw new Error('cat: expected a non-empty list of tensors');
    const first = ins[0].shape;
    const d = a.dim;
    let size = 0;
    let dtype = ins[0].dtype;
    for (const m of ins) {
      const same = m.shape.length === first.length && m.shape.every((s, i) => i === d || s === first[i]);
      if (!same) {
        throw new Error(`cat: tensors must have the same shape except in dimension ${d}, got ${ins.map((x) => fmtShape(x.shape)).join(' and ')}`);
      }
      size += m.shape[d];
      dtype = promoteTypes(dtype, m.dtype);
    }
    const shape = [...first];
    shape[d] = size;
    return { shape, dtype };
  },
  lowering: { kind: 'routine', routine: 'cat' },
  vjp: (g, c, K) => {
    const d = c.attrs.dim;
    let start = 0;
    return c.inputs.map((m) => {
      const from = start;
      start += m.shape[d];
      const shape = c.output.shape;
      return () => K.slice(g, shape.map((_, i) => (i === d ? from : 0)), shape.map((s, i) => (i === d ? from + m.shape[d] : s)), shape.map(() => 1));
    });
  },
});

