// Sums in WebAssembly SIMD, with the fused elementwise prologue rendered by ./simd-lanes.ts, for
// float32 outputs whose operands lie in the heap (or are copied in: ./copy-in.ts). Two layouts, after coalescing:
// - rows: the reduced elements are contiguous (sum over a row: `sum 10x36864 -> 10x1`); four lanes
//   at a time, accumulated in float64 (two f64x2), like the JS kernel's float64 accumulator;
// - columns: the kept innermost dim is contiguous and one reduced dim strides over it (a bias
//   gradient, `sum 64x100 -> 1x100`); four columns at a time, each summed in float64 in the JS
//   kernel's order, so the result is the JS one exactly.
// A row sum adds in a different order than JS (four interleaved partial sums), which in float64
// changes the float32 result only in the rarest rounding ties. Anything else stays on JS.
import type { DType, Expr } from '../../../ir/index.js';
import type { Operand } from '../elementwise.js';
import { FuncBuilder, I32, V128 } from './emit.js';
import { wasmKernelsEnabled } from './kernel.js';
import { wasmHeap } from './heap.js';
import { copyInThreshold, spanOf, stage } from './copy-in.js';
import { forEachIndex } from '../strided.js';
import { bytesOf, compileCached, invoker, LANES, Lanes, laneOperands, laneParams, type LaneMode } from './simd-lanes.js';

type Layout = 'rows' | 'cols';

/** Below this many elements read, a sum stays on JS (measured between cache-cold kernels: even at 640, faster from 6400). */
export const MIN_SUM_ELEMENTS = 1024;

/**
 * rows: (n reduced per row, rows, out address, then per input: its value for mode 'c', else its
 * address and row stride in bytes); cols: (n columns, L reduced, out address, then per input: its
 * value, or its address and stride in bytes along the reduction). The output is contiguous.
 */
export type SimdSum = (...args: number[]) => void;

const LANE0 = new Uint8Array([255, 255, 255, 255, ...new Array<number>(12).fill(0)]);

