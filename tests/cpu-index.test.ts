// The CPU's gather/scatterAdd line loops against a per-element definition, on random shapes, dims,
// strided operands and negative indices; and their out-of-range errors.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { View } from '../runtime/backend.js';
import { runGather, runScatterAdd } from '../runtime/cpu/routines.js';
import { wasmIndexLines } from '../runtime/cpu/gather-wasm.js';
import { wasmHeap } from '../runtime/cpu/wasm/heap.js';
import { copyInThreshold, setMinCopyElements } from '../runtime/cpu/wasm/copy-in.js';
import { numel } from '../ir/index.js';
import { heapArray, randInt, rng } from './helpers.js';

const dataOf = (v: View) => v.storage as unknown as Float64Array;

// float64 runs the JS lines; float32 values and int32 indices in the Wasm heap the Wasm lines.
type Alloc = (n: number, int: boolean) => Float64Array | Float32Array | Int32Array;
const kinds: [string, Alloc][] = [['float64, JS lines', (n, int) => (int ? new Int32Array(n) : new Float64Array(n))]];
const heapAlloc: Alloc = (n, int) => (int ? heapArray('int32', n) : heapArray('float32', n));
const span = (data: Float64Array | Float32Array | Int32Array) => ({ data, lo: 0, hi: data.length });
if (wasmHeap()?.canHoldStorages && wasmIndexLines(span(heapAlloc(1, false)), span(heapAlloc(1, true)), span(heapAlloc(1, false)), false, 1)) {
  kinds.push(['float32 in the Wasm heap, Wasm lines', heapAlloc]);
  kinds.push(['float32 outside the heap (eager), copied in and out', (n, int) => (int ? new Int32Array(n) : new Float32Array(n))]);
}
let alloc: Alloc = kinds[0][1];

/** A view of `shape` over fresh random data, laid out in a random dim order with an offset. */
function randomView(shape: number[], rand: () => number, fill: () => number, Ctor: typeof Float64Array | typeof Int32Array = Float64Array): View {
  const order = shape.map((_, i) => i).sort(() => rand() - 0.5);
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let k = order.length - 1; k >= 0; k--) { strides[order[k]] = s; s *= shape[order[k]]; }
  const offset = randInt(rand, 0, 2);
  const data = alloc(offset + s, Ctor === Int32Array);
  for (let i = 0; i < data.length; i++) data[i] = fill();
  return { storage: data as never, dtype: Ctor === Int32Array ? 'int32' : 'float64', shape, strides, offset };
}

function contiguousView(shape: number[], values?: ArrayLike<number>): View {
  const data = alloc(numel(shape), false);
  if (values) data.set(values);
  return { storage: data as never, dtype: 'float64', shape, strides: shape.map((_, d) => numel(shape.slice(d + 1))), offset: 0 };
}

/** The index positions of `shape` in row-major order. */
function positions(shape: number[]): number[][] {
  const out: number[][] = [];
  const idx = shape.map(() => 0);
  if (shape.some((d) => d === 0)) return out;
  for (;;) {
    out.push([...idx]);
    let d = shape.length - 1;
    for (; d >= 0 && ++idx[d] === shape[d]; d--) idx[d] = 0;
    if (d < 0) return out;
  }
}
const at = (v: View, idx: number[]) => v.offset + idx.reduce((s, i, d) => s + i * v.strides[d], 0);

function randomCase(seed: number) {
  const rand = rng(seed);
  const nd = randInt(rand, 1, 4);
  const xShape = Array.from({ length: nd }, () => randInt(rand, 1, 5));
  const dim = randInt(rand, 0, nd - 1);
  const iShape = xShape.map((d, i) => (i === dim ? randInt(rand, 1, 6) : randInt(rand, 1, d)));
  const size = xShape[dim];
  const index = randomView(iShape, rand, () => randInt(rand, -size, size - 1), Int32Array);
  return { rand, xShape, iShape, dim, index };
}

