// Elementwise kernels in WebAssembly SIMD, generated from the op table's scalar expression
// (ir/expr.ts), for operands that lie in the CPU heap (./heap.ts) and are contiguous along the
// innermost dim or broadcast along it. A kernel runs `rows` rows of `n` elements (each operand
// with its own row stride); along a row, four lanes per step (f32x4 / i32x4), then one element at
// a time for the tail through the same lane-wise code (lane loads and stores), so no node has a
// second, scalar rendering.
//
// The JS renderer (../render-js.ts) is the reference and this file matches its semantics node by
// node: NaN propagation of max/min (IEEE maximum, as Math.max), relu keeping NaN and -0, truthiness
// (NaN and 0 false) where JS tests a number, `+(a !== 0)` for a cast to bool, ToInt32 (wrapping)
// for float -> int32. One difference is inherent: JS computes a fused expression's intermediate
// values in float64 and rounds once at the store, Wasm rounds each step to float32 (as PyTorch
// and WGSL do), so a composite expression can differ by an ulp or so; a single op of float32
// operands is identical. Nodes Wasm has no instruction for (exp, log, tanh, pow, sin, ...) make
// the whole kernel stay on JS: `compileSimdElementwise` returns null.
import type { DType, Expr } from '../../../ir/index.js';
import type { Operand } from '../elementwise.js';
import { emitModule, F32, FuncBuilder, I32, V128, type SimdLanewise, type ValType } from './emit.js';
import { wasmHeap, type WasmHeap } from './heap.js';

/** Lane kinds: float32, int32, and bool as a mask (all bits set for true), what comparisons give. */
type Kind = 'f' | 'i' | 'b';

/**
 * How an input is read: 'v' a vector along the row (address, row stride in bytes); 'r' one value
 * per row, splat (address, row stride); 'c' one value for the whole call, passed by value.
 */
export type LaneMode = 'v' | 'r' | 'c';

/**
 * A compiled kernel: (n, rows, out address, out row stride in bytes, then per input: its value for
 * mode 'c', else its address and row stride in bytes). Addresses are of each operand's first element.
 */
export type SimdElementwise = (...args: number[]) => void;

class Unsupported extends Error {}

