// The CPU's row-wise unfold/fold kernels against their per-element definitions, on random
// geometries: 1-3 spatial dims, strided and offset inputs, padding, stride, dilation, edge sizes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { windowCounts, type FoldAttrs, type UnfoldAttrs, type WindowAttrs } from '../ir/ops/conv.js';
import type { View } from '../runtime/backend.js';
import { runFold, runUnfold } from '../runtime/cpu/conv.js';
import { contiguousStrides, numel } from '../ir/index.js';
import { wasmLinesReady } from '../runtime/cpu/conv-wasm.js';
import { setThreadCount } from '../runtime/cpu/threads/thread-count.js';
import { workerCount } from '../runtime/cpu/threads/pool.js';
import { copyInThreshold, setMinCopyElements } from '../runtime/cpu/wasm/copy-in.js';
import { firstDifference, heapFloats, randInt, rng } from './helpers.js';

const dataOf = (v: View) => v.storage as unknown as Float64Array;
type DataOf = typeof dataOf;

/**
 * Entry k*L + l is the offset of the spatial element that tap k of window position l reads (with
 * `strides`), or -1 where it falls in the padding.
 */
function tapOffsets(spatial: readonly number[], strides: readonly number[], a: WindowAttrs): Int32Array {
  const counts = windowCounts(spatial, a);
  const nd = spatial.length;
  const taps = a.kernel.reduce((p, k) => p * k, 1);
  const l = counts.reduce((p, c) => p * c, 1);
  const table = new Int32Array(taps * l);
  const k = new Array<number>(nd).fill(0);
  const o = new Array<number>(nd).fill(0);
  let j = 0;
  for (let t = 0; t < taps; t++) {
    o.fill(0);
    for (let p = 0; p < l; p++) {
      let off = 0;
      for (let d = 0; d < nd; d++) {
        const i = o[d] * a.stride[d] - a.padding[d] + k[d] * a.dilation[d];
        if (i < 0 || i >= spatial[d]) { off = -1; break; }
        off += i * strides[d];
      }
      table[j++] = off;
      for (let d = nd - 1; d >= 0 && ++o[d] === counts[d]; d--) o[d] = 0;
    }
    for (let d = nd - 1; d >= 0 && ++k[d] === a.kernel[d]; d--) k[d] = 0;
  }
  return table;
}

/** The per-element definition of runUnfold: the oracle the row kernels are compared with, written apart from their row plan. */
function unfoldReference(x: View, out: View, a: UnfoldAttrs, dataOf: DataOf): void {
  const [n, ch] = x.shape;
  const table = tapOffsets(x.shape.slice(2), x.strides.slice(2), a);
  const xd = dataOf(x), od = dataOf(out);
  let o = out.offset;
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < ch; c++) {
      const base = x.offset + b * x.strides[0] + c * x.strides[1];
      for (let j = 0; j < table.length; j++) od[o++] = table[j] < 0 ? a.padValue : xd[base + table[j]];
    }
  }
}

/** The per-element definition of runFold. */
function foldReference(cols: View, out: View, a: FoldAttrs, dataOf: DataOf): void {
  const [n, ch] = out.shape;
  const table = tapOffsets(a.outputSize, contiguousStrides(a.outputSize), a);
  const l = cols.shape[2];
  const taps = table.length / Math.max(l, 1);
  const cd = dataOf(cols), od = dataOf(out);
  const plane = a.outputSize.reduce((p, v) => p * v, 1);
  od.fill(0, out.offset, out.offset + n * ch * plane);
  const [s0, s1, s2] = cols.strides;
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < ch; c++) {
      for (let t = 0; t < taps; t++) {
        for (let p = 0; p < l; p++) {
          const off = table[t * l + p];
          if (off >= 0) od[out.offset + (b * ch + c) * plane + off] += cd[cols.offset + b * s0 + (c * taps + t) * s1 + p * s2];
        }
      }
    }
  }
}


