// CPU matrix multiply: out = A @ B for strided 2-D operands.
//
// `matmul` follows the GotoBLAS/BLIS layout: for each cache block it copies ("packs") a KC-deep
// slab of B and an MC x KC block of A into contiguous Float64Array panels, then sweeps a 4x4
// register-tile micro-kernel over them. Packing is where strides, transposes (x.t()) and broadcast
// (stride 0) are resolved, so the micro-kernel only ever reads unit-stride doubles.
//
// Plain JavaScript only; see bench/matmul.ts and bench/RESULTS.md for the measured speed. Float32
// problems big enough go to the WebAssembly SIMD GEMM (./wasm/matmul-simd.ts: operands in the shared
// Wasm heap used in place, big products split over worker threads) instead, unless the environment
// sets KILN_WASM=0; this file stays the fallback and the reference.

import { wasmKernelsEnabled } from './wasm/kernel.js';
import { wasmHeap } from './wasm/heap.js';
import { matmulF32Simd, matmulF32SimdEpilogue, matmulSimdAvailable, prepareMatmulF32Simd, type EpilogueArgs, type PreparedEpilogue, type PreparedMatmul, type Strides } from './wasm/matmul-simd.js';

export type MatArray = Float32Array | Float64Array | Int32Array;

/** A strided 2-D operand: element (i, j) is data[offset + i*rowStride + j*colStride]. Strides may be any non-negative integers (0 = broadcast), so transposed views (x.t()) work without the caller copying. */
export interface MatOperand {
  data: MatArray;
  offset: number;
  rowStride: number;
  colStride: number;
}

// Register tile: MR x NR accumulators. V8 allocates 15 xmm registers on x64; 4x4 (16 accumulators
// + 4 B values + 1 A value) spills a little, but measured as fast as 4x3/3x4 and leaves no ragged edge
// on the sizes that matter (64, 100, 1000, 1024 are all multiples of 4). Bigger tiles spill more
// and were slower; smaller ones do more loads per multiply-add.
const MR = 4;
const NR = 4;
// Cache blocks (L1 32 KiB, L2 1 MiB). The MR x KC sliver of A and the KC x NR sliver of B that one
// micro-kernel call reads are 8 KiB each, so both stay in L1; the MC x KC block of A (256 KiB)
// stays in L2 while the kernel sweeps the NC columns of the packed B slab (KC x NC, 1 MiB).
const KC = 256;
const MC = 128; // multiple of MR
const NC = 512; // multiple of NR

// Scratch panels, allocated once. Blocking caps their size, so they never need to grow and a call
// never allocates. They are module-level `const`s on purpose: V8 then embeds their address and
// length as constants in the optimized micro-kernel, which measured ~30% faster than passing the
// arrays as arguments (and a mutable `let` was slower still). Float32 inputs are widened to
// double once while packing, instead of on every use in the kernel.
const A_PANEL = new Float64Array(MC * KC);
const B_PANEL = new Float64Array(KC * NC);
const TILE = new Float64Array(MR * NR);

// The Wasm path (KILN_WASM=0 turns it off: wasm/kernel.ts). Measured (one thread, operands in the
// heap, B transposed, us per call, this file's kernel -> Wasm): 10x10x20 1.71 -> 0.37, 2x10x20
// 0.75 -> 0.21, 8^3 0.41 -> 0.20, 10x10x1 0.34 -> 0.23, 16^3 0.38 -> 0.37, but 4^3 0.11 -> 0.19.
const WASM_MIN_MNK = 100;
// Operands outside the heap (eager tensors) are copied in first, which a product this small does
// not win back (eager 8x8 matmul ~2.0 -> ~2.4 us). So between the two thresholds the kernel
// depends on where the operands lie, and a compiled step (float32 sums, in the heap) and the
// same eager op (this file's kernel, float64 sums) can differ in the last bits.
const COPY_IN_MIN_MNK = 16 * 16 * 16;

