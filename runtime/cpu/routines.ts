// The named routines of the op table (everything that is not elementwise, a reduction or a view),
// for the CPU.
import type { FullAttrs } from '../../ir/ops/creation.js';
import type { PadAttrs } from '../../ir/ops/movement.js';
import { indexOutOfBounds, type HostArray, type View } from '../backend.js';
import { matmul, matmulWithEpilogue, prepareMatmul, type MatArray } from './matmul.js';
import { epilogueKey, extraMode, type GemmEpilogue } from './wasm/gemm-epilogue.js';
import { coalesce, forEachIndex } from './strided.js';
import { wasmIndexLines } from './gather-wasm.js';
import { spanned } from './wasm/copy-in.js';
import { exprKey, runElementwise, type Operand } from './elementwise.js';
import { E, numel, type Expr } from '../../ir/index.js';
import { wasmHeap } from './wasm/heap.js';
import { MIN_WASM_ELEMENTS } from './wasm/elementwise-simd.js';

export type DataOf = (v: View) => HostArray;

/**
 * Output elements per epilogue pass: a panel of about 1 MiB of float32 is still in L2 when the
 * epilogue reads it, and is big enough that re-packing B for every panel (each panel is its own
 * GEMM) stays cheap: 64-row panels cost 64 re-packs of the 1000x100 weight at batch 4096.
 */
const EPILOGUE_ELEMENTS = 1 << 18;

/**
 * [..., M, K] @ [..., K, N] with broadcast batch dims; out is contiguous. With an `epilogue` (an
 * expression of the product `$0` and `extras` broadcast to the output shape), the Wasm GEMM
 * applies it to each value as it stores C (./matmul.ts matmulWithEpilogue); where that GEMM does
 * not run, the product is computed a panel of rows at a time and the epilogue applied to each
 * panel while it is in cache.
 */
export function runMatmul(a: View, b: View, out: View, dataOf: DataOf, epilogue?: Expr, extras: readonly View[] = []): void {
  const [m, k] = a.shape.slice(-2);
  const n = b.shape[b.shape.length - 1];
  const batch = out.shape.slice(0, -2);
  // Batch strides of each operand aligned to the output's batch dims (0 where broadcast).
  const batchStrides = (v: View) => batch.map((d, i) => {
    const j = i - (batch.length - (v.shape.length - 2));
    return j < 0 || v.shape[j] === 1 ? 0 : v.strides[j];
  });
  const outData = dataOf(out) as MatArray;
  const aData = dataOf(a) as MatArray;
  const bData = dataOf(b) as MatArray;
  const [ars, acs] = a.strides.slice(-2);
  const [brs, bcs] = b.strides.slice(-2);
  const extraData = extras.map(dataOf);
  const extraBatch = extras.map((e) => e.strides.slice(0, -2));
  const extraInner = extras.map(innerStrides);
  const code = epilogue && epilogueCode(epilogue, extras);
  let o = out.offset;
  forEachIndex(batch, [a.offset, b.offset, ...extras.map((e) => e.offset)], [batchStrides(a), batchStrides(b), ...extraBatch], ([ao, bo, ...eo]) => {
    const bOp = { data: bData, offset: bo, rowStride: brs, colStride: bcs };
    const aOp = { data: aData, offset: ao, rowStride: ars, colStride: acs };
    if (!epilogue) {
      matmul(m, n, k, aOp, bOp, outData, o);
    } else if (!matmulWithEpilogue(m, n, k, aOp, bOp, outData, o, {
      ...code!, extras: extras.map((_, j) => ({ data: extraData[j], offset: eo[j], rowStride: extraInner[j][0], colStride: extraInner[j][1] })),
    })) {
      const panelRows = Math.max(64, Math.ceil(EPILOGUE_ELEMENTS / n));
      for (let r0 = 0; r0 < m; r0 += panelRows) {
        const rows = Math.min(panelRows, m - r0);
        const po = o + r0 * n;
        matmul(rows, n, k, { data: aData, offset: ao + r0 * ars, rowStride: ars, colStride: acs }, bOp, outData, po);
        const panel: Operand = { data: outData, offset: po, strides: [n, 1], dtype: out.dtype };
        const extraOps = extras.map((e, j): Operand => {
          const [rs, cs] = e.strides.slice(-2);
          return { data: extraData[j], offset: eo[j] + r0 * rs, strides: [rs, cs], dtype: e.dtype };
        });
        runElementwise(epilogue, [rows, n], panel, [panel, ...extraOps]);
      }
    }
    o += m * n;
  });
}

