// Renders the op table's scalar expressions (ir/expr.ts) as WGSL, the WebGPU half of "one
// definition per op": the same trees render to JS for the CPU (runtime/cpu/render-js.ts). WGSL is
// strictly typed, so each node gets a kind (f32, i32, bool) and operands are converted explicitly
// the way PyTorch's type promotion does.
import type { BinaryFn, DType, Expr, UnaryFn } from '../../ir/index.js';

export type Kind = 'f32' | 'i32' | 'bool';

export function kindOf(d: DType): Kind {
  if (d === 'int32') return 'i32';
  if (d === 'bool') return 'bool';
  if (d === 'float32') return 'f32';
  throw new TypeError(`webgpu: dtype ${d} is not supported (float32, int32 and bool are)`);
}

/** WGSL element type of a storage buffer holding `d` (bool is stored as u32). */
export function storageType(d: DType): string {
  return d === 'int32' ? 'i32' : d === 'bool' ? 'u32' : 'f32';
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

function convert(code: string, from: Kind, to: Kind): string {
  if (from === to) return code;
  if (to === 'bool') return from === 'f32' ? `(${code} != 0.0)` : `(${code} != 0)`;
  if (from === 'bool') return to === 'f32' ? `select(0.0, 1.0, ${code})` : `select(0, 1, ${code})`;
  return `${to}(${code})`;
}

function literal(v: number, kind: Kind): string {
  if (kind === 'bool') return v ? 'true' : 'false';
  if (kind === 'i32') return `${Math.trunc(v)}i`;
  if (Number.isNaN(v)) return 'bitcast<f32>(kiln_nan_bits)';
  if (v === Infinity) return 'bitcast<f32>(kiln_inf_bits)';
  if (v === -Infinity) return 'bitcast<f32>(kiln_ninf_bits)';
  const s = String(v);
  return /[.eE]/.test(s) ? `f32(${s})` : `${s}.0`;
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
    if (e.k === 'const') return [literal(e.value, want ?? 'f32'), want ?? 'f32'];
    const known = memo.get(e);
    if (known) return known;
    const r = fresh(e);
    memo.set(e, r);
    return r;
  };
  const fresh = (e: Expr): [string, Kind] => {
    switch (e.k) {
      case 'input': return [`x${e.i}`, kindOf(inputs[e.i])];
      case 'const': return [literal(e.value, 'f32'), 'f32'];
      case 'cast': {
        const [a, k] = go(e.a);
        const to = kindOf(e.to === 'float64' || e.to === 'float16' ? 'float32' : e.to);
        return emit(convert(a, k, to), to);
      }
      case 'select': {
        const [c, kc] = go(e.cond);
        let [a, ka] = go(e.a);
        let [b, kb] = go(e.b, ka);
        if (e.a.k === 'const') [a, ka] = go(e.a, kb);
        const k: Kind = ka === 'f32' || kb === 'f32' ? 'f32' : ka === 'i32' || kb === 'i32' ? 'i32' : 'bool';
        return emit(`select(${convert(b, kb, k)}, ${convert(a, ka, k)}, ${convert(c, kc, 'bool')})`, k);
      }
      case 'unary': {
        const [a, k] = go(e.a);
        return emit(...unary(e.fn, a, k));
      }
      case 'binary': {
        let [a, ka] = go(e.a);
        const [b, kb] = go(e.b, ka);
        if (e.a.k === 'const') [a, ka] = go(e.a, kb);
        return emit(...binary(e.fn, a, ka, b, kb));
      }
    }
  };
  const [r, k] = go(expr);
  const outKind = kindOf(out === 'float64' || out === 'float16' ? 'float32' : out);
  const converted = convert(r, k, outKind);
  return { body: lines.join('\n    '), result: outKind === 'bool' ? `select(0u, 1u, ${converted})` : converted };
}

