// The lane-wise half of the Wasm SIMD kernels: an Expr (ir/expr.ts) emitted as v128 code over
// four lanes (f32x4 / i32x4), or over lane 0 alone for a tail element, matching the JS renderer
// (../render-js.ts, the reference) node by node: NaN propagation of max/min (IEEE maximum, as
// Math.max), relu keeping NaN and -0, truthiness (NaN and 0 false) where JS tests a number,
// `+(a !== 0)` for a cast to bool, ToInt32 (wrapping) for float -> int32. One difference is
// inherent: JS computes a fused expression's intermediates in float64 and rounds once at the
// store, Wasm rounds each step to float32 (as PyTorch and WGSL do), so a composite expression can
// differ by an ulp or so; a single op of float32 operands is identical. exp (and sigmoid through
// it) is a polynomial within 2 ulp of float32(Math.exp); other nodes Wasm has no instruction for
// (log, tanh, pow, sin, cos, sign) throw Unsupported: the caller keeps JS.
//
// Also what the kernels built on it (./elementwise-simd.ts, ./reduce-simd.ts) share: their
// inputs' params and lanes by LaneMode (`laneParams`, `laneOperands`), the cached compile that
// catches Unsupported (`compileCached`) and a spread-free call into a kernel (`invoker`).
import type { DType, Expr } from '../../../ir/index.js';
import type { FuncBuilder, SimdLanewise, ValType } from './emit.js';
import { F32, I32, V128 } from './emit.js';
import { compileKernel } from './kernel.js';

/** Lane kinds: float32, int32, and bool as a mask (all bits set for true), what comparisons give. */
export type Kind = 'f' | 'i' | 'b';

/** What a kernel cannot render in Wasm (the caller keeps the JS kernel). */
export class Unsupported extends Error {}

export const LANES = 4;
export const bytesOf = (d: DType): number => (d === 'bool' ? 1 : 4);
export const kindOf = (d: DType): Kind => {
  if (d === 'float32') return 'f';
  if (d === 'int32') return 'i';
  if (d === 'bool') return 'b';
  throw new Unsupported(d);
};

function splatBytes(v: number, kind: 'f' | 'i'): Uint8Array {
  const lanes = kind === 'f' ? new Float32Array(LANES).fill(v) : new Int32Array(LANES).fill(v);
  return new Uint8Array(lanes.buffer);
}

/**
 * An input as the expression reads it: `push(vector)` emits its lanes (from memory, or a local
 * holding a broadcast value) and returns nothing; its lanes have the kind of its dtype.
 */
export interface LaneInput {
  readonly dtype: DType;
  readonly push: (vector: boolean) => void;
}

/**
 * How an input is read: 'v' a vector along the row (address, row stride in bytes); 's' a vector
 * of elements a fixed step apart along the row (address, row stride, step in bytes; float32 and
 * int32 only: a stride-2 tap of a 2x2 max-pool, say); 'r' one value per row, splat (address, row
 * stride); 'c' one value for the whole call, passed by value.
 */
export type LaneMode = 'v' | 's' | 'r' | 'c';

/**
 * A kernel's params: `fixed`, then per input its value for mode 'c' (f32 for float32, i32 for
 * int32 and bool), else its address and stride in bytes, with `planes` its plane stride in bytes
 * too, and for mode 's' its step in bytes. IN[j] is input j's first param (value or address),
 * STRIDE[j] its stride param and PLANE[j] its plane stride param (none for 'c'), STEP[j] its step
 * param ('s' only).
 */
export function laneParams(fixed: readonly ValType[], dtypes: readonly DType[], modes: readonly LaneMode[], planes = false): { params: ValType[]; IN: number[]; STRIDE: number[]; PLANE: number[]; STEP: number[] } {
  const params: ValType[] = [...fixed];
  const IN: number[] = [], STRIDE: number[] = [], PLANE: number[] = [], STEP: number[] = [];
  dtypes.forEach((d, j) => {
    IN.push(params.length);
    if (modes[j] === 'c') params.push(d === 'float32' ? F32 : I32);
    else { STRIDE[j] = params.length + 1; params.push(I32, I32); }
    if (planes && modes[j] !== 'c') {
      PLANE[j] = params.length;
      params.push(I32);
    }
    if (modes[j] === 's') {
      if (d === 'bool') throw new Unsupported('a strided bool operand');
      STEP[j] = params.length;
      params.push(I32);
    }
  });
  return { params, IN, STRIDE, PLANE, STEP };
}