const inHeap = (x: ArrayBufferView): boolean => (wasmHeap()?.addressOf(x) ?? -1) >= 0;

/** Whether `matmul` takes the Wasm GEMM for these operands. */
const wasmGemm = (M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: MatArray): boolean =>
  wasmKernelsEnabled && out instanceof Float32Array && a.data instanceof Float32Array && b.data instanceof Float32Array && M * N * K >= WASM_MIN_MNK &&
  (M * N * K >= COPY_IN_MIN_MNK || (inHeap(a.data) && inHeap(b.data) && inHeap(out))) && matmulSimdAvailable();

/**
 * `matmul` with a fused epilogue applied by the Wasm GEMM as it stores C (in its registers), where
 * `matmul` would take that GEMM and it can (./wasm/matmul-simd.ts); returns false, having done
 * nothing, otherwise: the caller then runs matmul and applies the epilogue itself.
 */
export function matmulWithEpilogue(M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: MatArray, outOffset: number, epilogue: EpilogueArgs): boolean {
  return wasmGemm(M, N, K, a, b, out) && matmulF32SimdEpilogue(M, N, K, a, b, out as Float32Array, outOffset, epilogue);
}

/**
 * The Wasm GEMM's prepared call (./wasm/matmul-simd.ts PreparedMatmul) for a float32 product of
 * fixed shape and strides that `matmul` (or matmulWithEpilogue) would give that GEMM; null where
 * it would not.
 */
export function prepareMatmul(M: number, N: number, K: number, a: Strides, b: Strides, dtype: string, epilogue?: PreparedEpilogue): PreparedMatmul | null {
  if (!wasmKernelsEnabled || dtype !== 'float32' || M * N * K < WASM_MIN_MNK || !matmulSimdAvailable()) return null;
  return prepareMatmulF32Simd(M, N, K, a, b, epilogue);
}

/** out[outOffset + i*N + j] = sum_k A(i,k) * B(k,j) for an [M,K] A and [K,N] B; out is contiguous row-major [M,N] and is overwritten (not accumulated). a, b and out have the same array type. */
export function matmul(
  M: number,
  N: number,
  K: number,
  a: MatOperand,
  b: MatOperand,
  out: MatArray,
  outOffset: number,
): void {
  if (out instanceof Int32Array) {
    matmulInt32(M, N, K, a, b, out, outOffset);
    return;
  }
  if (wasmGemm(M, N, K, a, b, out)) {
    matmulF32Simd(M, N, K, a, b, out as Float32Array, outOffset);
    return;
  }
  matmulJs(M, N, K, a, b, out, outOffset);
}

/** `matmul`'s JS kernel for float32 and float64 (the reference the Wasm GEMMs are tested against). */
export function matmulJs(M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: Float32Array | Float64Array, outOffset: number): void {
  // Thinner than one tile (matrix-vector products and the like): padding to 4x4 would waste most
  // of the work, and the plain loop is faster there.
  if (M < MR || N < NR) {
    matmulNaive(M, N, K, a, b, out, outOffset);
    return;
  }
  // Every K block adds its partial product into out, so start from zero (this also makes K = 0
  // give zeros). For float32 that rounds once per KC block of K rather than once at the end, far
  // inside float32 tolerance. out must not overlap a or b.
  out.fill(0, outOffset, outOffset + M * N);
  if (K === 0) return;

  for (let jc = 0; jc < N; jc += NC) {
    const nc = Math.min(NC, N - jc);
    for (let pc = 0; pc < K; pc += KC) {
      const kc = Math.min(KC, K - pc);
      packB(b.data, b.offset + pc * b.rowStride + jc * b.colStride, b.rowStride, b.colStride, kc, nc);
      for (let ic = 0; ic < M; ic += MC) {
        const mc = Math.min(MC, M - ic);
        packA(a.data, a.offset + ic * a.rowStride + pc * a.colStride, a.rowStride, a.colStride, mc, kc);
        // jr outer, ir inner: one KC x NR sliver of B stays in L1 while the A block streams from L2.
        for (let jr = 0; jr < nc; jr += NR) {
          for (let ir = 0; ir < mc; ir += MR) {
            microKernel(kc, ir * kc, jr * kc);
            const o = outOffset + (ic + ir) * N + jc + jr;
            if (ir + MR <= mc && jr + NR <= nc) addFullTile(out, o, N);
            else addPartialTile(out, o, N, Math.min(MR, mc - ir), Math.min(NR, nc - jr));
          }
        }
      }
    }
  }
}

