// Float32 matmul on WebAssembly SIMD: the JS side of the emitted GEMM (./gemm-f32.ts).
//
// Operands that already lie in the shared heap (./heap.ts: compiled plans' storages, adopted
// parameters) are used in place, and C is written straight into `out` when `out` lies there too;
// anything else is copied into a heap area first (and C copied out after). The GEMM then runs as
// one Wasm call per task: a single task, or, for work big enough to pay for it, one rectangle of C
// per thread (runtime/cpu/threads/pool.ts), split by rows of C, or by columns when C is short.
// Products whose operands both run contiguously along K with K long and M or N small (A @ Btᵀ:
// weight gradients, x @ Wᵀ) go to the dot-product GEMM (./gemm-dot.ts) instead, which packs
// nothing (DEFAULT_DOT_POLICY says when).

import { emitModule, FuncBuilder, V128 } from './emit.js';
import { DEFAULT_CONFIG, gemmFunctions, gemmScratchBytes, type SimdConfig } from './gemm-f32.js';
import { DEFAULT_DOT_CONFIG, gemmDotFunctions, type DotConfig } from './gemm-dot.js';
import { EXTRA_WORDS, type GemmEpilogue } from './gemm-epilogue.js';
import { Unsupported } from './simd-lanes.js';
import { compileKernel, type WasmKernel } from './kernel.js';
import { alignBytes, ScratchArea } from './heap.js';
import { copyMisalignment, spanOf, stage } from './copy-in.js';
import { callingThreadScratch, runTasks, splitRange } from '../threads/pool.js';
import { nodeProcess, threadCount } from '../threads/thread-count.js';
import type { MatOperand } from '../matmul.js';
import type { HostArray } from '../../backend.js';

export { DEFAULT_CONFIG, type SimdConfig } from './gemm-f32.js';
export { DEFAULT_DOT_CONFIG, type DotConfig } from './gemm-dot.js';

let simdOk: boolean | undefined;
let relaxedOk: boolean | undefined;

function validates(build: (f: FuncBuilder) => void): boolean {
  try {
    if (typeof WebAssembly !== 'object' || typeof WebAssembly.validate !== 'function') return false;
    const f = new FuncBuilder('f', [], [V128]);
    build(f);
    return WebAssembly.validate(emitModule([f], 1));
  } catch {
    return false;
  }
}

/** Whether this engine runs WebAssembly SIMD (v128, f32x4). Probed once with WebAssembly.validate. */
export function matmulSimdAvailable(): boolean {
  simdOk ??= validates((f) => f.i32Const(0).v128Load32Splat().v128Zero().f32x4Mul().v128Zero().f32x4Add());
  return simdOk;
}

const validatesMadd = (): boolean => validates((f) => f.v128Zero().v128Zero().v128Zero().f32x4RelaxedMadd());

/**
 * Node 20's V8 (11.3) has relaxed SIMD only behind --experimental-wasm-relaxed-simd; Node 22 and
 * current browsers ship it. The flag only makes validation accept the proposal's opcodes, and V8
 * reads it when a module is validated, so turning it on at run time (node:v8's setFlagsFromString,
 * before the GEMM module is built) gives every Node 20 process the fused multiply-add, not just
 * the ones started with the flag.
 */
function enableRelaxedSimdInNode(): boolean {
  const v8 = nodeProcess()?.getBuiltinModule?.('node:v8') as typeof import('node:v8') | undefined;
  if (!v8) return false;
  v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  return true;
}

/**
 * Whether the GEMM uses relaxed SIMD's f32x4.relaxed_madd: where the engine has it, turned on
 * first in a Node that has it behind a flag (enableRelaxedSimdInNode), unless KILN_RELAXED_SIMD=0
 * (then mul + add, bit-for-bit the same on every machine). Probed once.
 */
export function relaxedSimdAvailable(): boolean {
  relaxedOk ??= nodeProcess()?.env?.KILN_RELAXED_SIMD !== '0' && matmulSimdAvailable() && (validatesMadd() || (enableRelaxedSimdInNode() && validatesMadd()));
  return relaxedOk;
}

