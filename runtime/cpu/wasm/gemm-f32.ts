// The float32 GEMM as emitted WebAssembly: driver, packing and micro-kernel, so one call computes
// a whole C = A @ B (or any rectangle of it, on any thread) without returning to JS.
//
// Same GotoBLAS/BLIS structure as runtime/cpu/matmul.ts. For each NC-wide, KC-deep slab of B the
// driver packs B into column slivers of NR, then for each MC-tall block of A packs A into row
// slivers of MR (this is where strides, transposes and broadcasts are resolved; ragged last
// slivers are zero-filled), and the macro-kernel sweeps the MR x NR register tile over the block,
// writing C in place: full tiles straight from the registers, edge tiles through a small tile
// buffer so that nothing outside C[M, N] is touched. When C is short and B's columns are
// unit-stride the caller can have B read where it lies instead of packed (`directB` at gemm); when
// C is narrow and A's rows are unit-stride, A (`directA`).
//
// The micro-kernel holds MR x NR/4 f32x4 accumulators in locals. Per k it loads NR/4 vectors of B
// and, for each of the MR rows, splats one A value and multiply-adds it into that row's vectors:
// f32x4.relaxed_madd where the engine has relaxed SIMD (Node 20 only behind
// --experimental-wasm-relaxed-simd), f32x4.mul + f32x4.add otherwise.

import { F32, FuncBuilder, I32, V128 } from './emit.js';
import { EpilogueCode, epilogueWithLastBlock, type GemmEpilogue } from './gemm-epilogue.js';

/** Tile and cache-block sizes of one kernel build. */
export interface SimdConfig {
  /** Rows of the register tile, a multiple of 4. */
  mr: number;
  /** Columns of the register tile, a multiple of 4 (one f32x4 per 4 columns). */
  nr: number;
  /** Use f32x4.relaxed_madd (only if the engine validates it). */
  relaxed: boolean;
  kc: number;
  mc: number;
  nc: number;
  /**
   * Products with at most this many rows of C (per task) read B straight from memory instead of
   * packing it, when B's columns are unit-stride (see matmul-simd.ts); 0 = always pack. Only the
   * JS side reads it: it passes the decision to gemm as `directB`.
   */
  directBMaxM?: number;
  /**
   * Products (per task) whose C has at most this many columns read A's rows straight from memory
   * instead of packing them, when A's rows are unit-stride and B is packed; 0 = always pack. Only
   * the JS side reads it: it passes the decision to gemm as `directA`.
   */
  directAMaxN?: number;
}

// Unpacked B pays while each KC x NR sliver of B is read by few row tiles of A. Measured (one
// thread, operands in the heap, medians in ms, packed -> unpacked, with the packB of the time,
// which read two slivers per row down B's columns): 4x4000x250 0.31 -> 0.24, 8x4000x250 0.49 -> 0.42, 12x4000x250 0.69 -> 0.61, 16x4000x250
// 0.84 -> 0.80, 24x4000x250 1.22 -> 1.19, 10x36000x25 0.65 -> 0.60, 20x36000x25 0.93 -> 1.00:
// so up to 16 rows (four register tiles). Where B's rows are a multiple of 2 KiB apart they share
// L1 sets, and unpacked won only with one register tile: 4x4096x250 0.37 -> 0.31, 4x36864x25
// 0.286 -> 0.280, but 8x36864x25 0.48 -> 0.50, 12x4096x250 0.70 -> 0.73, 16x4096x250 0.89 -> 0.97
// (matmul-simd.ts applies that limit). With packB reading B along its rows (rowGroups) unpacked
// still won where it is used: 4x4096x250 0.285 -> 0.246, 8x4000x250 0.405 -> 0.332, 16x4000x250
// 0.712 -> 0.637, and tied at 16x4096x250 (0.721 both).
const DIRECT_B_MAX_M = 16;
// Unpacked A pays where C is narrow: packing A costs a load and a store per element of A (and its
// reads from memory are not overlapped with arithmetic), which only N / NR register tiles share.
// Measured (one thread, operands in the heap, medians, packed -> unpacked A, M x N x K): 4096x100x1000
// (B transposed) 17.75 -> 17.35 ms, 4096x10x100 298 -> 256 us, 512x64x512 652 -> 628, 64x50x320 46.4
// -> 45.1, 2048x128x1024 even; 1024x256x1024 +0.3 %, 1024x512x1024 and 1024^3 +1 % (slower). Packing
// every element of A, with no products, measured 2.1 of the 17.9 ms at 4096x100x1000.
const DIRECT_A_MAX_N = 128;
/** Slivers of B that kernelDirectB sweeps together (two 8-float slivers: one 64-byte line per row of B). */
const DIRECT_GROUP = 2;

