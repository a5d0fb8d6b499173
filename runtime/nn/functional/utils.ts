// Argument handling shared by the functional ops: PyTorch's int-or-tuple sizes, dtype checks and
// loss reductions.
import { fmtShape, isFloating } from '../../../ir/index.js';
import { mean, sum } from '../../ops/index.js';
import type { Tensor } from '../../tensor.js';

export type IntOrTuple = number | readonly number[];
export type Reduction = 'none' | 'mean' | 'sum';

/** `3` -> [3, 3] for n = 2; a tuple must have n entries. */
export function ntuple(v: IntOrTuple, n: number, name: string, op: string): number[] {
  const out = typeof v === 'number' ? new Array<number>(n).fill(v) : [...v];
  if (out.length !== n || out.some((p) => !Number.isInteger(p))) {
    throw new Error(`${op}: ${name} must be an integer or ${n} integers, got ${JSON.stringify(v)}`);
  }
  return out;
}

export function requireFloat(x: Tensor, op: string, what = 'input'): void {
  if (!isFloating(x.dtype)) throw new TypeError(`${op}: ${what} must be a floating point tensor, got ${x.dtype}`);
}

export function requireSameDType(a: Tensor, b: Tensor, op: string, names: [string, string]): void {
  if (a.dtype !== b.dtype) throw new TypeError(`${op}: ${names[0]} dtype ${a.dtype} and ${names[1]} dtype ${b.dtype} differ; cast one of them`);
}

export function requireSameShape(a: Tensor, b: Tensor, op: string, names: [string, string] = ['input', 'target']): void {
  if (fmtShape(a.shape) !== fmtShape(b.shape)) {
    throw new Error(`${op}: ${names[1]} shape ${fmtShape(b.shape)} differs from ${names[0]} shape ${fmtShape(a.shape)}; they must match`);
  }
}

/** PyTorch's `reduction` argument applied to an elementwise loss. */
export function reduceLoss(loss: Tensor, reduction: Reduction | undefined, op: string): Tensor {
  switch (reduction ?? 'mean') {
    case 'none': return loss;
    case 'sum': return sum(loss);
    case 'mean': return mean(loss);
    default: throw new Error(`${op}: reduction must be 'none', 'mean' or 'sum', got ${JSON.stringify(reduction)}`);
  }
}

/** Adds a batch dim of 1 to an unbatched input (PyTorch accepts both); `undo` removes it again. */
export function batchify(x: Tensor, spatialDims: number, op: string, layout: string): { x: Tensor; undo: (y: Tensor) => Tensor } {
  if (x.ndim === spatialDims + 2) return { x, undo: (y) => y };
  if (x.ndim === spatialDims + 1) return { x: x.unsqueeze(0), undo: (y) => y.squeeze(0) };
  throw new Error(`${op}: expected a ${spatialDims + 1}-D (unbatched) or ${spatialDims + 2}-D (batched) input ${layout}, got ${fmtShape(x.shape)}`);
}
