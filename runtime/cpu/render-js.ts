// Renders the op table's scalar expressions (ir/expr.ts) as JavaScript statements. This is the
// CPU's whole share of each op's maths; the same trees render to WGSL for WebGPU.
import type { BinaryFn, DType, Expr, UnaryFn } from '../../ir/index.js';

/** The number kind a JS value holds: float, int32 or bool (0/1). */
type Kind = 'f' | 'i' | 'b';

const kindOf = (d: DType): Kind => (d === 'int32' ? 'i' : d === 'bool' ? 'b' : 'f');

/** A number literal; negative ones in parentheses, so that `-x` of one is not `--x`. */
function literal(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '(-Infinity)';
  return Object.is(v, -0) ? '(-0)' : v < 0 ? `(${v})` : String(v);
}

export interface Rendered {
  /** Statements to run once before the loop (scratch space the body uses). */
  readonly prelude: string;
  /** Statements computing the result into the variable `result`. */
  readonly body: string;
  readonly result: string;
  /** The result's number kind: a 'b' result already holds 0 or 1. */
  readonly kind: Kind;
}

// Branch-free forms. V8 compiles `c ? x : y` to a branch, which mispredicts on data such as
// ReLU masks (half the signs random): 7-12 ns/element against 2 measured. So comparisons render
// as `+(a < b)` (a setcc, no branch) and a select on a 0/1 condition picks from a two-slot
// scratch array by index: exact for every value (NaN, -0, int32), with no branch. (A bool value
// is 0 or 1: comparisons make it so, and bool storages hold only 0/1, as toHostArray writes them.)
const SCRATCH = 'sel_';
const pick = (c: string, ifTrue: string, ifFalse: string): string => `(${SCRATCH}[0] = ${ifFalse}, ${SCRATCH}[1] = ${ifTrue}, ${SCRATCH}[${c}])`;

/**
 * Renders `expr` over variables `x0, x1, ...` (the loaded inputs of dtypes `inputs`). Every node
 * becomes one `const t<n>` so a value used twice is computed once.
 */
export function renderJs(expr: Expr, inputs: readonly DType[]): Rendered {
  const lines: string[] = [];
  let n = 0;
  let scratch = false;
  const emit = (code: string): string => {
    const name = `t${n++}`;
    lines.push(`const ${name} = ${code};`);
    return name;
  };
  // A subexpression shared by object identity (a fused kernel's value used twice) is computed once.
  const memo = new Map<Expr, [string, Kind]>();
  const go = (e: Expr): [string, Kind] => {
    const known = memo.get(e);
    if (known) return known;
    const r = goFresh(e);
    memo.set(e, r);
    return r;
  };
  const goFresh = (e: Expr): [string, Kind] => {
    switch (e.k) {
      case 'input': return [`x${e.i}`, kindOf(inputs[e.i])];
      case 'const': return [literal(e.value), Number.isInteger(e.value) ? 'i' : 'f'];
      case 'cast': {
        const [a] = go(e.a);
        if (e.to === 'bool') return [emit(`+(${a} !== 0)`), 'b'];
        if (e.to === 'int32') return [emit(`(${a} | 0)`), 'i'];
        if (e.to === 'float32' || e.to === 'float16') return [emit(`Math.fround(${a})`), 'f'];
        return [a, 'f'];
      }
      case 'select': {
        const [c, kc] = go(e.cond);
        const [a, ka] = go(e.a);
        const [b, kb] = go(e.b);
        // Only a 0/1 condition can index the scratch (a float one is tested for truthiness).
        if (kc === 'b') scratch = true;
        const code = kc === 'b' ? pick(c, a, b) : `(${c} ? ${a} : ${b})`;
        return [emit(code), ka === 'f' || kb === 'f' ? 'f' : ka === 'i' || kb === 'i' ? 'i' : 'b'];
      }
      case 'unary': {
        const [a, k] = go(e.a);
        if (e.fn === 'relu' && k === 'f') scratch = true;
        const [code, kind] = unary(e.fn, a, k);
        return [emit(code), kind];
      }
      case 'binary': {
        const [a, ka] = go(e.a);
        const [b, kb] = go(e.b);
        const [code, kind] = binary(e.fn, a, b, ka !== 'f' && kb !== 'f', ka === 'b' && kb === 'b');
        return [emit(code), kind];
      }
    }
  };
  const [result, kind] = go(expr);
  const prelude = scratch ? `const ${SCRATCH} = new Float64Array(2);` : '';
  return { prelude, body: lines.join('\n'), result, kind };
}

