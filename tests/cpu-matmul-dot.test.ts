// The dot-product GEMM (runtime/cpu/wasm/gemm-dot.ts): C = A @ Btᵀ for A with unit column stride
// and B with unit row stride (a transposed row-major matrix), read where they lie.
import { afterAll, describe, expect, it } from 'vitest';
import { matmulNaive, type MatOperand } from '../runtime/cpu/matmul.js';
import {
  createSimdMatmul,
  DEFAULT_CONFIG,
  DEFAULT_DOT_CONFIG,
  DEFAULT_DOT_POLICY,
  matmulSimdAvailable,
  relaxedSimdAvailable,
  type DotPolicy,
  type SimdMatmul,
} from '../runtime/cpu/wasm/matmul-simd.js';
import { setThreadCount } from '../runtime/cpu/threads/thread-count.js';
import { shutdownThreads } from '../runtime/cpu/threads/pool.js';
import { rng } from './helpers.js';
import { floats, operand, type Where } from './matmul-operands.js';

/** A's layouts with unit column stride, and B's with unit row stride (B = Btᵀ). */
type ALayout = 'contiguous' | 'padded' | 'broadcastRows';
type BLayout = 'transposed' | 'paddedTransposed' | 'broadcastCols';

/** mm's product against matmulNaive, with NaN guards around C (nothing outside C[M, N] written) and A, B unchanged. */
function check(mm: SimdMatmul, M: number, N: number, K: number, la: ALayout, lb: BLayout, seed: number, where: Where = {}): void {
  const rand = rng(seed);
  const a = operand(la, M, K, rand, where.a ?? false);
  const b = operand(lb, K, N, rand, where.b ?? false);
  const aBefore = a.data.slice(), bBefore = b.data.slice();
  const outOffset = 1 + Math.floor(rand() * 5);
  const got = floats(outOffset + M * N + 2, where.out ?? false).fill(NaN);
  const ref = new Float32Array(M * N);
  mm.matmul(M, N, K, a, b, got, outOffset);
  matmulNaive(M, N, K, a, b, ref, 0);
  // The error bound scales with sum_k |A(i,k) B(k,j)| (the sums may cancel to far less).
  const abs = (x: MatOperand): MatOperand => ({ ...x, data: Float32Array.from(x.data as Float32Array, Math.abs) });
  const mag = new Float32Array(M * N);
  matmulNaive(M, N, K, abs(a), abs(b), mag, 0);
  const what = `M=${M} N=${N} K=${K} a=${la} b=${lb} heap=${JSON.stringify(where)}`;
  let err = 0, scale = 0;
  for (let i = 0; i < ref.length; i++) {
    err = Math.max(err, Math.abs(got[outOffset + i] - ref[i]));
    scale = Math.max(scale, mag[i]);
  }
  // NaN (a sentinel left in C) fails this too.
  expect(err <= 1e-5 * Math.max(scale, 1e-30), `${what}: max error ${err} vs max sum |a b| ${scale}`).toBe(true);
  if (K === 0) expect(err, `${what}: K = 0 gives zeros`).toBe(0);
  for (let i = 0; i < outOffset; i++) expect(Number.isNaN(got[i]), `${what}: out[${i}]`).toBe(true);
  for (const i of [outOffset + M * N, outOffset + M * N + 1]) expect(Number.isNaN(got[i]), `${what}: out[${i}]`).toBe(true);
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== aBefore[i]) expect.fail(`${what}: a changed at ${i}`);
  for (let i = 0; i < b.data.length; i++) if (b.data[i] !== bBefore[i]) expect.fail(`${what}: b changed at ${i}`);
}

const always = (maxKc: number): DotPolicy => ({ config: DEFAULT_DOT_CONFIG, maxKc, chunkBytes: 0, use: () => true });