/** The plain triple loop, the baseline the benchmark compares against and the reference in tests. */
export function matmulNaive(
  M: number,
  N: number,
  K: number,
  a: MatOperand,
  b: MatOperand,
  out: MatArray,
  outOffset: number,
): void {
  const A = a.data, B = b.data;
  const ars = a.rowStride, acs = a.colStride, brs = b.rowStride, bcs = b.colStride;
  const isInt = out instanceof Int32Array;
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let ai = a.offset + i * ars;
      let bj = b.offset + j * bcs;
      let s = 0;
      if (isInt) {
        // The exact product wrapped to int32, then a wrapping add: what int32 tensors mean.
        for (let k = 0; k < K; k++, ai += acs, bj += brs) s = (s + Math.imul(A[ai], B[bj])) | 0;
      } else {
        for (let k = 0; k < K; k++, ai += acs, bj += brs) s += A[ai] * B[bj];
      }
      out[outOffset + i * N + j] = s;
    }
  }
}

// Packs the mc x kc block of A starting at data[off] into A_PANEL as row slivers of MR: sliver s
// holds rows s*MR..s*MR+MR-1, column by column (k-major), so the kernel reads MR consecutive values
// per k. Rows past mc are zero-filled so the kernel can always compute a full tile (the caller
// keeps only the real corner of it).
function packA(src: MatArray, off: number, rs: number, cs: number, mc: number, kc: number): void {
  let p = 0;
  for (let i0 = 0; i0 < mc; i0 += MR) {
    let s = off + i0 * rs;
    if (mc - i0 >= MR) {
      for (let k = 0; k < kc; k++) {
        A_PANEL[p] = src[s];
        A_PANEL[p + 1] = src[s + rs];
        A_PANEL[p + 2] = src[s + 2 * rs];
        A_PANEL[p + 3] = src[s + 3 * rs];
        p += MR;
        s += cs;
      }
    } else {
      const rows = mc - i0;
      for (let k = 0; k < kc; k++) {
        for (let i = 0; i < MR; i++) A_PANEL[p + i] = i < rows ? src[s + i * rs] : 0;
        p += MR;
        s += cs;
      }
    }
  }
}

// Packs the kc x nc block of B starting at data[off] into B_PANEL as column slivers of NR, row by
// row (k-major), zero-padding columns past nc. Mirror image of packA.
function packB(src: MatArray, off: number, rs: number, cs: number, kc: number, nc: number): void {
  let p = 0;
  for (let j0 = 0; j0 < nc; j0 += NR) {
    let s = off + j0 * cs;
    if (nc - j0 >= NR) {
      for (let k = 0; k < kc; k++) {
        B_PANEL[p] = src[s];
        B_PANEL[p + 1] = src[s + cs];
        B_PANEL[p + 2] = src[s + 2 * cs];
        B_PANEL[p + 3] = src[s + 3 * cs];
        p += NR;
        s += rs;
      }
    } else {
      const cols = nc - j0;
      for (let k = 0; k < kc; k++) {
        for (let j = 0; j < NR; j++) B_PANEL[p + j] = j < cols ? src[s + j * cs] : 0;
        p += NR;
        s += rs;
      }
    }
  }
}

