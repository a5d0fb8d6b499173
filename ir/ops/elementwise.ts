// Elementwise ops: one scalar expression each, inputs broadcast to the output shape.
import { isFloating, promoteTypes, type DType } from '../dtype.js';
import { E, type Expr } from '../expr.js';
import type { KilnOps } from '../kiln-ops.js';
import { defineOp, type Meta, type OpDef, type VjpRule } from '../op.js';
import { broadcastShapes } from '../shape.js';

/** How an op's output dtype follows from its (promoted) input dtype. */
type DTypeRule = 'same' | 'float' | 'bool';

function outDType(rule: DTypeRule, promoted: DType): DType {
  if (rule === 'bool') return 'bool';
  if (rule === 'float' && !isFloating(promoted)) return 'float32';
  return promoted;
}

function inferElementwise(name: string, rule: DTypeRule) {
  return (inputs: readonly Meta[]): Meta => {
    let shape = inputs[0].shape as number[];
    let dtype = inputs[0].dtype;
    for (const m of inputs.slice(1)) {
      shape = broadcastShapes(shape, m.shape, name);
      dtype = promoteTypes(dtype, m.dtype);
    }
    return { shape, dtype: outDType(rule, dtype) };
  };
}

interface ElementwiseSpec {
  expr: (...xs: Expr[]) => Expr;
  dtype?: DTypeRule;
  vjp?: VjpRule<{}>;
  saves?: OpDef['saves'];
}

function elementwise(name: string, arity: number, spec: ElementwiseSpec): OpDef<{}> {
  return defineOp<{}>({
    name,
    arity,
    infer: inferElementwise(name, spec.dtype ?? 'same'),
    lowering: { kind: 'elementwise', expr: (xs) => spec.expr(...xs) },
    vjp: spec.vjp,
    saves: spec.saves,
  });
}

const IN = { inputs: 'all' } as const;
const OUT = { output: true } as const;

// Unary. Each VJP reads the saved input (x) or output (out), whichever is cheaper.
export const neg = elementwise('neg', 1, { expr: E.neg, vjp: (g, c, K) => [() => K.neg(g)] });
export const exp = elementwise('exp', 1, { expr: E.exp, dtype: 'float', saves: OUT, vjp: (g, c, K) => [() => K.mul(g, c.out())] });
export const log = elementwise('log', 1, { expr: E.log, dtype: 'float', saves: IN, vjp: (g, c, K) => [() => K.div(g, c.x(0))] });
export const sqrt = elementwise('sqrt', 1, { expr: E.sqrt, dtype: 'float', saves: OUT, vjp: (g, c, K) => [() => K.div(g, K.mul(c.out(), 2))] });
export const abs = elementwise('abs', 1, { expr: E.abs, saves: IN, vjp: (g, c, K) => [() => K.mul(g, K.sign(c.x(0)))] });
export const sign = elementwise('sign', 1, { expr: E.sign, vjp: (g, c, K) => [() => K.zerosLike(g)] });
// relu passes the gradient where x > 0 (PyTorch's relu); clamp(min=0), a composite over `where`, passes it where x >= 0.
export const relu = elementwise('relu', 1, { expr: E.relu, saves: OUT, vjp: (g, c, K) => [() => K.where(K.gt(c.out(), 0), g, 0)] });
export const sigmoid = elementwise('sigmoid', 1, { expr: E.sigmoid, dtype: 'float', saves: OUT, vjp: (g, c, K) => [() => K.mul(g, K.mul(c.out(), K.add(K.neg(c.out()), 1)))] });
export const tanh = elementwise('tanh', 1, { expr: E.tanh, dtype: 'float', saves: OUT, vjp: (g, c, K) => [() => K.mul(g, K.add(K.neg(K.mul(c.out(), c.out())), 1))] });
export const sin = elementwise('sin', 1, { expr: E.sin, dtype: 'float', saves: IN, vjp: (g, c, K) => [() => K.mul(g, K.cos(c.x(0)))] });
export const cos = elementwise('cos', 1, { expr: E.cos, dtype: 'float', saves: IN, vjp: (g, c, K) => [() => K.neg(K.mul(g, K.sin(c.x(0))))] });
export const floor = elementwise('floor', 1, { expr: E.floor, vjp: (g, c, K) => [() => K.zerosLike(g)] });
export const ceil = elementwise('ceil', 1, { expr: E.ceil, vjp: (g, c, K) => [() => K.zerosLike(g)] });
export const logicalNot = elementwise('logicalNot', 1, { expr: E.not, dtype: 'bool' });
export const isnan = elementwise('isnan', 1, { expr: E.isnan, dtype: 'bool' });
/** Materialises any view as a fresh contiguous tensor (clone, contiguous, and the copy before a reshape that cannot be a view). */
export const copy = elementwise('copy', 1, { expr: (x) => x, vjp: (g) => [() => g] });

