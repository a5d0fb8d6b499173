// Renders the op table's scalar expressions (ir/expr.ts) as WGSL, the WebGPU half of "one
// definition per op": the same trees render to JS for the CPU (runtime/cpu/render-js.ts). WGSL is
// strictly typed, so each node gets a kind (f32, f16, i32, bool) and operands are converted
// explicitly the way PyTorch's type promotion does (bool < i32 < f16 < f32: float16 + float32 is
// float32, float16 + int32 is float16).
//
// float16 (kind f16, WGSL's `f16`, which needs `enable f16;` — see kernels.ts): add, sub, mul, min,
// max, neg, abs, relu, floor, ceil and comparisons run in f16 (they are correctly rounded there);
// div, pow and the transcendental functions compute in f32 and round the result to f16, as
// PyTorch's GPU kernels do (their "opmath" type for half is float). A number next to an f16 value
// is an f16 literal (`1.5h`) when it is zero or a normal half; otherwise (a subnormal or
// out-of-range half, NaN, an infinity) the operation is promoted to f32 and only its result is
// rounded to f16.
import type { BinaryFn, DType, Expr, UnaryFn } from '../../ir/index.js';
import { f16ToF32, f32ToF16 } from '../half.js';

export type Kind = 'f32' | 'f16' | 'i32' | 'bool';

const RANK: Record<Kind, number> = { bool: 0, i32: 1, f16: 2, f32: 3 };
/** The kind two operands promote to. */
const wider = (a: Kind, b: Kind): Kind => (RANK[a] >= RANK[b] ? a : b);
export const isFloatKind = (k: Kind): boolean => k === 'f32' || k === 'f16';

export function kindOf(d: DType): Kind {
  if (d === 'int32') return 'i32';
  if (d === 'bool') return 'bool';
  if (d === 'float32') return 'f32';
  if (d === 'float16') return 'f16';
  throw new TypeError(`webgpu: dtype ${d} is not supported (float32, float16 where the device has shader-f16, int32 and bool are)`);
}

/** The kind a value cast to (or stored as) `d` has; float64 never reaches a WebGPU kernel but renders as f32. */
const kindFor = (d: DType): Kind => (d === 'float64' ? 'f32' : kindOf(d));

/** WGSL element type of a storage buffer holding `d` (bool is stored as u32, float16 as f16). */
export function storageType(d: DType): string {
  return d === 'int32' ? 'i32' : d === 'bool' ? 'u32' : d === 'float16' ? 'f16' : 'f32';
}

/** Helpers a shader may call; included once in every kernel that renders expressions. */
export const PRELUDE = /* wgsl */ `
// NaN and infinities as private variables: WGSL rejects them in constant expressions.
var<private> kiln_nan_bits: u32 = 0x7fc00000u;
var<private> kiln_inf_bits: u32 = 0x7f800000u;
var<private> kiln_ninf_bits: u32 = 0xff800000u;
fn kiln_pow(x: f32, y: f32) -> f32 {
  if (x >= 0.0) { return pow(x, y); }
  if (y == floor(y)) {
    let r = pow(-x, y);
    return select(r, -r, abs(y % 2.0) == 1.0);
  }
  return bitcast<f32>(kiln_nan_bits);
}
fn kiln_sign(x: f32) -> f32 { return select(select(0.0, -1.0, x < 0.0), 1.0, x > 0.0); }
fn kiln_isnan(x: f32) -> bool { return !(x == x); }
`;

const zeroOf = (k: Kind) => (k === 'f32' ? '0.0' : k === 'f16' ? '0.0h' : k === 'i32' ? '0' : 'false');
const oneOf = (k: Kind) => (k === 'f32' ? '1.0' : k === 'f16' ? '1.0h' : k === 'i32' ? '1' : 'true');

function convert(code: string, from: Kind, to: Kind): string {
  if (from === to) return code;
  if (to === 'bool') return `(${code} != ${zeroOf(from)})`;
  if (from === 'bool') return `select(${zeroOf(to)}, ${oneOf(to)}, ${code})`;
  return `${to}(${code})`;
}

/** Is `v` exactly representable as a normal half, or zero (so an f16 literal loses nothing beyond rounding)? */
const normalHalf = (v: number) => v === 0 || (Math.abs(v) >= 2 ** -14 && Math.abs(v) <= 65504);

