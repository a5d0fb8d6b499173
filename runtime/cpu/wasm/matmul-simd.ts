// Float32 matmul on WebAssembly SIMD, emitted by Kiln itself (runtime/cpu/wasm/emit.ts).
//
// Same GotoBLAS/BLIS structure as runtime/cpu/matmul.ts: for each cache block, JS packs a KC-deep
// slab of B and an MC x KC block of A into the module's linear memory (resolving strides,
// transposes and broadcasts), then one exported Wasm function sweeps an MR x NR register tile over
// the whole block, so JS crosses into Wasm once per MC x NC x KC block, not once per tile. The tile
// accumulates into a C buffer that also lives in Wasm memory (rows padded to a multiple of NR); each
// finished region of C is copied into `out` with TypedArray.set.
//
// The micro-kernel holds MR x NR/4 f32x4 accumulators in locals. Per k it loads NR/4 vectors of B
// and, for each of the MR rows, splats one A value and multiply-adds it into that row's vectors:
// f32x4.relaxed_madd where the engine has relaxed SIMD (Node 20 only behind
// --experimental-wasm-relaxed-simd), f32x4.mul + f32x4.add otherwise.

import { emitModule, FuncBuilder, I32, V128 } from './emit.js';
import type { MatOperand } from '../matmul.js';

/** Tile and cache-block sizes of one kernel build. */
export interface SimdConfig {
  /** Rows of the register tile. */
  mr: number;
  /** Columns of the register tile, a multiple of 4 (one f32x4 per 4 columns). */
  nr: number;
  /** Use f32x4.relaxed_madd (only if the engine validates it). */
  relaxed: boolean;
  /** k-steps per trip of the inner loop (the kernel handles any kc; a remainder loop does the rest). */
  unroll: number;
  kc: number;
  /** Multiple of mr. */
  mc: number;
  /** Multiple of nr. */
  nc: number;
}

// 6 x 8: twelve f32x4 accumulators + two B vectors + one splatted A value = 15 of the 16 xmm
// registers V8 can use on x64 (it keeps one as scratch). See bench/RESULTS.md for the shapes tried.
export const DEFAULT_CONFIG: Omit<SimdConfig, 'relaxed'> = { mr: 6, nr: 8, unroll: 1, kc: 256, mc: 144, nc: 2048 };

// C covers at most this many floats of out at a time (rows are processed in chunks that fit).
const C_CHUNK_FLOATS = 1 << 22;

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

/** Whether this engine also has relaxed SIMD's f32x4.relaxed_madd. */
export function relaxedSimdAvailable(): boolean {
  relaxedOk ??= matmulSimdAvailable() && validates((f) => f.v128Zero().v128Zero().v128Zero().f32x4RelaxedMadd());
  return relaxedOk;
}

/**
 * The kernel: gemm(pA, pB, pC, ldc, mTiles, nTiles, kc, accumulate), byte addresses and ldc in
 * bytes. For each of nTiles column slivers of packed B (kc x nr each, k-major) and each of mTiles
 * row slivers of packed A (mr x kc each, k-major), C tile (mr x nr at pC + ir*mr*ldc + jr*nr*4)
 * is set to (accumulate = 0) or incremented by (accumulate = 1) the sliver product. kc >= 1.
 */