/** How a build splits work over threads (the defaults suit normal use; tests shrink them to reach every path). */
export interface SplitPolicy {
  /**
   * Each thread gets at least this many flops (2*M*N*K in all), so small products stay on one
   * thread: waking a worker and splitting costs tens of microseconds.
   */
  minFlopsPerThread: number;
  /** Tasks per thread (more than 1 balances load when some threads are slow, at the cost of re-packing B per task). */
  tasksPerThread: number;
}

// On 2 free cores (bench/RESULTS.md) 64x1000x100 (12.8 MFLOP, 0.31 ms) ran 1.75x faster on 2
// threads in isolation and 1024^3 1.9x; but inside a training step, with other kernels between
// the matmuls, the split 12.8 MFLOP products gained nothing (the worker is sometimes descheduled
// and the calling thread then runs both tasks), so products under 16 MFLOP stay on one thread.
// More tasks per thread measured no better: each repeats one operand's packing.
const DEFAULT_SPLIT: SplitPolicy = { minFlopsPerThread: 8e6, tasksPerThread: 1 };

/**
 * When A @ B goes to the dot-product GEMM (./gemm-dot.ts) instead of the packed one: only where A's
 * rows and B's columns are both unit-stride as the GEMM reads them (A.colStride = 1, B.rowStride =
 * 1: B is a transposed row-major matrix; a gathered copy of such a B is made column-major), and
 * then `use(M, N, K)` decides.
 */
export interface DotPolicy {
  /** The tile (relaxed comes from the packed GEMM's config). */
  config: Omit<DotConfig, 'relaxed'>;
  /** Longest chunk of K (steps per sweep), a multiple of 4. */
  maxKc: number;
  /** Bytes that one chunk of the swept operand (min(M, N) rows of a task) may take: what should stay in L2. */
  chunkBytes: number;
  /** `fma`: the build uses relaxed_madd (without it the dot tile is bound by instruction issue). */
  use(M: number, N: number, K: number, fma: boolean): boolean;
}

// The dot GEMM runs at ~45-50 GFLOP/s whatever the shape; the packed one reaches 51-53 on big
// square products but pays for packing (B is a transposed view here: a strided gather per KC block)
// in proportion to 1/M + 1/N, and for short K a dot tile's reduction and call. Measured (one thread,
// FMA, operands in the heap and warm, medians in us, packed -> dot, M x K x N): it pays for
// small min(M, N) with long K: 1x1000x100 28 -> 7, 4x4096x4 14 -> 3, 2x32x500 5 -> 3,
// 16x4096x16 50 -> 43, 8x2048x512 431 -> 365, 16x1024x1024 754 -> 711, 300x3000x30 1234 -> 1089,
// 10x36864x25 735 -> 396, 20x4096x250 909 -> 834; about even at 16x256x16 3 -> 3, 16x256x1000
// 185 -> 185, 32x512x32 23 -> 23, 64x500x100 130 -> 129, 100x2000x64 505 -> 511, 64x1000x100
// 263 -> 256; and loses with short K or min(M, N) >= 64: 4x64x1000 16 -> 18, 16x64x64 3 -> 4,
// 32x128x32 6 -> 6, 64x64x64 11 -> 14, 64x1024x64 165 -> 171, 128x2048x128 1308 -> 1469,
// 256^3 630 -> 724, 1000x64x100 255 -> 338, 512^3 5137 -> 6427. Hence: min(M, N) <= 2 always
// (matrix-vector products), up to 32 with K >= 16 min(M, N) and >= 256, up to 64 with K >= 10
// max(M, N) (the TwoLayerNet's x @ W1ᵀ, 64x1000x100: 288 -> 270 us inside the training step).
// And C with at most 12 columns and K >= 100, whatever M: the packed tile is 8 columns wide, so
// most of such a C goes through its edge tiles (ratios dot / packed, M x K x N, sweep of M up to
// 4096: N = 4 0.51-0.56 at K 100-1000, N = 10 0.59-0.73; at K = 25 0.82-1.18; N = 16, a
// multiple of the tile, 0.84-1.17: not taken). TwoLayerNet inference's h @ W2ᵀ, 4096x100x10: 297 -> 210 us.
// Chunks: up to 4096 steps (chunks of 512, 1024, 2048, 4096: 10x36864x25 482, 463, 454, 443 us,
// 20x4096x250 986, 939, 890, 849; 8192 and 16384 within noise of 4096), fewer where min(M, N) rows
// of a chunk would pass 512 KiB (the swept operand should stay in the 1 MiB L2).
// Without FMA (mul + add: 24 instructions per 9 multiply-adds) the dot tile is issue-bound and wins
// only for matrix-vector products: packed -> dot, 64x1000x100 319 -> 588, 20x4096x250 1082 -> 1844,
// 10x36864x25 834 -> 829, 16x4096x16 59 -> 93, 4x1000x64 17 -> 22, but 1x1000x100 30 -> 8.
export const DEFAULT_DOT_POLICY: DotPolicy = {
  config: DEFAULT_DOT_CONFIG,
  maxKc: 4096,
  chunkBytes: 512 << 10,
  use: (M, N, K, fma) => {
    const m = Math.min(M, N);
    return m <= 2 || (fma && ((m <= 32 && K >= Math.max(256, 16 * m)) || (m <= 64 && K >= 10 * Math.max(M, N)) || (N <= 12 && K >= 100)));
  },
};

