// The Wasm GEMMs' fused epilogue (runtime/cpu/wasm/gemm-epilogue.ts): C = epilogue(A @ B, extras)
// applied as the packed, the unpacked-B and the dot-product GEMMs store C, on full and edge tiles,
// over several blocks of K, split into tasks on 1 and 2 threads, with extras in the heap or copied
// in; against the same build's plain
// product with the epilogue applied afterwards by the elementwise kernel. The expressions round
// at most once, so the two agree bit for bit.
import { afterAll, describe, expect, it } from 'vitest';
import { E, exprToString, type DType, type Expr } from '../ir/index.js';
import { runElementwise, type Operand } from '../runtime/cpu/elementwise.js';
import type { MatOperand } from '../runtime/cpu/matmul.js';
import { createSimdMatmul, DEFAULT_CONFIG, DEFAULT_DOT_POLICY, matmulSimdAvailable, relaxedSimdAvailable, type DotPolicy, type EpilogueArgs, type SimdMatmul } from '../runtime/cpu/wasm/matmul-simd.js';
import { extraMode, type GemmEpilogue } from '../runtime/cpu/wasm/gemm-epilogue.js';
import { setThreadCount } from '../runtime/cpu/threads/thread-count.js';
import { shutdownThreads } from '../runtime/cpu/threads/pool.js';
import type { HostArray } from '../runtime/backend.js';
import { newHostArray } from '../runtime/host.js';
import { wasmHeap } from '../runtime/cpu/wasm/heap.js';
import { heapArray, rng } from './helpers.js';
import { operand, type Layout } from './matmul-operands.js';

const simd = matmulSimdAvailable();

/** An extra operand: how it lies against C (rows x cols strides) and its dtype. */
interface ExtraLayout { dtype: DType; strides: (m: number, n: number) => [number, number]; extent: (m: number, n: number) => number }
const bias: ExtraLayout = { dtype: 'float32', strides: () => [0, 1], extent: (_m, n) => n }; // [N]: along the row ('v')
const perRow: ExtraLayout = { dtype: 'float32', strides: () => [1, 0], extent: (m) => m }; // [M, 1] ('r')
const full: ExtraLayout = { dtype: 'float32', strides: (_m, n) => [n, 1], extent: (m, n) => m * n }; // [M, N] ('v')
const stepped: ExtraLayout = { dtype: 'float32', strides: (_m, n) => [2 * n + 1, 2], extent: (m, n) => m * (2 * n + 1) }; // every other column ('s')
const mask: ExtraLayout = { dtype: 'bool', strides: (_m, n) => [n, 1], extent: (m, n) => m * n };
const ints: ExtraLayout = { dtype: 'int32', strides: () => [1, 0], extent: (m) => m };

/** Epilogues with at most one rounding op, so Wasm (float32 steps) and JS (float64, one rounding) agree exactly. */
const EPILOGUES: { name: string; expr: Expr; extras: ExtraLayout[] }[] = [
  { name: 'bias + relu', expr: E.relu(E.add(E.input(0), E.input(1))), extras: [bias] },
  { name: 'per-row bias', expr: E.add(E.input(0), E.input(1)), extras: [perRow] },
  { name: 'relu gradient', expr: E.select(E.gt(E.input(1), E.const(0)), E.input(0), E.const(0)), extras: [full] },
  { name: 'stepped and full', expr: E.select(E.gt(E.input(1), E.input(2)), E.input(0), E.input(2)), extras: [stepped, full] },
  { name: 'bool mask', expr: E.select(E.input(1), E.input(0), E.const(0)), extras: [mask] },
  { name: 'int32 per row', expr: E.mul(E.input(0), E.cast('float32', E.input(1))), extras: [ints] },
  { name: 'no extras', expr: E.max(E.input(0), E.const(-0.25)), extras: [] },
];

/** An extra's values, in the heap or (every third one) in a plain array: the GEMM then copies it in. */
function extraData(l: ExtraLayout, m: number, n: number, rand: () => number): HostArray {
  const len = l.extent(m, n) + 1;
  const data = rand() < 1 / 3 ? newHostArray(l.dtype, len) : heapArray(l.dtype, len);
  for (let i = 0; i < len; i++) data[i] = l.dtype === 'bool' ? (rand() < 0.5 ? 1 : 0) : l.dtype === 'int32' ? Math.floor(rand() * 7) - 3 : rand() * 2 - 1;
  return data;
}

