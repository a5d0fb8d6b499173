import { afterAll, describe, it, expect, vi } from 'vitest';
import { matmul, matmulJs, matmulNaive, type MatOperand } from '../runtime/cpu/matmul.js';
import {
  createSimdMatmul,
  DEFAULT_CONFIG,
  DEFAULT_DOT_POLICY,
  matmulF32Simd,
  matmulSimdAvailable,
  relaxedSimdAvailable,
  type SimdMatmul,
} from '../runtime/cpu/wasm/matmul-simd.js';
import { setThreadCount } from '../runtime/cpu/threads/thread-count.js';
import { shutdownThreads } from '../runtime/cpu/threads/pool.js';
import { firstDifference, maxAbs, modulePath, rng, runTsChild } from './helpers.js';
import { floats, operand, type Layout, type Where } from './matmul-operands.js';

type Fn = (M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: Float32Array, outOffset: number) => void;

/** Runs fn and matmulNaive (and the JS kernel) on the same operands; checks they agree and nothing else is touched. */
function check(fn: Fn, M: number, N: number, K: number, la: Layout, lb: Layout, seed: number, where: Where = {}): void {
  const rand = rng(seed);
  const a = operand(la, M, K, rand, where.a);
  const b = operand(lb, K, N, rand, where.b);
  const aBefore = a.data.slice(), bBefore = b.data.slice();
  const outOffset = 1 + Math.floor(rand() * 5);
  const got = floats(outOffset + M * N + 2, where.out ?? false).fill(NaN);
  const ref = new Float32Array(M * N);
  const js = new Float32Array(M * N);
  fn(M, N, K, a, b, got, outOffset);
  matmulNaive(M, N, K, a, b, ref, 0);
  matmulJs(M, N, K, a, b, js, 0);

  const what = `M=${M} N=${N} K=${K} a=${la} b=${lb} heap=${JSON.stringify(where)}`;
  const body = got.subarray(outOffset, outOffset + M * N);
  let err = 0, errJs = 0;
  for (let i = 0; i < ref.length; i++) {
    err = Math.max(err, Math.abs(body[i] - ref[i]));
    errJs = Math.max(errJs, Math.abs(body[i] - js[i]));
  }
  // NaN (the sentinel left behind) fails these comparisons too.
  const scale = maxAbs(ref);
  expect(err <= 1e-5 * scale, `${what}: max error ${err} vs max |ref| ${scale}`).toBe(true);
  expect(errJs <= 1e-5 * scale, `${what}: max difference from the JS kernel ${errJs}`).toBe(true);
  for (let i = 0; i < outOffset; i++) expect(Number.isNaN(got[i]), `${what}: out[${i}]`).toBe(true);
  for (const i of [outOffset + M * N, outOffset + M * N + 1]) expect(Number.isNaN(got[i]), `${what}: out[${i}]`).toBe(true);
  // Element by element: toEqual on a view of the (large, shared) heap buffer is very slow.
  expect(firstDifference(a.data, aBefore), `${what}: a changed`).toBe(-1);
  expect(firstDifference(b.data, bBefore), `${what}: b changed`).toBe(-1);
}

const layouts: Layout[] = ['contiguous', 'transposed', 'padded', 'strided', 'broadcastRows', 'broadcastCols', 'scalar'];