// 4 x 8: eight f32x4 accumulators, two B vectors, the splatted A values and a product temporary
// fit the 16 xmm registers V8 allocates on x64 without spilling. Measured (kernel alone, packed
// panels in cache, mul + add, GFLOP/s): 4x8 46, 2x16 46, 3x8 43, 5x8 33-38, 3x12 35, 6x8 29,
// 4x12 29, 8x8 27, 3x16 26, 2x8 34; unrolling k by 2 in the emitted code 29-31 (TurboFan already
// unrolls the loop). With relaxed_madd 4x8 reached 55, 6x8 41. Blocks, with relaxed_madd (one
// thread, operands in the heap, GFLOP/s, KC/MC 256/96 -> 512/64, M x N x K): 1024^3 51.7-52.2 ->
// 52.1-53.0, 4096x100x1000 (B transposed) 44.6-45.0 -> 46.6, 2048x256x2048 49.9 -> 51.2, 512^3 51.1 -> 51.7:
// half the K blocks, so C is read and written half as often; KC 768-1024 and MC 48-128 measured
// within 1 % of 512/64. (A 4 x 512 A sliver, 8 KiB, and a 512 x 8 B sliver, 16 KiB, share the 32 KiB L1.)
export const DEFAULT_CONFIG: Omit<SimdConfig, 'relaxed'> = { mr: 4, nr: 8, kc: 512, mc: 64, nc: 2048, directBMaxM: DIRECT_B_MAX_M, directAMaxN: DIRECT_A_MAX_N };

/** Bytes of the scratch area one gemm call needs: packed A block, packed B slab, one edge tile (or kernelDirectB's buffer). */
export function gemmScratchBytes(cfg: SimdConfig): number {
  return (cfg.mc * cfg.kc + cfg.kc * cfg.nc + DIRECT_GROUP * Math.ceil(cfg.mc / cfg.mr) * cfg.mr * cfg.nr) * 4;
}

/**
 * The functions of the GEMM module, in module order (calls use these indices); "gemm" is the entry
 * point. With an `epilogue` (./gemm-epilogue.ts) the kernels apply it as they store the last block
 * of K into C; throws Unsupported when the epilogue has no Wasm rendering.
 */
export function gemmFunctions(cfg: SimdConfig, epilogue?: GemmEpilogue): FuncBuilder[] {
  const { mr, nr, mc, nc } = cfg;
  if (mr % 4 !== 0 || nr % 4 !== 0 || mc < 1 || nc < 1 || cfg.kc < 1) throw new Error('gemmFunctions: mr and nr must be multiples of 4, and the blocks positive');
  return [
    buildDriver(cfg, { kernel: 1, packA: 2, packB: 3, kernelDirectB: 4, kernelDirectA: 5 }, epilogue !== undefined),
    buildKernel(cfg, epilogue, false),
    buildPack('packA', mr),
    buildPack('packB', nr),
    buildDirectKernel(cfg, epilogue),
    buildKernel(cfg, epilogue, true),
  ];
}

/**
 * gemm(M, N, K, pA, rsA, csA, pB, rsB, csB, pC, ldc, directB, directA, epi, scratch) -> i32: C = A @ B where
 * A(i, k) is the float32 at pA + 4*(i*rsA + k*csA), B(k, j) at pB + 4*(k*rsB + j*csB), C(i, j) at
 * pC + 4*(i*ldc + j): addresses in bytes, strides in elements (0 = broadcast). C is overwritten
 * (K = 0 writes nothing: the caller zero-fills); nothing else of C's rows is touched. `scratch` is gemmScratchBytes(cfg)
 * bytes no other running call uses.
 *
 * directB = dk > 0 (only with csB = 1) skips packing B: the full NR-wide column slivers of each
 * slab are read straight from B, NR/4 f32x4 loads per row of B, by kernelDirectB in chunks of dk
 * steps (the JS side picks 8 or 16: see matmul-simd.ts); only the ragged last sliver (N % NR
 * columns of the panel) is packed and goes through the packed kernel. Packing B costs about a load
 * and a store per element of B, which a product with few rows of A (each packed sliver read by
 * only M / MR row tiles) does not win back. Every element of C is summed in the same order either
 * way, so the two paths give the same bits. Returns the number of kernelDirectB calls (0 when
 * directB = 0), so callers can see the path was taken.
 *
 * directA = 1 (only with csA = 1 and directB = 0) skips packing A: kernelDirectA reads each row
 * tile's rows where they lie. Packing A costs about a load and a store per element of A, which C
 * of few columns (each packed sliver of A read by only N / NR register tiles) does not win back.
 * Same order of sums, same bits.
 *
 * epi: in a module built with an epilogue, the address of its operand block (./gemm-epilogue.ts;
 * addresses at C(0, 0) of this call), which the kernels are given with the last KC block of K;
 * 0 = none. Ignored by a module without one.
 */
