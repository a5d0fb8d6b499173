// The named routines of the op table (everything that is not elementwise, a reduction or a view),
// for the CPU.
import type { FullAttrs } from '../../ir/ops/creation.js';
import type { PadAttrs } from '../../ir/ops/movement.js';
import { indexOutOfBounds, type HostArray, type View } from '../backend.js';
import { matmul, type MatArray } from './matmul.js';
import { forEachIndex } from './strided.js';
import { wasmIndexLines } from './gather-wasm.js';
import { spanOf, type Span } from './wasm/copy-in.js';
import { runElementwise, type Operand } from './elementwise.js';
import type { Expr } from '../../ir/index.js';

export type DataOf = (v: View) => HostArray;

/**
 * Output elements per epilogue pass: a panel of about 1 MiB of float32 is still in L2 when the
 * epilogue reads it, and is big enough that re-packing B for every panel (each panel is its own
 * GEMM) stays cheap: 64-row panels cost 64 re-packs of the 1000x100 weight at batch 4096.
 */
const EPILOGUE_ELEMENTS = 1 << 18;

/**
 * [..., M, K] @ [..., K, N] with broadcast batch dims; out is contiguous. With an `epilogue` (an
 * expression of the product `$0` and `extras` broadcast to the output shape), the product is
 * computed a panel of rows at a time and the epilogue applied to each panel while it is in cache.
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
  let o = out.offset;
  forEachIndex(batch, [a.offset, b.offset, ...extras.map((e) => e.offset)], [batchStrides(a), batchStrides(b), ...extraBatch], ([ao, bo, ...eo]) => {
    const bOp = { data: bData, offset: bo, rowStride: brs, colStride: bcs };
    if (!epilogue) {
      matmul(m, n, k, { data: aData, offset: ao, rowStride: ars, colStride: acs }, bOp, outData, o);
    } else {
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
  out.fill(a.dtype === 'bool' ? (a.value ? 1 : 0) : a.value, offset, offset + length);
}

function outOfBounds(i: number, size: number, op: string, dim: number): never {
  throw indexOutOfBounds(op, i, dim, size);
}

/**
 * Calls `row(offsets)` for each line of `shape` along its last dim (offsets[j] is operand j's start
 * of that line): the index routines run their inner loop over a line themselves, so the per-element
 * work is a load, a bounds check and a store, with no callback.
 */
function forEachLine(shape: readonly number[], bases: readonly number[], strides: readonly (readonly number[])[], row: (offsets: number[]) => void): void {
  if (shape.length === 0) { row([...bases]); return; }
  forEachIndex(shape.slice(0, -1), bases, strides.map((s) => s.slice(0, -1)), row);
}

/** out[i][j][k] = x[i][index[i][j][k]][k] (for dim 1), and so on. */
export function runGather(x: View, index: View, out: View, dim: number, dataOf: DataOf): void {
  const xd = dataOf(x), id = dataOf(index), od = dataOf(out);
  const xStrides = x.strides.map((s, i) => (i === dim ? 0 : s));
  const size = x.shape[dim], step = x.strides[dim];
  const len = index.shape.length ? index.shape[index.shape.length - 1] : 1;
  const [xs, is, os] = [xStrides, index.strides, out.strides].map((s) => (s.length ? s[s.length - 1] : 0));
  const wasm = wasmIndexLines(spanned(x, xd), spanned(index, id), spanned(out, od), false, numel(index.shape));
  forEachLine(index.shape, [x.offset, index.offset, out.offset], [xStrides, index.strides, out.strides], ([xo, io, oo]) => {
    if (wasm) {
      const [xa, ia, oa] = wasm.at;
      const bad = wasm.run.gather(xa + 4 * xo, ia + 4 * io, oa + 4 * oo, len, xs, is, os, step, size);
      if (bad >= 0) outOfBounds(id[io + bad * is], size, 'gather', dim);
      return;
    }
    for (let e = 0; e < len; e++, xo += xs, io += is, oo += os) {
      let i = id[io];
      if (i < 0) i += size;
      if (i < 0 || i >= size) outOfBounds(id[io], size, 'gather', dim);
      od[oo] = xd[xo + i * step];
    }
  });
  wasm?.done();
}

/** out = base, then out[i][index[i][j][k]][k] += src[i][j][k] (for dim 1), and so on. */
export function runScatterAdd(src: View, index: View, out: View, dim: number, dataOf: DataOf): void {
  const sd = dataOf(src), id = dataOf(index), od = dataOf(out);
  const outStrides = out.strides.map((s, i) => (i === dim ? 0 : s));
  const size = out.shape[dim], step = out.strides[dim];
  const len = index.shape.length ? index.shape[index.shape.length - 1] : 1;
  const [ss, is, os] = [src.strides, index.strides, outStrides].map((s) => (s.length ? s[s.length - 1] : 0));
  const wasm = wasmIndexLines(spanned(src, sd), spanned(index, id), spanned(out, od), true, numel(index.shape));
  forEachLine(index.shape, [src.offset, index.offset, out.offset], [src.strides, index.strides, outStrides], ([so, io, oo]) => {
    if (wasm) {
      const [sa, ia, oa] = wasm.at;
      const bad = wasm.run.scatterAdd(sa + 4 * so, ia + 4 * io, oa + 4 * oo, len, ss, is, os, step, size);
      if (bad >= 0) outOfBounds(id[io + bad * is], size, 'scatterAdd', dim);
      return;
    }
    for (let e = 0; e < len; e++, so += ss, io += is, oo += os) {
      let i = id[io];
      if (i < 0) i += size;
      if (i < 0 || i >= size) outOfBounds(id[io], size, 'scatterAdd', dim);
      od[oo + i * step] += sd[so];
    }
  });
  wasm?.done();
}

/** A view's array with the span of it the view covers (hi < lo when a stride is negative). */
function spanned(v: View, data: HostArray): Span {
  return { data, lo: v.offset, hi: v.offset + spanOf(v.shape, v.strides) };
}

const numel = (shape: readonly number[]) => shape.reduce((p, d) => p * d, 1);
