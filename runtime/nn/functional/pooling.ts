// Pooling over the unfold primitive: max-pooling finds each window's first maximum by comparing its
// taps and gathers it (so the gradient reaches only that maximum, PyTorch's tie-break), average
// pooling sums each window and divides. Adaptive average pooling multiplies by per-dim averaging matrices.
import { fmtShape, numel } from '../../../ir/index.js';
import { arange, ones, tensor } from '../../creation.js';
import { add, amax, argmax, div, expand, gather, ge, gt, isnan, logicalOr, lt, matmul, pad, scalarTensor, select, sum, where } from '../../ops/index.js';
import type { Tensor } from '../../tensor.js';
import { unfoldRaw } from './conv.js';
import { batchify, ntuple, requireFloat, type IntOrTuple } from './utils.js';

interface Geometry {
  kernel: number[];
  stride: number[];
  padding: number[];
  dilation: number[];
  /** Output size per spatial dim. */
  out: number[];
  /** Padding added after the input so ceil-mode windows that run past it still fit. */
  extra: number[];
}

/** PyTorch's pooling output size (pooling_output_shape), with its checks. */
function geometry(spatial: readonly number[], kernelSize: IntOrTuple, o: { stride?: IntOrTuple | null; padding?: IntOrTuple; dilation?: IntOrTuple; ceilMode?: boolean }, op: string): Geometry {
  const nd = spatial.length;
  const kernel = ntuple(kernelSize, nd, 'kernelSize', op);
  const stride = o.stride === undefined || o.stride === null || (Array.isArray(o.stride) && o.stride.length === 0) ? kernel : ntuple(o.stride, nd, 'stride', op);
  const padding = ntuple(o.padding ?? 0, nd, 'padding', op);
  const dilation = ntuple(o.dilation ?? 1, nd, 'dilation', op);
  if ([...kernel, ...stride, ...dilation].some((v) => v < 1)) throw new Error(`${op}: kernelSize, stride and dilation must be positive, got ${JSON.stringify({ kernel, stride, dilation })}`);
  if (padding.some((p, d) => p < 0 || p > kernel[d] / 2)) {
    throw new Error(`${op}: pad should be at most half of kernel size, but got padding ${JSON.stringify(padding)} for kernel ${JSON.stringify(kernel)}`);
  }
  const out = spatial.map((n, d) => {
    const span = n + 2 * padding[d] - dilation[d] * (kernel[d] - 1) - 1;
    let size = Math.floor((span + (o.ceilMode ? stride[d] - 1 : 0)) / stride[d]) + 1;
    // The last window must start inside the input or its left padding.
    if (o.ceilMode && (size - 1) * stride[d] >= n + padding[d]) size--;
    return size;
  });
  if (out.some((s) => s < 1)) throw new Error(`${op}: output size ${fmtShape(out)} is too small for input spatial size ${fmtShape(spatial)} with kernel ${fmtShape(kernel)}`);
  const extra = out.map((s, d) => Math.max(0, (s - 1) * stride[d] + dilation[d] * (kernel[d] - 1) + 1 - spatial[d] - 2 * padding[d]));
  return { kernel, stride, padding, dilation, out, extra };
}

/** Pads the end of each spatial dim by g.extra (a no-op outside ceil mode). */
const padEnd = (x: Tensor, g: Geometry, value: number): Tensor =>
  g.extra.some((e) => e > 0) ? pad(x, [...g.extra].reverse().flatMap((e) => [0, e]), value) : x;

/** [N, C, *spatial] -> [N, C, K, L]: each window's taps along dim 2. */
function windows(x: Tensor, g: Geometry, padValue: number): Tensor {
  const cols = unfoldRaw(padEnd(x, g, padValue), { kernel: g.kernel, stride: g.stride, padding: g.padding, dilation: g.dilation, padValue });
  return cols.reshape([x.shape[0], x.shape[1], numel(g.kernel), cols.shape[2]]);
}

export interface MaxPoolOptions {
  /** Defaults to kernelSize. */
  stride?: IntOrTuple | null;
  padding?: IntOrTuple;
  dilation?: IntOrTuple;
  ceilMode?: boolean;
  returnIndices?: boolean;
}