function buildDriver(cfg: SimdConfig, fn: { kernel: number; packA: number; packB: number; kernelDirectB: number; kernelDirectA: number }, withEpilogue: boolean): FuncBuilder {
  const { kc: KC, mc: MC, nc: NC, nr: NR } = cfg;
  const f = new FuncBuilder('gemm', Array<typeof I32>(15).fill(I32), [I32]);
  const [M, N, K, pA, rsA, csA, pB, rsB, csB, pC, ldc, directB, directA, epi, scratch] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
  const jc = f.local(I32), pc = f.local(I32), ic = f.local(I32);
  const nc = f.local(I32), kc = f.local(I32), mc = f.local(I32);
  const packedA = f.local(I32), packedB = f.local(I32), tile = f.local(I32);
  const nFull = f.local(I32), calls = f.local(I32), epiNow = f.local(I32);
  /** The kernels' epilogue args: the block with K's last slab (else 0), and the block's row and column in C. */
  const epilogueArgs = (col: () => void): void => {
    if (!withEpilogue) return;
    f.get(epiNow).get(ic);
    col();
  };

  f.get(M).i32Const(1).i32LtS().if().i32Const(0).return().end();
  f.get(N).i32Const(1).i32LtS().if().i32Const(0).return().end();
  // Strides to bytes.
  for (const s of [rsA, csA, rsB, csB, ldc]) f.get(s).i32Const(4).i32Mul().set(s);
  f.get(scratch).set(packedA);
  f.get(scratch).i32Const(MC * KC * 4).i32Add().set(packedB);
  f.get(packedB).i32Const(KC * NC * 4).i32Add().set(tile);

  // K = 0 writes nothing: the caller zero-fills C (matmul-simd.ts).
  f.get(K).i32Const(1).i32LtS().if().i32Const(0).return().end();

  f.i32Const(0).set(jc);
  f.loop(); // jc: NC-wide column panels of C
  {
    f.remaining(nc, N, jc, NC);
    f.i32Const(0).set(pc);
    f.loop(); // pc: KC-deep slabs
    {
      f.remaining(kc, K, pc, KC);
      epilogueWithLastBlock(f, epi, pc, kc, K, epiNow);
      // nFull: the columns of the panel read straight from B (directB), the rest are packed.
      f.get(directB).if().get(nc).i32Const(NR).i32DivU().i32Const(NR).i32Mul().set(nFull).else().i32Const(0).set(nFull).end();
      // packB(pB + pc*rsB + (jc + nFull)*csB, csB, rsB, packedB, nc - nFull, kc)
      f.get(nc).get(nFull).i32GtS().if();
      f.get(pB).get(pc).get(rsB).i32Mul().i32Add().get(jc).get(nFull).i32Add().get(csB).i32Mul().i32Add();
      f.get(csB).get(rsB).get(packedB).get(nc).get(nFull).i32Sub().get(kc).call(fn.packB);
      f.end();
      f.i32Const(0).set(ic);
      f.loop(); // ic: MC-tall blocks
      {
        f.remaining(mc, M, ic, MC);
        // packA(pA + ic*rsA + pc*csA, rsA, csA, packedA, mc, kc), unless A is read where it lies (directA).
        f.get(directA).i32Eqz().if();
        f.get(pA).get(ic).get(rsA).i32Mul().i32Add().get(pc).get(csA).i32Mul().i32Add();
        f.get(rsA).get(csA).get(packedA).get(mc).get(kc).call(fn.packA);
        f.end();
        // kernelDirectB(packedA, pB + pc*rsB + jc*4, pC + ic*ldc + jc*4, ldc, mc, nFull, kc, pc != 0, tile, rsB, directB)
        f.get(nFull).if();
        f.get(packedA).get(pB).get(pc).get(rsB).i32Mul().i32Add().get(jc).i32Const(4).i32Mul().i32Add();
        f.get(pC).get(ic).get(ldc).i32Mul().i32Add().get(jc).i32Const(4).i32Mul().i32Add();
        f.get(ldc).get(mc).get(nFull).get(kc).get(pc).i32Const(0).i32Ne().get(tile).get(rsB).get(directB);
        epilogueArgs(() => f.get(jc));
        f.call(fn.kernelDirectB);
        f.incr(calls, 1);
        f.end();
        // kernel(packedA, packedB, pC + ic*ldc + (jc + nFull)*4, ldc, mc, nc - nFull, kc, pc != 0, tile), or
        // kernelDirectA with A's block (pA + ic*rsA + pc*4) for packedA and rsA last (nFull is 0 then).
        const kernelCall = (fnIndex: number, aBlock: () => void, tail: () => void): void => {
          aBlock();
          f.get(packedB);
          f.get(pC).get(ic).get(ldc).i32Mul().i32Add().get(jc).get(nFull).i32Add().i32Const(4).i32Mul().i32Add();
          f.get(ldc).get(mc).get(nc).get(nFull).i32Sub().get(kc).get(pc).i32Const(0).i32Ne().get(tile);
          epilogueArgs(() => f.get(jc).get(nFull).i32Add());
          tail();
          f.call(fnIndex);
        };
        f.get(nc).get(nFull).i32GtS().if();
        f.get(directA).if();
        kernelCall(fn.kernelDirectA, () => f.get(pA).get(ic).get(rsA).i32Mul().i32Add().get(pc).i32Const(4).i32Mul().i32Add(), () => f.get(rsA));
        f.else();
        kernelCall(fn.kernel, () => f.get(packedA), () => {});
        f.end();
        f.end();
        f.incr(ic, MC);
        f.get(ic).get(M).i32LtS().brIf(0);
      }
      f.end();
      f.incr(pc, KC);
      f.get(pc).get(K).i32LtS().brIf(0);
    }
    f.end();
    f.incr(jc, NC);
    f.get(jc).get(N).i32LtS().brIf(0);
  }
  f.end();
  f.get(calls);
  return f;
}

/**
 * One step of k of the register tile, for the kernels: the nr/4 vectors of B at local b, then per
 * row r (one per row of `acc`, at most mr) the A value at row r's place splatted and multiply-added
 * into that row's accumulators. `a`: one local for packed A (row r at a + 4r), or a local per row
 * (rows read where they lie).
 */
function kStep(f: FuncBuilder, cfg: SimdConfig, a: number | readonly number[], b: number, acc: readonly (readonly number[])[], bv: readonly number[], av: number): void {
  for (let v = 0; v < bv.length; v++) f.get(b).v128Load(16 * v).set(bv[v]);
  for (let r = 0; r < acc.length; r++) {
    if (typeof a === 'number') f.get(a).v128Load32Splat(4 * r).set(av);
    else f.get(a[r]).v128Load32Splat(0).set(av);
    for (let v = 0; v < bv.length; v++) f.madd(acc[r][v], av, bv[v], cfg.relaxed);
  }
}