/** Runs the epilogue GEMM and the reference; returns a description of the first mismatch, or null. */
function check(mm: SimdMatmul, M: number, N: number, K: number, la: Layout, lb: Layout, epi: (typeof EPILOGUES)[number], seed: number): string | null {
  const rand = rng(seed);
  const a: MatOperand = operand(la, M, K, rand, true), b: MatOperand = operand(lb, K, N, rand, true);
  const extras = epi.extras.map((l) => ({ l, data: extraData(l, M, N, rand), strides: l.strides(M, N) }));
  const spec: GemmEpilogue = { expr: epi.expr, extras: extras.map((x) => ({ dtype: x.l.dtype, mode: extraMode(x.strides[1]) })) };
  const args: EpilogueArgs = {
    spec,
    key: `test|${exprToString(epi.expr)}|${spec.extras.map((x) => `${x.dtype}:${x.mode}`).join()}`,
    extras: extras.map((x) => ({ data: x.data, offset: 1, rowStride: x.strides[0], colStride: x.strides[1] })),
  };
  const pad = 3;
  const got = heapArray('float32', M * N + 2 * pad).fill(NaN);
  // An extra outside the heap is copied in when it spans at most as many elements as C.
  const span = (x: (typeof extras)[number]) => 1 + (M - 1) * x.strides[0] + (N - 1) * x.strides[1];
  const fits = extras.every((x) => wasmHeap()!.addressOf(x.data) >= 0 || span(x) <= M * N);
  expect(mm.matmulEpilogue(M, N, K, a, b, got, pad, args), 'the epilogue path ran').toBe(fits);
  if (!fits) return null;
  const ref = heapArray('float32', M * N);
  mm.matmul(M, N, K, a, b, ref, 0);
  const ops: Operand[] = [{ data: ref, offset: 0, strides: [N, 1], dtype: 'float32' }, ...extras.map((x): Operand => ({ data: x.data, offset: 1, strides: x.strides, dtype: x.l.dtype }))];
  runElementwise(epi.expr, [M, N], ops[0], ops);
  const what = `${epi.name}: M=${M} N=${N} K=${K} a=${la} b=${lb}`;
  for (let i = 0; i < M * N; i++) {
    const x = got[pad + i], y = ref[i];
    if (!(Object.is(x, y) || (x !== x && y !== y))) return `${what}: at ${i} got ${x}, want ${y}`;
  }
  for (const i of [0, 1, 2, pad + M * N, pad + M * N + 1]) if (!Number.isNaN(got[i])) return `${what}: wrote outside C at ${i}`;
  return null;
}

const always = (maxKc: number): DotPolicy => ({ ...DEFAULT_DOT_POLICY, maxKc, chunkBytes: 0, use: () => true });