export function maxPool1d(x: Tensor, kernelSize: IntOrTuple, opts: MaxPoolOptions & { returnIndices: true }): [Tensor, Tensor];
export function maxPool1d(x: Tensor, kernelSize: IntOrTuple, opts?: MaxPoolOptions & { returnIndices?: false }): Tensor;
export function maxPool1d(x: Tensor, kernelSize: IntOrTuple, opts?: MaxPoolOptions): Tensor | [Tensor, Tensor];
export function maxPool1d(x: Tensor, kernelSize: IntOrTuple, opts: MaxPoolOptions = {}): Tensor | [Tensor, Tensor] {
  return maxPoolNd(x, kernelSize, opts, 1, 'maxPool1d');
}

export function maxPool2d(x: Tensor, kernelSize: IntOrTuple, opts: MaxPoolOptions & { returnIndices: true }): [Tensor, Tensor];
export function maxPool2d(x: Tensor, kernelSize: IntOrTuple, opts?: MaxPoolOptions & { returnIndices?: false }): Tensor;
export function maxPool2d(x: Tensor, kernelSize: IntOrTuple, opts?: MaxPoolOptions): Tensor | [Tensor, Tensor];
export function maxPool2d(x: Tensor, kernelSize: IntOrTuple, opts: MaxPoolOptions = {}): Tensor | [Tensor, Tensor] {
  return maxPoolNd(x, kernelSize, opts, 2, 'maxPool2d');
}

function maxPoolNd(input: Tensor, kernelSize: IntOrTuple, opts: MaxPoolOptions, nd: number, op: string): Tensor | [Tensor, Tensor] {
  requireFloat(input, op);
  const { x, undo } = batchify(input, nd, op, nd === 1 ? '[C, L] or [N, C, L]' : '[C, H, W] or [N, C, H, W]');
  const g = geometry(x.shape.slice(2), kernelSize, opts, op);
  const [n, c] = x.shape;
  const spatial = x.shape.slice(2);
  // The flat input position of each window's pick (the index PyTorch reports), then the value
  // gathered from the input itself: the gradient is a scatter into the input's shape, with no fold
  // of window columns (measured in the compiled ConvNet step: ~0.35 ms less for the first pool).
  // The taps of the positions 0..H*W-1 of one plane give each tap's position.
  const positions = arange(numel(spatial), { dtype: 'int32', device: x.device }).reshape([1, 1, ...spatial]);
  let index: Tensor;
  if (tilesExactly(g)) {
    // Windows side by side (the usual 2x2 stride-2 pool): each tap is a strided view of the input,
    // and its position the window's first tap's plus a constant (row-major offset of the tap), so
    // the chain carries scalars and reads one tensor of positions.
    const first = tapViews(positions, g)[0];
    const offsets = tapOffsets(g, spatial).map((o) => scalarTensor(o, 'int32', x.device));
    index = add(firstMaximum(tapViews(x.detach(), g), offsets), first).reshape([n, c, -1]);
  } else {
    const w = windows(x, g, -Infinity).detach(); // [N, C, K, L]
    const pos = windows(positions, g, -1); // [1, 1, K, L]
    const k = w.shape[2];
    const rows = (t: Tensor) => Array.from({ length: k }, (_, i) => select(t, 2, i));
    // Few taps (the usual 2x2, 3x3): a comparison chain that carries the position along; many: a
    // chain would be a huge expression, so reductions find the tap and a gather its position.
    index = (k <= CHAIN_TAPS ? firstMaximum(rows(w), rows(pos)) : gather(expand(pos, w.shape), 2, firstMaximumByReduction(w))).reshape([n, c, -1]);
    if (g.padding.some((p) => p > 0) || g.extra.some((e) => e > 0)) index = where(lt(index, 0), firstInside(pos), index);
  }
  const out = undo(gather(x.reshape([n, c, -1]), 2, index).reshape([n, c, ...g.out]));
  return opts.returnIndices ? [out, undo(index.reshape([n, c, ...g.out]))] : out;
}

