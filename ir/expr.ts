// The scalar expression language of elementwise lowerings. An elementwise op's lowering is a
// function from input expressions to an output expression; each backend renders the tree into its
// own source (JS for the CPU, WGSL for WebGPU), and the compiler's fusion composes trees. So the
// maths of an op is written once, here in the op table, and never per backend.
import type { DType } from './dtype.js';

export type UnaryFn =
  | 'neg' | 'exp' | 'log' | 'sqrt' | 'abs' | 'sign' | 'tanh' | 'sigmoid' | 'relu'
  | 'not' | 'floor' | 'ceil' | 'sin' | 'cos' | 'isnan';
export type BinaryFn =
  | 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'max' | 'min'
  | 'lt' | 'le' | 'gt' | 'ge' | 'eq' | 'ne' | 'and' | 'or';

export type Expr =
  | { readonly k: 'input'; readonly i: number }
  | { readonly k: 'const'; readonly value: number }
  | { readonly k: 'unary'; readonly fn: UnaryFn; readonly a: Expr }
  | { readonly k: 'binary'; readonly fn: BinaryFn; readonly a: Expr; readonly b: Expr }
  | { readonly k: 'select'; readonly cond: Expr; readonly a: Expr; readonly b: Expr }
  | { readonly k: 'cast'; readonly to: DType; readonly a: Expr };

const un = (fn: UnaryFn) => (a: Expr): Expr => ({ k: 'unary', fn, a });
const bin = (fn: BinaryFn) => (a: Expr, b: Expr): Expr => ({ k: 'binary', fn, a, b });

/** Builders: `E.add(E.input(0), E.const(1))`. */
export const E = {
  input: (i: number): Expr => ({ k: 'input', i }),
  const: (value: number): Expr => ({ k: 'const', value }),
  select: (cond: Expr, a: Expr, b: Expr): Expr => ({ k: 'select', cond, a, b }),
  cast: (to: DType, a: Expr): Expr => ({ k: 'cast', to, a }),
  neg: un('neg'), exp: un('exp'), log: un('log'), sqrt: un('sqrt'), abs: un('abs'), sign: un('sign'),
  tanh: un('tanh'), sigmoid: un('sigmoid'), relu: un('relu'), not: un('not'), floor: un('floor'),
  ceil: un('ceil'), sin: un('sin'), cos: un('cos'), isnan: un('isnan'),
  add: bin('add'), sub: bin('sub'), mul: bin('mul'), div: bin('div'), pow: bin('pow'),
  max: bin('max'), min: bin('min'), lt: bin('lt'), le: bin('le'), gt: bin('gt'), ge: bin('ge'),
  eq: bin('eq'), ne: bin('ne'), and: bin('and'), or: bin('or'),
};

/** Replaces every `input(i)` with `args[i]` (how fusion composes producers into consumers). */
export function substitute(e: Expr, args: readonly Expr[]): Expr {
  switch (e.k) {
    case 'input': return args[e.i];
    case 'const': return e;
    case 'unary': return { ...e, a: substitute(e.a, args) };
    case 'binary': return { ...e, a: substitute(e.a, args), b: substitute(e.b, args) };
    case 'select': return { ...e, cond: substitute(e.cond, args), a: substitute(e.a, args), b: substitute(e.b, args) };
    case 'cast': return { ...e, a: substitute(e.a, args) };
  }
}

export function exprToString(e: Expr): string {
  switch (e.k) {
    case 'input': return `$${e.i}`;
    case 'const': return String(e.value);
    case 'unary': return `${e.fn}(${exprToString(e.a)})`;
    case 'binary': return `${e.fn}(${exprToString(e.a)}, ${exprToString(e.b)})`;
    case 'select': return `select(${exprToString(e.cond)}, ${exprToString(e.a)}, ${exprToString(e.b)})`;
    case 'cast': return `${e.to}(${exprToString(e.a)})`;
  }
}