/**
 * A matmul's fused epilogue as the Wasm GEMMs take it: the code (`spec`, named by `key`) and its
 * extra operands, each a float32, int32 or bool array with the offset and strides (elements) that
 * place its element for C(i, j) at offset + i*rowStride + j*colStride. An extra must not overlap
 * C: C holds partial sums until the last block of K, and tasks on other threads write their parts
 * meanwhile (a compiled plan never places a step's output over its inputs).
 */
export interface EpilogueArgs {
  readonly spec: GemmEpilogue;
  readonly key: string;
  readonly extras: readonly { readonly data: HostArray; readonly offset: number; readonly rowStride: number; readonly colStride: number }[];
}

/** Row and column strides (elements) of a matrix operand. */
export type Strides = readonly [number, number];

/** An epilogue for `prepare`: the code, and each extra's strides along C's rows and columns. */
export interface PreparedEpilogue {
  readonly spec: GemmEpilogue;
  readonly key: string;
  readonly extras: readonly Strides[];
}

/**
 * A prepared product's call: C = A @ B (then the epilogue) on one thread, when every operand's
 * array lies in the heap and the product is too small to split over the threads; returns false,
 * having done nothing, otherwise (the caller then takes the general path). Offsets in elements;
 * `extras` are the epilogue's arrays and offsets (as their strides were given to `prepare`).
 */
export type PreparedMatmul = (a: MatOperand['data'], aOffset: number, b: MatOperand['data'], bOffset: number, out: Float32Array, outOffset: number, extras?: readonly { readonly data: HostArray; readonly offset: number }[]) => boolean;

/** A compiled GEMM and the JS that places operands and splits the work. */
export interface SimdMatmul {
  readonly config: SimdConfig;
  readonly kernel: WasmKernel;
  readonly dot: DotPolicy;
  matmul(M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: Float32Array, outOffset: number): void;
  /**
   * matmul with `epilogue` applied to every element of C as the GEMM stores it. Returns false,
   * having done nothing, when it cannot: an extra outside the heap, or an epilogue without a Wasm
   * rendering (the caller then applies it itself).
   */
  matmulEpilogue(M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: Float32Array, outOffset: number, epilogue: EpilogueArgs): boolean;
  /**
   * A product of fixed shape and strides (a step of a compiled plan), its path chosen once: see
   * PreparedMatmul. Null where the general path must always run (an empty product, an epilogue
   * without a Wasm rendering).
   */
  prepare(M: number, N: number, K: number, a: Strides, b: Strides, epilogue?: PreparedEpilogue): PreparedMatmul | null;
  /**
   * Which paths ran, for tests: gemm calls (tasks) given a nonzero `directB` (the unpacked-B path,
   * gemm-f32.ts) and the kernelDirectB calls they made (counted only when one task ran on the
   * calling thread: runTasks does not collect workers' returns); dot-product GEMM tasks, and their
   * K chunks (likewise on one thread only).
   */
  readonly stats: { directBTasks: number; directBKernelCalls: number; directATasks: number; dotTasks: number; dotChunks: number };
  /** The dot-product GEMM's module (./gemm-dot.ts), on the same heap. */
  readonly dotKernel: WasmKernel;
}