function unary(fn: UnaryFn, a: string, k: Kind): [string, Kind] {
  const f = convert(a, k, 'f32');
  const num: Kind = k === 'bool' ? 'i32' : k;
  const n = convert(a, k, num);
  switch (fn) {
    case 'neg': return [`-(${n})`, num];
    case 'abs': return [`abs(${n})`, num];
    case 'sign': return num === 'f32' ? [`kiln_sign(${n})`, 'f32'] : [`sign(${n})`, 'i32'];
    case 'relu': return num === 'f32' ? [`select(${n}, 0.0, ${n} < 0.0)`, 'f32'] : [`max(${n}, 0)`, 'i32'];
    case 'floor': return num === 'f32' ? [`floor(${n})`, 'f32'] : [n, num];
    case 'ceil': return num === 'f32' ? [`ceil(${n})`, 'f32'] : [n, num];
    case 'exp': return [`exp(${f})`, 'f32'];
    case 'log': return [`log(${f})`, 'f32'];
    case 'sqrt': return [`sqrt(${f})`, 'f32'];
    // tanh of a large argument overflows in some implementations' exp-based formula.
    case 'tanh': return [`tanh(clamp(${f}, -15.0, 15.0))`, 'f32'];
    case 'sin': return [`sin(${f})`, 'f32'];
    case 'cos': return [`cos(${f})`, 'f32'];
    case 'sigmoid': return [`(1.0 / (1.0 + exp(-(${f}))))`, 'f32'];
    case 'not': return [`!(${convert(a, k, 'bool')})`, 'bool'];
    case 'isnan': return k === 'f32' ? [`kiln_isnan(${a})`, 'bool'] : ['false', 'bool'];
  }
}

function binary(fn: BinaryFn, a: string, ka: Kind, b: string, kb: Kind): [string, Kind] {
  const k: Kind = ka === 'f32' || kb === 'f32' ? 'f32' : 'i32';
  const x = convert(a, ka, k);
  const y = convert(b, kb, k);
  switch (fn) {
    case 'add': return [`(${x} + ${y})`, k];
    case 'sub': return [`(${x} - ${y})`, k];
    case 'mul': return [`(${x} * ${y})`, k];
    case 'div': return [`(${convert(a, ka, 'f32')} / ${convert(b, kb, 'f32')})`, 'f32'];
    // Integer powers are computed in f32 (exp2(y * log2(x)) on most GPUs, e.g. 7999.999 for 20^3): round, don't truncate.
    case 'pow': return k === 'f32' ? [`kiln_pow(${x}, ${y})`, 'f32'] : [`i32(round(kiln_pow(f32(${x}), f32(${y}))))`, 'i32'];
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

/** The kind an expression's value has before it is stored (what a reduction must accumulate in). */
export function resultKind(expr: Expr, inputs: readonly DType[]): Kind {
  const go = (e: Expr): Kind => {
    switch (e.k) {
      case 'input': return kindOf(inputs[e.i]);
      case 'const': return Number.isInteger(e.value) ? 'i32' : 'f32';
      case 'cast': return kindOf(e.to === 'float64' || e.to === 'float16' ? 'float32' : e.to);
      case 'select': { const a = go(e.a), b = go(e.b); return a === 'f32' || b === 'f32' ? 'f32' : a === 'i32' || b === 'i32' ? 'i32' : 'bool'; }
      case 'unary': {
        const a = go(e.a);
        if (['exp', 'log', 'sqrt', 'tanh', 'sin', 'cos', 'sigmoid'].includes(e.fn)) return 'f32';
        if (e.fn === 'not' || e.fn === 'isnan') return 'bool';
        return a === 'bool' ? 'i32' : a;
      }
      case 'binary': {
        if (['lt', 'le', 'gt', 'ge', 'eq', 'ne', 'and', 'or'].includes(e.fn)) return 'bool';
        if (e.fn === 'div') return 'f32';
        return go(e.a) === 'f32' || go(e.b) === 'f32' ? 'f32' : 'i32';
      }
    }
  };
  return go(expr);
}