/** The last two strides of a matmul operand (its rows and columns). */
const innerStrides = (v: View): [number, number] => [v.strides[v.strides.length - 2], v.strides[v.strides.length - 1]];

/** A matmul epilogue's code for the Wasm GEMMs (./wasm/gemm-epilogue.ts) and its key, from the expression and its extras' dtypes and column strides. */
function epilogueCode(expr: Expr, extras: readonly View[]): { spec: GemmEpilogue; key: string } {
  const spec: GemmEpilogue = { expr, extras: extras.map((e) => ({ dtype: e.dtype, mode: extraMode(innerStrides(e)[1]) })) };
  return { spec, key: epilogueKey(spec, exprKey(expr)) };
}

/**
 * runMatmul for one step of a compiled plan (shapes and strides fixed): a 2-D float32 product
 * that the Wasm GEMM takes calls it directly (./matmul.ts prepareMatmul) with the path, epilogue
 * module and strides chosen once; anything else, or operands outside the heap, runs runMatmul.
 */
export function prepareRunMatmul(a: View, b: View, out: View, dataOf: DataOf, epilogue?: Expr, extras: readonly View[] = []): () => void {
  const general = () => runMatmul(a, b, out, dataOf, epilogue, extras);
  if (out.shape.length !== 2 || a.shape.length !== 2 || b.shape.length !== 2) return general;
  const [m, k] = a.shape, n = b.shape[1];
  const code = epilogue && epilogueCode(epilogue, extras);
  const fast = prepareMatmul(m, n, k, [a.strides[0], a.strides[1]], [b.strides[0], b.strides[1]], out.dtype, code && { ...code, extras: extras.map(innerStrides) });
  if (!fast) return general;
  return () => {
    const extraArgs = extras.map((e) => ({ data: dataOf(e), offset: e.offset }));
    if (!fast(dataOf(a) as MatArray, a.offset, dataOf(b) as MatArray, b.offset, dataOf(out) as Float32Array, out.offset, extraArgs)) general();
  };
}

/** A view of `out` covering the input's region: where cat and pad copy each input. */
export function regionOf(out: View, starts: readonly number[], steps: readonly number[], shape: readonly number[]): View {
  return {
    storage: out.storage,
    dtype: out.dtype,
    shape,
    strides: out.strides.map((s, i) => s * steps[i]),
    offset: out.offset + out.strides.reduce((acc, s, i) => acc + s * starts[i], 0),
  };
}

export function catRegions(inputs: readonly View[], out: View, dim: number): View[] {
  let at = 0;
  return inputs.map((x) => {
    const starts = out.shape.map((_, i) => (i === dim ? at : 0));
    at += x.shape[dim];
    return regionOf(out, starts, out.shape.map(() => 1), x.shape);
  });
}

export function padRegion(out: View, x: View, a: PadAttrs): View {
  return regionOf(out, a.lo, a.interior.map((p) => p + 1), x.shape);
}

export function runFull(out: HostArray, a: FullAttrs, offset = 0, length = out.length - offset): void {
  const value = a.dtype === 'bool' ? (a.value ? 1 : 0) : a.value;
  // TypedArray.fill over a SharedArrayBuffer (the Wasm heap) takes a slow path in V8: 1.47 MB
  // took 100 us against 16 us unshared. The elementwise kernel of the constant (Wasm v128 stores)
  // fills a heap array at the unshared speed.
  if (a.dtype !== 'float64' && length >= MIN_WASM_ELEMENTS && (wasmHeap()?.addressOf(out) ?? -1) >= 0) {
    return runElementwise(E.const(value), [length], { data: out, offset, strides: [1], dtype: a.dtype }, []);
  }
  out.fill(value, offset, offset + length);
}

function outOfBounds(i: number, size: number, op: string, dim: number): never {
  throw indexOutOfBounds(op, i, dim, size);
}

/**
 * The loops of gather and scatterAdd over the index's shape, coalesced (strides[j] are operand j's:
 * values, index, out): `outer` dims that JS iterates, then `rows` lines of `len` elements that one
 * Wasm call covers (rowStrides and lineStrides per operand), so the per-element work is a load, a
 * bounds check and a store, with no callback, and short lines do not cost a call each.
 */
interface IndexLoops {
  outer: number[];
  outerStrides: number[][];
  rows: number;
  rowStrides: number[];
  len: number;
  lineStrides: number[];
}