function buildSum(layout: Layout, expr: Expr, dtypes: readonly DType[], modes: readonly LaneMode[]): FuncBuilder {
  const { params, IN, STRIDE } = laneParams([I32, I32, I32], dtypes, modes);
  const f = new FuncBuilder('sum', params);
  const N = 0, M = 1, OUT = 2; // rows: n, rows; cols: n columns, M reduced
  const lanes = new Lanes(f);
  const left = f.local(I32), count = f.local(I32);
  const p = dtypes.map((_, j) => (modes[j] === 'c' ? -1 : f.local(I32)));
  // Two float64 pairs: (acc[0], acc[1]) and, for row sums, a second pair so that two chains of
  // additions overlap (one chain is bound by f64x2.add's latency: 0.26 -> 0.13 ns/element).
  const acc = [f.local(V128), f.local(V128), f.local(V128), f.local(V128)];
  const [acc0, acc1] = acc;
  const t = f.local(V128);
  // An 'r' input is one value per row (rows) or per reduction step (cols): splatRows(p) splats it
  // at its moving address.
  const { splatRows, inputs } = laneOperands(f, lanes, dtypes, modes, IN, p);
  /** Pair `pair`: acc[2 pair] += lanes 0-1 of the expression's value, acc[2 pair + 1] += lanes 2-3 (float64); lane 0 alone for a tail. */
  const accumulate = (vector: boolean, pair = 0) => {
    const lo = acc[2 * pair], hi = acc[2 * pair + 1];
    lanes.expr(expr, inputs(vector), vector, 'f');
    if (!vector) f.v128Const(LANE0).simdOp('v128.and');
    f.tee(t).simdOp('f64x2.promote_low_f32x4').get(lo).simdOp('f64x2.add').set(lo);
    if (vector) f.get(t).get(t).i32x4Shuffle([2, 3, 0, 1]).simdOp('f64x2.promote_low_f32x4').get(hi).simdOp('f64x2.add').set(hi);
  };
  const zeroAccs = () => acc.forEach((a) => f.v128Zero().set(a));
  const advance = (ptrs: 'v' | 'vr', elements: number | null) => dtypes.forEach((d, j) => {
    if (modes[j] === 'c' || (ptrs === 'v' && modes[j] !== 'v')) return;
    if (elements === null) f.get(p[j]).get(STRIDE[j]).i32Add().set(p[j]);
    else f.incr(p[j], elements * bytesOf(d));
  });

  if (layout === 'rows') {
    f.block().loop();
    f.get(M).i32Eqz().brIf(1);
    f.get(N).set(left);
    dtypes.forEach((_, j) => { if (modes[j] !== 'c') f.get(IN[j]).set(p[j]); });
    splatRows(p);
    zeroAccs();
    // while (left >= 8) { four lanes into each pair }
    f.block().loop();
    f.get(left).i32Const(2 * LANES).i32LtS().brIf(1);
    for (const pair of [0, 1]) {
      accumulate(true, pair);
      advance('v', LANES);
    }
    f.incr(left, -2 * LANES);
    f.br(0).end().end();
    // then four lanes, then one, into the first pair
    for (const vector of [true, false]) {
      f.block().loop();
      if (vector) f.get(left).i32Const(LANES).i32LtS().brIf(1);
      else f.get(left).i32Eqz().brIf(1);
      accumulate(vector);
      advance('v', vector ? LANES : 1);
      f.incr(left, vector ? -LANES : -1);
      f.br(0).end().end();
    }
    // out[row] = float32(the four accumulators, their two lanes added)
    f.get(OUT);
    f.get(acc[0]).get(acc[2]).simdOp('f64x2.add').get(acc[1]).get(acc[3]).simdOp('f64x2.add').simdOp('f64x2.add');
    f.tee(t).get(t).get(t).i32x4Shuffle([2, 3, 0, 1]).simdOp('f64x2.add');
    f.simdOp('f32x4.demote_f64x2_zero').v128Store32Lane(0);
    f.incr(OUT, 4);
    dtypes.forEach((_, j) => { if (modes[j] !== 'c') f.get(IN[j]).get(STRIDE[j]).i32Add().set(IN[j]); });
    f.incr(M, -1);
    f.br(0).end().end();
    return f;
  }

  // cols: four columns at a time, then one; each column summed over the M reduced steps.
  f.get(N).set(left);
  for (const vector of [true, false]) {
    f.block().loop();
    if (vector) f.get(left).i32Const(LANES).i32LtS().brIf(1);
    else f.get(left).i32Eqz().brIf(1);
    zeroAccs();
    dtypes.forEach((_, j) => { if (modes[j] !== 'c') f.get(IN[j]).set(p[j]); });
    f.get(M).set(count);
    f.block().loop();
    f.get(count).i32Eqz().brIf(1);
    splatRows(p);
    accumulate(vector);
    advance('vr', null);
    f.incr(count, -1);
    f.br(0).end().end();
    f.get(OUT);
    if (vector) {
      f.get(acc0).simdOp('f32x4.demote_f64x2_zero').get(acc1).simdOp('f32x4.demote_f64x2_zero').i32x4Shuffle([0, 1, 4, 5]);
      f.v128StoreUnaligned();
    } else f.get(acc0).simdOp('f32x4.demote_f64x2_zero').v128Store32Lane(0);
    const cols = vector ? LANES : 1;
    f.incr(OUT, 4 * cols);
    dtypes.forEach((d, j) => { if (modes[j] === 'v') f.incr(IN[j], cols * bytesOf(d)); });
    f.incr(left, -cols);
    f.br(0).end().end();
  }
  return f;
}

const cache = new Map<string, SimdSum | null>();

function compileSum(key: string, layout: Layout, expr: Expr, dtypes: readonly DType[], modes: readonly LaneMode[]): SimdSum | null {
  return compileCached(cache, key, () => buildSum(layout, expr, dtypes, modes));
}


type Loop = { readonly shape: readonly number[]; readonly strides: readonly (readonly number[])[] };

/**
 * out[outOffset...] (contiguous, kept dims in order) = sum over `red` of expr(inputs), in Wasm when
 * the layout is rows or columns (above) and the output is float32; operands and an output outside
 * the heap (eager tensors) go through the scratch area of ./copy-in.ts when the sum reads at least
 * copyInThreshold() elements. Returns false, having done nothing, otherwise. `kept` and `red` are
 * the coalesced kept and reduced loops (per input strides); `sig` names the expression and dtypes.
 */
