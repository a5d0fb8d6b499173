// A second float32 GEMM as emitted WebAssembly, for C = A @ Btᵀ when A's rows and Bt's rows both
// run contiguously along K (A.colStride = 1, B.rowStride = 1): a "dot-product" GEMM without packing.
//
// Why: the packed GEMM (./gemm-f32.ts) re-packs B for every KC block, and when B is a transposed
// view that is a strided gather (4x4 transposes in registers at best). With K long and M, N small
// (weight gradients: dW = dY @ colsᵀ, with K = batch x output pixels) the packing is most of the
// time: one thread, FMA, the seed ConvNet's conv1 weight gradient 10x36864 @ 36864x25 ran at
// 19 GFLOP/s, conv2's 20x4096 @ 4096x250 at 41, against ~55 for the 4x8 kernel alone. Here both
// operands are read where they lie: each register tile of MR x NR outputs keeps one f32x4
// accumulator per output and, per 4 steps of k, loads MR vectors of A and NR of Bt (4 consecutive
// k each) and does MR*NR multiply-adds; the four lanes of each accumulator are summed at the end.
//
// K is cut into KC-long chunks so that one chunk of the rows the inner loop sweeps stays in L2
// while the outer loop walks the other operand's tiles (whose MR or NR rows stay in L1); C carries
// the partial sums across chunks (the first chunk overwrites C, later ones add to it). Edge tiles
// (M % MR rows, N % NR columns) are smaller variants of the same tile function, so no work is
// wasted and nothing outside C[M, N] is written; K % 4 steps are a scalar tail. Row strides are
// arbitrary (0 = broadcast) and addresses need only be 4-byte aligned (unaligned v128 loads).

import { F32, FuncBuilder, I32, V128 } from './emit.js';
import { EpilogueCode, epilogueWithLastBlock, type GemmEpilogue } from './gemm-epilogue.js';

/** Tile and block sizes of one build. */
export interface DotConfig {
  /** Rows of C per register tile (rows of A read together). */
  mr: number;
  /** Columns of C per register tile (rows of Bt read together). */
  nr: number;
  /**
   * f32x4 steps per loop iteration of the full tile (1, 2 or 4; later steps use constant load
   * offsets). Edge tiles with few outputs take more, one per accumulator set (see buildTile).
   */
  unroll: number;
  /** Use f32x4.relaxed_madd (only if the engine validates it), else f32x4.mul + f32x4.add. */
  relaxed: boolean;
}

// 3 x 3: nine accumulators, three A vectors and one B vector live: 13 of the 16 xmm registers V8
// allocates on x64, 6 loads per 9 multiply-adds. Measured (one thread, FMA, operands in the heap
// and warm, K chunks of 1024, one accumulator set in every tile, medians in us for 10x36864 @ 36864x25 / 20x4096 @ 4096x250 /
// 64x1000 @ 1000x100; the packed GEMM 740 / 910-1010 / 263-272): 3x3 463 / 939 / 260, 2x4 475 /
// 1007 / 283, 4x2 495 / 1027 / 282, 2x3 502 / 1072 / 308, 3x2 570 / 1150 / 311; with more
// registers live it spills: 4x3 657 / 1527 / 479, 3x4 763 / 1589 / 515, 1x8 (ten pointers)
// 1087 / 2331 / 710, 2x5 828 / 1862 / 567. Unrolling k by 2 in the emitted code lost, as in
// gemm-f32.ts (TurboFan unrolls the loop itself): 2x4 721 / 1610 / 493 against 466 / 966 / 282,
// 3x3 608 / 1438 / 417. Giving the edge tiles 2 or 4 accumulator sets (buildTile) took the 3x3
// from 443 to 396 us on the first shape with chunks of 4096 (25 = 8 x 3 + 1 columns, 10 = 3 x 3 + 1
// rows: a third of its tiles are edges).
export const DEFAULT_DOT_CONFIG: Omit<DotConfig, 'relaxed'> = { mr: 3, nr: 3, unroll: 1 };

/** Index of the tile function for an m x n tile (1 <= m <= mr, 1 <= n <= nr); the driver is 0. */
const tileIndex = (cfg: DotConfig, m: number, n: number): number => 1 + (m - 1) * cfg.nr + (n - 1);