// Float32 arrays in the Wasm heap take the Wasm line kernels; float64 (and KILN_WASM=0) the JS loops.
type Alloc = (n: number) => Float64Array | Float32Array;
const inHeap: Alloc = heapFloats;
const kinds: [string, Alloc, Alloc][] = [['float64, JS lines', (n) => new Float64Array(n), (n) => new Float64Array(n)]];
if (wasmLinesReady()) {
  kinds.push(['float32 in the Wasm heap, Wasm lines', inHeap, inHeap]);
  kinds.push(['float32 input outside the heap, copied in', (n) => new Float32Array(n), inHeap]);
  kinds.push(['float32 input and output outside the heap (eager), copied in and out', (n) => new Float32Array(n), (n) => new Float32Array(n)]);
}

function view(data: Float64Array, shape: number[], strides: number[], offset: number): View {
  return { storage: data as never, dtype: 'float64', shape, strides, offset };
}

/** A random window geometry over random spatial sizes that leaves at least one window position. */
function geometry(rand: () => number) {
  const nd = randInt(rand, 1, 3);
  if (rand() < 0.2) {
    // Windows that tile the input exactly (max-pool's layout; fold stores instead of adding).
    const kernel = Array.from({ length: nd }, () => randInt(rand, 1, 3));
    const spatial = kernel.map((k) => k * randInt(rand, 1, 4));
    return { spatial, a: { kernel, stride: kernel, padding: kernel.map(() => 0), dilation: kernel.map(() => 1) } };
  }
  for (;;) {
    const kernel = Array.from({ length: nd }, () => randInt(rand, 1, 4));
    const stride = Array.from({ length: nd }, () => randInt(rand, 1, 3));
    const dilation = Array.from({ length: nd }, () => randInt(rand, 1, 2));
    const padding = Array.from({ length: nd }, () => randInt(rand, 0, 3));
    const spatial = Array.from({ length: nd }, () => randInt(rand, 1, nd === 3 ? 6 : 11));
    const a = { kernel, stride, padding, dilation };
    if (windowCounts(spatial, a).every((c) => c >= 1)) return { spatial, a };
  }
}

/** Strides of a random layout of `shape`: a permutation of the dims, with gaps, from a random offset. */
function randomLayout(shape: number[], rand: () => number): { strides: number[]; offset: number; length: number } {
  const order = shape.map((_, i) => i).sort(() => rand() - 0.5);
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let k = order.length - 1; k >= 0; k--) {
    strides[order[k]] = s;
    s *= shape[order[k]] + (rand() < 0.3 ? 1 : 0);
  }
  const offset = randInt(rand, 0, 3);
  return { strides, offset, length: offset + s + 1 };
}

describe.each(kinds)('CPU unfold/fold row kernels (%s)', (kind, allocIn, allocOut) => {
  // The copy-in path normally starts at a few thousand elements; these small cases take it too.
  const threshold = copyInThreshold();
  beforeAll(() => void (kind.includes('copied') && setMinCopyElements(0)));
  afterAll(() => void setMinCopyElements(threshold));
  const fillWith = (a: Float64Array | Float32Array, fill: () => number) => { for (let i = 0; i < a.length; i++) a[i] = fill(); return a as Float64Array; };
  const input = (n: number, fill: () => number) => fillWith(allocIn(n), fill);
  const array = (n: number, fill: () => number) => fillWith(allocOut(n), fill);
  it('unfold matches the per-element definition', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rand = rng(seed);
      const { spatial, a } = geometry(rand);
      const shape = [randInt(rand, 1, 3), randInt(rand, 1, 3), ...spatial];
      const { strides, offset, length } = randomLayout(shape, rand);
      const data = input(length, () => rand() * 2 - 1);
      const attrs: UnfoldAttrs = { ...a, padValue: rand() < 0.5 ? 0 : -Infinity };
      const l = numel(windowCounts(spatial, a));
      const outShape = [shape[0], shape[1] * numel(a.kernel), l];
      const got = array(numel(outShape) + 2, () => 7), want = array(numel(outShape) + 2, () => 7);
      runUnfold(view(data, shape, strides, offset), view(got, outShape, contiguousStrides(outShape), 1), attrs, dataOf);
      unfoldReference(view(data, shape, strides, offset), view(want, outShape, contiguousStrides(outShape), 1), attrs, dataOf);
      expect([...got], `seed ${seed}: ${JSON.stringify({ shape, strides, attrs })}`).toEqual([...want]);
    }
  });

  it('fold matches the per-element definition (stale output, strided columns)', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rand = rng(1000 + seed);
      const { spatial, a } = geometry(rand);
      const [n, c] = [randInt(rand, 1, 3), randInt(rand, 1, 3)];
      const colsShape = [n, c * numel(a.kernel), numel(windowCounts(spatial, a))];
      const { strides, offset, length } = randomLayout(colsShape, rand);
      const data = array(length, () => rand() * 2 - 1);
      const attrs: FoldAttrs = { ...a, outputSize: spatial };
      const outShape = [n, c, ...spatial];
      const got = array(numel(outShape) + 2, () => rand());
      const want = array(got.length, () => 0);
      want.set(got);
      runFold(view(data, colsShape, strides, offset), view(got, outShape, contiguousStrides(outShape), 1), attrs, dataOf);
      foldReference(view(data, colsShape, strides, offset), view(want, outShape, contiguousStrides(outShape), 1), attrs, dataOf);
      for (let i = 0; i < got.length; i++) expect(got[i], `seed ${seed} at ${i}: ${JSON.stringify({ colsShape, strides, attrs })}`).toBeCloseTo(want[i], got instanceof Float32Array ? 5 : 12);
    }
  });
});