/**
 * kernel(pA, pB, pC, ldc, mc, nc, kc, accumulate, tile[, epi, row0, col0]), addresses and ldc in
 * bytes: for each sliver of packed B (kc x nr, k-major) and each sliver of packed A (mr x kc,
 * k-major; kernelDirectA takes rsA last and reads A where it lies, row i and step k at
 * pA + i*rsA + 4k), the mc x nc block of C at pC is set to (accumulate = 0) or incremented by
 * (accumulate = 1) the product. A last sliver of A with m < mr rows runs as an m-row tile; tiles
 * that stick out of the block's columns go through `tile` (m x nr floats), and only their real
 * part is written. mc, nc, kc >= 1. With an epilogue: when epi (its
 * operand block) is nonzero, every value stored is the epilogue of the sum, the block being at
 * row row0, column col0 of the C the block's addresses are for.
 */
function buildKernel(cfg: SimdConfig, epilogue: GemmEpilogue | undefined, directA: boolean): FuncBuilder {
  const { mr, nr } = cfg;
  const nv = nr / 4;
  const nParams = epilogue ? 12 : 9;
  const f = new FuncBuilder(directA ? 'kernelDirectA' : 'kernel', Array<typeof I32>(nParams + (directA ? 1 : 0)).fill(I32));
  const [pA, pB, pC, ldc, mc, nc, kc, accumulate, tile, epi, row0, col0] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const rsA = nParams; // kernelDirectA only: bytes between A's rows
  const nLeft = f.local(I32), mLeft = f.local(I32), k = f.local(I32); // k: where the current A sliver ends
  const a = f.local(I32), b = f.local(I32), cCol = f.local(I32), c = f.local(I32), bSliver = f.local(I32);
  const cols = f.local(I32), i = f.local(I32), j = f.local(I32), rowC = f.local(I32), rowT = f.local(I32);
  const acc: number[][] = [];
  for (let r = 0; r < mr; r++) acc.push(Array.from({ length: nv }, () => f.local(V128)));
  const bv = Array.from({ length: nv }, () => f.local(V128));
  const av = f.local(V128);
  // kernelDirectA: row r of the tile at rows[r] (rows[0] = a), each moving 4 bytes per step.
  const rows = directA ? [a, ...Array.from({ length: mr - 1 }, () => f.local(I32))] : [];

  // (TurboFan unrolls the k loop itself; unrolling it in the emitted code spills: ~29 GFLOP/s.)
  // The epilogue's operands: code.at[] follows the tile (c), colAt[] the sliver (cCol).
  const code = epilogue ? new EpilogueCode(f, epilogue) : undefined;
  const colAt = code ? code.at.map(() => f.local(I32)) : [];
  const value = f.local(V128), scalar = f.local(F32);
  if (code) {
    f.get(epi).if();
    code.init(epi, row0, col0);
    code.at.forEach((x, j) => f.get(x).set(colAt[j]));
    f.end();
  }

  /** One register tile of m rows (the sliver at a, the B sliver at bSliver) summed and stored into C at c; a moves to the next sliver. */
  const tileOf = (m: number): void => {
    const rowsAcc = acc.slice(0, m);
    for (const row of rowsAcc) for (const x of row) f.v128Zero().set(x);
    f.get(bSliver).set(b);
    // The loop runs until a reaches the end of its sliver (k holds that address), not on a
    // counter: one node less in the loop, which keeps it small enough for TurboFan to unroll it
    // over a shared memory (a counted loop was not unrolled there: 40 GFLOP/s against 43-44).
    // Packed A steps mr floats a k; A read where it lies steps one float a k along each row.
    const aStep = directA ? 4 : mr * 4;
    if (directA) for (let r = 1; r < m; r++) f.get(a).get(rsA).i32Const(r).i32Mul().i32Add().set(rows[r]);
    f.get(a).get(kc).i32Const(aStep).i32Mul().i32Add().set(k);
    f.loop();
    kStep(f, cfg, directA ? rows.slice(0, m) : a, b, rowsAcc, bv, av);
    for (let r = 1; directA && r < m; r++) f.incr(rows[r], 4);
    f.incr(a, aStep).incr(b, nr * 4);
    f.get(a).get(k).i32Ne().brIf(0);
    f.end();
    // Read in place, the next tile's rows start mr rows down from where this one's did.
    if (directA) f.get(a).get(kc).i32Const(4).i32Mul().i32Sub().get(rsA).i32Const(mr).i32Mul().i32Add().set(a);
    // a now points at the next A sliver (or row tile). A tile of whole columns (nLeft >= nr) goes straight to C.
    f.get(nLeft).i32Const(nr).i32GeS().if();
    {
      const plainStores = (): void => {
        f.get(accumulate).if();
        for (let r = 0; r < m; r++) {
          for (let v = 0; v < nv; v++) f.get(rowC).get(rowC).v128Load(16 * v).get(acc[r][v]).f32x4Add().v128Store(16 * v);
          f.get(rowC).get(ldc).i32Add().set(rowC);
        }
        f.else();
        for (let r = 0; r < m; r++) {
          for (let v = 0; v < nv; v++) f.get(rowC).get(acc[r][v]).v128Store(16 * v);
          f.get(rowC).get(ldc).i32Add().set(rowC);
        }
        f.end();
      };
      f.get(c).set(rowC);
      if (!code) plainStores();
      else {
        // The epilogue of each accumulator (plus C's earlier sum), from the registers into C.
        f.get(epi).if();
        code.rowStart();
        for (let r = 0; r < m; r++) {
          for (let v = 0; v < nv; v++) {
            f.get(accumulate).if().get(rowC).v128Load(16 * v).get(acc[r][v]).f32x4Add().set(value).else().get(acc[r][v]).set(value).end();
            f.get(rowC);
            code.applyRow(value, 4 * v);
            f.v128Store(16 * v);
          }
          f.get(rowC).get(ldc).i32Add().set(rowC);
          code.nextRow();
        }
        f.else();
        plainStores();
        f.end();
      }
    }
    f.else();
    {
      // Edge tile: registers -> tile buffer, then its m x cols corner into C, element by element.
      for (let r = 0; r < m; r++) for (let v = 0; v < nv; v++) f.get(tile).get(acc[r][v]).v128Store(4 * nr * r + 16 * v);
      f.get(nLeft).set(cols);
      f.get(c).set(rowC);
      f.get(tile).set(rowT);
      f.i32Const(0).set(i);
      f.loop();
      {
        f.i32Const(0).set(j);
        f.loop();
        {
          // C[rowC + 4j] = accumulate ? C[..] + T[rowT + 4j] : T[rowT + 4j] (then its epilogue)
          f.get(rowT).get(j).i32Const(4).i32Mul().i32Add().f32Load();
          f.get(rowC).get(j).i32Const(4).i32Mul().i32Add().f32Load().f32Add();
          f.get(rowT).get(j).i32Const(4).i32Mul().i32Add().f32Load();
          f.get(accumulate).select().set(scalar);
          if (code) {
            f.get(epi).if().get(scalar);
            code.applyScalar({ local: i }, { local: j });
            f.set(scalar).end();
          }
          f.get(rowC).get(j).i32Const(4).i32Mul().i32Add().get(scalar).f32Store();
          f.incr(j, 1);
          f.get(j).get(cols).i32LtS().brIf(0);
        }
        f.end();
        f.get(rowC).get(ldc).i32Add().set(rowC);
        f.incr(rowT, 4 * nr);
        f.incr(i, 1);
        f.get(i).i32Const(m).i32LtS().brIf(0);
      }
      f.end();
    }
    f.end();
  };

  f.get(pB).set(bSliver);
  f.get(pC).set(cCol);
  f.get(nc).set(nLeft);
  f.loop(); // jr: slivers of B
  {
    f.get(pA).set(a);
    f.get(cCol).set(c);
    f.get(mc).set(mLeft);
    if (code) code.at.forEach((x, j) => f.get(colAt[j]).set(x));
    f.loop(); // ir: slivers of A
    {
      // The last sliver of a block that is not a multiple of mr rows tall runs a tile of only its
      // m rows (packed A still holds mr per step: the rest are zeros, never read): 10x36864x25
      // (conv1's forward, every third tile such an edge) 576 -> 495 us.
      f.get(mLeft).i32Const(mr).i32GeS().if();
      tileOf(mr);
      f.else();
      for (let m = 1; m < mr; m++) {
        f.get(mLeft).i32Const(m).i32Eq().if();
        tileOf(m);
        f.end();
      }
      f.end();
      f.get(c).get(ldc).i32Const(mr).i32Mul().i32Add().set(c);
      code?.nextRows(mr);
      f.get(mLeft).i32Const(mr).i32Sub().tee(mLeft).i32Const(0).i32GtS().brIf(0);
    }
    f.end();
    f.get(b).set(bSliver); // the next B sliver
    f.incr(cCol, nr * 4);
    if (code) colAt.forEach((x, j) => f.get(x).get(code.cs[j]).i32Const(nr).i32Mul().i32Add().set(x));
    f.get(nLeft).i32Const(nr).i32Sub().tee(nLeft).i32Const(0).i32GtS().brIf(0);
  }
  f.end();
  return f;
}