/** An operand as the Wasm GEMM reads it: byte address of element (0, 0) and element strides. */
interface Placed {
  ptr: number;
  rs: number;
  cs: number;
}

/** Floats an operand's elements span in its array, from the first. */
const spanOfOperand = (x: MatOperand, rows: number, cols: number): number => spanOf([rows, cols], [x.rowStride, x.colStride]);

/**
 * How an operand outside the heap is copied in: its whole span when that is at most twice its
 * element count (one TypedArray.set, strides kept), else gathered element by element into a
 * contiguous rows x cols block (a sparse view of a big array: slower per float, far fewer floats).
 */
function copyFloats(x: MatOperand, rows: number, cols: number): { floats: number; gather: boolean } {
  const span = spanOfOperand(x, rows, cols);
  return span <= 2 * rows * cols ? { floats: span, gather: false } : { floats: rows * cols, gather: true };
}

/**
 * Copies x into mem from float index `at` (which has two floats of slack: a span goes at its
 * source's alignment, see copyMisalignment), as copyFloats decided; returns how the GEMM reads the
 * copy. A gathered copy is row-major, or column-major when `columnMajor` (for the dot-product GEMM's B).
 */
function copyIn(mem: Float32Array, at: number, x: MatOperand, rows: number, cols: number, gather: boolean, columnMajor = false): Placed {
  const src = x.data as Float32Array;
  if (!gather) {
    at += copyMisalignment(src, x.offset) / 4;
    mem.set(src.subarray(x.offset, x.offset + spanOfOperand(x, rows, cols)), at);
    return { ptr: at * 4, rs: x.rowStride, cs: x.colStride };
  }
  if (columnMajor) {
    for (let j = 0, p = at; j < cols; j++) {
      for (let i = 0, s = x.offset + j * x.colStride; i < rows; i++, s += x.rowStride) mem[p++] = src[s];
    }
    return { ptr: at * 4, rs: 1, cs: rows };
  }
  for (let i = 0, p = at; i < rows; i++) {
    for (let j = 0, s = x.offset + i * x.rowStride; j < cols; j++, s += x.colStride) mem[p++] = src[s];
  }
  return { ptr: at * 4, rs: cols, cs: 1 };
}