/** A number as a literal of `kind`, and the kind it really has (f16 falls back to f32, see the header). */
function literal(v: number, kind: Kind): [string, Kind] {
  if (kind === 'bool') return [v ? 'true' : 'false', 'bool'];
  if (kind === 'i32') return [`${Math.trunc(v)}i`, 'i32'];
  // The half nearest v (ties to even), written exactly, so the WGSL compiler does no rounding of its own.
  if (kind === 'f16' && normalHalf(v) && normalHalf(f16ToF32(f32ToF16(v)))) return [`${f16ToF32(f32ToF16(v))}h`, 'f16'];
  if (Number.isNaN(v)) return ['bitcast<f32>(kiln_nan_bits)', 'f32'];
  if (v === Infinity) return ['bitcast<f32>(kiln_inf_bits)', 'f32'];
  if (v === -Infinity) return ['bitcast<f32>(kiln_ninf_bits)', 'f32'];
  const s = String(v);
  return [/[.eE]/.test(s) ? `f32(${s})` : `${s}.0`, 'f32'];
}

export interface RenderedWgsl {
  readonly body: string;
  /** The result, already converted to the output's storage type. */
  readonly result: string;
}

/** Renders `expr` over variables `x0, x1, ...` (loaded inputs, already of kind kindOf(inputs[i])). */
export function renderWgsl(expr: Expr, inputs: readonly DType[], out: DType): RenderedWgsl {
  const lines: string[] = [];
  let n = 0;
  const memo = new Map<Expr, [string, Kind]>();
  const emit = (code: string, kind: Kind): [string, Kind] => {
    const name = `t${n++}`;
    lines.push(`let ${name}: ${kind} = ${code};`);
    return [name, kind];
  };
  const go = (e: Expr, want?: Kind): [string, Kind] => {
    if (e.k === 'const') return literal(e.value, want ?? 'f32');
    const known = memo.get(e);
    if (known) return known;
    const r = fresh(e);
    memo.set(e, r);
    return r;
  };
  /**
   * A value about to be converted: a literal is bound to a `let` first, because a conversion of a
   * constant is itself a constant expression, and WGSL rejects one that overflows (f16(1e9)); at
   * run time it gives infinity, as the CPU's rounding does.
   */
  const operand = (e: Expr): [string, Kind] => (e.k === 'const' ? emit(...literal(e.value, 'f32')) : go(e));
  const fresh = (e: Expr): [string, Kind] => {
    switch (e.k) {
      case 'input': return [`x${e.i}`, kindOf(inputs[e.i])];
      case 'const': return literal(e.value, 'f32');
      case 'cast': {
        const [a, k] = operand(e.a);
        const to = kindFor(e.to);
        return emit(convert(a, k, to), to);
      }
      case 'select': {
        const [c, kc] = go(e.cond);
        let [a, ka] = go(e.a);
        let [b, kb] = go(e.b, ka);
        if (e.a.k === 'const') [a, ka] = go(e.a, kb);
        const k = wider(ka, kb);
        return emit(`select(${convert(b, kb, k)}, ${convert(a, ka, k)}, ${convert(c, kc, 'bool')})`, k);
      }
      case 'unary': {
        const [a, k] = go(e.a);
        return emit(...unary(e.fn, a, k));
      }
      case 'binary': {
        let [a, ka] = go(e.a);
        let [b, kb] = go(e.b, ka);
        if (e.a.k === 'const') {
          [a, ka] = go(e.a, kb);
          // An f16 literal that fell back to f32 on the left: the right side (a literal too) follows.
          if (e.b.k === 'const' && ka !== kb) [b, kb] = go(e.b, ka);
        }
        return emit(...binary(e.fn, a, ka, b, kb));
      }
    }
  };
  const [r, k] = operand(expr);
  const outKind = kindFor(out);
  const converted = convert(r, k, outKind);
  return { body: lines.join('\n    '), result: outKind === 'bool' ? `select(0u, 1u, ${converted})` : converted };
}