function indexLoops(shape: readonly number[], strides: readonly (readonly number[])[]): IndexLoops {
  const c = coalesce(shape, strides);
  const n = c.shape.length;
  const dimOr = (d: number, fallback: number) => (d >= 0 ? c.shape[d] : fallback);
  return {
    outer: c.shape.slice(0, Math.max(0, n - 2)),
    outerStrides: c.strides.map((s) => s.slice(0, Math.max(0, n - 2))),
    rows: dimOr(n - 2, 1),
    rowStrides: c.strides.map((s) => (n >= 2 ? s[n - 2] : 0)),
    len: dimOr(n - 1, 1),
    lineStrides: c.strides.map((s) => (n >= 1 ? s[n - 1] : 0)),
  };
}

type IndexLine = (offsets: number[], len: number) => void;

/**
 * Runs one gather or scatterAdd: the Wasm kernel over each (rows x len) block where it runs, else
 * `jsLine` over each line. `wasmLines` returns -1 or the position of the first bad index in the
 * block, which is reported through `bad(indexElementOffset)`.
 */
function runIndexLoops(
  loops: IndexLoops,
  bases: readonly number[],
  wasm: { at: number[]; done: () => void } | null,
  wasmLines: (a: number, index: number, out: number) => number,
  bad: (indexOffset: number) => never,
  jsLine: IndexLine,
): void {
  const { outer, outerStrides, rows, rowStrides, len, lineStrides } = loops;
  if (wasm) {
    const [aa, ia, oa] = wasm.at;
    try {
      forEachIndex(outer, bases, outerStrides, ([ao, io, oo]) => {
        const at = wasmLines(aa + 4 * ao, ia + 4 * io, oa + 4 * oo);
        if (at >= 0) bad(io + Math.floor(at / len) * rowStrides[1] + (at % len) * lineStrides[1]);
      });
    } finally {
      wasm.done(); // trims the scratch area after a bad index too
    }
    return;
  }
  forEachIndex([...outer, rows], bases, outerStrides.map((s, j) => [...s, rowStrides[j]]), (offsets) => jsLine(offsets, len));
}

/** out[i][j][k] = x[i][index[i][j][k]][k] (for dim 1), and so on. */
export function runGather(x: View, index: View, out: View, dim: number, dataOf: DataOf): void {
  const xd = dataOf(x), id = dataOf(index), od = dataOf(out);
  const size = x.shape[dim], step = x.strides[dim];
  const loops = indexLoops(index.shape, [x.strides.map((s, i) => (i === dim ? 0 : s)), index.strides, out.strides]);
  const [xs2, is2, os2] = loops.rowStrides, [xs, is, os] = loops.lineStrides;
  const wasm = wasmIndexLines(spanned(x, xd), spanned(index, id), spanned(out, od), false, numel(index.shape));
  runIndexLoops(loops, [x.offset, index.offset, out.offset], wasm,
    (xa, ia, oa) => wasm!.run.gather(xa, ia, oa, loops.rows, loops.len, xs, is, os, xs2, is2, os2, step, size),
    (io) => outOfBounds(id[io], size, 'gather', dim),
    ([xo, io, oo], len) => {
      for (let e = 0; e < len; e++, xo += xs, io += is, oo += os) {
        let i = id[io];
        if (i < 0) i += size;
        if (i < 0 || i >= size) outOfBounds(id[io], size, 'gather', dim);
        od[oo] = xd[xo + i * step];
      }
    });
}

/** out = base, then out[i][index[i][j][k]][k] += src[i][j][k] (for dim 1), and so on. */
export function runScatterAdd(src: View, index: View, out: View, dim: number, dataOf: DataOf): void {
  const sd = dataOf(src), id = dataOf(index), od = dataOf(out);
  const size = out.shape[dim], step = out.strides[dim];
  const loops = indexLoops(index.shape, [src.strides, index.strides, out.strides.map((s, i) => (i === dim ? 0 : s))]);
  const [ss2, is2, os2] = loops.rowStrides, [ss, is, os] = loops.lineStrides;
  const wasm = wasmIndexLines(spanned(src, sd), spanned(index, id), spanned(out, od), true, numel(index.shape));
  runIndexLoops(loops, [src.offset, index.offset, out.offset], wasm,
    (sa, ia, oa) => wasm!.run.scatterAdd(sa, ia, oa, loops.rows, loops.len, ss, is, os, ss2, is2, os2, step, size),
    (io) => outOfBounds(id[io], size, 'scatterAdd', dim),
    ([so, io, oo], len) => {
      for (let e = 0; e < len; e++, so += ss, io += is, oo += os) {
        let i = id[io];
        if (i < 0) i += size;
        if (i < 0 || i >= size) outOfBounds(id[io], size, 'scatterAdd', dim);
        od[oo + i * step] += sd[so];
      }
    });
}