describe.runIf(wasmLinesReady())('CPU unfold/fold on 2 threads (taps shared out for unfold, planes for fold)', () => {
  afterAll(() => setThreadCount(undefined));
  const fill = (a: Float32Array, rand: () => number) => { for (let i = 0; i < a.length; i++) a[i] = rand() * 2 - 1; return a as unknown as Float64Array; };
  // Big enough to be split (over 2^17 floats out): several batches (fold splits batches), and one
  // batch of many channels (fold splits channels), with overlapping windows and padding.
  const cases = [
    { shape: [4, 8, 30, 30], a: { kernel: [3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1] } },
    { shape: [1, 16, 40, 40], a: { kernel: [3, 3], stride: [1, 1], padding: [0, 0], dilation: [1, 1] } },
    { shape: [64, 10, 24, 24], a: { kernel: [2, 2], stride: [2, 2], padding: [0, 0], dilation: [1, 1] } },
  ];
  it.each(cases)('unfold and fold of $shape equal the per-element definitions', ({ shape, a }) => {
    setThreadCount(2);
    const rand = rng(shape.join('').length * 7 + shape[1]);
    const spatial = shape.slice(2);
    const colsShape = [shape[0], shape[1] * numel(a.kernel), numel(windowCounts(spatial, a))];
    expect(numel(colsShape)).toBeGreaterThan(1 << 17);
    const x = fill(inHeap(numel(shape)) as Float32Array, rand);
    const got = inHeap(numel(colsShape)) as unknown as Float64Array, want = inHeap(numel(colsShape)) as unknown as Float64Array;
    const attrs: UnfoldAttrs = { ...a, padValue: 0 };
    runUnfold(view(x, shape, contiguousStrides(shape), 0), view(got, colsShape, contiguousStrides(colsShape), 0), attrs, dataOf);
    unfoldReference(view(x, shape, contiguousStrides(shape), 0), view(want, colsShape, contiguousStrides(colsShape), 0), attrs, dataOf);
    expect(firstDifference(got, want)).toBe(-1);
    const cols = fill(inHeap(numel(colsShape)) as Float32Array, rand);
    const folded = inHeap(numel(shape)) as unknown as Float64Array, ref = inHeap(numel(shape)) as unknown as Float64Array;
    ref.fill(0);
    runFold(view(cols, colsShape, contiguousStrides(colsShape), 0), view(folded, shape, contiguousStrides(shape), 0), { ...a, outputSize: spatial }, dataOf);
    foldReference(view(cols, colsShape, contiguousStrides(colsShape), 0), view(ref, shape, contiguousStrides(shape), 0), { ...a, outputSize: spatial }, dataOf);
    let worst = 0;
    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(folded[i] - ref[i]));
    expect(worst).toBeLessThan(1e-5);
    expect(workerCount(), 'the split ran on a worker thread').toBeGreaterThan(0);
  });
});