/**
 * The inputs' lanes in `f`, broadcast values held in a v128 local each: a 'c' input is splat here,
 * once, before all loops (from its param IN[j], so call this before emitting them); an 'r' input
 * by `splatRows(at)`, from the address in local at[j], where the caller emits it (once per row).
 * `inputs(vector)` gives Lanes.expr the inputs, a 'v' one loaded at the address in local ptr[j],
 * an 's' one element by element from there, STEP[j] (a param) bytes apart.
 */
export function laneOperands(f: FuncBuilder, lanes: Lanes, dtypes: readonly DType[], modes: readonly LaneMode[], IN: readonly number[], ptr: readonly number[], STEP: readonly number[] = []): {
  splatRows: (at: readonly number[]) => void;
  inputs: (vector: boolean) => LaneInput[];
} {
  const splat = dtypes.map((_, j) => (modes[j] === 'c' || modes[j] === 'r' ? f.local(V128) : -1));
  dtypes.forEach((d, j) => {
    if (modes[j] !== 'c') return;
    f.get(IN[j]);
    lanes.splat(d);
    f.set(splat[j]);
  });
  const splatRows = (at: readonly number[]) => dtypes.forEach((d, j) => {
    if (modes[j] !== 'r') return;
    f.get(at[j]);
    lanes.loadSplat(d);
    f.set(splat[j]);
  });
  const inputs = (vector: boolean): LaneInput[] => dtypes.map((dtype, j) => ({
    dtype,
    push: () => {
      if (modes[j] === 'v') lanes.load(dtype, vector, ptr[j]);
      else if (modes[j] === 's') lanes.loadStepped(vector, ptr[j], STEP[j]);
      else f.get(splat[j]);
    },
  }));
  return { splatRows, inputs };
}

/**
 * The export `f.name` of the module of `build()`'s function `f`, compiled once per key on the
 * heap's memory (./kernel.ts) and kept in `cache`; null, cached too, when the build throws
 * Unsupported (the caller keeps the JS kernel).
 */
export function compileCached<K>(cache: Map<string, K | null>, key: string, build: () => FuncBuilder): K | null {
  const known = cache.get(key);
  if (known !== undefined) return known;
  let kernel: K | null = null;
  try {
    const f = build();
    kernel = compileKernel([f]).instance.exports[f.name] as K;
  } catch (err) {
    if (!(err instanceof Unsupported)) throw err;
  }
  cache.set(key, kernel);
  return kernel;
}

/**
 * f(...args) for args of length n, through a function of fixed arity: a spread call into Wasm
 * cost ~1 us more than the call itself (a 16-element elementwise kernel took 1.4 us, then 0.5).
 */
const invokers: ((f: (...args: number[]) => void, args: readonly number[]) => void)[] = [];
export function invoker(n: number): (f: (...args: number[]) => void, args: readonly number[]) => void {
  return (invokers[n] ??= new Function('f', 'a', `f(${Array.from({ length: n }, (_, i) => `a[${i}]`).join(', ')});`) as (f: (...args: number[]) => void, args: readonly number[]) => void);
}

/** Emits lane-wise code into one function. */
export class Lanes {
  constructor(readonly f: FuncBuilder) {}

  private op(name: SimdLanewise): FuncBuilder { return this.f.simdOp(name); }
  private zero(): FuncBuilder { return this.f.v128Zero(); }
  private constF(v: number): FuncBuilder { return this.f.v128Const(splatBytes(v, 'f')); }
  private constI(v: number): FuncBuilder { return this.f.v128Const(splatBytes(v, 'i')); }
  private tmp(): number { return this.f.local(V128); }

  /** Mask (all ones) -> int 1, on the stack. */
  maskToInt(): void { this.op('i32x4.neg'); }

  /** Loads the lanes of a `dtype` operand at the address in local `ptr`: four, or one into lane 0. */
  load(dtype: DType, vector: boolean, ptr: number): void {
    const f = this.f;
    f.get(ptr);
    if (dtype === 'bool') {
      if (vector) f.v128Load32Zero().simdOp('i16x8.extend_low_i8x16_u').simdOp('i32x4.extend_low_i16x8_u');
      else f.v128Load8Splat();
      this.zero(); this.op('i32x4.ne');
    } else if (vector) f.v128LoadUnaligned();
    else f.v128Load32Zero();
  }

