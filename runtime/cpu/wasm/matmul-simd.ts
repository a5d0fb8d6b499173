// Float32 matmul on WebAssembly SIMD, emitted by Kiln itself (runtime/cpu/wasm/emit.ts).
//
// Same GotoBLAS/BLIS structure as runtime/cpu/matmul.ts: for each cache block, a KC-deep slab of B
// and an MC x KC block of A are packed into the module's linear memory (this is where strides,
// transposes and broadcasts are resolved), then one exported Wasm function sweeps an MR x NR
// register tile over the whole block, so JS crosses into Wasm once per MC x NC x KC block, not once
// per tile. The tiles accumulate into a C buffer that also lives in Wasm memory (rows padded to a
// multiple of NR); each finished region of C is copied into `out` with TypedArray.set.
//
// Packing: each operand's span of its array is first copied into Wasm memory (one TypedArray.set
// per call), and Wasm functions pack the full slivers from there; JS packs only the last, partial
// sliver of a block (and everything, for an operand too large or too sparse to copy). Element by
// element packing in JS costs ~1.4 ns a float here, which at 64x1000x100 was half the run time.
//
// The micro-kernel holds MR x NR/4 f32x4 accumulators in locals. Per k it loads NR/4 vectors of B
// and, for each of the MR rows, splats one A value and multiply-adds it into that row's vectors:
// f32x4.relaxed_madd where the engine has relaxed SIMD (Node 20 only behind
// --experimental-wasm-relaxed-simd), f32x4.mul + f32x4.add otherwise.

import { emitModule, FuncBuilder, I32, V128 } from './emit.js';
import type { MatOperand } from '../matmul.js';

/** Tile and cache-block sizes of one kernel build. */
export interface SimdConfig {
  /** Rows of the register tile, a multiple of 4 (the Wasm packer copies f32x4 vectors). */
  mr: number;
  /** Columns of the register tile, a multiple of 4 (one f32x4 per 4 columns). */
  nr: number;
  /** Use f32x4.relaxed_madd (only if the engine validates it). */
  relaxed: boolean;
  kc: number;
  /** Multiple of mr. */
  mc: number;
  /** Multiple of nr. */
  nc: number;
}

// 4 x 8: eight f32x4 accumulators, two B vectors, the splatted A values and a product temporary
// fit the 16 xmm registers V8 allocates on x64 without spilling. Measured (kernel alone, packed
// panels in cache, mul + add, GFLOP/s): 4x8 46, 2x16 46, 3x8 43, 5x8 33-38, 3x12 35, 6x8 29,
// 4x12 29, 8x8 27, 3x16 26, 2x8 34; unrolling k by 2 in the emitted code 29-31 (TurboFan already
// unrolls the loop). With relaxed_madd 4x8 reached 55, 6x8 41. KC 128-512 and MC 48-192 were
// within noise of each other.
export const DEFAULT_CONFIG: Omit<SimdConfig, 'relaxed'> = { mr: 4, nr: 8, kc: 256, mc: 96, nc: 2048 };

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
  const { mr, nr, relaxed } = cfg;
  const nv = nr / 4;
  const f = new FuncBuilder('gemm', [I32, I32, I32, I32, I32, I32, I32, I32]);
  const [pA, pB, pC, ldc, mTiles, nTiles, kc, accumulate] = [0, 1, 2, 3, 4, 5, 6, 7];
  const jr = f.local(I32), ir = f.local(I32), k = f.local(I32);
  const a = f.local(I32), b = f.local(I32), cCol = f.local(I32), c = f.local(I32), bSliver = f.local(I32);
  const acc: number[][] = [];
  for (let r = 0; r < mr; r++) acc.push(Array.from({ length: nv }, () => f.local(V128)));
  const bv = Array.from({ length: nv }, () => f.local(V128));
  const av = f.local(V128);

  // One k step at byte offsets (aOff, bOff) from a and b. (TurboFan unrolls this loop itself; unrolling
  // it in the emitted code measured slower.)
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
      f.get(kc).set(k);
      f.loop();
      step(0, 0);
      f.incr(a, mr * 4).incr(b, nr * 4);
      f.get(k).i32Const(1).i32Sub().tee(k).brIf(0);
      f.end();
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

/**
 * pack(src, stride, step, dst, slivers, kc), addresses and strides in bytes: for each of `slivers`
 * slivers of w elements (w = mr for A, nr for B), for each of kc steps, copies the w elements
 * src[s*w*stride + t*step + i*stride] (i < w) to dst, contiguously. For A, stride is A's row
 * stride and step its column stride; for B, stride is B's column stride and step its row stride.
 * When stride is 4 bytes (the w elements are adjacent) it copies them as f32x4 vectors.
 */