/** Builds (compiles and instantiates on the heap) a GEMM for cfg. Throws if the engine lacks SIMD. */
export function createSimdMatmul(cfg: SimdConfig, split: SplitPolicy = DEFAULT_SPLIT, dot: DotPolicy = DEFAULT_DOT_POLICY): SimdMatmul {
  type Gemm = (...args: number[]) => number;
  /**
   * The packed and the dot-product GEMM modules, built with an epilogue or without: the packed one
   * at once (it throws Unsupported for an epilogue without a Wasm rendering), the dot-product one on
   * first use (an epilogue's matmul usually only ever takes one of the two).
   */
  interface Modules { kernel: WasmKernel; gemm: Gemm; readonly dotGemm: { kernel: WasmKernel; gemmDot: Gemm } }
  const build = (epilogue?: GemmEpilogue): Modules => {
    const kernel = compileKernel(gemmFunctions(cfg, epilogue));
    let dotModule: Modules['dotGemm'] | undefined;
    return {
      kernel,
      gemm: kernel.instance.exports.gemm as Gemm,
      get dotGemm() {
        if (!dotModule) {
          const k = compileKernel(gemmDotFunctions({ ...dot.config, relaxed: cfg.relaxed }, epilogue));
          dotModule = { kernel: k, gemmDot: k.instance.exports.gemmDot as Gemm };
        }
        return dotModule;
      },
    };
  };
  const plain = build();
  const kernel = plain.kernel, dotKernel = plain.dotGemm.kernel;
  /** Modules per epilogue key; null where the epilogue has no Wasm rendering. */
  const withEpilogue = new Map<string, Modules | null>();
  const modulesFor = (e: EpilogueArgs): Modules | null => {
    let m = withEpilogue.get(e.key);
    if (m === undefined) {
      try {
        m = build(e.spec);
      } catch (err) {
        if (!(err instanceof Unsupported)) throw err;
        m = null;
      }
      withEpilogue.set(e.key, m);
    }
    return m;
  };
  const heap = kernel.heap;
  const scratchBytes = gemmScratchBytes(cfg);
  const copies = new ScratchArea(heap);
  /** The epilogue operand blocks of a call's tasks. */
  const blocks = new ScratchArea(heap);
  const stats = { directBTasks: 0, directBKernelCalls: 0, directATasks: 0, dotTasks: 0, dotChunks: 0 };
  const directBMaxM = cfg.directBMaxM ?? 0;
  /**
   * gemm's directB for a task with m rows of C: 0 = pack B, else read it unpacked (gemm-f32.ts),
   * swept dk = directB rows of B at a time. Only for unit-stride columns and short C: at most
   * directBMaxM rows, or one register tile when B's rows are a multiple of 2 KiB apart (rows that
   * share L1 sets; packing, which reads each of their lines once, won from 8 rows up there), and
   * then dk = 8 (measured faster than 16 or 32 for such rows), else 16.
   */
  const directB = (m: number, B: Placed): number => {
    const aliased = (B.rs * 4) % 2048 === 0;
    if (B.cs !== 1 || m > (aliased ? Math.min(cfg.mr, directBMaxM) : directBMaxM)) return 0;
    stats.directBTasks++;
    return aliased ? 8 : 16;
  };
  const directAMaxN = cfg.directAMaxN ?? 0;
  /** gemm's directA for a task with n columns of C whose B is packed (dB = 0): 1 = read A unpacked (gemm-f32.ts). */
  const directA = (n: number, A: Placed, dB: number): number => {
    if (dB !== 0 || A.cs !== 1 || n > directAMaxN) return 0;
    stats.directATasks++;
    return 1;
  };
  /** gemm's directB and directA for a task of m x n of C. */
  const direct = (m: number, n: number, A: Placed, B: Placed): [number, number] => {
    const dB = directB(m, B);
    return [dB, directA(n, A, dB)];
  };
  let view = new Float32Array(heap.buffer);
  /** The whole heap as floats, re-made only when growth replaced the buffer (a non-shared one is detached by it). */
  const floats = (): Float32Array => {
    const buffer = heap.buffer;
    if (view.buffer !== buffer) view = new Float32Array(buffer);
    return view;
  };

  /**
   * The epilogue operand block (./gemm-epilogue.ts) of each task whose C starts at row `rows[t]`,
   * column `cols[t]`, extra j's element 0 being at byte address extrasAt[j]; all zeros (no
   * epilogue) without one.
   */
  function epilogueBlocks(e: EpilogueArgs | undefined, extrasAt: readonly number[], rows: readonly number[], cols: readonly number[]): number[] {
    if (!e) return rows.map(() => 0);
    const words = EXTRA_WORDS * e.extras.length;
    const at = blocks.get(Math.max(1, rows.length * words) * 4);
    const view = new Int32Array(heap.buffer, at, rows.length * words);
    rows.forEach((r, t) => e.extras.forEach((x, j) => {
      const bytes = x.data.BYTES_PER_ELEMENT;
      writeExtra(view, t * words + j * EXTRA_WORDS, extrasAt[j] + (x.offset + r * x.rowStride + cols[t] * x.colStride) * bytes, x.rowStride * bytes, x.colStride * bytes);
    }));
    return rows.map((_, t) => at + t * words * 4);
  }

  /** One extra's words of an epilogue block (./gemm-epilogue.ts): its address at C(0, 0) of the call, then its row and column strides, in bytes. */
  function writeExtra(view: Int32Array, word: number, address: number, rowBytes: number, colBytes: number): void {
    view[word] = address;
    view[word + 1] = rowBytes;
    view[word + 2] = colBytes;
  }

  /** The GEMM's calls for `threads` threads: one per task, each [M, N, K, pA, rsA, csA, pB, rsB, csB, pC, ldc, directB, directA, epi]. */
  function tasks(M: number, N: number, K: number, A: Placed, B: Placed, pC: number, ldc: number, threads: number, e?: EpilogueArgs, extrasAt: readonly number[] = []): number[][] {
    const parts = threads * split.tasksPerThread;
    // Every task packs its own share of one operand and all of the other: splitting rows of C
    // repeats B's packing (K x N) in every task, splitting columns repeats A's (M x K). So split
    // the longer side, unless it is too short to give every task a couple of register tiles.
    const byRows = M >= N ? M >= parts * 2 * cfg.mr || N < parts * 2 * cfg.nr : N < parts * 2 * cfg.nr;
    const pieces = splitRange(byRows ? M : N, parts, byRows ? cfg.mr : cfg.nr);
    const epi = epilogueBlocks(e, extrasAt, pieces.map(([s]) => (byRows ? s : 0)), pieces.map(([s]) => (byRows ? 0 : s)));
    return pieces.map(([s, n], t) => byRows
      ? [n, N, K, A.ptr + s * A.rs * 4, A.rs, A.cs, B.ptr, B.rs, B.cs, pC + s * ldc * 4, ldc, ...direct(n, N, A, B), epi[t]]
      : [M, n, K, A.ptr, A.rs, A.cs, B.ptr + s * B.cs * 4, B.rs, B.cs, pC + s * 4, ldc, ...direct(M, n, A, B), epi[t]]);
  }

  /** gemmDot's chunk of K for an m x n block of C: as long as chunkBytes of the smaller operand allow, at least 256 (unless maxKc is less), at most maxKc. */
  const dotKc = (m: number, n: number): number => Math.min(dot.maxKc, Math.max(256, Math.floor(dot.chunkBytes / (16 * Math.min(m, n))) * 4));

  /**
   * gemmDot's calls for `threads` threads, each [M, N, K, pA, rsA, pBt, rsBt, pC, ldc, kc]: rectangles
   * of C split along its longer side (nothing is packed; each task reads its share of that side's
   * operand and all of the other). Splits fall on whole register tiles and every task uses the
   * whole product's chunk of K, so each element of C is summed by the same tile variant in the same
   * order as on one thread: the same bits.
   */
  function dotTasks(M: number, N: number, K: number, A: Placed, B: Placed, pC: number, ldc: number, threads: number, e?: EpilogueArgs, extrasAt: readonly number[] = []): number[][] {
    const parts = threads * split.tasksPerThread;
    const byRows = M >= N;
    const kc = dotKc(M, N);
    const pieces = splitRange(byRows ? M : N, parts, byRows ? dot.config.mr : dot.config.nr);
    const epi = epilogueBlocks(e, extrasAt, pieces.map(([s]) => (byRows ? s : 0)), pieces.map(([s]) => (byRows ? 0 : s)));
    const out = pieces.map(([s, n], t) => byRows
      ? [n, N, K, A.ptr + s * A.rs * 4, A.rs, B.ptr, B.cs, pC + s * ldc * 4, ldc, kc, epi[t]]
      : [M, n, K, A.ptr, A.rs, B.ptr + s * B.cs * 4, B.cs, pC + s * 4, ldc, kc, epi[t]]);
    stats.dotTasks += out.length;
    return out;
  }

  function matmul(M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: Float32Array, outOffset: number): void {
    run(M, N, K, a, b, out, outOffset, plain);
  }

  function matmulEpilogue(M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: Float32Array, outOffset: number, e: EpilogueArgs): boolean {
    // The GEMMs apply the epilogue with the last block of K: an empty sum has none (the caller's pass does it).
    if (K === 0 || M === 0 || N === 0) return false;
    // Extras outside the heap (a small parameter such as a bias, a plan's constant) are copied in
    // for the call when they span at most as many elements as C.
    const spans = e.extras.map((x) => spanOf([M, N], [x.rowStride, x.colStride]));
    if (e.extras.some((x, j) => heap.addressOf(x.data) < 0 && (spans[j] < 0 || spans[j] > M * N))) return false;
    const modules = modulesFor(e);
    if (!modules) return false;
    const staged = stage(heap, e.extras.map((x, j) => ({ data: x.data as HostArray, lo: x.offset, hi: x.offset + spans[j], read: true, write: false })));
    try {
      run(M, N, K, a, b, out, outOffset, modules, e, staged.at);
    } finally {
      staged.done();
    }
    return true;
  }

  function prepare(M: number, N: number, K: number, aStrides: Strides, bStrides: Strides, pe?: PreparedEpilogue): PreparedMatmul | null {
    if (M === 0 || N === 0 || K === 0) return null;
    const modules = pe ? modulesFor({ spec: pe.spec, key: pe.key, extras: [] }) : plain;
    if (!modules) return null;
    const [rsA, csA] = aStrides, [rsB, csB] = bStrides;
    const splits = Math.floor((2 * M * N * K) / split.minFlopsPerThread) > 1;
    // The dot-product GEMM reads both operands where they lie, contiguous along K (as in run).
    const dotShape = rsB === 1 && csA === 1 && dot.use(M, N, K, cfg.relaxed);
    const words = pe ? EXTRA_WORDS * pe.extras.length : 0;
    return (a, aOffset, b, bOffset, out, outOffset, extras = []) => {
      if (splits && threadCount() > 1) return false;
      if (!(a instanceof Float32Array) || !(b instanceof Float32Array)) return false;
      const aAt = heap.addressOf(a), bAt = heap.addressOf(b), cAt = heap.addressOf(out);
      if (aAt < 0 || bAt < 0 || cAt < 0) return false;
      let epi = 0;
      if (pe) {
        if (extras.length !== pe.extras.length) throw new Error(`prepared matmul: ${extras.length} epilogue operands given, ${pe.extras.length} prepared`);
        for (const x of extras) if (heap.addressOf(x.data) < 0) return false;
        epi = blocks.get(Math.max(1, words) * 4);
        const view = new Int32Array(heap.buffer, epi, words);
        pe.extras.forEach(([rs, cs], j) => {
          const x = extras[j], bytes = x.data.BYTES_PER_ELEMENT;
          writeExtra(view, j * EXTRA_WORDS, heap.addressOf(x.data) + x.offset * bytes, rs * bytes, cs * bytes);
        });
      }
      callOnce(modules, dotShape, M, N, K, { ptr: aAt + aOffset * 4, rs: rsA, cs: csA }, { ptr: bAt + bOffset * 4, rs: rsB, cs: csB }, cAt + outOffset * 4, epi);
      return true;
    };
  }

  /**
   * The product on the calling thread, operands placed: the dot-product GEMM where `useDot` (both
   * operands contiguous along K: B(k, j) = Bt(j, k) at B.ptr + 4*(j*B.cs + k)), else the packed one.
   * `epi`: the epilogue block, or 0.
   */
  function callOnce(modules: Modules, useDot: boolean, M: number, N: number, K: number, A: Placed, B: Placed, pC: number, epi: number): void {
    if (useDot) {
      stats.dotTasks++;
      stats.dotChunks += modules.dotGemm.gemmDot(M, N, K, A.ptr, A.rs, B.ptr, B.cs, pC, N, dotKc(M, N), epi, 0);
    } else {
      stats.directBKernelCalls += modules.gemm(M, N, K, A.ptr, A.rs, A.cs, B.ptr, B.rs, B.cs, pC, N, ...direct(M, N, A, B), epi, callingThreadScratch(heap, scratchBytes));
    }
  }

  /** extrasAt: the byte address of element 0 of each extra of `e` (in place, or staged). */
  function run(M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: Float32Array, outOffset: number, modules: Modules, e?: EpilogueArgs, extrasAt: readonly number[] = []): void {
    if (M === 0 || N === 0) return;
    // An empty sum: zeros (the Wasm GEMMs write nothing for K = 0).
    if (K === 0) return void out.fill(0, outOffset, outOffset + M * N);
    const aAt = a.data instanceof Float32Array ? heap.addressOf(a.data) : -1;
    const bAt = b.data instanceof Float32Array ? heap.addressOf(b.data) : -1;
    const outAt = heap.addressOf(out);
    // Everything not in the heap gets a piece of the copy area: A, B, then C.
    const aCopy = aAt < 0 ? copyFloats(a, M, K) : undefined;
    const bCopy = bAt < 0 ? copyFloats(b, K, N) : undefined;
    // Each copy with two floats of slack, to start at its source's (or destination's) alignment.
    const aFloats = aCopy ? alignBytes(aCopy.floats * 4 + 8) / 4 : 0, bFloats = bCopy ? alignBytes(bCopy.floats * 4 + 8) / 4 : 0;
    const cFloats = outAt < 0 ? M * N + 2 : 0;
    const bytes = (aFloats + bFloats + cFloats) * 4;
    const area = bytes > 0 ? copies.get(bytes) : 0;
    const mem = floats(); // after allocating, which may grow the memory
    const base = area / 4;
    const A = aCopy ? copyIn(mem, base, a, M, K, aCopy.gather) : { ptr: aAt + a.offset * 4, rs: a.rowStride, cs: a.colStride };
    // A gathered copy of A is row-major; B's goes column-major where the dot-product GEMM will read it.
    const dotShape = b.rowStride === 1 && (a.colStride === 1 || aCopy?.gather === true) && dot.use(M, N, K, cfg.relaxed);
    const B = bCopy ? copyIn(mem, base + aFloats, b, K, N, bCopy.gather, dotShape) : { ptr: bAt + b.offset * 4, rs: b.rowStride, cs: b.colStride };
    const pC = outAt >= 0 ? outAt + outOffset * 4 : (base + aFloats + bFloats) * 4 + copyMisalignment(out, outOffset);

    const threads = Math.min(threadCount(), Math.floor((2 * M * N * K) / split.minFlopsPerThread));
    const useDot = dotShape && A.cs === 1 && B.rs === 1;
    // One thread: call the GEMM directly (runTasks would too, at ~0.1 us more, which shows at 16^3).
    if (threads <= 1) callOnce(modules, useDot, M, N, K, A, B, pC, epilogueBlocks(e, extrasAt, [0], [0])[0]);
    else if (useDot) runTasks(modules.dotGemm.kernel, 'gemmDot', dotTasks(M, N, K, A, B, pC, N, threads, e, extrasAt), 0);
    else runTasks(modules.kernel, 'gemm', tasks(M, N, K, A, B, pC, N, threads, e, extrasAt), scratchBytes);

    if (outAt < 0) out.set(floats().subarray(pC / 4, pC / 4 + M * N), outOffset);
    copies.trim(16 << 20);
  }

  return { config: cfg, kernel, dot, matmul, matmulEpilogue, prepare, stats, dotKernel };
}