describe.runIf(simd)('Wasm GEMM epilogues', () => {
  afterAll(async () => {
    setThreadCount(undefined);
    await shutdownThreads();
  });

  it('equal the product followed by the elementwise epilogue: packed, unpacked-B and dot-product GEMMs, edge tiles, blocks of K, 1 and 2 threads', () => {
    const cfg = { ...DEFAULT_CONFIG, relaxed: relaxedSimdAvailable() };
    const tiny = { ...cfg, kc: 7, mc: 8, nc: 16 };
    const builds: { name: string; mm: SimdMatmul; la: Layout[]; lb: Layout[]; dims: number[] }[] = [
      // Packed (B transposed never reads unpacked; the dot GEMM is off), tiny blocks: many slabs of K, ragged tiles.
      { name: 'packed tiny', mm: createSimdMatmul({ ...tiny, directBMaxM: 0, directAMaxN: 0 }, { minFlopsPerThread: Infinity, tasksPerThread: 1 }, { ...always(16), use: () => false }), la: ['contiguous', 'transposed', 'strided'], lb: ['contiguous', 'transposed', 'padded'], dims: [1, 2, 3, 5, 8, 13, 17, 33] },
      { name: 'packed tasks', mm: createSimdMatmul({ ...tiny, directBMaxM: 0, directAMaxN: 0 }, { minFlopsPerThread: 1, tasksPerThread: 3 }, { ...always(16), use: () => false }), la: ['contiguous', 'transposed'], lb: ['contiguous', 'padded'], dims: [1, 4, 7, 16, 31, 40] },
      // Unpacked A (A contiguous along K, B packed), alone and in tasks.
      { name: 'unpacked A', mm: createSimdMatmul({ ...tiny, directBMaxM: 0, directAMaxN: 1 << 20 }, { minFlopsPerThread: Infinity, tasksPerThread: 1 }, { ...always(16), use: () => false }), la: ['contiguous'], lb: ['contiguous', 'transposed', 'padded'], dims: [1, 2, 3, 5, 8, 13, 17, 33] },
      { name: 'unpacked A tasks', mm: createSimdMatmul({ ...tiny, directBMaxM: 0, directAMaxN: 1 << 20 }, { minFlopsPerThread: 1, tasksPerThread: 3 }, { ...always(16), use: () => false }), la: ['contiguous'], lb: ['contiguous', 'padded'], dims: [1, 4, 7, 16, 31, 40] },
      // Unpacked B: short C, unit-stride B.
      { name: 'unpacked B', mm: createSimdMatmul(tiny, { minFlopsPerThread: Infinity, tasksPerThread: 1 }, { ...always(16), use: () => false }), la: ['contiguous', 'transposed'], lb: ['contiguous', 'padded', 'wide'], dims: [1, 3, 4, 8, 9, 16, 17, 40] },
      { name: 'unpacked B tasks', mm: createSimdMatmul(tiny, { minFlopsPerThread: 1, tasksPerThread: 2 }, { ...always(16), use: () => false }), la: ['contiguous'], lb: ['contiguous', 'padded'], dims: [2, 8, 16, 33] },
      // Dot-product GEMM: A contiguous along K, B transposed; short chunks of K.
      { name: 'dot', mm: createSimdMatmul(cfg, { minFlopsPerThread: Infinity, tasksPerThread: 1 }, always(12)), la: ['contiguous', 'padded'], lb: ['transposed', 'paddedTransposed'], dims: [1, 2, 3, 4, 5, 7, 11, 26] },
      { name: 'dot tasks', mm: createSimdMatmul(cfg, { minFlopsPerThread: 1, tasksPerThread: 3 }, always(20)), la: ['contiguous'], lb: ['transposed'], dims: [1, 3, 10, 29] },
    ];
    const rand = rng(31);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
    let seed = 100;
    const failures: string[] = [];
    for (const threads of [1, 2]) {
      setThreadCount(threads);
      for (const b of builds) {
        const before = { ...b.mm.stats };
        for (const epi of EPILOGUES) {
          for (let t = 0; t < 6; t++) {
            const f = check(b.mm, pick(b.dims), pick(b.dims), pick(b.dims), pick(b.la), pick(b.lb), epi, seed++);
            if (f) failures.push(`${b.name}, ${threads} thread(s): ${f}`);
          }
        }
        // The path each build is for was taken.
        if (b.name.startsWith('dot')) expect(b.mm.stats.dotTasks, b.name).toBeGreaterThan(before.dotTasks);
        else expect(b.mm.stats.dotTasks, b.name).toBe(before.dotTasks);
        if (b.name.startsWith('unpacked B')) expect(b.mm.stats.directBTasks, b.name).toBeGreaterThan(before.directBTasks);
        if (b.name.startsWith('unpacked A')) expect(b.mm.stats.directATasks, b.name).toBeGreaterThan(before.directATasks);
        if (b.name.startsWith('packed')) expect(b.mm.stats.directATasks, b.name).toBe(before.directATasks);
      }
    }
    expect(failures.slice(0, 5)).toEqual([]);
  });

  it('decline (returning false, C untouched) an extra outside the heap spanning more than C, K = 0, and an epilogue without a Wasm rendering', () => {
    const mm = createSimdMatmul({ ...DEFAULT_CONFIG, relaxed: relaxedSimdAvailable() });
    const rand = rng(7);
    const a = operand('contiguous', 8, 8, rand, true), b = operand('contiguous', 8, 8, rand, true);
    const out = heapArray('float32', 64).fill(NaN);
    const spec: GemmEpilogue = { expr: E.add(E.input(0), E.input(1)), extras: [{ dtype: 'float32', mode: 'v' }] };
    // Rows 100 apart in a plain array: 708 elements to copy for 64 outputs.
    const sparse: EpilogueArgs = { spec, key: 'decline|add', extras: [{ data: new Float32Array(800), offset: 0, rowStride: 100, colStride: 1 }] };
    expect(mm.matmulEpilogue(8, 8, 8, a, b, out, 0, sparse)).toBe(false);
    const inside: EpilogueArgs = { ...sparse, extras: [{ data: heapArray('float32', 8), offset: 0, rowStride: 0, colStride: 1 }] };
    expect(mm.matmulEpilogue(8, 8, 0, a, b, out, 0, inside)).toBe(false);
    const log: EpilogueArgs = { spec: { expr: E.log(E.input(0)), extras: [] }, key: 'decline|log', extras: [] };
    expect(mm.matmulEpilogue(8, 8, 8, a, b, out, 0, log)).toBe(false);
    expect(out.every((x) => Number.isNaN(x))).toBe(true);
    expect(mm.matmulEpilogue(8, 8, 8, a, b, out, 0, inside)).toBe(true);
  });
});
