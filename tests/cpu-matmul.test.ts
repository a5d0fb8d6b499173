import { describe, it, expect } from 'vitest';
import { matmul, matmulNaive, type MatArray, type MatOperand } from '../runtime/cpu/matmul.js';
import { firstDifference, maxAbs, rng } from './helpers.js';

type Kind = 'float32' | 'float64' | 'int32';
type Layout = 'contiguous' | 'transposed' | 'padded' | 'strided' | 'broadcastRows' | 'broadcastCols' | 'scalar';

const ctor = { float32: Float32Array, float64: Float64Array, int32: Int32Array };
const tolerance = { float32: 1e-5, float64: 1e-12, int32: 0 };

/** A rows x cols operand laid out as `layout`, starting at a random offset, filled with random values. */
function operand(kind: Kind, layout: Layout, rows: number, cols: number, rand: () => number): MatOperand {
  const offset = Math.floor(rand() * 4);
  let rowStride: number, colStride: number, extent: number;
  switch (layout) {
    case 'contiguous': rowStride = cols; colStride = 1; extent = rows * cols; break;
    case 'transposed': rowStride = 1; colStride = rows; extent = rows * cols; break; // x.t() of a [cols, rows] tensor
    case 'padded': rowStride = cols + 3; colStride = 1; extent = rows * (cols + 3); break; // a slice of a wider tensor
    case 'strided': rowStride = 2; colStride = 2 * rows + 1; extent = cols * (2 * rows + 1); break;
    case 'broadcastRows': rowStride = 0; colStride = 1; extent = cols; break;
    case 'broadcastCols': rowStride = 1; colStride = 0; extent = rows; break;
    case 'scalar': rowStride = 0; colStride = 0; extent = 1; break;
  }
  const data = new ctor[kind](offset + extent + 2);
  // int32: half the time the full range, so products and sums wrap; otherwise small values (with
  // zeros and ones among them).
  const wide = rand() < 0.5;
  for (let i = 0; i < data.length; i++) {
    if (kind !== 'int32') data[i] = rand() * 2 - 1;
    else data[i] = wide ? (rand() * 4294967296) | 0 : Math.floor(rand() * 7) - 3;
  }
  return { data, offset, rowStride, colStride };
}

/** Runs matmul and matmulNaive on the same operands and checks they agree, that out is overwritten and nothing else is touched. */
function check(kind: Kind, M: number, N: number, K: number, la: Layout, lb: Layout, seed: number): void {
  const rand = rng(seed);
  const a = operand(kind, la, M, K, rand);
  const b = operand(kind, lb, K, N, rand);
  const aBefore = a.data.slice(), bBefore = b.data.slice();
  const outOffset = 3;
  const sentinel = kind === 'int32' ? -12345 : NaN;
  const got: MatArray = new ctor[kind](outOffset + M * N + 2).fill(sentinel);
  const ref: MatArray = new ctor[kind](M * N);
  matmul(M, N, K, a, b, got, outOffset);
  matmulNaive(M, N, K, a, b, ref, 0);

  const what = `${kind} M=${M} N=${N} K=${K} a=${la} b=${lb}`;
  const body = got.subarray(outOffset, outOffset + M * N);
  if (kind === 'int32') {
    expect(firstDifference(body, ref), what).toBe(-1);
  } else {
    let err = 0;
    for (let i = 0; i < ref.length; i++) err = Math.max(err, Math.abs(body[i] - ref[i]));
    // NaN (a sentinel left behind) fails this comparison too.
    expect(err <= tolerance[kind] * maxAbs(ref), `${what}: max error ${err} vs max |ref| ${maxAbs(ref)}`).toBe(true);
  }
  // The region around out and the inputs are left alone.
  for (const i of [0, 1, 2, outOffset + M * N, outOffset + M * N + 1]) expect(Object.is(got[i], sentinel), `${what}: out[${i}]`).toBe(true);
  expect(firstDifference(a.data, aBefore), `${what}: a changed`).toBe(-1);
  expect(firstDifference(b.data, bBefore), `${what}: b changed`).toBe(-1);
}

const kinds: Kind[] = ['float32', 'float64', 'int32'];