describe('wasm dot-product matmul (A @ Btᵀ)', () => {
  const simd = matmulSimdAvailable();

  afterAll(async () => {
    setThreadCount(undefined);
    await shutdownThreads();
  });

  it.runIf(simd)('matches the naive loop on edge shapes, long K in many chunks, strided rows, relaxed and not, on 1 and 2 threads', () => {
    const relaxedOptions = relaxedSimdAvailable() ? [true, false] : [false];
    const builds: { mm: SimdMatmul; multi: boolean }[] = [];
    for (const relaxed of relaxedOptions) {
      const cfg = { ...DEFAULT_CONFIG, relaxed };
      // Chunks of 16 and 20 steps (a chunk boundary not a multiple of 8), and the default chunking.
      builds.push({ mm: createSimdMatmul(cfg, { minFlopsPerThread: Infinity, tasksPerThread: 1 }, always(16)), multi: false });
      builds.push({ mm: createSimdMatmul(cfg, { minFlopsPerThread: 1, tasksPerThread: 1 }, always(20)), multi: true });
      builds.push({ mm: createSimdMatmul(cfg, { minFlopsPerThread: 1, tasksPerThread: 3 }, always(DEFAULT_DOT_POLICY.maxKc)), multi: true });
      // Other tiles: the edge variants of a 2 x 4 and a 1 x 1 tile.
      builds.push({ mm: createSimdMatmul(cfg, undefined, { ...always(12), config: { mr: 2, nr: 4, unroll: 2 } }), multi: false });
      builds.push({ mm: createSimdMatmul(cfg, undefined, { ...always(64), config: { mr: 1, nr: 1, unroll: 1 } }), multi: false });
    }
    const rand = rng(21);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const dim = () => pick([1, 2, 3, 4, 5, 6, 7, 9, 11, 13, 16, 17, 31]);
    const kdim = () => pick([0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 19, 21, 33, 64, 67, 101, 257]);
    const aLayouts: ALayout[] = ['contiguous', 'padded', 'broadcastRows'];
    const bLayouts: BLayout[] = ['transposed', 'paddedTransposed', 'broadcastCols'];
    const whereOptions: Where[] = [{}, { a: true }, { b: true }, { out: true }, { a: true, b: true, out: true }];
    let seed = 100;
    for (const threads of [1, 2]) {
      setThreadCount(threads);
      for (const { mm, multi } of builds) {
        const before = { ...mm.stats };
        for (let t = 0; t < 40; t++) check(mm, dim(), dim(), kdim(), pick(aLayouts), pick(bLayouts), seed++, pick(whereOptions));
        // Every M and N up to past two tiles, K with every remainder mod 4.
        for (const M of [1, 2, 3, 4, 7]) for (const N of [1, 2, 3, 5, 8]) check(mm, M, N, 37 + ((M + N) % 4), 'padded', 'paddedTransposed', seed++, { a: true, b: true });
        // Long K (several default chunks), K = 0, and a split by rows and by columns.
        check(mm, 5, 7, 9001, 'contiguous', 'transposed', seed++, { a: true, b: true, out: true });
        check(mm, 3, 2, 0, 'contiguous', 'transposed', seed++, { out: true });
        check(mm, 40, 9, 301, 'padded', 'transposed', seed++, { a: true, b: true });
        check(mm, 6, 45, 299, 'contiguous', 'paddedTransposed', seed++);
        // The path was taken, and (one task on the calling thread) ran several chunks.
        expect(mm.stats.dotTasks).toBeGreaterThan(before.dotTasks + 50);
        if (!multi || threads === 1) expect(mm.stats.dotChunks).toBeGreaterThan(before.dotChunks + 50);
        expect(mm.stats.directBTasks).toBe(before.directBTasks);
      }
    }
    setThreadCount(undefined);
  });

  it.runIf(simd)('gives bit-identical results on 1 and 2 threads (splits fall on whole tiles)', () => {
    const rand = rng(33);
    for (const [maxKc, tasks] of [[DEFAULT_DOT_POLICY.maxKc, 1], [24, 3]]) {
      const mm = createSimdMatmul({ ...DEFAULT_CONFIG, relaxed: relaxedSimdAvailable() }, { minFlopsPerThread: 1, tasksPerThread: tasks }, always(maxKc));
      for (const [M, N, K] of [[10, 25, 3001], [29, 8, 517], [7, 7, 70], [2, 31, 9]]) {
        const a = operand('padded', M, K, rand, true), b = operand('transposed', K, N, rand, true);
        const results = [1, 2].map((threads) => {
          setThreadCount(threads);
          const out = new Float32Array(M * N);
          mm.matmul(M, N, K, a, b, out, 0);
          return out;
        });
        for (let i = 0; i < M * N; i++) if (results[0][i] !== results[1][i]) expect.fail(`M=${M} N=${N} K=${K}: element ${i} differs`);
      }
    }
    setThreadCount(undefined);
  });

  it.runIf(simd)('is chosen by default for long-K products of short operands (the ConvNet weight gradients, x @ W1ᵀ) and narrow C (h @ W2ᵀ), and only with unit strides along K', () => {
    const mm = createSimdMatmul({ ...DEFAULT_CONFIG, relaxed: relaxedSimdAvailable() });
    expect(mm.dot).toBe(DEFAULT_DOT_POLICY);
    for (const [M, N, K] of [[10, 25, 36864], [20, 250, 4096], [64, 100, 1000], [1, 100, 1000], [100, 1, 1000], [4096, 10, 100], [64, 4, 250]]) {
      expect(DEFAULT_DOT_POLICY.use(M, N, K, true), `${M}x${N}x${K}`).toBe(true);
    }
    // Square-ish products keep the packed GEMM (faster there: see DEFAULT_DOT_POLICY).
    for (const [M, N, K] of [[64, 64, 64], [256, 256, 256], [128, 128, 2048], [16, 64, 64], [4, 1000, 64], [4096, 16, 100], [64, 10, 25]]) {
      expect(DEFAULT_DOT_POLICY.use(M, N, K, true), `${M}x${N}x${K}`).toBe(false);
    }
    // Without FMA only matrix-vector products take it.
    expect(DEFAULT_DOT_POLICY.use(1, 100, 1000, false)).toBe(true);
    for (const [M, N, K] of [[10, 25, 36864], [20, 250, 4096], [64, 100, 1000]]) expect(DEFAULT_DOT_POLICY.use(M, N, K, false), `${M}x${N}x${K}`).toBe(false);
    let seed = 500;
    for (const threads of [1, 2]) {
      setThreadCount(threads);
      let before = { ...mm.stats };
      check(mm, 10, 25, 36864, 'contiguous', 'transposed', seed++, { a: true, b: true, out: true });
      check(mm, 20, 250, 4096, 'contiguous', 'transposed', seed++, { a: true, b: true });
      check(mm, 64, 100, 1000, 'contiguous', 'paddedTransposed', seed++);
      check(mm, 1, 13, 700, 'contiguous', 'transposed', seed++, { out: true });
      expect(mm.stats.dotTasks).toBeGreaterThanOrEqual(before.dotTasks + 4);
      if (threads === 1) expect(mm.stats.dotChunks).toBeGreaterThanOrEqual(before.dotChunks + 9 + 1 + 1 + 1);
      before = { ...mm.stats };
      // Not taken: a square product, or A's or B's elements not contiguous along K.
      check(mm, 64, 64, 64, 'contiguous', 'transposed', seed++, { a: true, b: true });
      const rand = rng(seed++);
      const a = operand('contiguous', 10, 4000, rand, true), b = operand('transposed', 4000, 25, rand, true);
      const out = new Float32Array(250), ref = new Float32Array(250);
      const aT = { ...a, rowStride: 1, colStride: 10 }; // the same floats read as a transposed A
      mm.matmul(10, 25, 4000, aT, b, out, 0);
      matmulNaive(10, 25, 4000, aT, b, ref, 0);
      for (let i = 0; i < 250; i++) expect(Math.abs(out[i] - ref[i])).toBeLessThan(1e-3);
      expect(mm.stats.dotTasks).toBe(before.dotTasks);
    }
    setThreadCount(undefined);
  });
});