  /** Loads four 32-bit lanes from the address in local `ptr` on, `step` (a local) bytes apart; or one into lane 0. */
  loadStepped(vector: boolean, ptr: number, step: number): void {
    const f = this.f;
    f.get(ptr).v128Load32Zero();
    if (!vector) return;
    const v = this.tmp(), at = this.f.local(I32);
    f.set(v).get(ptr).set(at);
    for (let lane = 1; lane < LANES; lane++) {
      f.get(at).get(step).i32Add().tee(at).get(v).v128Load32Lane(lane);
      if (lane < LANES - 1) f.set(v);
    }
  }

  /** One `dtype` value from the address on the stack, in all four lanes. */
  loadSplat(dtype: DType): void {
    // A bool's byte in all 16 lanes: each i32 lane is nonzero iff the bool is.
    if (dtype === 'bool') { this.f.v128Load8Splat(); this.zero(); this.op('i32x4.ne'); }
    else this.f.v128Load32Splat();
  }

  /** A `dtype` value on the stack (f32 for float32, i32 otherwise), in all four lanes. */
  splat(dtype: DType): void {
    this.op(dtype === 'float32' ? 'f32x4.splat' : 'i32x4.splat');
    if (dtype === 'bool') { this.zero(); this.op('i32x4.ne'); }
  }

  /** float -> int32 as JS's ToInt32 (`x | 0`, an Int32Array store): truncate, wrap modulo 2^32, NaN and infinities to 0. */
  toInt32(): void {
    const f = this.f;
    const a = this.tmp(), r = this.tmp(), big = this.tmp();
    f.tee(a).simdOp('f32x4.abs');
    this.constF(2 ** 31).simdOp('f32x4.ge').set(big);
    // r = a - 2^32 floor(a / 2^32), exact for |a| >= 2^31 (a is then a multiple of 2^8); NaN for an infinity.
    f.get(a).get(a);
    this.constF(2 ** -32).simdOp('f32x4.mul').simdOp('f32x4.floor');
    this.constF(2 ** 32).simdOp('f32x4.mul').simdOp('f32x4.sub').tee(r);
    // r -= 2^32 where r >= 2^31
    f.get(r);
    this.constF(2 ** 31).simdOp('f32x4.ge');
    this.constF(2 ** 32).simdOp('v128.and').simdOp('f32x4.sub').simdOp('i32x4.trunc_sat_f32x4_s');
    f.get(a).simdOp('i32x4.trunc_sat_f32x4_s').get(big).simdOp('v128.bitselect');
  }

  /**
   * e^x of the f32x4 on the stack, within 2 ulp of float32(Math.exp(x)) (Cephes' expf: x = n ln2 + r,
   * |r| <= ln2/2, a degree-6 polynomial for e^r, times 2^n as two normal powers of two so that
   * results down to the subnormals round once). x is clamped to [-104, 89] first: beyond, e^x
   * underflows to 0 or overflows to infinity through the scaling itself; NaN stays NaN.
   */
  exp(): void {
    const f = this.f;
    const x = this.tmp(), nf = this.tmp(), r = this.tmp(), n = this.tmp(), n1 = this.tmp();
    this.constF(89).simdOp('f32x4.min');
    this.constF(-104).simdOp('f32x4.max').tee(x);
    this.constF(Math.LOG2E).simdOp('f32x4.mul');
    this.constF(0.5).simdOp('f32x4.add').simdOp('f32x4.floor').set(nf);
    // r = x - n ln2, ln2 in two parts (0.693359375 is exact in 9 bits, so n times it is exact)
    f.get(x).get(nf);
    this.constF(0.693359375).simdOp('f32x4.mul').simdOp('f32x4.sub').get(nf);
    this.constF(-2.12194440e-4).simdOp('f32x4.mul').simdOp('f32x4.sub').set(r);
    // e^r = 1 + r + r^2 P(r)
    f.get(r);
    this.constF(1.9875691500e-4).simdOp('f32x4.mul');
    for (const c of [1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1]) {
      this.constF(c).simdOp('f32x4.add').get(r).simdOp('f32x4.mul');
    }
    this.constF(5.0000001201e-1).simdOp('f32x4.add');
    f.get(r).get(r).simdOp('f32x4.mul').simdOp('f32x4.mul').get(r).simdOp('f32x4.add');
    this.constF(1).simdOp('f32x4.add');
    // times 2^n1 2^n2, n1 = n >> 1, n2 = n - n1: each a float with exponent field n_i + 127
    const pow2 = () => { this.constI(127).simdOp('i32x4.add').i32Const(23).simdOp('i32x4.shl').simdOp('f32x4.mul'); };
    f.get(nf).simdOp('i32x4.trunc_sat_f32x4_s').tee(n).i32Const(1).simdOp('i32x4.shr_s').tee(n1);
    pow2();
    f.get(n).get(n1).simdOp('i32x4.sub');
    pow2();
  }