describe('cpu matmul', () => {
  it('matches the naive loop on edge sizes, contiguous operands', () => {
    const sizes = [0, 1, 3, 4, 5, 17, 63, 64, 65];
    let seed = 1;
    for (const kind of kinds) {
      for (const M of sizes) for (const N of sizes) for (const K of [0, 1, 5, 17, 64]) {
        check(kind, M, N, K, 'contiguous', 'contiguous', seed++);
      }
    }
  });

  it('matches across cache-block boundaries (K past 256, M past 128, N past 512)', () => {
    let seed = 1000;
    for (const kind of kinds) {
      for (const [M, N, K] of [[130, 9, 300], [7, 130, 257], [129, 67, 513], [5, 515, 33], [64, 100, 1000], [4, 4, 256]]) {
        check(kind, M, N, K, 'contiguous', 'contiguous', seed++);
      }
    }
  });

  it('handles transposed, padded, strided and broadcast operands with offsets', () => {
    const layouts: Layout[] = ['contiguous', 'transposed', 'padded', 'strided', 'broadcastRows', 'broadcastCols', 'scalar'];
    let seed = 2000;
    for (const kind of kinds) {
      for (const la of layouts) for (const lb of layouts) {
        for (const [M, N, K] of [[9, 13, 70], [17, 5, 3], [1, 6, 9], [65, 33, 130]]) check(kind, M, N, K, la, lb, seed++);
      }
    }
  });

  it('matches on random shapes', () => {
    const rand = rng(7);
    const layouts: Layout[] = ['contiguous', 'transposed', 'padded', 'strided', 'broadcastRows', 'broadcastCols'];
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const dim = () => pick([0, 1, 2, 3, 4, 5, 7, 8, 16, 17, 31, 33, 63, 64, 65, 100, 130]);
    for (let t = 0; t < 150; t++) {
      check(pick(kinds), dim(), dim(), dim(), pick(layouts), pick(layouts), 3000 + t);
    }
  });

  it('computes the seed layer and its weight gradient (x^T as a strided view)', () => {
    // x.mm(w1): [64, 1000] @ [1000, 100], then x^T @ g: [1000, 64] @ [64, 100] with x^T not copied.
    check('float32', 64, 100, 1000, 'contiguous', 'contiguous', 4000);
    check('float32', 1000, 100, 64, 'transposed', 'contiguous', 4001);
  });

  it('overwrites out and is repeatable', () => {
    const rand = rng(5000);
    const a = operand('float64', 'contiguous', 20, 300, rand);
    const b = operand('float64', 'transposed', 300, 10, rand);
    const out = new Float64Array(200).fill(1e300);
    matmul(20, 10, 300, a, b, out, 0);
    const first = out.slice();
    out.fill(-7);
    matmul(20, 10, 300, a, b, out, 0);
    expect(out).toEqual(first);
    // K = 0 gives zeros, whatever was in out.
    out.fill(3);
    matmul(20, 10, 0, a, b, out, 0);
    expect(maxAbs(out)).toBe(0);
  });

  it('gives exact wrapped int32 results', () => {
    // 2^30 * 4 wraps to 0; 46341^2 overflows int32.
    const a: MatOperand = { data: new Int32Array([1 << 30, 46341, -1, 2, 3, 4, 5, 6]), offset: 0, rowStride: 2, colStride: 1 };
    const b: MatOperand = { data: new Int32Array([4, 46341, 0, 0, 1, 1, 1, 1]), offset: 0, rowStride: 4, colStride: 1 };
    // a is [4, 2], b is [2, 4]
    const out = new Int32Array(16);
    matmul(4, 4, 2, a, b, out, 0);
    const ref = new Int32Array(16);
    for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) {
      let s = 0;
      for (let k = 0; k < 2; k++) s = (s + Math.imul(a.data[i * 2 + k], b.data[k * 4 + j])) | 0;
      ref[i * 4 + j] = s;
    }
    expect(out).toEqual(ref);
    expect(out[0]).toBe((0 + 46341) | 0); // (2^30 * 4) wraps to 0, plus 46341 * 1
  });
});
