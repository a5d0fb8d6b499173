// What an op declaration is. Every primitive op is one `OpDef` in the op table (ir/ops/); eager
// execution, tracing, symbolic differentiation and every backend read that one declaration.
import type { DType } from './dtype.js';
import type { Expr } from './expr.js';
import type { KilnOps } from './kiln-ops.js';
import type { Shape } from './shape.js';

/** What an op's shape rule sees of a tensor: no values, only its type. */
export interface Meta {
  readonly shape: Shape;
  readonly dtype: DType;
}

/** A strided window onto a storage: how movement ops become views instead of copies. */
export interface Layout {
  readonly shape: Shape;
  readonly strides: readonly number[];
  readonly offset: number;
}

/**
 * How an op runs. The backends and the compiler switch on `kind`:
 * - `elementwise`: one scalar expression per output element; inputs are broadcast to the output
 *   shape first, so the expression never sees broadcasting.
 * - `reduce`: a reduction over `attrs.dims` with one of the named combiners.
 * - `view`: a movement op that only re-strides its input (`layout` returns null when it cannot,
 *   and the input is made contiguous first).
 * - `routine`: a named kernel with its own template (matmul, gather, ...).
 *
 * The compiler's fusion adds two hooks: a reduction's `prologue` (the elementwise expression whose
 * values are reduced, over inputs broadcast to the pre-reduction shape) and matmul's `epilogue`
 * (an expression of the product `$0` and extra inputs broadcast to the output shape).
 */
export type Lowering<A> =
  | { readonly kind: 'elementwise'; readonly expr: (inputs: readonly Expr[], attrs: A) => Expr }
  | { readonly kind: 'reduce'; readonly reducer: Reducer; readonly prologue?: Expr }
  | { readonly kind: 'view'; readonly layout: (input: Layout, attrs: A) => Layout | null }
  | { readonly kind: 'routine'; readonly routine: Routine; readonly epilogue?: Expr };

export type Reducer = 'sum' | 'max' | 'min' | 'argmax' | 'argmin';
export type Routine = 'matmul' | 'cat' | 'pad' | 'gather' | 'scatterAdd' | 'full' | 'random' | 'unfold' | 'fold';

/** What a VJP rule may read: the op's attributes, the types of its inputs and output, and the tensors the op saved. */
export interface VjpContext<T, A> {
  readonly attrs: A;
  readonly inputs: readonly Meta[];
  readonly output: Meta;
  /** A saved input (declared in `saves.inputs`). */
  x(i: number): T;
  /** The saved output (declared with `saves.output`). */
  out(): T;
}

/**
 * The gradient of an op with respect to each input, given `g`, the gradient of its output.
 * One thunk per input (null: not differentiable in that input), so only the gradients someone
 * needs are built. Results may have the broadcast shape or a promoted dtype: the caller sums and
 * casts them to the input's type (ir/autodiff.ts), so rules never repeat that.
 */
export type VjpRule<A> = <T>(g: T, c: VjpContext<T, A>, K: KilnOps<T>) => ReadonlyArray<(() => T) | null>;

export interface OpDef<A = any> {
  readonly name: string;
  /** Number of tensor inputs; -1 for variadic (cat). */
  readonly arity: number;
  /** Shape and dtype of the output; throws an error naming the op and the offending shapes/dtypes. */
  infer(inputs: readonly Meta[], attrs: A): Meta;
  readonly lowering: Lowering<A>;
  readonly vjp?: VjpRule<A>;
  /** Which inputs (by index, or all) and whether the output the VJP reads, so autograd keeps exactly those. */
  readonly saves?: { readonly inputs?: readonly number[] | 'all'; readonly output?: boolean };
  /** Draws from the random generator: each run gives new values, so it is never folded or merged. */
  readonly impure?: boolean;
}

export function defineOp<A>(def: OpDef<A>): OpDef<A> {
  return def;
}