function buildKernel(cfg: SimdConfig): FuncBuilder {
  const { mr, nr, relaxed, unroll } = cfg;
  const nv = nr / 4;
  const f = new FuncBuilder('gemm', [I32, I32, I32, I32, I32, I32, I32, I32]);
  const [pA, pB, pC, ldc, mTiles, nTiles, kc, accumulate] = [0, 1, 2, 3, 4, 5, 6, 7];
  const jr = f.local(I32), ir = f.local(I32), k = f.local(I32);
  const a = f.local(I32), b = f.local(I32), cCol = f.local(I32), c = f.local(I32), bSliver = f.local(I32);
  const acc: number[][] = [];
  for (let r = 0; r < mr; r++) acc.push(Array.from({ length: nv }, () => f.local(V128)));
  const bv = Array.from({ length: nv }, () => f.local(V128));
  const av = f.local(V128);

  // One k step at byte offsets (aOff, bOff) from a and b.
  const step = (aOff: number, bOff: number): void => {
    for (let v = 0; v < nv; v++) f.get(b).v128Load(bOff + 16 * v).set(bv[v]);
    for (let r = 0; r < mr; r++) {
      f.get(a).v128Load32Splat(aOff + 4 * r).set(av);
      for (let v = 0; v < nv; v++) {
        if (relaxed) f.get(av).get(bv[v]).get(acc[r][v]).f32x4RelaxedMadd().set(acc[r][v]);
        else f.get(acc[r][v]).get(av).get(bv[v]).f32x4Mul().f32x4Add().set(acc[r][v]);
      }
    }
  };

  f.get(pB).set(bSliver);
  f.get(pC).set(cCol);
  f.get(nTiles).set(jr);
  f.loop(); // jr
  {
    f.get(pA).set(a);
    f.get(cCol).set(c);
    f.get(mTiles).set(ir);
    f.loop(); // ir
    {
      for (const row of acc) for (const x of row) f.v128Zero().set(x);
      f.get(bSliver).set(b);
      // Unrolled trips while at least `unroll` steps remain, then single steps.
      f.get(kc).set(k);
      if (unroll > 1) {
        f.block();
        f.get(k).i32Const(unroll).i32LtS().brIf(0);
        f.loop();
        for (let u = 0; u < unroll; u++) step(u * mr * 4, u * nr * 4);
        f.incr(a, unroll * mr * 4).incr(b, unroll * nr * 4);
        f.get(k).i32Const(unroll).i32Sub().tee(k).i32Const(unroll).i32LtS().i32Eqz().brIf(0);
        f.end();
        f.end();
        f.block();
        f.get(k).i32Eqz().brIf(0);
      }
      f.loop();
      step(0, 0);
      f.incr(a, mr * 4).incr(b, nr * 4);
      f.get(k).i32Const(1).i32Sub().tee(k).brIf(0);
      f.end();
      if (unroll > 1) f.end();
      // a now points at the next A sliver. Write the tile: row r at c + r*ldc.
      f.get(accumulate).if();
      for (let r = 0; r < mr; r++) {
        for (let v = 0; v < nv; v++) f.get(c).get(c).v128Load(16 * v).get(acc[r][v]).f32x4Add().v128Store(16 * v);
        f.get(c).get(ldc).i32Add().set(c);
      }
      f.else();
      for (let r = 0; r < mr; r++) {
        for (let v = 0; v < nv; v++) f.get(c).get(acc[r][v]).v128Store(16 * v);
        f.get(c).get(ldc).i32Add().set(c);
      }
      f.end();
      f.get(ir).i32Const(1).i32Sub().tee(ir).brIf(0);
    }
    f.end();
    f.get(b).set(bSliver); // the next B sliver
    f.incr(cCol, nr * 4);
    f.get(jr).i32Const(1).i32Sub().tee(jr).brIf(0);
  }
  f.end();
  return f;
}

type Gemm = (pA: number, pB: number, pC: number, ldc: number, mTiles: number, nTiles: number, kc: number, accumulate: number) => void;

/** A compiled kernel with its memory and the JS packing around it. */
export interface SimdMatmul {
  readonly config: SimdConfig;
  matmul(M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: Float32Array, outOffset: number): void;
}