export function runSimdSum(sig: string, expr: Expr, kept: Loop, red: Loop, inputs: readonly Operand[], out: Operand['data'], outOffset: number): boolean {
  if (!wasmKernelsEnabled || !(out instanceof Float32Array) || red.shape.length !== 1) return false;
  const nk = kept.shape.length, inner = nk - 1;
  if (kept.shape.reduce((a, b) => a * b, red.shape[0]) < MIN_SUM_ELEMENTS) return false;
  const keptStride = (j: number) => (nk ? kept.strides[j][inner] : 0);
  let layout: Layout;
  let modes: LaneMode[];
  if (inputs.every((_, j) => red.strides[j][0] === 0 || red.strides[j][0] === 1)) {
    layout = 'rows';
    modes = inputs.map((_, j) => (red.strides[j][0] === 1 ? 'v' : keptStride(j) === 0 ? 'c' : 'r'));
  } else if (nk > 0 && kept.shape[inner] >= LANES && inputs.every((_, j) => keptStride(j) === 0 || keptStride(j) === 1)) {
    layout = 'cols';
    modes = inputs.map((_, j) => (keptStride(j) === 1 ? 'v' : red.strides[j][0] === 0 ? 'c' : 'r'));
  } else return false;
  const heap = wasmHeap();
  if (!heap) return false;
  const total = kept.shape.reduce((a, b) => a * b, red.shape[0]);
  const keptCount = kept.shape.reduce((a, b) => a * b, 1);
  // Operands outside the heap (eager tensors) are copied into a reusable scratch area, and the
  // output written there and copied out, when the sum reads enough to pay for it (./copy-in.ts)
  // and each operand spans at most twice the elements read.
  const copyAll = total >= copyInThreshold();
  const outAt = heap.addressOf(out);
  if (outAt < 0 && !copyAll) return false;
  const spans: number[] = [];
  for (let j = 0; j < inputs.length; j++) {
    if (modes[j] === 'c' || heap.addressOf(inputs[j].data) >= 0) { spans.push(0); continue; }
    const span = copyAll ? spanOf([...kept.shape, ...red.shape], [...kept.strides[j], ...red.strides[j]]) : -1;
    if (span < 0 || span > 2 * total) return false;
    spans.push(span);
  }
  const kernel = compileSum(`${sig}|${layout}|${modes.join('')}`, layout, expr, inputs.map((x) => x.dtype), modes);
  if (!kernel) return false;
  // Operands outside the heap go to the scratch area (./copy-in.ts); a 'c' operand travels by value.
  const staged = stage(heap, [
    ...inputs.map((x, j) => ({ data: x.data, lo: x.offset, hi: x.offset + spans[j], read: true, write: false })),
    { data: out, lo: outOffset, hi: outOffset + keptCount, read: false, write: true },
  ]);
  runSumCalls(kernel, layout, kept, red, inputs, modes, staged.at.slice(0, inputs.length), staged.at[inputs.length], outOffset);
  staged.done();
  return true;
}

/** The sum's calls: one per step of the kept dims outside the innermost; the output advances by a row of kept elements. */
function runSumCalls(kernel: SimdSum, layout: Layout, kept: Loop, red: Loop, inputs: readonly Operand[], modes: readonly LaneMode[], at: readonly number[], outAt: number, outOffset: number): void {
  const nk = kept.shape.length, inner = nk - 1;
  const keptStride = (j: number) => (nk ? kept.strides[j][inner] : 0);
  const perCall = nk ? kept.shape[inner] : 1;
  const args: number[] = layout === 'rows' ? [red.shape[0], perCall, 0] : [perCall, red.shape[0], 0];
  const slot: number[] = [];
  inputs.forEach((x, j) => {
    slot.push(args.length);
    if (modes[j] === 'c') args.push(0);
    else args.push(0, (layout === 'rows' ? keptStride(j) : red.strides[j][0]) * x.data.BYTES_PER_ELEMENT);
  });
  // One call per index of the kept dims outside the innermost (../strided.ts forEachIndex); the output advances by perCall.
  const invoke = invoker(args.length);
  let o = outOffset;
  forEachIndex(kept.shape.slice(0, Math.max(0, inner)), inputs.map((x) => x.offset), kept.strides, (offs) => {
    args[2] = outAt + o * 4;
    for (let j = 0; j < inputs.length; j++) {
      const x = inputs[j];
      args[slot[j]] = modes[j] === 'c' ? x.data[offs[j]] : at[j] + offs[j] * x.data.BYTES_PER_ELEMENT;
    }
    invoke(kernel, args);
    o += perCall;
  });
}
