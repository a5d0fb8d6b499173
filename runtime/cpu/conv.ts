// unfold (im2col) and fold (col2im) on the CPU, for any number of spatial dims and strided inputs.
//
// Both walk the columns row by row: a row is one tap of one channel over one line of window
// positions along the last spatial dim. Which input line a row reads (or that it lies wholly in the
// padding) comes from a table built once per geometry and cached; along the line, the positions
// whose tap falls inside the input form one contiguous range, so the inner loop is a plain strided
// copy (or add) with the padding filled around it, and nothing is decoded per element.
// The direct per-element definitions the tests compare with are in tests/cpu-conv.test.ts.
import type { FoldAttrs, UnfoldAttrs, WindowAttrs } from '../../ir/ops/conv.js';
import { windowCounts } from '../../ir/ops/conv.js';
import { contiguousStrides } from '../../ir/index.js';
import type { HostArray, View } from '../backend.js';
import { foldTaps, unfoldTaps, wasmLinesReady } from './conv-wasm.js';
import { wasmHeap } from './wasm/heap.js';
import { copyInThreshold, spanned, spanOf, stage } from './wasm/copy-in.js';

type DataOf = (v: View) => HostArray;

/** Where each row of the columns reads, for one geometry and one set of input strides. */
interface RowPlan {
  /** Window positions along the last spatial dim (the length of a row). */
  readonly width: number;
  /** Lines of window positions (product of the other spatial dims' counts). */
  readonly lines: number;
  readonly taps: number;
  /** taps * lines: offset of the line's start in the plane (tap on the last dim not yet applied), or -1 if it lies in the padding. */
  readonly lineOffset: Int32Array;
  /** Byte address of lineOffset in the Wasm heap (for the Wasm line kernels), or -1. */
  readonly tableAddress: number;
  /** Byte address of (lo, hi, first) of every tap, three int32s each, in the Wasm heap (for the Wasm tap loops), or -1. */
  readonly tapTableAddress: number;
  /** Per tap along the last dim: first and one-past-last position inside the input, and the offset of the first. */
  readonly lo: Int32Array;
  readonly hi: Int32Array;
  readonly first: Int32Array;
  /** Offset step between neighbouring positions along the last dim. */
  readonly step: number;
}

const plans = new Map<string, RowPlan>();
const MAX_PLANS = 64;

function rowPlan(spatial: readonly number[], strides: readonly number[], a: WindowAttrs): RowPlan {
  const key = `${spatial}|${strides}|${a.kernel}|${a.stride}|${a.padding}|${a.dilation}`;
  let plan = plans.get(key);
  if (!plan) {
    plan = buildRowPlan(spatial, strides, a);
    if (plans.size >= MAX_PLANS) plans.delete(plans.keys().next().value!);
    plans.set(key, plan);
  }
  return plan;
}

function buildRowPlan(spatial: readonly number[], strides: readonly number[], a: WindowAttrs): RowPlan {
  const counts = windowCounts(spatial, a);
  const nd = spatial.length;
  const last = nd - 1;
  const taps = a.kernel.reduce((p, k) => p * k, 1);
  const width = counts[last];
  const lines = counts.slice(0, last).reduce((p, c) => p * c, 1);
  // The plan owns its table; in the Wasm heap when the Wasm line kernels can read it.
  const plan = {} as RowPlan;
  const heap = wasmLinesReady() ? wasmHeap() : null;
  const lineOffset = ((heap?.allocArray('int32', taps * lines, plan) as Int32Array | undefined) ?? new Int32Array(taps * lines));
  const k = new Array<number>(nd).fill(0);
  const o = new Array<number>(last).fill(0);
  let j = 0;
  for (let t = 0; t < taps; t++) {
    o.fill(0);
    for (let r = 0; r < lines; r++) {
      let off = 0;
      for (let d = 0; d < last; d++) {
        const i = o[d] * a.stride[d] - a.padding[d] + k[d] * a.dilation[d];
        if (i < 0 || i >= spatial[d]) { off = -1; break; }
        off += i * strides[d];
      }
      lineOffset[j++] = off;
      for (let d = last - 1; d >= 0 && ++o[d] === counts[d]; d--) o[d] = 0;
    }
    for (let d = last; d >= 0 && ++k[d] === a.kernel[d]; d--) k[d] = 0;
  }
  const kw = a.kernel[last], s = a.stride[last], p = a.padding[last], dil = a.dilation[last], n = spatial[last];
  const lo = new Int32Array(kw), hi = new Int32Array(kw), first = new Int32Array(kw);
  for (let t = 0; t < kw; t++) {
    // Position q reads input index q*s - p + t*dil; keep the q with 0 <= index < n.
    const shift = t * dil - p;
    lo[t] = Math.min(width, Math.max(0, Math.ceil(-shift / s)));
    hi[t] = Math.max(lo[t], Math.min(width, Math.floor((n - 1 - shift) / s) + 1));
    first[t] = (lo[t] * s + shift) * strides[last];
  }
  const tableAddress = heap ? heap.addressOf(lineOffset) : -1;
  let tapTableAddress = -1;
  if (heap) {
    const tapTable = heap.allocArray('int32', 3 * taps, plan) as Int32Array;
    for (let t = 0; t < taps; t++) tapTable.set([lo[t % kw], hi[t % kw], first[t % kw]], 3 * t);
    tapTableAddress = heap.addressOf(tapTable);
  }
  return Object.assign(plan, { width, lines, taps, lineOffset, tableAddress, tapTableAddress, lo, hi, first, step: s * strides[last] });
}