function buildPack(name: string, w: number): FuncBuilder {
  const f = new FuncBuilder(name, [I32, I32, I32, I32, I32, I32]);
  const [src, stride, step, dst, slivers, kc] = [0, 1, 2, 3, 4, 5];
  const s = f.local(I32), k = f.local(I32), p = f.local(I32), q = f.local(I32);
  f.get(slivers).i32Eqz().if().return().end();
  f.get(slivers).set(s);
  f.loop(); // slivers
  {
    f.get(src).set(p);
    f.get(kc).set(k);
    f.get(stride).i32Const(4).i32Ne().if();
    {
      // Scalar: w loads walking the stride.
      f.loop();
      f.get(p).set(q);
      for (let i = 0; i < w; i++) {
        if (i > 0) f.get(q).get(stride).i32Add().set(q);
        f.get(dst).get(q).f32Load().f32Store(4 * i);
      }
      f.get(p).get(step).i32Add().set(p);
      f.incr(dst, 4 * w);
      f.get(k).i32Const(1).i32Sub().tee(k).brIf(0);
      f.end();
    }
    f.else();
    {
      f.loop();
      for (let v = 0; v < w / 4; v++) f.get(dst).get(p).v128Load(16 * v).v128Store(16 * v);
      f.get(p).get(step).i32Add().set(p);
      f.incr(dst, 4 * w);
      f.get(k).i32Const(1).i32Sub().tee(k).brIf(0);
      f.end();
    }
    f.end();
    // The next sliver starts w elements further along `stride`.
    f.get(src).get(stride).i32Const(w).i32Mul().i32Add().set(src);
    f.get(s).i32Const(1).i32Sub().tee(s).brIf(0);
  }
  f.end();
  return f;
}

type Gemm = (pA: number, pB: number, pC: number, ldc: number, mTiles: number, nTiles: number, kc: number, accumulate: number) => void;
type Pack = (src: number, stride: number, step: number, dst: number, slivers: number, kc: number) => void;

/** A compiled kernel with its memory and the JS packing around it. */
export interface SimdMatmul {
  readonly config: SimdConfig;
  matmul(M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: Float32Array, outOffset: number): void;
}

/** An operand as packing sees it: its data (JS), and where a copy of the data lies in Wasm memory (-1: none). */
interface Source {
  data: Float32Array;
  /** Float index in Wasm memory of data[lo], or -1 when the operand was not copied. */
  at: number;
  /** The smallest index of data the operand reads. */
  lo: number;
}

/** Memory limits of a build (the defaults suit normal use; tests shrink them to reach every path). */
export interface SimdLimits {
  /**
   * Operands spanning at most this many floats of their array are copied into Wasm memory once
   * per call (TypedArray.set) and packed there; larger or sparser ones are packed by JS (measured
   * ~1.4 ns a float, several times slower than the copy plus Wasm packing).
   */
  copyLimit: number;
  /** The C buffer holds at most about this many floats of out; taller outputs go in row chunks. */
  chunkFloats: number;
}

const DEFAULT_LIMITS: SimdLimits = { copyLimit: 1 << 24, chunkFloats: 1 << 22 };