/** Builds (compiles and instantiates) a kernel for cfg. Throws if the engine lacks SIMD. */
export function createSimdMatmul(cfg: SimdConfig): SimdMatmul {
  const { mr, nr, kc: KC, mc: MC, nc: NC } = cfg;
  if (nr % 4 !== 0 || MC % mr !== 0 || NC % nr !== 0) throw new Error('createSimdMatmul: bad config');
  const aFloats = MC * KC, bFloats = KC * NC;
  const cBase = aFloats + bFloats; // float index where C starts
  const instance = new WebAssembly.Instance(new WebAssembly.Module(emitModule([buildKernel(cfg)], 1)));
  const memory = instance.exports.memory as WebAssembly.Memory;
  const gemm = instance.exports.gemm as Gemm;
  let mem = new Float32Array(memory.buffer);

  function ensure(floats: number): void {
    const bytes = floats * 4;
    if (memory.buffer.byteLength < bytes) {
      memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / 65536));
      mem = new Float32Array(memory.buffer);
    }
  }
  ensure(cBase);

  // A block (mc x kc at src[off]) -> row slivers of mr, k-major, rows past mc zero.
  function packA(src: Float32Array, off: number, rs: number, cs: number, mc: number, kc: number): void {
    const dst = mem;
    for (let i0 = 0; i0 < mc; i0 += mr) {
      const base = i0 * kc;
      for (let i = 0; i < mr; i++) {
        let p = base + i;
        if (i0 + i < mc) {
          let s = off + (i0 + i) * rs;
          for (let k = 0; k < kc; k++, p += mr, s += cs) dst[p] = src[s];
        } else {
          for (let k = 0; k < kc; k++, p += mr) dst[p] = 0;
        }
      }
    }
  }

  // B block (kc x nc at src[off]) -> column slivers of nr, k-major, columns past nc zero.
  function packB(src: Float32Array, off: number, rs: number, cs: number, kc: number, nc: number): void {
    const dst = mem;
    for (let j0 = 0; j0 < nc; j0 += nr) {
      const base = aFloats + j0 * kc;
      for (let j = 0; j < nr; j++) {
        let p = base + j;
        if (j0 + j < nc) {
          let s = off + (j0 + j) * cs;
          for (let k = 0; k < kc; k++, p += nr, s += rs) dst[p] = src[s];
        } else {
          for (let k = 0; k < kc; k++, p += nr) dst[p] = 0;
        }
      }
    }
  }

  function matmul(M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: Float32Array, outOffset: number): void {
    if (M === 0 || N === 0) return;
    if (K === 0) {
      out.fill(0, outOffset, outOffset + M * N);
      return;
    }
    const A = a.data as Float32Array, B = b.data as Float32Array;
    const ldc = Math.ceil(Math.min(N, NC) / nr) * nr; // C row length in floats
    // Rows of out per C chunk: a multiple of MC (at least one MC block), capped by C_CHUNK_FLOATS.
    const chunkRows = Math.min(Math.ceil(M / mr) * mr, Math.max(MC, Math.floor(C_CHUNK_FLOATS / ldc / MC) * MC));
    ensure(cBase + chunkRows * ldc);
    const cBytes = cBase * 4;
    for (let jc = 0; jc < N; jc += NC) {
      const nc = Math.min(NC, N - jc);
      const nTiles = Math.ceil(nc / nr);
      for (let i0 = 0; i0 < M; i0 += chunkRows) {
        const rows = Math.min(chunkRows, M - i0);
        for (let pc = 0; pc < K; pc += KC) {
          const kc = Math.min(KC, K - pc);
          packB(B, b.offset + pc * b.rowStride + jc * b.colStride, b.rowStride, b.colStride, kc, nc);
          for (let ic = 0; ic < rows; ic += MC) {
            const mc = Math.min(MC, rows - ic);
            packA(A, a.offset + (i0 + ic) * a.rowStride + pc * a.colStride, a.rowStride, a.colStride, mc, kc);
            gemm(0, aFloats * 4, cBytes + ic * ldc * 4, ldc * 4, Math.ceil(mc / mr), nTiles, kc, pc === 0 ? 0 : 1);
          }
        }
        // Copy the finished rows x nc region of C into out.
        const o = outOffset + i0 * N + jc;
        if (ldc === N) out.set(mem.subarray(cBase, cBase + rows * N), o);
        else for (let i = 0; i < rows; i++) out.set(mem.subarray(cBase + i * ldc, cBase + i * ldc + nc), o + i * N);
      }
    }
  }

  return { config: cfg, matmul };
}

let instance: SimdMatmul | undefined;

/**
 * out[outOffset + i*N + j] = sum_k A(i,k) * B(k,j) for float32 operands of any strides (0 =
 * broadcast), with exactly the semantics of `matmul` in runtime/cpu/matmul.ts: out is contiguous
 * row-major [M, N], overwritten, and must not overlap a or b. Builds the module on first use;
 * throws if matmulSimdAvailable() is false.
 */
export function matmulF32Simd(M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: Float32Array, outOffset: number): void {
  instance ??= createSimdMatmul({ ...DEFAULT_CONFIG, relaxed: relaxedSimdAvailable() });
  instance.matmul(M, N, K, a, b, out, outOffset);
}
