// The CPU's gather/scatterAdd line loops against a per-element definition, on random shapes, dims,
// strided operands and negative indices; and their out-of-range errors.
import { describe, expect, it } from 'vitest';
import type { View } from '../runtime/backend.js';
import { runGather, runScatterAdd } from '../runtime/cpu/routines.js';

function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const int = (rand: () => number, lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const numel = (s: readonly number[]) => s.reduce((p, v) => p * v, 1);
const dataOf = (v: View) => v.storage as unknown as Float64Array;

/** A view of `shape` over fresh random data, laid out in a random dim order with an offset. */
function randomView(shape: number[], rand: () => number, fill: () => number, Ctor: typeof Float64Array | typeof Int32Array = Float64Array): View {
  const order = shape.map((_, i) => i).sort(() => rand() - 0.5);
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let k = order.length - 1; k >= 0; k--) { strides[order[k]] = s; s *= shape[order[k]]; }
  const offset = int(rand, 0, 2);
  const data = new Ctor(offset + s);
  for (let i = 0; i < data.length; i++) data[i] = fill();
  return { storage: data as never, dtype: Ctor === Int32Array ? 'int32' : 'float64', shape, strides, offset };
}

function contiguousView(shape: number[], data = new Float64Array(numel(shape))): View {
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
  const nd = int(rand, 1, 4);
  const xShape = Array.from({ length: nd }, () => int(rand, 1, 5));
  const dim = int(rand, 0, nd - 1);
  const iShape = xShape.map((d, i) => (i === dim ? int(rand, 1, 6) : int(rand, 1, d)));
  const size = xShape[dim];
  const index = randomView(iShape, rand, () => int(rand, -size, size - 1), Int32Array);
  return { rand, xShape, iShape, dim, index };
}

describe('CPU gather/scatterAdd', () => {
  it('gather matches the per-element definition', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const { rand, xShape, iShape, dim, index } = randomCase(seed);
      const x = randomView(xShape, rand, () => rand());
      const out = contiguousView(iShape);
      runGather(x, index, out, dim, dataOf);
      const id = dataOf(index), xd = dataOf(x), od = dataOf(out);
      for (const p of positions(iShape)) {
        const i = id[at(index, p)];
        const src = p.map((v, d) => (d === dim ? (i < 0 ? i + xShape[dim] : i) : v));
        expect(od[at(out, p)], `seed ${seed}`).toBe(xd[at(x, src)]);
      }
    }
  });

  it('scatterAdd matches the per-element definition', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const { rand, xShape, iShape, dim, index } = randomCase(500 + seed);
      const src = randomView(iShape, rand, () => rand());
      const base = Float64Array.from({ length: numel(xShape) }, () => rand());
      const out = contiguousView(xShape, Float64Array.from(base));
      runScatterAdd(src, index, out, dim, dataOf);
      const want = Float64Array.from(base);
      const wantView = contiguousView(xShape, want);
      const id = dataOf(index), sd = dataOf(src);
      for (const p of positions(iShape)) {
        const i = id[at(index, p)];
        want[at(wantView, p.map((v, d) => (d === dim ? (i < 0 ? i + xShape[dim] : i) : v)))] += sd[at(src, p)];
      }
      const got = dataOf(out);
      for (let k = 0; k < want.length; k++) expect(got[k], `seed ${seed}`).toBeCloseTo(want[k], 12);
    }
  });

  it('an index out of range is a RangeError naming the op, index, dim and size', () => {
    const x = contiguousView([2, 3], Float64Array.from([1, 2, 3, 4, 5, 6]));
    const index: View = { storage: Int32Array.from([0, 3]) as never, dtype: 'int32', shape: [1, 2], strides: [2, 1], offset: 0 };
    expect(() => runGather(x, index, contiguousView([1, 2]), 1, dataOf)).toThrow('gather: index 3 is out of bounds for dimension 1 with size 3');
    const neg: View = { ...index, storage: Int32Array.from([-4, 0]) as never };
    expect(() => runScatterAdd(contiguousView([1, 2]), neg, x, 1, dataOf)).toThrow('scatterAdd: index -4 is out of bounds for dimension 1 with size 3');
  });
});