/** Runs gather of x by the case's index into out, and checks each element of out against the per-element definition (bit for bit). */
function checkGather(seed: number, { xShape, iShape, dim, index }: ReturnType<typeof randomCase>, x: View, out: View): void {
  runGather(x, index, out, dim, dataOf);
  const id = dataOf(index), xd = dataOf(x), od = dataOf(out);
  for (const p of positions(iShape)) {
    const i = id[at(index, p)];
    const src = p.map((v, d) => (d === dim ? (i < 0 ? i + xShape[dim] : i) : v));
    expect(od[at(out, p)], `seed ${seed}`).toBe(xd[at(x, src)]);
  }
}

describe.each(kinds)('CPU gather/scatterAdd (%s)', (kind, kindAlloc) => {
  beforeEach(() => { alloc = kindAlloc; });
  // The copy-in path normally starts at a few thousand elements; these small cases take it too.
  const threshold = copyInThreshold();
  beforeAll(() => void (kind.includes('copied') && setMinCopyElements(0)));
  afterAll(() => void setMinCopyElements(threshold));
  it('gather matches the per-element definition', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const c = randomCase(seed);
      checkGather(seed, c, randomView(c.xShape, c.rand, () => c.rand()), contiguousView(c.iShape));
    }
  });

  it('gather of int32 values matches the per-element definition (bit for bit, any 32-bit value)', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const c = randomCase(300 + seed);
      const { rand, iShape } = c;
      const x = randomView(c.xShape, rand, () => randInt(rand, -(2 ** 31), 2 ** 31 - 1), Int32Array);
      const outData = alloc(numel(iShape), true);
      const out: View = { storage: outData as never, dtype: 'int32', shape: iShape, strides: iShape.map((_, d) => numel(iShape.slice(d + 1))), offset: 0 };
      checkGather(seed, c, x, out);
    }
  });

  it('scatterAdd matches the per-element definition', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const { rand, xShape, iShape, dim, index } = randomCase(500 + seed);
      const src = randomView(iShape, rand, () => rand());
      const base = Float64Array.from({ length: numel(xShape) }, () => rand());
      const out = contiguousView(xShape, base);
      runScatterAdd(src, index, out, dim, dataOf);
      const want = Float64Array.from(dataOf(contiguousView(xShape, base)));
      const wantView: View = { storage: want as never, dtype: 'float64', shape: xShape, strides: xShape.map((_, d) => numel(xShape.slice(d + 1))), offset: 0 };
      const id = dataOf(index), sd = dataOf(src);
      for (const p of positions(iShape)) {
        const i = id[at(index, p)];
        want[at(wantView, p.map((v, d) => (d === dim ? (i < 0 ? i + xShape[dim] : i) : v)))] += sd[at(src, p)];
      }
      const got = dataOf(out);
      for (let k = 0; k < want.length; k++) expect(got[k], `seed ${seed}`).toBeCloseTo(want[k], got instanceof Float32Array ? 5 : 12);
    }
  });

  it('an index out of range is a RangeError naming the op, index, dim and size', () => {
    const x = contiguousView([2, 3], [1, 2, 3, 4, 5, 6]);
    const ints = (v: number[]) => { const a = alloc(v.length, true); a.set(v); return a; };
    const index: View = { storage: ints([0, 3]) as never, dtype: 'int32', shape: [1, 2], strides: [1, 1], offset: 0 };
    expect(() => runGather(x, index, contiguousView([1, 2]), 1, dataOf)).toThrow('gather: index 3 is out of bounds for dimension 1 with size 3');
    const neg: View = { ...index, storage: ints([-4, 0]) as never };
    expect(() => runScatterAdd(contiguousView([1, 2]), neg, x, 1, dataOf)).toThrow('scatterAdd: index -4 is out of bounds for dimension 1 with size 3');
  });
});