/** Windows that tile the input without gaps, overlaps or padding, and few enough taps for the chain. */
const tilesExactly = (g: Geometry): boolean =>
  g.kernel.every((k, d) => g.stride[d] === k && g.dilation[d] === 1 && g.padding[d] === 0 && g.extra[d] === 0) && numel(g.kernel) <= CHAIN_TAPS;

/** Each tap's flat offset in the input from its window's first tap, in tapViews' order. */
function tapOffsets(g: Geometry, spatial: readonly number[]): number[] {
  const planeStrides = spatial.map((_, d) => spatial.slice(d + 1).reduce((a, b) => a * b, 1));
  let offsets = [0];
  g.kernel.forEach((k, d) => { offsets = offsets.flatMap((o) => Array.from({ length: k }, (_, i) => o + i * planeStrides[d])); });
  return offsets;
}

/**
 * The taps of windows that tile x [N, C, *spatial] exactly, as views (no copy: unfold would write
 * every element out once more): x cut to whole windows and each spatial dim split into (window,
 * tap); tap t of every window is then one strided [N, C, *out] view. In unfold's tap order.
 */
function tapViews(x: Tensor, g: Geometry): Tensor[] {
  const nd = g.kernel.length;
  let cut = x;
  g.out.forEach((o, d) => { if (cut.shape[2 + d] !== o * g.kernel[d]) cut = cut.narrow(2 + d, 0, o * g.kernel[d]); });
  const split = cut.reshape([x.shape[0], x.shape[1], ...g.out.flatMap((o, d) => [o, g.kernel[d]])]);
  const taps: Tensor[] = [];
  const visit = (t: Tensor, d: number): void => {
    if (d === nd) return void taps.push(t);
    // After selecting the taps of dims before d, dim d's tap axis sits at 2 + d + 1.
    for (let i = 0; i < g.kernel[d]; i++) visit(select(t, 3 + d, i), d + 1);
  };
  visit(split, 0);
  return taps;
}

/**
 * A window whose taps are all -inf keeps its first tap, which may lie in the padding (position
 * -1): PyTorch then reports the window's first tap inside the input. positions [1, 1, K, L] ->
 * that position per window, [1, 1, L].
 */
function firstInside(positions: Tensor): Tensor {
  const tap = argmax(ge(positions, 0), 2, true);
  return gather(positions, 2, tap).reshape([1, 1, -1]);
}

/** Up to this many taps per window, max-pool compares them in a chain (firstMaximum); beyond, in reductions (firstMaximumByReduction). */
const CHAIN_TAPS = 16;

/**
 * The position (from `positions`, one per tap) of the tap (one [N, C, ...] tensor per tap) of each
 * window that PyTorch's max-pool picks: the first maximum, or the last NaN. A chain of comparisons
 * over the taps, i.e. elementwise work along the windows (one kernel when compiled) rather than a
 * reduction across rows of taps.
 */
function firstMaximum(taps: readonly Tensor[], positions: readonly Tensor[]): Tensor {
  let top = taps[0];
  let best = expand(positions[0], top.shape);
  for (let t = 1; t < taps.length; t++) {
    const v = taps[t];
    const better = logicalOr(gt(v, top), isnan(v));
    top = where(better, v, top);
    best = where(better, positions[t], best);
  }
  return best;
}

/**
 * firstMaximum's pick for windows with many taps, [N, C, K, L] -> [N, C, 1, L], by reductions
 * across the taps: argmax gives the first maximum, but the first NaN, so a window with NaNs takes
 * its last NaN instead: the greatest tap index among its NaNs (the max of each NaN tap's index,
 * -1 for the others).
 */
function firstMaximumByReduction(w: Tensor): Tensor {
  const k = w.shape[2];
  const index = arange(k, { dtype: 'int32', device: w.device }).reshape([1, 1, k, 1]);
  const lastNaN = amax(where(isnan(w), index, scalarTensor(-1, 'int32', w.device)), 2, true);
  return where(ge(lastNaN, 0), lastNaN, argmax(w, 2, true));
}

export interface AvgPoolOptions {
  /** Defaults to kernelSize. */
  stride?: IntOrTuple | null;
  padding?: IntOrTuple;
  ceilMode?: boolean;
  /** Count the zero padding in each window's divisor (default true, as PyTorch). */
  countIncludePad?: boolean;
}