/**
 * kernelDirectB(pA, pB, pC, ldc, mc, nc, kc, accumulate, buf, rsB, dk[, epi, row0, col0]),
 * addresses and ldc, rsB in bytes (epi, row0, col0 as for kernel): kernel's product (always
 * full-width tiles) with B as it lies in memory (unit column
 * stride, row stride rsB) instead of packed: sliver s, step k is the nr floats at
 * pB + s*nr*4 + k*rsB. nc must be a multiple of nr (every B load is in bounds); `buf` holds
 * DIRECT_GROUP * ceil(MC/mr)*mr x nr floats.
 *
 * B's rows lie a row stride apart (16 KiB for the conv GEMMs' N = 4096, which puts every row of a
 * sliver in the same L1 set and on its own page), so a group of DIRECT_GROUP slivers (together one
 * cache line per row) is swept dk steps at a time: for each sliver, each row tile of A runs those
 * dk steps from its accumulators parked in `buf`, while the dk rows of B are in L1 and the TLB;
 * after the last chunk buf goes into C. One sweep over all kc steps instead (reading each row of B
 * once per row tile from L2 or further) was slower than packing: 20x4096x250 1.96 ms against 1.69.
 * Per element of C the sum runs over k in order as in kernel (the running sum is parked in buf
 * exactly), so both give the same bits.
 */