// Binary arithmetic (PyTorch's type promotion; division of integers gives float32).
export const add = elementwise('add', 2, { expr: E.add, vjp: (g) => [() => g, () => g] });
export const sub = elementwise('sub', 2, { expr: E.sub, vjp: (g, c, K) => [() => g, () => K.neg(g)] });
export const mul = elementwise('mul', 2, { expr: E.mul, saves: IN, vjp: (g, c, K) => [() => K.mul(g, c.x(1)), () => K.mul(g, c.x(0))] });
export const div = elementwise('div', 2, {
  expr: E.div, dtype: 'float', saves: IN,
  vjp: (g, c, K) => [() => K.div(g, c.x(1)), () => K.neg(K.div(K.mul(g, c.x(0)), K.mul(c.x(1), c.x(1))))],
});
// d/dy x^y = x^y log x, taken as 0 where x == 0 (PyTorch's convention, so 0^y stays differentiable in y).
export const pow = elementwise('pow', 2, {
  expr: E.pow, saves: { inputs: 'all', output: true },
  vjp: (g, c, K) => [
    () => K.mul(g, K.mul(c.x(1), K.pow(c.x(0), K.sub(c.x(1), 1)))),
    () => K.where(K.eq(c.x(0), 0), 0, K.mul(g, K.mul(c.out(), K.log(c.x(0))))),
  ],
});
// At ties the gradient is split in half between the two inputs, as PyTorch does.
function tieSplit<T>(g: T, a: T, b: T, K: KilnOps<T>): T {
  const dt = K.dtype(g);
  return K.mul(g, K.add(K.cast(K.gt(a, b), dt), K.mul(K.cast(K.eq(a, b), dt), 0.5)));
}
export const maximum = elementwise('maximum', 2, {
  expr: E.max, saves: IN,
  vjp: (g, c, K) => [() => tieSplit(g, c.x(0), c.x(1), K), () => tieSplit(g, c.x(1), c.x(0), K)],
});
export const minimum = elementwise('minimum', 2, {
  expr: E.min, saves: IN,
  vjp: (g, c, K) => [() => tieSplit(g, c.x(1), c.x(0), K), () => tieSplit(g, c.x(0), c.x(1), K)],
});

// Comparisons and logic: boolean results, no gradient.
export const lt = elementwise('lt', 2, { expr: E.lt, dtype: 'bool' });
export const le = elementwise('le', 2, { expr: E.le, dtype: 'bool' });
export const gt = elementwise('gt', 2, { expr: E.gt, dtype: 'bool' });
export const ge = elementwise('ge', 2, { expr: E.ge, dtype: 'bool' });
export const eq = elementwise('eq', 2, { expr: E.eq, dtype: 'bool' });
export const ne = elementwise('ne', 2, { expr: E.ne, dtype: 'bool' });
export const logicalAnd = elementwise('logicalAnd', 2, { expr: E.and, dtype: 'bool' });
export const logicalOr = elementwise('logicalOr', 2, { expr: E.or, dtype: 'bool' });

/** where(cond, a, b): the result type promotes a and b only; cond is any dtype, read as truthy. */
export const where = defineOp<{}>({
  name: 'where',
  arity: 3,
  infer: (ins) => {
    const shape = broadcastShapes(broadcastShapes(ins[0].shape, ins[1].shape, 'where'), ins[2].shape, 'where');
    return { shape, dtype: promoteTypes(ins[1].dtype, ins[2].dtype) };
  },
  lowering: { kind: 'elementwise', expr: ([c, a, b]) => E.select(c, a, b) },
  saves: { inputs: [0] },
  vjp: (g, c, K) => [null, () => K.where(c.x(0), g, 0), () => K.where(c.x(0), 0, g)],
});

export const cast = defineOp<{ dtype: DType }>({
  name: 'cast',
  arity: 1,
  infer: (ins, a) => ({ shape: ins[0].shape, dtype: a.dtype }),
  lowering: { kind: 'elementwise', expr: ([x], a) => E.cast(a.dtype, x) },
  vjp: (g, c) => [isFloating(c.inputs[0].dtype) && isFloating(c.attrs.dtype) ? () => g : null],
});