export const avgPool1d = (x: Tensor, kernelSize: IntOrTuple, opts: AvgPoolOptions = {}): Tensor => avgPoolNd(x, kernelSize, opts, 1, 'avgPool1d');
export const avgPool2d = (x: Tensor, kernelSize: IntOrTuple, opts: AvgPoolOptions & { divisorOverride?: number | null } = {}): Tensor =>
  avgPoolNd(x, kernelSize, opts, 2, 'avgPool2d');

function avgPoolNd(input: Tensor, kernelSize: IntOrTuple, opts: AvgPoolOptions & { divisorOverride?: number | null }, nd: number, op: string): Tensor {
  requireFloat(input, op);
  const { x, undo } = batchify(input, nd, op, nd === 1 ? '[C, L] or [N, C, L]' : '[C, H, W] or [N, C, H, W]');
  const g = geometry(x.shape.slice(2), kernelSize, { ...opts, dilation: 1 }, op);
  const sums = sum(windows(x, g, 0), 2); // [N, C, L]
  const [n, c] = x.shape;
  let divisor: Tensor | number;
  if (opts.divisorOverride !== undefined && opts.divisorOverride !== null) divisor = opts.divisorOverride;
  else {
    // Count each window's taps inside the input (and inside the zero padding too if countIncludePad),
    // as PyTorch does, by pooling a plane of ones; ceil-mode overhang never counts.
    const spatial = x.shape.slice(2);
    let plane = ones([1, 1, ...spatial], { dtype: x.dtype, device: x.device });
    let g1 = g;
    if (opts.countIncludePad ?? true) {
      plane = pad(plane, [...g.padding].reverse().flatMap((p) => [p, p]), 1);
      g1 = { ...g, padding: g.padding.map(() => 0) };
    }
    divisor = sum(windows(plane, g1, 0), 2);
  }
  return undo(div(sums, divisor).reshape([n, c, ...g.out]));
}

export const adaptiveAvgPool1d = (x: Tensor, outputSize: number | readonly [number | null]): Tensor => adaptiveAvgPoolNd(x, outputSize, 1, 'adaptiveAvgPool1d');
export const adaptiveAvgPool2d = (x: Tensor, outputSize: number | null | readonly (number | null)[]): Tensor => adaptiveAvgPoolNd(x, outputSize, 2, 'adaptiveAvgPool2d');

function adaptiveAvgPoolNd(input: Tensor, outputSize: number | null | readonly (number | null)[], nd: number, op: string): Tensor {
  requireFloat(input, op);
  const { x, undo } = batchify(input, nd, op, nd === 1 ? '[C, L] or [N, C, L]' : '[C, H, W] or [N, C, H, W]');
  const spatial = x.shape.slice(2);
  const sizes = typeof outputSize === 'number' || outputSize === null ? new Array(nd).fill(outputSize) : [...outputSize];
  if (sizes.length !== nd) throw new Error(`${op}: outputSize must have ${nd} entries, got ${JSON.stringify(outputSize)}`);
  const out = sizes.map((s, d) => (s === null ? spatial[d] : s));
  if (out.some((s) => !Number.isInteger(s) || s < 1)) throw new Error(`${op}: outputSize must be positive integers, got ${JSON.stringify(outputSize)}`);
  // Averaging over a box is separable: contract each spatial dim with an [out, in] averaging matrix.
  let y = x;
  for (let d = 0; d < nd; d++) {
    const axis = 2 + d;
    const m = averagingMatrix(spatial[d], out[d], x);
    if (axis === x.ndim - 1) y = matmul(y, m.t());
    else y = matmul(m, y.transpose(axis, -2)).transpose(axis, -2);
  }
  return undo(y);
}

/** Row i averages input positions floor(i*n/m) .. ceil((i+1)*n/m) - 1 (PyTorch's adaptive windows). */
function averagingMatrix(n: number, m: number, like: Tensor): Tensor {
  const a = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const start = Math.floor((i * n) / m);
    const end = Math.ceil(((i + 1) * n) / m);
    for (let j = start; j < end; j++) a[i * n + j] = 1 / (end - start);
  }
  return tensor(a, { dtype: like.dtype, device: like.device }).reshape([m, n]);
}