function buildDirectKernel(cfg: SimdConfig, epilogue?: GemmEpilogue): FuncBuilder {
  const { mr, nr, mc: MC } = cfg;
  const G = DIRECT_GROUP;
  const nv = nr / 4;
  const bufSliver = Math.ceil(MC / mr) * mr * nr * 4; // bytes of buf per sliver of a group
  const f = new FuncBuilder('kernelDirectB', Array<typeof I32>(epilogue ? 14 : 11).fill(I32));
  const [pA, pB, pC, ldc, mc, nc, kc, accumulate, buf, rsB, dk, epi, row0, col0] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
  const nLeft = f.local(I32), mLeft = f.local(I32), kLeft = f.local(I32), kk = f.local(I32), first = f.local(I32);
  const a = f.local(I32), b = f.local(I32), aEnd = f.local(I32), a0 = f.local(I32), aChunk = f.local(I32), bChunk = f.local(I32);
  const bGroup = f.local(I32), cCol = f.local(I32), row = f.local(I32), c = f.local(I32), i = f.local(I32);
  const g = f.local(I32), s = f.local(I32), bS = f.local(I32), bufS = f.local(I32);
  const acc: number[][] = [];
  for (let r = 0; r < mr; r++) acc.push(Array.from({ length: nv }, () => f.local(V128)));
  const bv = Array.from({ length: nv }, () => f.local(V128));
  const av = f.local(V128);
  // The epilogue's operands: groupAt[] follows the group (bGroup), code.at[] the row of C stored.
  const code = epilogue ? new EpilogueCode(f, epilogue) : undefined;
  const groupAt = code ? code.at.map(() => f.local(I32)) : [];
  const value = f.local(V128);
  if (code) {
    f.get(epi).if();
    code.init(epi, row0, col0);
    code.at.forEach((x, j) => f.get(x).set(groupAt[j]));
    f.end();
  }

  f.get(pB).set(bGroup);
  f.get(pC).set(cCol);
  f.get(nc).set(nLeft);
  f.loop(); // groups of up to G slivers of B
  {
    // g = min(G, nLeft / nr) slivers in this group
    f.get(nLeft).i32Const(nr).i32DivU().set(g);
    f.get(g).i32Const(G).i32GtS().if().i32Const(G).set(g).end();
    f.get(pA).set(aChunk);
    f.get(bGroup).set(bChunk);
    f.get(kc).set(kLeft);
    f.i32Const(1).set(first);
    f.loop(); // chunks of DK steps
    {
      f.get(kLeft).set(kk);
      f.get(kk).get(dk).i32GtS().if().get(dk).set(kk).end();
      f.i32Const(0).set(s);
      f.get(bChunk).set(bS);
      f.get(buf).set(bufS);
      f.loop(); // slivers of the group
      {
        f.get(aChunk).set(a0);
        f.get(bufS).set(row);
        f.get(mc).set(mLeft);
        f.loop(); // ir: slivers of A
        {
          f.get(first).if();
          for (const r of acc) for (const x of r) f.v128Zero().set(x);
          f.else();
          for (let r = 0; r < mr; r++) for (let v = 0; v < nv; v++) f.get(row).v128Load(4 * nr * r + 16 * v).set(acc[r][v]);
          f.end();
          f.get(a0).set(a);
          f.get(bS).set(b);
          f.get(a0).get(kk).i32Const(mr * 4).i32Mul().i32Add().set(aEnd);
          f.loop();
          kStep(f, cfg, a, b, acc, bv, av);
          f.incr(a, mr * 4);
          f.get(b).get(rsB).i32Add().set(b);
          f.get(a).get(aEnd).i32Ne().brIf(0);
          f.end();
          for (let r = 0; r < mr; r++) for (let v = 0; v < nv; v++) f.get(row).get(acc[r][v]).v128Store(4 * nr * r + 16 * v);
          f.incr(row, 4 * nr * mr);
          f.get(a0).get(kc).i32Const(mr * 4).i32Mul().i32Add().set(a0); // the next A sliver, same steps
          f.get(mLeft).i32Const(mr).i32Sub().tee(mLeft).i32Const(0).i32GtS().brIf(0);
        }
        f.end();
        f.incr(bS, nr * 4);
        f.incr(bufS, bufSliver);
        f.incr(s, 1);
        f.get(s).get(g).i32LtS().brIf(0);
      }
      f.end();
      f.get(aChunk).get(kk).i32Const(mr * 4).i32Mul().i32Add().set(aChunk);
      f.get(bChunk).get(kk).get(rsB).i32Mul().i32Add().set(bChunk);
      f.i32Const(0).set(first);
      f.get(kLeft).get(kk).i32Sub().tee(kLeft).i32Const(0).i32GtS().brIf(0);
    }
    f.end();
    // Each sliver's first mc rows of buf into C's nr columns: set or add.
    f.i32Const(0).set(s);
    f.get(buf).set(bufS);
    f.loop();
    {
      f.get(cCol).set(c);
      f.get(bufS).set(row);
      f.get(mc).set(i);
      // This sliver's first row: s * nr columns into the group.
      if (code) code.at.forEach((x, j) => f.get(groupAt[j]).get(s).i32Const(nr).i32Mul().get(code.cs[j]).i32Mul().i32Add().set(x));
      f.loop();
      {
        const plainStores = (): void => {
          f.get(accumulate).if();
          for (let v = 0; v < nv; v++) f.get(c).get(c).v128Load(16 * v).get(row).v128Load(16 * v).f32x4Add().v128Store(16 * v);
          f.else();
          for (let v = 0; v < nv; v++) f.get(c).get(row).v128Load(16 * v).v128Store(16 * v);
          f.end();
        };
        if (!code) plainStores();
        else {
          f.get(epi).if();
          code.rowStart();
          for (let v = 0; v < nv; v++) {
            f.get(row).v128Load(16 * v).set(value);
            f.get(accumulate).if().get(c).v128Load(16 * v).get(value).f32x4Add().set(value).end();
            f.get(c);
            code.applyRow(value, 4 * v);
            f.v128Store(16 * v);
          }
          f.else();
          plainStores();
          f.end();
          code.nextRows(1);
        }
        f.get(c).get(ldc).i32Add().set(c);
        f.incr(row, 4 * nr);
        f.get(i).i32Const(1).i32Sub().tee(i).brIf(0);
      }
      f.end();
      f.incr(cCol, nr * 4);
      f.incr(bufS, bufSliver);
      f.incr(s, 1);
      f.get(s).get(g).i32LtS().brIf(0);
    }
    f.end();
    f.get(bGroup).get(g).i32Const(nr * 4).i32Mul().i32Add().set(bGroup);
    if (code) groupAt.forEach((x, j) => f.get(x).get(g).i32Const(nr).i32Mul().get(code.cs[j]).i32Mul().i32Add().set(x));
    f.get(nLeft).get(g).i32Const(nr).i32Mul().i32Sub().tee(nLeft).i32Const(0).i32GtS().brIf(0);
  }
  f.end();
  return f;
}