// TILE = (A sliver at A_PANEL[pa..]) @ (B sliver at B_PANEL[pb..]), a 4x4 block over kc steps.
// The sixteen accumulators are locals so V8 keeps (most of) them in registers. Writing the result
// to TILE rather than to `out` keeps this function monomorphic (it only ever touches the three
// Float64Array constants) whatever the output type; the caller adds TILE into out. The `| 0` on
// the index arithmetic drops V8's int32 overflow checks, which measurably helps this loop.
function microKernel(kc: number, pa: number, pb: number): void {
  let c00 = 0, c01 = 0, c02 = 0, c03 = 0;
  let c10 = 0, c11 = 0, c12 = 0, c13 = 0;
  let c20 = 0, c21 = 0, c22 = 0, c23 = 0;
  let c30 = 0, c31 = 0, c32 = 0, c33 = 0;
  for (let k = 0; k < kc; k++) {
    const b0 = B_PANEL[pb], b1 = B_PANEL[(pb + 1) | 0], b2 = B_PANEL[(pb + 2) | 0], b3 = B_PANEL[(pb + 3) | 0];
    let a = A_PANEL[pa];
    c00 += a * b0; c01 += a * b1; c02 += a * b2; c03 += a * b3;
    a = A_PANEL[(pa + 1) | 0];
    c10 += a * b0; c11 += a * b1; c12 += a * b2; c13 += a * b3;
    a = A_PANEL[(pa + 2) | 0];
    c20 += a * b0; c21 += a * b1; c22 += a * b2; c23 += a * b3;
    a = A_PANEL[(pa + 3) | 0];
    c30 += a * b0; c31 += a * b1; c32 += a * b2; c33 += a * b3;
    pa = (pa + MR) | 0;
    pb = (pb + NR) | 0;
  }
  TILE[0] = c00; TILE[1] = c01; TILE[2] = c02; TILE[3] = c03;
  TILE[4] = c10; TILE[5] = c11; TILE[6] = c12; TILE[7] = c13;
  TILE[8] = c20; TILE[9] = c21; TILE[10] = c22; TILE[11] = c23;
  TILE[12] = c30; TILE[13] = c31; TILE[14] = c32; TILE[15] = c33;
}

// out[o..] += TILE for a whole 4x4 tile, unrolled: this runs once per kernel call.
function addFullTile(out: Float32Array | Float64Array, o: number, ldo: number): void {
  out[o] += TILE[0]; out[o + 1] += TILE[1]; out[o + 2] += TILE[2]; out[o + 3] += TILE[3];
  o += ldo;
  out[o] += TILE[4]; out[o + 1] += TILE[5]; out[o + 2] += TILE[6]; out[o + 3] += TILE[7];
  o += ldo;
  out[o] += TILE[8]; out[o + 1] += TILE[9]; out[o + 2] += TILE[10]; out[o + 3] += TILE[11];
  o += ldo;
  out[o] += TILE[12]; out[o + 1] += TILE[13]; out[o + 2] += TILE[14]; out[o + 3] += TILE[15];
}

// The ragged bottom/right edge: only the rows x cols corner of TILE is real.
function addPartialTile(out: Float32Array | Float64Array, o: number, ldo: number, rows: number, cols: number): void {
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) out[o + i * ldo + j] += TILE[i * NR + j];
  }
}

// Exact int32 matmul (products and sums wrap as int32, and wrapping addition is associative, so
// any summation order gives the same bits). i-k-j order keeps the inner loop on one row of out.
function matmulInt32(M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: Int32Array, outOffset: number): void {
  out.fill(0, outOffset, outOffset + M * N);
  const A = a.data, B = b.data, bcs = b.colStride;
  for (let i = 0; i < M; i++) {
    const o = outOffset + i * N;
    for (let k = 0; k < K; k++) {
      const av = A[a.offset + i * a.rowStride + k * a.colStride];
      if (av === 0) continue;
      let s = b.offset + k * b.rowStride;
      for (let j = 0; j < N; j++) {
        out[o + j] = (out[o + j] + Math.imul(av, B[s])) | 0;
        s += bcs;
      }
    }
  }
}