  /** Converts the value on the stack to a numeric kind (bools as 0/1). */
  convert(from: Kind, to: Kind): void {
    if (from === to) return;
    if (to === 'b') { this.truthy(from); return; }
    if (from === 'b') this.maskToInt();
    if (to === 'f') { if (from !== 'f') this.op('f32x4.convert_i32x4_s'); }
    else if (from === 'f') this.toInt32();
  }

  /** JS truthiness of the value on the stack as a mask: NaN, 0 and -0 are false. */
  truthy(k: Kind): void {
    if (k === 'b') return;
    if (k === 'i') { this.zero(); this.op('i32x4.ne'); return; }
    const a = this.tmp();
    this.f.tee(a).get(a).simdOp('f32x4.eq').get(a);
    this.zero(); this.op('f32x4.ne').simdOp('v128.and');
  }

  /** `+(a !== 0)`: a cast to bool, true for NaN. */
  private nonzero(k: Kind): void {
    if (k === 'b') return;
    this.zero(); this.op(k === 'f' ? 'f32x4.ne' : 'i32x4.ne');
  }

  /**
   * Pushes the lanes of `expr` over `inputs` (converted to `want` when given) and returns their
   * kind: four lanes (`vector`) or lane 0. Throws Unsupported for a node without a Wasm rendering.
   */
  expr(expr: Expr, inputs: readonly LaneInput[], vector: boolean, want?: Kind): Kind {
    const f = this.f;
    const op = (name: SimdLanewise) => this.op(name);
    const zero = () => this.zero();
    const tmp = () => this.tmp();
    // Every node is computed once into a local (a value used twice, as in render-js).
    const memo = new Map<Expr, [number, Kind]>();
    const node = (e: Expr): [number, Kind] => {
      let known = memo.get(e);
      if (!known) {
        const k = gen(e);
        const l = tmp();
        f.set(l);
        known = [l, k];
        memo.set(e, known);
      }
      return known;
    };
    const kindOfNode = (e: Expr): Kind => node(e)[1];
    /** Pushes the node's value converted to `want` (its own kind when omitted); returns the kind pushed. */
    const push = (e: Expr, want?: Kind): Kind => {
      const [l, k] = node(e);
      f.get(l);
      if (!want || want === k) return k;
      this.convert(k, want);
      return want;
    };
    /** Emits the node's value onto the stack and returns its kind. */
    const gen = (e: Expr): Kind => {
      switch (e.k) {
        case 'input':
          inputs[e.i].push(vector);
          return kindOf(inputs[e.i].dtype);
        case 'const': {
          const v = e.value;
          if (Number.isInteger(v) && !Object.is(v, -0)) {
            if (v !== (v | 0)) throw new Unsupported('integer constant outside int32');
            this.constI(v);
            return 'i';
          }
          this.constF(v);
          return 'f';
        }
        case 'cast': {
          const k = kindOfNode(e.a);
          if (e.to === 'bool') { push(e.a); this.nonzero(k); return 'b'; }
          if (e.to === 'int32') { push(e.a, 'i'); return 'i'; }
          if (e.to === 'float32' || e.to === 'float64') { push(e.a, 'f'); return 'f'; }
          throw new Unsupported(`cast to ${e.to}`);
        }
        case 'select': {
          const ka = kindOfNode(e.a), kb = kindOfNode(e.b);
          const k: Kind = ka === 'f' || kb === 'f' ? 'f' : ka === 'i' || kb === 'i' ? 'i' : 'b';
          push(e.a, k === 'b' ? undefined : k);
          push(e.b, k === 'b' ? undefined : k);
          push(e.cond, 'b');
          op('v128.bitselect');
          return k;
        }
        case 'unary': return unary(e.fn, e.a);
        case 'binary': return binary(e.fn, e.a, e.b);
      }
    };
    const unary = (fn: string, a: Expr): Kind => {
      const k = kindOfNode(a);
      const num: Kind = k === 'b' ? 'i' : k;
      switch (fn) {
        case 'neg': push(a, num); op(num === 'f' ? 'f32x4.neg' : 'i32x4.neg'); return num;
        // int32 abs of -2^31 stays -2^31 (JS gives 2^31, which an int32 store wraps back).
        case 'abs': push(a, num); op(num === 'f' ? 'f32x4.abs' : 'i32x4.abs'); return num;
        case 'relu':
          if (num === 'f') {
            // a & ~(a < 0): keeps NaN and -0, as `a < 0 ? 0 : a`.
            const t = tmp();
            push(a, 'f');
            f.tee(t).get(t);
            zero(); op('f32x4.lt').simdOp('v128.andnot');
          } else { push(a, 'i'); zero(); op('i32x4.max_s'); }
          return num;
        case 'floor': case 'ceil':
          push(a, num);
          if (num === 'f') op(fn === 'floor' ? 'f32x4.floor' : 'f32x4.ceil');
          return num;
        case 'sqrt': push(a, 'f'); op('f32x4.sqrt'); return 'f';
        case 'exp': push(a, 'f'); this.exp(); return 'f';
        case 'sigmoid': {
          // 1 / (1 + e^-a) as render-js writes it, but from e = e^-|a| (at most 1) so that float32
          // cannot overflow where JS's float64 does not: (a < 0 ? e : 1) / (1 + e).
          const e = tmp(), neg = tmp();
          push(a, 'f'); f.tee(e);
          zero(); op('f32x4.lt').set(neg);
          f.get(e); op('f32x4.abs'); op('f32x4.neg'); this.exp(); f.set(e);
          f.get(e); this.constF(1); f.get(neg); op('v128.bitselect');
          f.get(e); this.constF(1).simdOp('f32x4.add').simdOp('f32x4.div');
          return 'f';
        }
        case 'not': push(a, 'b'); op('v128.not'); return 'b';
        case 'isnan':
          if (k !== 'f') { zero(); return 'b'; }
          { const t = tmp(); push(a); f.tee(t).get(t).simdOp('f32x4.ne'); }
          return 'b';
        default: throw new Unsupported(fn);
      }
    };
    const binary = (fn: string, a: Expr, b: Expr): Kind => {
      const ka = kindOfNode(a), kb = kindOfNode(b);
      const int = ka !== 'f' && kb !== 'f';
      const num: Kind = int ? 'i' : 'f';
      const arith = (fo: SimdLanewise, io: SimdLanewise): Kind => { push(a, num); push(b, num); op(int ? io : fo); return num; };
      const cmp = (fo: SimdLanewise, io: SimdLanewise): Kind => { push(a, num); push(b, num); op(int ? io : fo); return 'b'; };
      switch (fn) {
        case 'add': return arith('f32x4.add', 'i32x4.add');
        case 'sub': return arith('f32x4.sub', 'i32x4.sub');
        case 'mul': return arith('f32x4.mul', 'i32x4.mul');
        case 'div':
          // JS divides int32 operands in float64; float32 division of converted operands is the same only below 2^24.
          if (int) throw new Unsupported('int32 division');
          push(a, 'f'); push(b, 'f'); op('f32x4.div'); return 'f';
        case 'max': return arith('f32x4.max', 'i32x4.max_s');
        case 'min': return arith('f32x4.min', 'i32x4.min_s');
        case 'lt': return cmp('f32x4.lt', 'i32x4.lt_s');
        case 'le': return cmp('f32x4.le', 'i32x4.le_s');
        case 'gt': return cmp('f32x4.gt', 'i32x4.gt_s');
        case 'ge': return cmp('f32x4.ge', 'i32x4.ge_s');
        case 'eq': return cmp('f32x4.eq', 'i32x4.eq');
        case 'ne': return cmp('f32x4.ne', 'i32x4.ne');
        case 'and': push(a, 'b'); push(b, 'b'); op('v128.and'); return 'b';
        case 'or': push(a, 'b'); push(b, 'b'); op('v128.or'); return 'b';
        default: throw new Unsupported(fn);
      }
    };
    return push(expr, want);
  }
}