/**
 * pack(src, stride, step, dst, count, kc), addresses and strides in bytes: packs `count` elements
 * along `stride` by kc steps along `step` into slivers of w (w = mr for A, nr for B): sliver s,
 * step t, element i goes to dst + 4*(s*w*kc + t*w + i), from src + (s*w + i)*stride + t*step. The
 * last sliver, when count is not a multiple of w, is zero-filled past count. For A, stride is A's
 * row stride and step its column stride; for B, stride is B's column stride and step its row
 * stride. count, kc >= 1.
 *
 * Full slivers take one of three paths: w adjacent elements (stride 4: B row-major, A transposed)
 * are copied as f32x4 vectors, every full sliver at once and G = 8 steps at a time, so the source
 * is read along its rows by G streams (B's rows 16 KiB apart, as in the conv GEMMs with N = 4096,
 * share L1 sets and sit on a page each; read down the columns, a line per row, 20x4096x250 took
 * 925 us, by row groups 878; 10x36864x25 483 -> 471); adjacent steps (step 4: A row-major, B
 * transposed) are read as f32x4 vectors along the steps and transposed 4x4 in registers; anything
 * else is copied one float at a time. Transposing packed a 4096 x 1000 A in 1.6 ms instead of 2.5
 * (float by float).
 */
