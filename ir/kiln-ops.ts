// The ops a VJP rule may call. The runtime implements this interface with its public ops on
// concrete tensors (eager autograd); the compiler implements it on symbolic tensors (symbolic
// differentiation). That is how one rule serves both modes.
import type { DType } from './dtype.js';
import type { FoldAttrs, UnfoldAttrs } from './ops/conv.js';
import type { Shape } from './shape.js';

export interface KilnOps<T> {
  shape(x: T): Shape;
  dtype(x: T): DType;
  /**
   * Whether x is a matrix laid out transposed (a transposed view of a row-major one, as a Linear
   * layer's weight is in x @ Wᵀ). A rule may then build x's gradient as a transposed product, so it
   * comes out in x's own layout and is stored without a transposing copy (PyTorch's mm backward
   * does the same). Symbolic tensors have no layout yet: false (the compiler chooses layouts).
   */
  columnMajor(x: T): boolean;
  add(a: T, b: T | number): T;
  sub(a: T, b: T | number): T;
  mul(a: T, b: T | number): T;
  div(a: T, b: T | number): T;
  pow(a: T, b: T | number): T;
  neg(x: T): T;
  exp(x: T): T;
  log(x: T): T;
  sin(x: T): T;
  cos(x: T): T;
  sign(x: T): T;
  gt(a: T, b: T | number): T;
  eq(a: T, b: T | number): T;
  where(cond: T, a: T | number, b: T | number): T;
  cast(x: T, dtype: DType): T;
  zerosLike(x: T): T;
  /** Zeros of `shape` with the dtype and device of `like`. */
  zeros(shape: Shape, like: T): T;
  sum(x: T, dims: readonly number[], keepdim: boolean): T;
  /** Sums a broadcast gradient back down to `shape`. */
  sumToShape(x: T, shape: Shape): T;
  reshape(x: T, shape: Shape): T;
  permute(x: T, perm: readonly number[]): T;
  expand(x: T, shape: Shape): T;
  transpose(x: T, d0: number, d1: number): T;
  matmul(a: T, b: T): T;
  slice(x: T, starts: readonly number[], ends: readonly number[], steps: readonly number[]): T;
  pad(x: T, lo: readonly number[], hi: readonly number[], interior: readonly number[], value: number): T;
  gather(x: T, dim: number, index: T): T;
  scatterAdd(base: T, dim: number, index: T, src: T): T;
  /** im2col and col2im (ir/ops/conv.ts): each is the other's VJP. */
  unfold(x: T, attrs: UnfoldAttrs): T;
  fold(x: T, attrs: FoldAttrs): T;
}