/**
 * The functions of the module, in module order; "gemmDot" is the entry point. With an `epilogue`
 * (./gemm-epilogue.ts) the tiles apply it as they store the last chunk of K into C; throws
 * Unsupported when the epilogue has no Wasm rendering.
 */
export function gemmDotFunctions(cfg: DotConfig, epilogue?: GemmEpilogue): FuncBuilder[] {
  const { mr, nr, unroll } = cfg;
  if (mr < 1 || nr < 1 || ![1, 2, 4].includes(unroll)) throw new Error('gemmDotFunctions: mr, nr >= 1 and unroll 1, 2 or 4');
  const fns = [buildDriver(cfg, epilogue !== undefined)];
  for (let m = 1; m <= mr; m++) for (let n = 1; n <= nr; n++) fns.push(buildTile(cfg, m, n, epilogue));
  return fns;
}

/**
 * gemmDot(M, N, K, pA, rsA, pBt, rsBt, pC, ldc, kc, epi, scratch) -> i32: C = A @ Btᵀ, where A(i, k) is
 * the float32 at pA + 4*(i*rsA + k), Bt(j, k) at pBt + 4*(j*rsBt + k) (so B(k, j) = Bt(j, k)),
 * C(i, j) at pC + 4*(i*ldc + j): addresses in bytes, strides in elements (0 = broadcast), kc >= 1
 * the chunk of K (the JS side picks it: matmul-simd.ts). C is overwritten (K = 0 writes nothing:
 * the caller zero-fills); nothing else is written. `scratch` is unused (runTasks passes one). Returns the number of K
 * chunks run, so callers can see the path was taken. epi: in a module built with an epilogue, the
 * address of its operand block (./gemm-epilogue.ts), applied with the last chunk; 0 = none.
 *
 * The outer loop walks the tiles of whichever operand has more rows, the inner loop sweeps all of
 * the other one's tiles: that one's chunk (the smaller, rows x kc floats) is what has to stay in L2,
 * and the outer tile's MR or NR rows stay in L1; the larger operand streams through once per chunk.
 * (With warm caches the other order measured within noise: conv2's 20x4096 @ 4096x250 838-855 us
 * against 848-906, conv1's the same; the order matters once the larger operand's chunk, 250 rows
 * there, would no longer fit in L2.)
 */
function buildDriver(cfg: DotConfig, withEpilogue: boolean): FuncBuilder {
  const { mr: MR, nr: NR } = cfg;
  const f = new FuncBuilder('gemmDot', Array<typeof I32>(12).fill(I32), [I32]);
  const [M, N, K, pA, rsA, pB, rsB, pC, ldc, KC, epi] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const pc = f.local(I32), kc = f.local(I32), accumulate = f.local(I32), chunks = f.local(I32), epiNow = f.local(I32);
  const i = f.local(I32), j = f.local(I32), mt = f.local(I32), nt = f.local(I32);

  f.get(M).i32Const(1).i32LtS().if().i32Const(0).return().end();
  f.get(N).i32Const(1).i32LtS().if().i32Const(0).return().end();
  for (const s of [rsA, rsB, ldc]) f.get(s).i32Const(4).i32Mul().set(s);

  // K = 0 writes nothing: the caller zero-fills C (matmul-simd.ts).
  f.get(K).i32Const(1).i32LtS().if().i32Const(0).return().end();

  /** Calls the tile function for the mt x nt tile at row i, column j of C, over the current chunk. */
  const tile = (): void => {
    const args = (): void => {
      f.get(pA).get(i).get(rsA).i32Mul().i32Add().get(pc).i32Const(4).i32Mul().i32Add().get(rsA);
      f.get(pB).get(j).get(rsB).i32Mul().i32Add().get(pc).i32Const(4).i32Mul().i32Add().get(rsB);
      f.get(pC).get(i).get(ldc).i32Mul().i32Add().get(j).i32Const(4).i32Mul().i32Add().get(ldc);
      f.get(kc).get(accumulate);
      if (withEpilogue) f.get(epiNow).get(i).get(j);
    };
    // Full tiles first (the common case), then the edge variants.
    f.get(mt).i32Const(MR).i32Eq().get(nt).i32Const(NR).i32Eq().i32And().if();
    args();
    f.call(tileIndex(cfg, MR, NR));
    f.else();
    for (let m = 1; m <= MR; m++) {
      for (let n = 1; n <= NR; n++) {
        if (m === MR && n === NR) continue;
        f.get(mt).i32Const(m).i32Eq().get(nt).i32Const(n).i32Eq().i32And().if();
        args();
        f.call(tileIndex(cfg, m, n));
        f.end();
      }
    }
    f.end();
  };
  /** The tiles of one chunk: outer loop over rows (i) or columns (j) of C, inner over the other. */
  const sweep = (rowsOuter: boolean): void => {
    const [o, O, ot, OT, in_, IN, it, IT] = rowsOuter ? [i, M, mt, MR, j, N, nt, NR] : [j, N, nt, NR, i, M, mt, MR];
    f.i32Const(0).set(o);
    f.loop();
    {
      f.remaining(ot, O, o, OT);
      f.i32Const(0).set(in_);
      f.loop();
      {
        f.remaining(it, IN, in_, IT);
        tile();
        f.incr(in_, IT);
        f.get(in_).get(IN).i32LtS().brIf(0);
      }
      f.end();
      f.incr(o, OT);
      f.get(o).get(O).i32LtS().brIf(0);
    }
    f.end();
  };

  f.i32Const(0).set(pc);
  f.loop(); // pc: KC-long chunks of K
  {
    f.get(K).get(pc).i32Sub().set(kc);
    f.get(kc).get(KC).i32GtS().if().get(KC).set(kc).end();
    f.get(pc).i32Const(0).i32Ne().set(accumulate);
    epilogueWithLastBlock(f, epi, pc, kc, K, epiNow);
    f.get(N).get(M).i32GtS().if();
    sweep(false);
    f.else();
    sweep(true);
    f.end();
    f.incr(chunks, 1);
    f.get(pc).get(KC).i32Add().set(pc);
    f.get(pc).get(K).i32LtS().brIf(0);
  }
  f.end();
  f.get(chunks);
  return f;
}