function unary(fn: UnaryFn, a: string, k: Kind): [string, Kind] {
  const num: Kind = k === 'b' ? 'i' : k;
  switch (fn) {
    case 'neg': return [k === 'f' ? `(-${a})` : `((-${a}) | 0)`, num];
    case 'abs': return [`Math.abs(${a})`, num];
    case 'sign': return [`Math.sign(${a})`, num];
    // int32: a & ~(a >> 31) zeroes negatives without a branch.
    case 'relu': return [k === 'f' ? pick(`+(${a} < 0)`, '0', a) : `(${a} & ~(${a} >> 31))`, num];
    case 'floor': return [`Math.floor(${a})`, num];
    case 'ceil': return [`Math.ceil(${a})`, num];
    case 'exp': return [`Math.exp(${a})`, 'f'];
    case 'log': return [`Math.log(${a})`, 'f'];
    case 'sqrt': return [`Math.sqrt(${a})`, 'f'];
    case 'tanh': return [`Math.tanh(${a})`, 'f'];
    case 'sin': return [`Math.sin(${a})`, 'f'];
    case 'cos': return [`Math.cos(${a})`, 'f'];
    case 'sigmoid': return [`1 / (1 + Math.exp(-${a}))`, 'f'];
    case 'not': return [k === 'b' ? `(${a} ^ 1)` : `+!${a}`, 'b'];
    case 'isnan': return [`+(${a} !== ${a})`, 'b'];
  }
}

/** `int`: both operands are int32/bool, so arithmetic wraps as int32 (Math.imul, `| 0`); `bools`: both are 0/1. */
function binary(fn: BinaryFn, a: string, b: string, int: boolean, bools: boolean): [string, Kind] {
  const num: Kind = int ? 'i' : 'f';
  switch (fn) {
    case 'add': return [int ? `(${a} + ${b}) | 0` : `${a} + ${b}`, num];
    case 'sub': return [int ? `(${a} - ${b}) | 0` : `${a} - ${b}`, num];
    case 'mul': return [int ? `Math.imul(${a}, ${b})` : `${a} * ${b}`, num];
    case 'div': return [`${a} / ${b}`, 'f'];
    case 'pow': return [int ? `Math.pow(${a}, ${b}) | 0` : `Math.pow(${a}, ${b})`, num];
    case 'max': return [`Math.max(${a}, ${b})`, num];
    case 'min': return [`Math.min(${a}, ${b})`, num];
    case 'lt': return [`+(${a} < ${b})`, 'b'];
    case 'le': return [`+(${a} <= ${b})`, 'b'];
    case 'gt': return [`+(${a} > ${b})`, 'b'];
    case 'ge': return [`+(${a} >= ${b})`, 'b'];
    case 'eq': return [`+(${a} === ${b})`, 'b'];
    case 'ne': return [`+(${a} !== ${b})`, 'b'];
    // On 0/1 operands bitwise and/or are the logical ones, without a branch; others test truthiness.
    case 'and': return [bools ? `(${a} & ${b})` : `(${a} && ${b} ? 1 : 0)`, 'b'];
    case 'or': return [bools ? `(${a} | ${b})` : `(${a} || ${b} ? 1 : 0)`, 'b'];
  }
}