let instance: SimdMatmul | undefined;

/**
 * out[outOffset + i*N + j] = sum_k A(i,k) * B(k,j) for float32 operands of any strides (0 =
 * broadcast), with exactly the semantics of `matmul` in runtime/cpu/matmul.ts: out is contiguous
 * row-major [M, N], overwritten, and must not overlap a or b. Builds the module on first use;
 * throws if matmulSimdAvailable() is false.
 */
export function matmulF32Simd(M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: Float32Array, outOffset: number): void {
  defaultInstance().matmul(M, N, K, a, b, out, outOffset);
}

/** SimdMatmul.prepare on the default build. */
export function prepareMatmulF32Simd(M: number, N: number, K: number, a: Strides, b: Strides, epilogue?: PreparedEpilogue): PreparedMatmul | null {
  return defaultInstance().prepare(M, N, K, a, b, epilogue);
}

/** matmulF32Simd with a fused epilogue applied as C is stored; false (nothing done) where SimdMatmul.matmulEpilogue cannot. */
export function matmulF32SimdEpilogue(M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: Float32Array, outOffset: number, epilogue: EpilogueArgs): boolean {
  return defaultInstance().matmulEpilogue(M, N, K, a, b, out, outOffset, epilogue);
}

const defaultInstance = (): SimdMatmul => (instance ??= createSimdMatmul({ ...DEFAULT_CONFIG, relaxed: relaxedSimdAvailable() }));