const LANES = 4;
const bytesOf = (d: DType): number => (d === 'bool' ? 1 : 4);
const kindOf = (d: DType): Kind => {
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
 * Emits the kernel function for `expr` over inputs of `inDtypes`, read as `modes` says, into
 * `outDtype`. Throws Unsupported for what it cannot do.
 */
function buildFunction(expr: Expr, inDtypes: readonly DType[], outDtype: DType, modes: readonly LaneMode[]): FuncBuilder {
  const outKind = kindOf(outDtype);
  const inKinds = inDtypes.map(kindOf);
  // Params (see SimdElementwise): a 'c' input's value is f32 for float32, i32 for int32 and bool.
  const params: ValType[] = [I32, I32, I32, I32];
  const IN: number[] = [], STRIDE: number[] = [];
  inDtypes.forEach((d, j) => {
    IN.push(params.length);
    if (modes[j] === 'c') params.push(d === 'float32' ? F32 : I32);
    else { STRIDE[j] = params.length + 1; params.push(I32, I32); }
  });
  const f = new FuncBuilder('kernel', params);
  const N = 0, ROWS = 1, OUT = 2, OUT_STRIDE = 3;
  // Per row: the element count left and the moving addresses.
  const left = f.local(I32), pOut = f.local(I32);
  const p = inDtypes.map((_, j) => (modes[j] === 'v' ? f.local(I32) : -1));
  const op = (name: SimdLanewise) => f.simdOp(name);
  const zero = () => f.v128Zero();
  const constF = (v: number) => f.v128Const(splatBytes(v, 'f'));
  const constI = (v: number) => f.v128Const(splatBytes(v, 'i'));
  const tmp = () => f.local(V128);

  // Conversions of the v128 on the stack.
  const maskToInt = () => op('i32x4.neg'); // all-ones -> 1
  /** float -> int32 as JS's ToInt32 (`x | 0`, an Int32Array store): truncate, wrap modulo 2^32, NaN and infinities to 0. */
  const toInt32 = () => {
    const a = tmp(), r = tmp(), big = tmp();
    f.tee(a).simdOp('f32x4.abs');
    constF(2 ** 31).simdOp('f32x4.ge').set(big);
    // r = a - 2^32 floor(a / 2^32), exact for |a| >= 2^31 (a is then a multiple of 2^8); NaN for an infinity.
    f.get(a).get(a);
    constF(2 ** -32).simdOp('f32x4.mul').simdOp('f32x4.floor');
    constF(2 ** 32).simdOp('f32x4.mul').simdOp('f32x4.sub').tee(r);
    // r -= 2^32 where r >= 2^31
    f.get(r);
    constF(2 ** 31).simdOp('f32x4.ge');
    constF(2 ** 32).simdOp('v128.and').simdOp('f32x4.sub').simdOp('i32x4.trunc_sat_f32x4_s');
    f.get(a).simdOp('i32x4.trunc_sat_f32x4_s').get(big).simdOp('v128.bitselect');
  };
  const convert = (from: Kind, to: Kind) => {
    if (from === to) return;
    if (to === 'f') {
      if (from === 'b') maskToInt();
      op('f32x4.convert_i32x4_s');
    } else if (to === 'i') {
      if (from === 'b') maskToInt();
      else toInt32();
    } else throw new Error('convert: use truthy/nonzero for bools');
  };
  /** JS truthiness of the value on the stack as a mask: NaN, 0 and -0 are false. */
  const truthy = (k: Kind) => {
    if (k === 'b') return;
    if (k === 'i') { zero(); op('i32x4.ne'); return; }
    const a = tmp();
    f.tee(a).get(a).simdOp('f32x4.eq').get(a);
    zero(); op('f32x4.ne').simdOp('v128.and');
  };
  /** `+(a !== 0)`: a cast to bool, true for NaN. */
  const nonzero = (k: Kind) => {
    if (k === 'b') return;
    zero(); op(k === 'f' ? 'f32x4.ne' : 'i32x4.ne');
  };

  // Broadcast values: a 'c' input splat once, before all loops; an 'r' input once per row (below).
  const scalarLocal: number[] = [];
  inDtypes.forEach((d, j) => {
    if (modes[j] === 'v') return;
    scalarLocal[j] = tmp();
    if (modes[j] === 'r') return;
    f.get(IN[j]);
    op(d === 'float32' ? 'f32x4.splat' : 'i32x4.splat');
    if (d === 'bool') { zero(); op('i32x4.ne'); }
    f.set(scalarLocal[j]);
  });
  const splatRowValues = () => inDtypes.forEach((d, j) => {
    if (modes[j] !== 'r') return;
    f.get(IN[j]);
    if (d === 'bool') { f.v128Load8Splat(); zero(); op('i32x4.ne'); } // all 16 bytes = b: each i32 lane is nonzero iff b is
    else f.v128Load32Splat();
    f.set(scalarLocal[j]);
  });

  /** Emits one step: LANES elements (`vector`) or one, in lane 0. */
  const step = (vector: boolean) => {
    const memo = new Map<Expr, [number, Kind]>();
    const load = (j: number) => {
      f.get(p[j]);
      if (inDtypes[j] === 'bool') {
        if (vector) f.v128Load32Zero().simdOp('i16x8.extend_low_i8x16_u').simdOp('i32x4.extend_low_i16x8_u');
        else f.v128Load8Splat();
        zero(); op('i32x4.ne');
      } else if (vector) f.v128LoadUnaligned();
      else f.v128Load32Zero();
    };
    /** Pushes the node's value converted to `want` (its own kind when omitted); returns the kind pushed. */
    const push = (e: Expr, want?: Kind): Kind => {
      let known = memo.get(e);
      if (!known) {
        const k = gen(e);
        const l = tmp();
        f.set(l);
        known = [l, k];
        memo.set(e, known);
      }
      f.get(known[0]);
      if (want && want !== known[1]) {
        if (want === 'b') truthy(known[1]);
        else convert(known[1], want);
        return want;
      }
      return known[1];
    };
    const kindOfNode = (e: Expr): Kind => {
      const known = memo.get(e);
      if (known) return known[1];
      // Generate it now (memoized) to learn its kind; leaves nothing on the stack.
      const k = gen(e);
      const l = tmp();
      f.set(l);
      memo.set(e, [l, k]);
      return k;
    };
    /** Emits the node's value onto the stack and returns its kind. */
    const gen = (e: Expr): Kind => {
      switch (e.k) {
        case 'input':
          if (modes[e.i] !== 'v') f.get(scalarLocal[e.i]);
          else load(e.i);
          return inKinds[e.i];
        case 'const': {
          const v = e.value;
          if (Number.isInteger(v) && !Object.is(v, -0)) {
            if (v !== (v | 0)) throw new Unsupported('integer constant outside int32');
            constI(v);
            return 'i';
          }
          constF(v);
          return 'f';
        }
        case 'cast': {
          const k = kindOfNode(e.a);
          if (e.to === 'bool') { push(e.a); nonzero(k); return 'b'; }
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

    // The store: the JS kernel stores a bool output by truthiness, others through the typed array (ToInt32 for int32).
    f.get(pOut);
    if (outKind === 'b') {
      push(expr, 'b');
      maskToInt();
      const t = tmp();
      f.tee(t).get(t).simdOp('i16x8.narrow_i32x4_u');
      f.tee(t).get(t).simdOp('i8x16.narrow_i16x8_u');
      if (vector) f.v128Store32Lane(0);
      else f.v128Store8Lane(0);
    } else {
      push(expr, outKind);
      if (vector) f.v128StoreUnaligned();
      else f.v128Store32Lane(0);
    }
  };

  const advance = (elements: number) => {
    f.incr(pOut, elements * bytesOf(outDtype));
    inDtypes.forEach((d, j) => { if (modes[j] === 'v') f.incr(p[j], elements * bytesOf(d)); });
    f.incr(left, -elements);
  };
  // for each row
  f.block().loop();
  f.get(ROWS).i32Eqz().brIf(1);
  f.get(N).set(left).get(OUT).set(pOut);
  inDtypes.forEach((_, j) => { if (modes[j] === 'v') f.get(IN[j]).set(p[j]); });
  splatRowValues();
  //   while (left >= 4) { four lanes }
  f.block().loop();
  f.get(left).i32Const(LANES).i32LtS().brIf(1);
  step(true);
  advance(LANES);
  f.br(0).end().end();
  //   while (left > 0) { one lane }
  f.block().loop();
  f.get(left).i32Eqz().brIf(1);
  step(false);
  advance(1);
  f.br(0).end().end();
  // next row
  f.get(OUT).get(OUT_STRIDE).i32Add().set(OUT);
  inDtypes.forEach((_, j) => { if (modes[j] !== 'c') f.get(IN[j]).get(STRIDE[j]).i32Add().set(IN[j]); });
  f.incr(ROWS, -1);
  f.br(0).end().end();
  return f;
}

const cache = new Map<string, SimdElementwise | null>();

/**
 * The Wasm kernel for `expr` (inputs of `inDtypes`, read as `modes` says) writing `outDtype`,
 * compiled once per key on `heap`'s memory; null when some node or dtype has no Wasm rendering
 * (the caller keeps the JS kernel).
 */
export function compileSimdElementwise(key: string, heap: WasmHeap, expr: Expr, inDtypes: readonly DType[], outDtype: DType, modes: readonly LaneMode[]): SimdElementwise | null {
  const known = cache.get(key);
  if (known !== undefined) return known;
  let kernel: SimdElementwise | null = null;
  try {
    const f = buildFunction(expr, inDtypes, outDtype, modes);
    const memory = heap.shared ? { minPages: 1, maxPages: 65536, shared: true } : { minPages: 1, shared: false };
    const module = new WebAssembly.Module(emitModule([f], memory));
    const instance = new WebAssembly.Instance(module, { env: { memory: heap.memory } });
    kernel = instance.exports.kernel as SimdElementwise;
  } catch (err) {
    if (!(err instanceof Unsupported)) throw err;
  }
  cache.set(key, kernel);
  return kernel;
}

// KILN_WASM=0 keeps every elementwise kernel on JS (read once, at load; a browser has no process).
const ENABLED = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.KILN_WASM !== '0';

/** Below this many elements per row, a strided kernel stays on JS. */
const MIN_ROW = 4;

type Merged = { readonly shape: readonly number[]; readonly strides: readonly (readonly number[])[] };

/**
 * Runs an elementwise kernel in Wasm when the output and every input not broadcast along the
 * innermost dim are contiguous along it and lie in the heap, and the expression has a Wasm
 * rendering; returns false, having done nothing, otherwise. `merged` is the coalesced loop
 * (../strided.ts: the shape, then per operand its strides, the output's first). The kernel loops
 * over the two innermost dims; any outer dims are a loop here, one call per step. Copying operands
 * into the heap would cost more than the kernel saves, so outside it the JS kernel runs.
 * `sig` names the expression and dtypes (with the lane modes, the kernel cache key).
 */
export function runSimdElementwise(sig: string, expr: Expr, merged: Merged, out: Operand, inputs: readonly Operand[]): boolean {
  if (!ENABLED) return false;
  const { shape, strides } = merged;
  const ndim = shape.length;
  const inner = ndim - 1, row = ndim - 2;
  if (ndim > 1 && shape[inner] < MIN_ROW) return false;
  if (ndim > 0 && strides[0][inner] !== 1) return false;
  const stride = (j: number, d: number) => (d < 0 ? 0 : strides[j + 1][d]);
  const modes = inputs.map((_, j): LaneMode | null => {
    const s = stride(j, inner);
    if (s === 1) return 'v';
    if (s !== 0) return null;
    return stride(j, row) === 0 ? 'c' : 'r';
  });
  if (modes.includes(null)) return false;
  const heap = wasmHeap();
  if (!heap) return false;
  const outAt = heap.addressOf(out.data);
  if (outAt < 0) return false;
  const at: number[] = [];
  for (let j = 0; j < inputs.length; j++) {
    // A 'c' operand travels by value, so it may lie anywhere (a plan's constants are not in the heap).
    const a = modes[j] === 'c' ? 0 : heap.addressOf(inputs[j].data);
    if (a < 0) return false;
    at.push(a);
  }
  const laneModes = modes as LaneMode[];
  const kernel = compileSimdElementwise(`${sig}|${laneModes.join('')}`, heap, expr, inputs.map((x) => x.dtype), out.dtype, laneModes);
  if (!kernel) return false;
  if (shape.some((d) => d === 0)) return true;
  // Arguments: fixed ones now, addresses and 'c' values per call.
  const args: number[] = [ndim === 0 ? 1 : shape[inner], row >= 0 ? shape[row] : 1, 0, row >= 0 ? strides[0][row] * out.data.BYTES_PER_ELEMENT : 0];
  const slot: number[] = [];
  inputs.forEach((x, j) => {
    slot.push(args.length);
    if (laneModes[j] === 'c') args.push(0);
    else args.push(0, stride(j, row) * x.data.BYTES_PER_ELEMENT);
  });
  const offs = [out.offset, ...inputs.map((x) => x.offset)];
  const outer = Math.max(0, row);
  const idx = new Array<number>(outer).fill(0);
  for (;;) {
    args[2] = outAt + offs[0] * out.data.BYTES_PER_ELEMENT;
    for (let j = 0; j < inputs.length; j++) {
      const x = inputs[j];
      args[slot[j]] = laneModes[j] === 'c' ? x.data[offs[j + 1]] : at[j] + offs[j + 1] * x.data.BYTES_PER_ELEMENT;
    }
    kernel(...args);
    // Next call: an odometer over the dims outside the kernel's two.
    let d = outer - 1;
    for (; d >= 0; d--) {
      for (let j = 0; j < offs.length; j++) offs[j] += strides[j][d];
      if (++idx[d] < shape[d]) break;
      for (let j = 0; j < offs.length; j++) offs[j] -= strides[j][d] * shape[d];
      idx[d] = 0;
    }
    if (d < 0) return true;
  }
}