function buildPack(name: string, w: number): FuncBuilder {
  const f = new FuncBuilder(name, [I32, I32, I32, I32, I32, I32]);
  const [src, stride, step, dst, count, kc] = [0, 1, 2, 3, 4, 5];
  const left = f.local(I32), k = f.local(I32), p = f.local(I32), q = f.local(I32);
  const v = Array.from({ length: 4 }, () => f.local(V128)), t = Array.from({ length: 4 }, () => f.local(V128));

  /** The stride-4 full slivers, G steps of all of them at a time (see below); leaves left < w, src and dst past them. */
  function rowGroups(): void {
    const G = 8;
    const nFull = f.local(I32), sl = f.local(I32), k0 = f.local(I32), kk = f.local(I32), d = f.local(I32), r = f.local(I32);
    const rows = Array.from({ length: G }, () => f.local(I32));
    const sliverBytes = f.local(I32);
    f.get(left).i32Const(w).i32DivU().set(nFull);
    f.get(kc).i32Const(4 * w).i32Mul().set(sliverBytes);
    f.i32Const(0).set(k0);
    f.loop(); // groups of G steps
    {
      f.get(kc).get(k0).i32Sub().set(kk);
      for (let i = 0; i < G; i++) f.get(src).get(k0).i32Const(i).i32Add().get(step).i32Mul().i32Add().set(rows[i]);
      f.get(dst).get(k0).i32Const(4 * w).i32Mul().i32Add().set(d);
      f.get(nFull).set(sl);
      f.get(kk).i32Const(G).i32GeS().if();
      {
        f.loop(); // slivers, G steps each
        for (let i = 0; i < G; i++) {
          for (let v = 0; v < w / 4; v++) f.get(d).get(rows[i]).v128Load(16 * v).v128Store(4 * w * i + 16 * v);
          f.incr(rows[i], 4 * w);
        }
        f.get(d).get(sliverBytes).i32Add().set(d);
        f.get(sl).i32Const(1).i32Sub().tee(sl).brIf(0);
        f.end();
      }
      f.else();
      {
        // The last kc % G steps, one row of every sliver at a time.
        f.i32Const(0).set(r);
        f.loop();
        {
          f.get(src).get(k0).get(r).i32Add().get(step).i32Mul().i32Add().set(p);
          f.get(dst).get(k0).get(r).i32Add().i32Const(4 * w).i32Mul().i32Add().set(q);
          f.get(nFull).set(sl);
          f.loop();
          for (let v = 0; v < w / 4; v++) f.get(q).get(p).v128Load(16 * v).v128Store(16 * v);
          f.incr(p, 4 * w);
          f.get(q).get(sliverBytes).i32Add().set(q);
          f.get(sl).i32Const(1).i32Sub().tee(sl).brIf(0);
          f.end();
          f.incr(r, 1);
          f.get(r).get(kk).i32LtS().brIf(0);
        }
        f.end();
      }
      f.end();
      f.incr(k0, G);
      f.get(k0).get(kc).i32LtS().brIf(0);
    }
    f.end();
    f.get(src).get(nFull).i32Const(4 * w).i32Mul().i32Add().set(src);
    f.get(dst).get(nFull).get(sliverBytes).i32Mul().i32Add().set(dst);
    f.get(left).get(nFull).i32Const(w).i32Mul().i32Sub().set(left);
  }

  /** Copies local[k] steps (>= 1) of one sliver from p to dst, one float at a time. */
  const scalarSteps = (): void => {
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
  };

  f.get(count).set(left);
  // w adjacent elements (stride 4: B row-major, A transposed): every full sliver at once, G steps
  // at a time, so the source is read along its rows (G streams a prefetcher follows) rather than
  // down its columns a line per row (rows 16 KiB apart, as in the conv GEMMs, share L1 sets and
  // each sit on their own page).
  f.get(stride).i32Const(4).i32Eq().get(left).i32Const(w).i32GeS().i32And().if();
  rowGroups();
  f.end();
  f.block();
  f.loop(); // full slivers
  {
    f.get(left).i32Const(w).i32LtS().brIf(1);
    f.get(src).set(p);
    // (stride 4 never gets here: rowGroups took every full sliver.)
    // Groups of 4 steps: when step is 4 bytes, transpose 4x4 blocks (local[k] = kc / 4 groups), then the kc % 4 rest one by one.
    f.get(step).i32Const(4).i32Eq().if().get(kc).i32Const(2).i32ShrU().set(k).else().i32Const(0).set(k).end();
    f.get(k).i32Eqz().i32Eqz().if();
    {
      f.loop();
      for (let g = 0; g < w / 4; g++) {
        // v[i] = the 4 steps of element 4g + i; t = pairs interleaved; then one step per vector.
        for (let i = 0; i < 4; i++) f.get(p).get(stride).i32Const(4 * g + i).i32Mul().i32Add().v128Load().set(v[i]);
        f.get(v[0]).get(v[1]).i32x4Shuffle([0, 4, 1, 5]).set(t[0]);
        f.get(v[0]).get(v[1]).i32x4Shuffle([2, 6, 3, 7]).set(t[1]);
        f.get(v[2]).get(v[3]).i32x4Shuffle([0, 4, 1, 5]).set(t[2]);
        f.get(v[2]).get(v[3]).i32x4Shuffle([2, 6, 3, 7]).set(t[3]);
        f.get(dst).get(t[0]).get(t[2]).i32x4Shuffle([0, 1, 4, 5]).v128Store(16 * g);
        f.get(dst).get(t[0]).get(t[2]).i32x4Shuffle([2, 3, 6, 7]).v128Store(4 * w + 16 * g);
        f.get(dst).get(t[1]).get(t[3]).i32x4Shuffle([0, 1, 4, 5]).v128Store(8 * w + 16 * g);
        f.get(dst).get(t[1]).get(t[3]).i32x4Shuffle([2, 3, 6, 7]).v128Store(12 * w + 16 * g);
      }
      f.incr(p, 16);
      f.incr(dst, 16 * w);
      f.get(k).i32Const(1).i32Sub().tee(k).brIf(0);
      f.end();
      f.get(kc).get(kc).i32Const(2).i32ShrU().i32Const(4).i32Mul().i32Sub().set(k);
    }
    f.else();
    f.get(kc).set(k);
    f.end();
    f.get(k).i32Eqz().i32Eqz().if();
    scalarSteps();
    f.end();
    // The next sliver starts w elements further along `stride`.
    f.get(src).get(stride).i32Const(w).i32Mul().i32Add().set(src);
    f.get(left).i32Const(w).i32Sub().set(left);
    f.br(0);
  }
  f.end();
  f.end();
  f.get(left).i32Eqz().if().return().end();
  // The ragged last sliver: zero it, then copy its `left` real elements, one column of it at a time.
  f.get(dst).set(p);
  f.get(kc).set(k);
  f.loop();
  for (let v = 0; v < w / 4; v++) f.get(p).v128Zero().v128Store(16 * v);
  f.incr(p, 4 * w);
  f.get(k).i32Const(1).i32Sub().tee(k).brIf(0);
  f.end();
  f.loop(); // one element of the sliver's width per iteration
  {
    f.get(src).set(p);
    f.get(dst).set(q);
    f.get(kc).set(k);
    f.loop();
    f.get(q).get(p).f32Load().f32Store();
    f.get(p).get(step).i32Add().set(p);
    f.incr(q, 4 * w);
    f.get(k).i32Const(1).i32Sub().tee(k).brIf(0);
    f.end();
    f.get(src).get(stride).i32Add().set(src);
    f.incr(dst, 4);
    f.get(left).i32Const(1).i32Sub().tee(left).brIf(0);
  }
  f.end();
  return f;
}