/** Builds (compiles and instantiates) a kernel for cfg. Throws if the engine lacks SIMD. */
export function createSimdMatmul(cfg: SimdConfig, limits: SimdLimits = DEFAULT_LIMITS): SimdMatmul {
  const { copyLimit, chunkFloats } = limits;
  const { mr, nr, kc: KC, mc: MC, nc: NC } = cfg;
  if (mr % 4 !== 0 || nr % 4 !== 0 || MC % mr !== 0 || NC % nr !== 0) throw new Error('createSimdMatmul: mr and nr must be multiples of 4, mc of mr, nc of nr');
  const aFloats = MC * KC, bFloats = KC * NC;
  const cBase = aFloats + bFloats; // float index where C starts
  const wasm = emitModule([buildKernel(cfg), buildPack('packA', mr), buildPack('packB', nr)], 1);
  const instance = new WebAssembly.Instance(new WebAssembly.Module(wasm));
  const memory = instance.exports.memory as WebAssembly.Memory;
  const gemm = instance.exports.gemm as Gemm;
  const packAWasm = instance.exports.packA as Pack;
  const packBWasm = instance.exports.packB as Pack;
  let mem = new Float32Array(memory.buffer);

  function ensure(floats: number): void {
    const bytes = floats * 4;
    if (memory.buffer.byteLength < bytes) {
      memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / 65536));
      mem = new Float32Array(memory.buffer);
    }
  }
  ensure(cBase);

  // JS packing, for the rows (columns) of a block from `from` on, which the Wasm packers leave:
  // the last, partial sliver, or everything when the operand was not copied. Strides are in
  // floats. It reads the source along whichever stride is smaller.

  // A block (mc x kc at src[off]) -> row slivers of mr, k-major (sliver s at s*mr*kc, element
  // (i, k) of it at k*mr + i); rows past mc are zero.
  function packAJs(src: Float32Array, off: number, rs: number, cs: number, mc: number, kc: number, from: number): void {
    const dst = mem;
    const full = mc - (mc % mr);
    if (cs <= rs) {
      for (let i = from; i < mc; i++) {
        let p = (i - (i % mr)) * kc + (i % mr);
        let s = off + i * rs;
        for (let k = 0; k < kc; k++, p += mr, s += cs) dst[p] = src[s];
      }
    } else {
      for (let k = 0; k < kc; k++) {
        let s = off + k * cs + from * rs;
        for (let i0 = from; i0 < full; i0 += mr) {
          const p = i0 * kc + k * mr;
          for (let i = 0; i < mr; i++, s += rs) dst[p + i] = src[s];
        }
        const p = full * kc + k * mr;
        for (let i = full; i < mc; i++, s += rs) dst[p + i - full] = src[s];
      }
    }
    for (let i = mc - full; full < mc && i < mr; i++) for (let k = 0, p = full * kc + i; k < kc; k++, p += mr) dst[p] = 0;
  }

  // B block (kc x nc at src[off]) -> column slivers of nr, k-major (sliver s at aFloats + s*nr*kc,
  // element (k, j) of it at k*nr + j); columns past nc are zero.
  function packBJs(src: Float32Array, off: number, rs: number, cs: number, kc: number, nc: number, from: number): void {
    const dst = mem;
    const full = nc - (nc % nr);
    if (cs <= rs) {
      for (let k = 0; k < kc; k++) {
        let s = off + k * rs + from * cs;
        for (let j0 = from; j0 < full; j0 += nr) {
          const p = aFloats + j0 * kc + k * nr;
          for (let j = 0; j < nr; j++, s += cs) dst[p + j] = src[s];
        }
        const p = aFloats + full * kc + k * nr;
        for (let j = full; j < nc; j++, s += cs) dst[p + j - full] = src[s];
      }
    } else {
      for (let j = from; j < nc; j++) {
        let p = aFloats + (j - (j % nr)) * kc + (j % nr);
        let s = off + j * cs;
        for (let k = 0; k < kc; k++, p += nr, s += rs) dst[p] = src[s];
      }
    }
    for (let j = nc - full; full < nc && j < nr; j++) for (let k = 0, p = aFloats + full * kc + j; k < kc; k++, p += nr) dst[p] = 0;
  }

  function packA(x: Source, off: number, rs: number, cs: number, mc: number, kc: number): void {
    let from = 0;
    if (x.at >= 0) {
      const slivers = Math.floor(mc / mr);
      packAWasm((x.at + off - x.lo) * 4, rs * 4, cs * 4, 0, slivers, kc);
      from = slivers * mr;
    }
    if (from < mc) packAJs(x.data, off, rs, cs, mc, kc, from);
  }

  function packB(x: Source, off: number, rs: number, cs: number, kc: number, nc: number): void {
    let from = 0;
    if (x.at >= 0) {
      const slivers = Math.floor(nc / nr);
      packBWasm((x.at + off - x.lo) * 4, cs * 4, rs * 4, aFloats * 4, slivers, kc);
      from = slivers * nr;
    }
    if (from < nc) packBJs(x.data, off, rs, cs, kc, nc, from);
  }

  function matmul(M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: Float32Array, outOffset: number): void {
    if (M === 0 || N === 0) return;
    if (K === 0) {
      out.fill(0, outOffset, outOffset + M * N);
      return;
    }
    const ldc = Math.ceil(Math.min(N, NC) / nr) * nr; // C row length in floats
    // Rows of out per C chunk: a multiple of MC (at least one MC block), capped by chunkFloats.
    const chunkRows = Math.min(Math.ceil(M / mr) * mr, Math.max(MC, Math.floor(chunkFloats / ldc / MC) * MC));
    // Memory: panels, C, then the copies of A and B (each only if its span is small enough).
    const aSpan = (M - 1) * a.rowStride + (K - 1) * a.colStride + 1;
    const bSpan = (K - 1) * b.rowStride + (N - 1) * b.colStride + 1;
    const copyA = aSpan <= copyLimit, copyB = bSpan <= copyLimit;
    let top = cBase + chunkRows * ldc;
    const A: Source = { data: a.data as Float32Array, at: copyA ? top : -1, lo: a.offset };
    if (copyA) top += aSpan;
    const B: Source = { data: b.data as Float32Array, at: copyB ? top : -1, lo: b.offset };
    if (copyB) top += bSpan;
    ensure(top);
    if (copyA) mem.set(A.data.subarray(a.offset, a.offset + aSpan), A.at);
    if (copyB) mem.set(B.data.subarray(b.offset, b.offset + bSpan), B.at);

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
