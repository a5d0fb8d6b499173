// Reductions: sum, amax, amin, argmax, argmin are primitives; mean, var, std, norm, max(dim) and
// the broadcast-undoing sumToShape are composites.
import { isFloating, normalizeDim, normalizeDims, numel, OPS, type Shape } from '../../ir/index.js';
import { bind } from '../dispatch.js';
import type { Tensor } from '../tensor.js';
import { abs, div, mul, pow, sqrt, sub } from './elementwise.js';

type Dims = number | readonly number[] | null | undefined;

function dimsOf(x: Tensor, dim: Dims, op: string): number[] {
  return normalizeDims(dim === null || dim === undefined ? undefined : typeof dim === 'number' ? [dim] : dim, x.ndim, op);
}

const reduce = (name: string) => (x: Tensor, dim?: Dims, keepdim = false): Tensor =>
  bind(OPS[name], [x], { dims: dimsOf(x, dim, name), keepdim });

export const sum = reduce('sum');
export const amax = reduce('max');
export const amin = reduce('min');

function argReduce(name: 'argmax' | 'argmin') {
  return (x: Tensor, dim?: number, keepdim = false): Tensor =>
    dim === undefined
      ? bind(OPS[name], [x], { dims: dimsOf(x, undefined, name), keepdim: false })
      : bind(OPS[name], [x], { dims: [normalizeDim(dim, x.ndim, name)], keepdim });
}
export const argmax = argReduce('argmax');
export const argmin = argReduce('argmin');

/** The result of `max(dim)` / `min(dim)`: destructure `[values, indices]` or read `.values` / `.indices`. */
export type ValuesIndices = [Tensor, Tensor] & { values: Tensor; indices: Tensor };

function valuesIndices(values: Tensor, indices: Tensor): ValuesIndices {
  return Object.assign([values, indices] as [Tensor, Tensor], { values, indices });
}
export const maxDim = (x: Tensor, dim: number, keepdim = false) => valuesIndices(amax(x, dim, keepdim), argmax(x, dim, keepdim));
export const minDim = (x: Tensor, dim: number, keepdim = false) => valuesIndices(amin(x, dim, keepdim), argmin(x, dim, keepdim));

function countOf(x: Tensor, dim: Dims, op: string): number {
  return dimsOf(x, dim, op).reduce((n, d) => n * x.shape[d], 1);
}

function requireFloat(x: Tensor, op: string): void {
  if (!isFloating(x.dtype)) throw new TypeError(`${op}: input dtype must be floating point, got ${x.dtype}`);
}

export function mean(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  requireFloat(x, 'mean');
  return div(sum(x, dim, keepdim), countOf(x, dim, 'mean'));
}

export function variance(x: Tensor, dim?: Dims, opts: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor {
  requireFloat(x, 'var');
  const n = countOf(x, dim, 'var');
  const centered = sub(x, mean(x, dim, true));
  return div(sum(mul(centered, centered), dim, opts.keepdim ?? false), opts.unbiased === false ? n : n - 1);
}

export const std = (x: Tensor, dim?: Dims, opts: { unbiased?: boolean; keepdim?: boolean } = {}): Tensor => sqrt(variance(x, dim, opts));

export function norm(x: Tensor, p = 2, dim?: Dims, keepdim = false): Tensor {
  requireFloat(x, 'norm');
  if (p === Infinity) return amax(abs(x), dim, keepdim);
  if (p === 1) return sum(abs(x), dim, keepdim);
  if (p === 2) return sqrt(sum(mul(x, x), dim, keepdim));
  return pow(sum(pow(abs(x), p), dim, keepdim), 1 / p);
}

/** Sums `x` down to `shape`, undoing broadcasting (how gradients reach broadcast inputs). */
export function sumToShape(x: Tensor, shape: Shape): Tensor {
  const lead = x.ndim - shape.length;
  const dims: number[] = [];
  for (let i = 0; i < x.ndim; i++) if (i < lead || (shape[i - lead] === 1 && x.shape[i] !== 1)) dims.push(i);
  const summed = dims.length ? sum(x, dims, true) : x;
  return numel(summed.shape) === numel(shape) && summed.ndim === shape.length ? summed : bind(OPS.reshape, [summed], { shape });
}