/**
 * Whether unfold/fold run the Wasm lines: float32 operands, and an output in the heap (a compiled
 * plan's; the input is copied in if need be) or big enough that copying in and out pays (eager
 * tensors: from the threshold the elementwise kernels' copy-in uses).
 */
function useWasmLines(input: View, inData: HostArray, out: HostArray, outLength: number): boolean {
  if (!(inData instanceof Float32Array) || !(out instanceof Float32Array) || !wasmLinesReady() || spanOf(input.shape, input.strides) < 0) return false;
  return wasmHeap()!.addressOf(out) >= 0 || outLength >= copyInThreshold();
}

/** out[n, c*K + k, l] = x[n, c, window l's tap k], or padValue in the padding; out is contiguous. */
export function runUnfold(x: View, out: View, a: UnfoldAttrs, dataOf: DataOf): void {
  const [n, ch] = x.shape;
  const plan = rowPlan(x.shape.slice(2), x.strides.slice(2), a);
  const { width, lines, taps, lineOffset, tableAddress, lo, hi, first, step } = plan;
  const kw = lo.length;
  const xd = dataOf(x), od = dataOf(out);
  const pad = a.padValue;
  const outLength = n * ch * taps * lines * width;
  const padBits = new Int32Array(Float32Array.of(pad).buffer)[0];
  if (plan.tapTableAddress >= 0 && useWasmLines(x, xd, od, outLength)) {
    const staged = stage(wasmHeap()!, [
      { ...spanned(x, xd), read: true, write: false },
      { data: od, lo: out.offset, hi: out.offset + outLength, read: false, write: true },
    ]);
    const [xAt, oAt] = staged.at;
    unfoldTaps(outLength, taps, xAt + 4 * x.offset, oAt + 4 * out.offset, tableAddress, plan.tapTableAddress, 0, taps, lines, width, step, padBits,
      n, 4 * x.strides[0], ch, 4 * x.strides[1], 4 * taps * lines * width, 4 * lines * width);
    staged.done();
    return;
  }
  let o = out.offset;
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < ch; c++) {
      const base = x.offset + b * x.strides[0] + c * x.strides[1];
      for (let t = 0, j = 0; t < taps; t++) {
        const tw = t % kw;
        const l0 = lo[tw], l1 = hi[tw], f = first[tw];
        for (let r = 0; r < lines; r++, j++) {
          const line = lineOffset[j];
          if (line < 0 || l0 === l1) { od.fill(pad, o, o + width); o += width; continue; }
          if (l0 > 0) od.fill(pad, o, o + l0);
          let src = base + line + f;
          for (let q = o + l0, end = o + l1; q < end; q++, src += step) od[q] = xd[src];
          if (l1 < width) od.fill(pad, o + l1, o + width);
          o += width;
        }
      }
    }
  }
}

/** out[n, c, position] = sum of the column entries whose tap lands there (out is contiguous; it may hold stale values from a reused plan slot, so it is zeroed first). */
export function runFold(cols: View, out: View, a: FoldAttrs, dataOf: DataOf): void {
  const [n, ch] = out.shape;
  const plan = rowPlan(a.outputSize, contiguousStrides(a.outputSize), a);
  const { width, lines, taps, lineOffset, tableAddress, lo, hi, first, step } = plan;
  const kw = lo.length;
  const cd = dataOf(cols), od = dataOf(out);
  const planeSize = a.outputSize.reduce((p, v) => p * v, 1);
  // Windows that tile the output (max-pool's usual 2x2, stride 2) put exactly one tap on each
  // position: store, with no zeroing first.
  const assign = a.kernel.every((k, d) => a.stride[d] === k && a.dilation[d] === 1 && a.padding[d] === 0 && a.outputSize[d] % k === 0);
  if (!assign) od.fill(0, out.offset, out.offset + n * ch * planeSize);
  const [s0, s1, s2] = cols.strides;
  const outLength = n * ch * planeSize;
  if (plan.tapTableAddress >= 0 && useWasmLines(cols, cd, od, outLength)) {
    const staged = stage(wasmHeap()!, [
      { ...spanned(cols, cd), read: true, write: false },
      // Read too unless every position is assigned: the zeros filled above are what fold adds to.
      { data: od, lo: out.offset, hi: out.offset + outLength, read: !assign, write: true },
    ]);
    const [cAt, oAt] = staged.at;
    foldTaps(assign, n * ch * taps * lines * width, cAt + 4 * cols.offset, oAt + 4 * out.offset, tableAddress, plan.tapTableAddress, 0, taps, lines, width, step, s2,
      n, 4 * s0, ch, 4 * taps * s1, 4 * planeSize, 4 * s1);
    staged.done();
    return;
  }
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < ch; c++) {
      const base = out.offset + (b * ch + c) * planeSize;
      for (let t = 0, j = 0; t < taps; t++) {
        const tw = t % kw;
        const l0 = lo[tw], l1 = hi[tw], f = first[tw];
        const row = cols.offset + b * s0 + (c * taps + t) * s1;
        for (let r = 0; r < lines; r++, j++) {
          const line = lineOffset[j];
          if (line < 0) continue;
          let dst = base + line + f;
          const q0 = row + (r * width + l0) * s2, end = row + (r * width + l1) * s2;
          if (assign) for (let q = q0; q < end; q += s2, dst += step) od[dst] = cd[q];
          else for (let q = q0; q < end; q += s2, dst += step) od[dst] += cd[q];
        }
      }
    }
  }
}