/**
 * tile_m_n(pA, rsA, pB, rsB, pC, ldc, kc, accumulate[, epi, row0, col0]), addresses and strides in
 * bytes: the m x n block of C at pC (row stride ldc) is set to (accumulate = 0) or incremented by
 * (1) the dot products of m rows of A (from pA, rsA apart) with n rows of Bt (from pB, rsB apart)
 * over kc >= 1 steps. With an epilogue and epi (its operand block) nonzero, each value stored is
 * the epilogue of the sum, the tile being at row row0, column col0 of C.
 *
 * The loop runs `unroll` f32x4 steps per iteration while 4 * unroll steps are left, the later
 * steps at constant offsets from the same row pointers (fewer pointer increments per load), then
 * single f32x4 steps, then a scalar tail of kc % 4 steps on the summed lanes. A tile with fewer
 * than 8 outputs keeps `unroll` separate accumulators per output where that stays within 8 vectors:
 * with one chain per output the edge tiles would wait on the multiply-add latency.
 */
function buildTile(cfg: DotConfig, m: number, n: number, epilogue?: GemmEpilogue): FuncBuilder {
  const { relaxed } = cfg;
  // Independent accumulators per output: 1 for tiles of 5 to 8 outputs, 2 for 3 or 4, 4 for 1 or 2;
  // each an f32x4 step of its own per iteration.
  const sets = m * n > 4 ? 1 : m * n > 2 ? 2 : 4;
  const U = Math.max(cfg.unroll, sets);
  const f = new FuncBuilder(`tile_${m}_${n}`, Array<typeof I32>(epilogue ? 11 : 8).fill(I32));
  const [pA, rsA, pB, rsB, pC, ldc, kc, accumulate, epi, row0, col0] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  const a = Array.from({ length: m }, () => f.local(I32));
  const b = Array.from({ length: n }, () => f.local(I32));
  const end = f.local(I32), left = f.local(I32), rowC = f.local(I32);
  const acc = Array.from({ length: sets }, () => Array.from({ length: m }, () => Array.from({ length: n }, () => f.local(V128))));
  const va = Array.from({ length: m }, () => f.local(V128));
  const vb = f.local(V128);
  const sum = Array.from({ length: m }, () => Array.from({ length: n }, () => f.local(F32)));
  const fa = Array.from({ length: m }, () => f.local(F32));
  const fb = f.local(F32);

  /** One f32x4 step (4 values of k) at byte offset `off` from the row pointers, into accumulator set s. */
  const step = (off: number, s: number): void => {
    for (let r = 0; r < m; r++) f.get(a[r]).v128LoadUnaligned(off).set(va[r]);
    for (let c = 0; c < n; c++) {
      f.get(b[c]).v128LoadUnaligned(off).set(vb);
      for (let r = 0; r < m; r++) {
        f.madd(acc[s][r][c], va[r], vb, relaxed);
      }
    }
  };
  const advance = (bytes: number): void => {
    for (const p of [...a, ...b]) f.incr(p, bytes);
  };

  f.get(pA).set(a[0]);
  for (let r = 1; r < m; r++) f.get(a[r - 1]).get(rsA).i32Add().set(a[r]);
  f.get(pB).set(b[0]);
  for (let c = 1; c < n; c++) f.get(b[c - 1]).get(rsB).i32Add().set(b[c]);
  for (const s of acc) for (const row of s) for (const x of row) f.v128Zero().set(x);

  // Iterations of U steps: until a[0] reaches `end` (an address, not a counter, as in gemm-f32.ts's kernel).
  f.get(pA).get(kc).i32Const(-4 * U).i32And().i32Const(4).i32Mul().i32Add().set(end);
  f.get(a[0]).get(end).i32Ne().if();
  f.loop();
  for (let t = 0; t < U; t++) step(16 * t, t % sets);
  advance(16 * U);
  f.get(a[0]).get(end).i32Ne().brIf(0);
  f.end();
  f.end();
  if (U > 1) {
    // The (kc / 4) % U single steps left.
    f.get(kc).i32Const(2).i32ShrU().i32Const(U - 1).i32And().tee(left).if();
    f.loop();
    step(0, 0);
    advance(16);
    f.get(left).i32Const(1).i32Sub().tee(left).brIf(0);
    f.end();
    f.end();
  }
  // Each output's accumulators (sets, then lanes) to one float.
  for (let r = 0; r < m; r++) {
    for (let c = 0; c < n; c++) {
      f.get(acc[0][r][c]);
      for (let s = 1; s < sets; s++) f.get(acc[s][r][c]).f32x4Add();
      f.tee(vb);
      f.f32x4ExtractLane(0).get(vb).f32x4ExtractLane(1).f32Add();
      f.get(vb).f32x4ExtractLane(2).get(vb).f32x4ExtractLane(3).f32Add().f32Add().set(sum[r][c]);
    }
  }
  // The kc % 4 steps left, one float at a time.
  f.get(kc).i32Const(3).i32And().tee(left).if();
  f.loop();
  for (let r = 0; r < m; r++) f.get(a[r]).f32Load().set(fa[r]);
  for (let c = 0; c < n; c++) {
    f.get(b[c]).f32Load().set(fb);
    for (let r = 0; r < m; r++) f.get(sum[r][c]).get(fa[r]).get(fb).f32Mul().f32Add().set(sum[r][c]);
  }
  advance(4);
  f.get(left).i32Const(1).i32Sub().tee(left).brIf(0);
  f.end();
  f.end();
  // Into C: set, or add to the earlier chunks' sums.
  const plainStores = (): void => {
    f.get(pC).set(rowC);
    for (let r = 0; r < m; r++) {
      if (r > 0) f.get(rowC).get(ldc).i32Add().set(rowC);
      f.get(accumulate).if();
      for (let c = 0; c < n; c++) f.get(rowC).get(rowC).f32Load(4 * c).get(sum[r][c]).f32Add().f32Store(4 * c);
      f.else();
      for (let c = 0; c < n; c++) f.get(rowC).get(sum[r][c]).f32Store(4 * c);
      f.end();
    }
  };
  if (!epilogue) {
    plainStores();
    return f;
  }
  // With the last chunk: each sum (plus C's earlier chunks), then its epilogue, into C.
  const code = new EpilogueCode(f, epilogue);
  f.get(epi).if();
  code.init(epi, row0, col0);
  f.get(pC).set(rowC);
  for (let r = 0; r < m; r++) {
    if (r > 0) f.get(rowC).get(ldc).i32Add().set(rowC);
    for (let c = 0; c < n; c++) {
      f.get(accumulate).if().get(rowC).f32Load(4 * c).get(sum[r][c]).f32Add().set(sum[r][c]).end();
      f.get(rowC).get(sum[r][c]);
      code.applyScalar(r, c);
      f.f32Store(4 * c);
    }
  }
  f.else();
  plainStores();
  f.end();
  return f;
}