function unary(fn: UnaryFn, a: string, k: Kind): [string, Kind] {
  const f = convert(a, k, 'f32');
  const num: Kind = k === 'bool' ? 'i32' : k;
  const n = convert(a, k, num);
  // Floating results: f16 stays f16 (computed in f32 and rounded once), anything else gives f32.
  const fl = (code: string): [string, Kind] => (k === 'f16' ? [`f16(${code})`, 'f16'] : [code, 'f32']);
  switch (fn) {
    case 'neg': return [`-(${n})`, num];
    case 'abs': return [`abs(${n})`, num];
    case 'sign': return num === 'f32' ? [`kiln_sign(${n})`, 'f32'] : num === 'f16' ? [`f16(kiln_sign(${f}))`, 'f16'] : [`sign(${n})`, 'i32'];
    case 'relu': return isFloatKind(num) ? [`select(${n}, ${zeroOf(num)}, ${n} < ${zeroOf(num)})`, num] : [`max(${n}, 0)`, 'i32'];
    case 'floor': return isFloatKind(num) ? [`floor(${n})`, num] : [n, num];
    case 'ceil': return isFloatKind(num) ? [`ceil(${n})`, num] : [n, num];
    case 'exp': return fl(`exp(${f})`);
    case 'log': return fl(`log(${f})`);
    case 'sqrt': return fl(`sqrt(${f})`);
    // tanh of a large argument overflows in some implementations' exp-based formula.
    case 'tanh': return fl(`tanh(clamp(${f}, -15.0, 15.0))`);
    case 'sin': return fl(`sin(${f})`);
    case 'cos': return fl(`cos(${f})`);
    case 'sigmoid': return fl(`(1.0 / (1.0 + exp(-(${f}))))`);
    case 'not': return [`!(${convert(a, k, 'bool')})`, 'bool'];
    case 'isnan': return isFloatKind(k) ? [`kiln_isnan(${f})`, 'bool'] : ['false', 'bool'];
  }
}

function binary(fn: BinaryFn, a: string, ka: Kind, b: string, kb: Kind): [string, Kind] {
  const k = wider(wider(ka, kb), 'i32');
  const x = convert(a, ka, k);
  const y = convert(b, kb, k);
  const fa = convert(a, ka, 'f32');
  const fb = convert(b, kb, 'f32');
  switch (fn) {
    case 'add': return [`(${x} + ${y})`, k];
    case 'sub': return [`(${x} - ${y})`, k];
    case 'mul': return [`(${x} * ${y})`, k];
    // True division: integers give f32; f16 divides in f32 and rounds once (WGSL's f16 division may be off by 2.5 ulp).
    case 'div': return k === 'f16' ? [`f16(${fa} / ${fb})`, 'f16'] : [`(${fa} / ${fb})`, 'f32'];
    // Integer powers are computed in f32 (exp2(y * log2(x)) on most GPUs, e.g. 7999.999 for 20^3): round, don't truncate.
    case 'pow': return k === 'f32' ? [`kiln_pow(${x}, ${y})`, 'f32'] : k === 'f16' ? [`f16(kiln_pow(${fa}, ${fb}))`, 'f16'] : [`i32(round(kiln_pow(f32(${x}), f32(${y}))))`, 'i32'];
    case 'max': return [`max(${x}, ${y})`, k];
    case 'min': return [`min(${x}, ${y})`, k];
    case 'lt': return [`(${x} < ${y})`, 'bool'];
    case 'le': return [`(${x} <= ${y})`, 'bool'];
    case 'gt': return [`(${x} > ${y})`, 'bool'];
    case 'ge': return [`(${x} >= ${y})`, 'bool'];
    case 'eq': return [`(${x} == ${y})`, 'bool'];
    case 'ne': return [`(${x} != ${y})`, 'bool'];
    case 'and': return [`(${convert(a, ka, 'bool')} && ${convert(b, kb, 'bool')})`, 'bool'];
    case 'or': return [`(${convert(a, ka, 'bool')} || ${convert(b, kb, 'bool')})`, 'bool'];
  }
}

/**
 * The kind an expression's value has before it is stored (what a reduction must accumulate in:
 * integers in i32, floating values, f16 included, in f32). A non-integer number counts as f16,
 * the narrowest floating kind, so it never widens a float16 operand (as in renderWgsl).
 */
export function resultKind(expr: Expr, inputs: readonly DType[]): Kind {
  const go = (e: Expr): Kind => {
    switch (e.k) {
      case 'input': return kindOf(inputs[e.i]);
      case 'const': return Number.isInteger(e.value) ? 'i32' : 'f16';
      case 'cast': return kindFor(e.to);
      case 'select': return wider(go(e.a), go(e.b));
      case 'unary': {
        const a = go(e.a);
        if (['exp', 'log', 'sqrt', 'tanh', 'sin', 'cos', 'sigmoid'].includes(e.fn)) return a === 'f16' ? 'f16' : 'f32';
        if (e.fn === 'not' || e.fn === 'isnan') return 'bool';
        return a === 'bool' ? 'i32' : a;
      }
      case 'binary': {
        if (['lt', 'le', 'gt', 'ge', 'eq', 'ne', 'and', 'or'].includes(e.fn)) return 'bool';
        const k = wider(wider(go(e.a), go(e.b)), 'i32');
        if (e.fn === 'div') return k === 'f16' ? 'f16' : 'f32';
        return k;
      }
    }
  };
  return go(expr);
}