describe('wasm simd matmul', () => {
  it('probes the engine', () => {
    expect(typeof matmulSimdAvailable()).toBe('boolean');
    expect(typeof relaxedSimdAvailable()).toBe('boolean');
    // Node 20 (V8 11.3) has Wasm SIMD, and relaxed SIMD behind a flag that Kiln turns on itself.
    expect(matmulSimdAvailable()).toBe(true);
    expect(relaxedSimdAvailable()).toBe(process.env.KILN_RELAXED_SIMD !== '0');
  });

  const simd = matmulSimdAvailable();

  it.runIf(simd)('matches the naive loop on edge sizes', () => {
    const sizes = [0, 1, 3, 5, 15, 16, 17, 63, 64, 65];
    let seed = 1;
    for (const M of sizes) for (const N of sizes) for (const K of [0, 1, 5, 17, 64]) {
      check(matmulF32Simd, M, N, K, 'contiguous', 'contiguous', seed++);
    }
  });

  it.runIf(simd)('matches across cache-block boundaries', () => {
    let seed = 1000;
    for (const [M, N, K] of [[130, 9, 300], [7, 130, 257], [200, 20, 513], [5, 515, 33], [97, 2050, 3], [4, 8, 256]]) {
      check(matmulF32Simd, M, N, K, 'contiguous', 'contiguous', seed++);
    }
  });

  it.runIf(simd)('handles transposed, padded, strided and broadcast operands with offsets', () => {
    let seed = 2000;
    for (const la of layouts) for (const lb of layouts) {
      for (const [M, N, K] of [[9, 13, 70], [17, 5, 3], [1, 6, 9], [65, 33, 130]]) check(matmulF32Simd, M, N, K, la, lb, seed++);
    }
  });

  it.runIf(simd)('matches on random shapes', () => {
    const rand = rng(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const dim = () => pick([0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 100, 130, 257]);
    for (let t = 0; t < 120; t++) check(matmulF32Simd, dim(), dim(), dim(), pick(layouts), pick(layouts), 3000 + t);
  });

  afterAll(async () => {
    setThreadCount(undefined);
    await shutdownThreads();
  });

  const whereOptions: Where[] = [{}, { a: true }, { b: true }, { out: true }, { a: true, b: true, out: true }];

  it.runIf(simd)('crosses small cache blocks and splits into tasks, on 1 and 2 threads (every path of tiny builds)', () => {
    // Tiny cache blocks so that every loop runs many times and most slivers are ragged;
    // minFlopsPerThread 1 splits every product over the threads, tasksPerThread 3 into more tasks than threads.
    const tiny = { ...DEFAULT_CONFIG, relaxed: false, kc: 7, mc: 8, nc: 16 };
    const builds: SimdMatmul[] = [
      createSimdMatmul(tiny, { minFlopsPerThread: Infinity, tasksPerThread: 1 }),
      createSimdMatmul(tiny, { minFlopsPerThread: 1, tasksPerThread: 1 }),
      createSimdMatmul(tiny, { minFlopsPerThread: 1, tasksPerThread: 3 }),
      createSimdMatmul({ ...DEFAULT_CONFIG, relaxed: false }, { minFlopsPerThread: 1, tasksPerThread: 2 }),
    ];
    if (relaxedSimdAvailable()) builds.push(createSimdMatmul({ ...tiny, relaxed: true }, { minFlopsPerThread: 1, tasksPerThread: 1 }));
    const rand = rng(11);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const dim = () => pick([0, 1, 2, 3, 5, 7, 8, 13, 15, 16, 17, 33, 40]);
    let seed = 5000;
    for (const threads of [1, 2]) {
      setThreadCount(threads);
      for (const k of builds) {
        const fn: Fn = (...args) => k.matmul(...args);
        for (let t = 0; t < 50; t++) check(fn, dim(), dim(), dim(), pick(layouts), pick(layouts), seed++, pick(whereOptions));
        check(fn, 65, 33, 130, 'transposed', 'strided', seed++);
        check(fn, 3, 97, 31, 'contiguous', 'broadcastRows', seed++, { out: true }); // short C: split by columns
      }
    }
  });

  it.runIf(simd)('uses operands and out that lie in the heap, with the default build on 1 and 2 threads', () => {
    const rand = rng(12);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    const dim = () => pick([1, 4, 7, 31, 64, 97, 130]);
    let seed = 5500;
    for (const threads of [1, 2]) {
      setThreadCount(threads);
      for (let t = 0; t < 30; t++) check(matmulF32Simd, dim(), dim(), dim(), pick(layouts), pick(layouts), seed++, pick(whereOptions));
      // Big enough for the default policy to split: by rows, and (short C) by columns.
      check(matmulF32Simd, 300, 200, 150, 'contiguous', 'transposed', seed++, { a: true, b: true, out: true });
      check(matmulF32Simd, 5, 3000, 400, 'padded', 'contiguous', seed++, { b: true });
    }
    setThreadCount(undefined);
  });

  it.runIf(simd)('reads B unpacked when C is short and B unit-stride, equal to the plain loop and to the packed path, on 1 and 2 threads', () => {
    const cfg = { ...DEFAULT_CONFIG, relaxed: relaxedSimdAvailable() };
    const tiny = { ...cfg, kc: 7, mc: 8, nc: 16 };
    // [build, the same build packing B always] pairs: one thread, and every product split into tasks.
    const pairs: [SimdMatmul, SimdMatmul][] = [
      [createSimdMatmul(cfg, { minFlopsPerThread: Infinity, tasksPerThread: 1 }), createSimdMatmul({ ...cfg, directBMaxM: 0 })],
      [createSimdMatmul(cfg, { minFlopsPerThread: 1, tasksPerThread: 2 }), createSimdMatmul({ ...cfg, directBMaxM: 0 }, { minFlopsPerThread: 1, tasksPerThread: 2 })],
      [createSimdMatmul(tiny, { minFlopsPerThread: Infinity, tasksPerThread: 1 }), createSimdMatmul({ ...tiny, directBMaxM: 0 })],
      [createSimdMatmul(tiny, { minFlopsPerThread: 1, tasksPerThread: 3 }), createSimdMatmul({ ...tiny, directBMaxM: 0 }, { minFlopsPerThread: 1, tasksPerThread: 3 })],
    ];
    expect(DEFAULT_CONFIG.directBMaxM).toBeGreaterThanOrEqual(4);
    const maxM = DEFAULT_CONFIG.directBMaxM!;
    const rand = rng(14);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    let seed = 9000;
    for (const threads of [1, 2]) {
      setThreadCount(threads);
      for (const [direct, packed] of pairs) {
        const fn: Fn = (...args) => direct.matmul(...args);
        const before = { ...direct.stats };
        // Rows of B a multiple of 2 KiB apart ('wide', in the heap) take the path only with one register tile of rows.
        type BLayout = 'contiguous' | 'padded' | 'wide' | 'broadcastRows';
        const shapes: [number, number, number, BLayout][] = [
          [maxM, 2050, 300, 'padded'], [3, 4103, 17, 'contiguous'], [1, 8, 1, 'contiguous'], [16, 24, 513, 'padded'],
          [4, 2050, 300, 'wide'], [3, 4103, 17, 'wide'], [2, 9, 7, 'wide'], [4, 40, 513, 'wide'],
        ];
        for (let t = 0; t < 16; t++) {
          const M = 1 + Math.floor(rand() * maxM);
          const lb = pick(['contiguous', 'padded', 'broadcastRows', 'wide'] as const);
          shapes.push([lb === 'wide' ? 1 + (M % 4) : M, pick([1, 7, 8, 9, 16, 17, 31, 40, 64, 100, 257]), pick([1, 2, 7, 8, 9, 15, 16, 17, 33, 64, 255, 257]), lb]);
        }
        for (const [M, N, K, lb] of shapes) {
          // A 'wide' B outside the heap would be gathered into a contiguous copy: keep it in the heap.
          const where = lb === 'wide' ? { ...pick(whereOptions), b: true } : pick(whereOptions);
          check(fn, M, N, K, pick(['contiguous', 'transposed', 'padded'] as const), lb, seed++, where);
          // The same bits as packing B: every element of C is summed in the same order.
          const r = rng(seed++);
          const a = operand('padded', M, K, r), b = operand(lb, K, N, r, where.b);
          const x = new Float32Array(M * N), y = new Float32Array(M * N);
          direct.matmul(M, N, K, a, b, x, 0);
          packed.matmul(M, N, K, a, b, y, 0);
          expect(firstDifference(x, y), `M=${M} N=${N} K=${K} b=${lb} threads=${threads}`).toBe(-1);
        }
        // The path was taken: gemm calls told to read B unpacked, and (on the calling thread) kernelDirectB calls.
        expect(direct.stats.directBTasks).toBeGreaterThan(before.directBTasks);
        if (threads === 1 || direct === pairs[0][0] || direct === pairs[2][0]) {
          expect(direct.stats.directBKernelCalls).toBeGreaterThan(before.directBKernelCalls);
        }
        expect(packed.stats.directBTasks).toBe(0);
        expect(packed.stats.directBKernelCalls).toBe(0);
      }
    }
    // Not taken: more rows than directBMaxM (or than one register tile, for rows 2 KiB apart), or B's columns not unit-stride.
    const [one] = pairs[0];
    const before = { ...one.stats };
    check((...args) => one.matmul(...args), maxM + 1, 40, 30, 'contiguous', 'contiguous', seed++);
    check((...args) => one.matmul(...args), DEFAULT_CONFIG.mr + 1, 40, 30, 'contiguous', 'wide', seed++, { b: true });
    check((...args) => one.matmul(...args), 4, 40, 30, 'contiguous', 'transposed', seed++);
    expect(one.stats.directBTasks).toBe(before.directBTasks);
    expect(one.stats.directBKernelCalls).toBe(before.directBKernelCalls);
    setThreadCount(undefined);
  });

  it.runIf(simd)('reads A unpacked when C is narrow and A unit-stride along K: the same bits as packing A, on 1 and 2 threads', () => {
    const cfg = { ...DEFAULT_CONFIG, relaxed: relaxedSimdAvailable() };
    const tiny = { ...cfg, kc: 7, mc: 8, nc: 16 };
    expect(DEFAULT_CONFIG.directAMaxN).toBeGreaterThanOrEqual(64);
    // [build reading A unpacked whenever it can, the same build packing A always], on one thread and split into tasks.
    const noDot = { ...DEFAULT_DOT_POLICY, use: () => false };
    const pairs: [SimdMatmul, SimdMatmul][] = [cfg, tiny].flatMap((c) => [1, 3].map((tasks): [SimdMatmul, SimdMatmul] => {
      const split = { minFlopsPerThread: tasks > 1 ? 1 : Infinity, tasksPerThread: tasks };
      return [createSimdMatmul({ ...c, directAMaxN: 1 << 20, directBMaxM: 0 }, split, noDot), createSimdMatmul({ ...c, directAMaxN: 0, directBMaxM: 0 }, split, noDot)];
    }));
    const rand = rng(15);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    let seed = 9500;
    for (const threads of [1, 2]) {
      setThreadCount(threads);
      for (const [direct, packed] of pairs) {
        const before = direct.stats.directATasks;
        const shapes: [number, number, number][] = [[1, 1, 1], [3, 9, 600], [4, 8, 513], [67, 100, 33], [130, 17, 7]];
        for (let t = 0; t < 12; t++) shapes.push([pick([1, 2, 3, 4, 5, 7, 9, 16, 17, 33, 64, 67]), pick([1, 3, 8, 9, 16, 17, 31, 64, 100]), pick([1, 2, 7, 8, 9, 16, 17, 33, 255, 513])]);
        for (const [M, N, K] of shapes) {
          const la = pick(['contiguous', 'padded', 'broadcastRows'] as const);
          const where = pick(whereOptions);
          check((...args) => direct.matmul(...args), M, N, K, la, pick(['contiguous', 'transposed', 'padded'] as const), seed++, where);
          const r = rng(seed++);
          const a = operand(la, M, K, r, where.a), b = operand('transposed', K, N, r, where.b);
          const x = new Float32Array(M * N), y = new Float32Array(M * N);
          direct.matmul(M, N, K, a, b, x, 0);
          packed.matmul(M, N, K, a, b, y, 0);
          expect(firstDifference(x, y), `M=${M} N=${N} K=${K} a=${la} threads=${threads}`).toBe(-1);
        }
        // The path was taken (gemm told to read A unpacked), and never by the build that packs A.
        expect(direct.stats.directATasks).toBeGreaterThan(before);
        expect(packed.stats.directATasks).toBe(0);
      }
    }
    // Not taken: A strided along K, or more columns than directAMaxN.
    const one = createSimdMatmul(cfg, { minFlopsPerThread: Infinity, tasksPerThread: 1 }, noDot);
    check((...args) => one.matmul(...args), 9, 40, 30, 'transposed', 'contiguous', seed++);
    check((...args) => one.matmul(...args), 9, DEFAULT_CONFIG.directAMaxN! + 1, 30, 'contiguous', 'contiguous', seed++);
    expect(one.stats.directATasks).toBe(0);
    setThreadCount(undefined);
  });

  it.runIf(simd)('gives bit-identical results on 1 and 2 threads (a split never changes the order of the sums)', () => {
    const split = createSimdMatmul({ ...DEFAULT_CONFIG, relaxed: relaxedSimdAvailable() }, { minFlopsPerThread: 1, tasksPerThread: 3 });
    const rand = rng(13);
    for (const [M, N, K, la, lb] of [[97, 45, 300, 'contiguous', 'transposed'], [6, 301, 70, 'padded', 'contiguous']] as const) {
      const a = operand(la, M, K, rand), b = operand(lb, K, N, rand);
      const results = [1, 2].map((threads) => {
        setThreadCount(threads);
        const out = new Float32Array(M * N);
        split.matmul(M, N, K, a, b, out, 0);
        return out;
      });
      expect(firstDifference(results[0], results[1]), `M=${M} N=${N} K=${K}`).toBe(-1);
    }
    setThreadCount(undefined);
  });

  it.runIf(simd)('works single-threaded on a non-shared heap (no SharedArrayBuffer), across memory growth', () => {
    // A browser page without cross-origin isolation: the heap is a plain memory that detaches its
    // buffer when it grows. Run in a child process, since the heap is created once per process.
    const r = runTsChild(
      `delete (globalThis as { SharedArrayBuffer?: unknown }).SharedArrayBuffer;\n` +
        `const { matmulF32Simd } = await import(${modulePath('runtime/cpu/wasm/matmul-simd.ts')});\n` +
        `const { matmulNaive } = await import(${modulePath('runtime/cpu/matmul.ts')});\n` +
        `const { wasmHeap } = await import(${modulePath('runtime/cpu/wasm/heap.ts')});\n` +
        `let worst = 0;\n` +
        `for (const [M, N, K] of [[5, 7, 3], [300, 200, 700], [1100, 900, 800], [33, 17, 65]]) {\n` +
        `  const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i));\n` +
        `  const b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i));\n` +
        `  const A = { data: a, offset: 0, rowStride: K, colStride: 1 }, B = { data: b, offset: 0, rowStride: 1, colStride: K };\n` +
        `  const got = new Float32Array(M * N), ref = new Float32Array(M * N);\n` +
        `  matmulF32Simd(M, N, K, A, B, got, 0);\n` +
        `  matmulNaive(M, N, K, A, B, ref, 0);\n` +
        `  let scale = 0; for (const r of ref) scale = Math.max(scale, Math.abs(r));\n` +
        `  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]) / scale);\n` +
        `}\n` +
        `console.log('shared', wasmHeap().shared, 'worst', worst < 1e-5 ? 'ok' : worst, 'reserved', wasmHeap().stats().bytesReserved > (4 << 20));\n`,
      { KILN_THREADS: '2' },
    );
    expect(r.stdout + r.stderr).toContain('shared false worst ok reserved true');
    expect(r.status).toBe(0);
  });

  it.runIf(simd)('under KILN_RELAXED_SIMD=0 the GEMM uses mul + add and still equals the plain loop, on 1 and 2 threads', () => {
    // Run in a child process: the choice is made once per process, when the kernel is built.
    const r = runTsChild(
      `const { matmulF32Simd, relaxedSimdAvailable } = await import(${modulePath('runtime/cpu/wasm/matmul-simd.ts')});\n` +
        `const { matmulNaive } = await import(${modulePath('runtime/cpu/matmul.ts')});\n` +
        `const { setThreadCount } = await import(${modulePath('runtime/cpu/threads/thread-count.ts')});\n` +
        `let worst = 0;\n` +
        `for (const threads of [1, 2]) {\n` +
        `  setThreadCount(threads);\n` +
        `  for (const [M, N, K] of [[1, 1, 1], [5, 7, 3], [13, 29, 257], [300, 200, 700], [64, 100, 1000], [33, 17, 65]]) {\n` +
        `    const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i));\n` +
        `    const b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i));\n` +
        `    const A = { data: a, offset: 0, rowStride: K, colStride: 1 }, B = { data: b, offset: 0, rowStride: 1, colStride: K };\n` +
        `    const got = new Float32Array(M * N), ref = new Float32Array(M * N);\n` +
        `    matmulF32Simd(M, N, K, A, B, got, 0);\n` +
        `    matmulNaive(M, N, K, A, B, ref, 0);\n` +
        `    let scale = 1e-30; for (const r of ref) scale = Math.max(scale, Math.abs(r));\n` +
        `    for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]) / scale);\n` +
        `  }\n` +
        `}\n` +
        `console.log('relaxed', relaxedSimdAvailable(), 'worst', worst < 1e-5 ? 'ok' : worst);\n`,
      { KILN_RELAXED_SIMD: '0' },
    );
    expect(r.stdout + r.stderr).toContain('relaxed false worst ok');
    expect(r.status).toBe(0);
  });

  it.runIf(simd)('overwrites out, is repeatable, and K = 0 gives zeros', () => {
    const rand = rng(6000);
    const a = operand('contiguous', 20, 300, rand);
    const b = operand('transposed', 300, 10, rand);
    const out = new Float32Array(200).fill(1e30);
    matmulF32Simd(20, 10, 300, a, b, out, 0);
    const first = out.slice();
    out.fill(-7);
    matmulF32Simd(20, 10, 300, a, b, out, 0);
    expect(out).toEqual(first);
    out.fill(3);
    matmulF32Simd(20, 10, 0, a, b, out, 0);
    expect(maxAbs(out)).toBe(0);
  });

  it.runIf(simd)('computes the seed layer and its weight gradient (x^T as a strided view)', () => {
    check(matmulF32Simd, 64, 100, 1000, 'contiguous', 'contiguous', 7000);
    check(matmulF32Simd, 1000, 100, 64, 'transposed', 'contiguous', 7001);
  });

  it('KILN_WASM=0 keeps float32 on the JS kernel', async () => {
    // The two paths round differently: the JS kernel sums in double (one rounding to float32 per
    // 256-deep block of K), as matmulNaive does, so it reproduces the naive loop's float32 almost
    // bit for bit; the Wasm kernel sums in float32, so most entries differ in the last bits.
    const M = 64, N = 64, K = 200;
    const rand = rng(8000);
    const a = operand('contiguous', M, K, rand), b = operand('transposed', K, N, rand);
    const ref = new Float32Array(M * N);
    matmulNaive(M, N, K, a, b, ref, 0);
    const sameAsNaive = (fn: Fn): number => {
      const out = new Float32Array(M * N);
      fn(M, N, K, a, b, out, 0);
      let same = 0;
      for (let i = 0; i < out.length; i++) if (out[i] === ref[i]) same++;
      return same / out.length;
    };
    vi.stubEnv('KILN_WASM', '0');
    vi.resetModules();
    try {
      const js = await import('../runtime/cpu/matmul.js');
      expect(sameAsNaive(js.matmul as Fn)).toBeGreaterThan(0.99);
    } finally {
      vi.unstubAllEnvs();
      vi.resetModules();
    }
    if (simd) {
      expect(sameAsNaive(matmulF32Simd)).toBeLessThan(0.9);
      // The default dispatch takes the Wasm path (unless this whole run has KILN_WASM=0).
      if (process.env.KILN_WASM !== '0') expect(sameAsNaive(matmul as Fn)).toBeLessThan(0.9);
    }
  });
});
