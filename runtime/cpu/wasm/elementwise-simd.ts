// Elementwise kernels in WebAssembly SIMD, generated from the op table's scalar expression
// (ir/expr.ts), for operands that lie in the CPU heap (./heap.ts) or are copied there for the call
// (./copy-in.ts), contiguous along the
// innermost dim, broadcast along it, or (float32, int32) a fixed step apart along it. A kernel runs `rows` rows of `n` elements (each operand
// with its own row stride); along a row, four lanes per step (f32x4 / i32x4), then one element at
// a time for the tail through the same lane-wise code (lane loads and stores), so no node has a
// second, scalar rendering.
//
// The expression's lanes come from ./simd-lanes.ts (which keeps the JS kernels' semantics); a
// node without a Wasm rendering (log, tanh, pow, sin, ...) makes the whole kernel stay on
// JS: `compileSimdElementwise` returns null.
import type { DType, Expr } from '../../../ir/index.js';
import type { Operand } from '../elementwise.js';
import { FuncBuilder, I32, V128 } from './emit.js';
import { wasmKernelsEnabled } from './kernel.js';
import { wasmHeap } from './heap.js';
import { copyInThreshold, spanOf, stage } from './copy-in.js';
import { forEachIndex } from '../strided.js';
import { bytesOf, compileCached, invoker, kindOf, LANES, Lanes, laneOperands, laneParams, type LaneMode } from './simd-lanes.js';

/**
 * A compiled kernel: (n, rows, planes, out address, out row stride, out plane stride, then per
 * input: its value for mode 'c', else its address, row stride and plane stride, and for mode 's'
 * its step along the row). Addresses are of each operand's first element; strides in bytes. It
 * computes `planes` planes of `rows` rows of `n` elements.
 */
export type SimdElementwise = (...args: number[]) => void;

/**
 * Emits the kernel function for `expr` over inputs of `inDtypes`, read as `modes` says, into
 * `outDtype`. Throws Unsupported for what it cannot do.
 */
function buildFunction(expr: Expr, inDtypes: readonly DType[], outDtype: DType, modes: readonly LaneMode[]): FuncBuilder {
  const outKind = kindOf(outDtype);
  for (const d of inDtypes) kindOf(d); // throws Unsupported for a dtype the lanes cannot hold
  // Params (see SimdElementwise): a 'c' input's value is f32 for float32, i32 for int32 and bool.
  const { params, IN, STRIDE, PLANE, STEP } = laneParams([I32, I32, I32, I32, I32, I32], inDtypes, modes, true);
  const f = new FuncBuilder('kernel', params);
  const N = 0, ROWS = 1, PLANES = 2, OUT = 3, OUT_STRIDE = 4, OUT_PLANE = 5;
  const moving = (j: number) => modes[j] === 'v' || modes[j] === 's';
  const addressed = (j: number) => modes[j] !== 'c';
  // Per plane: the rows left and each row's start; per row: the element count left and the moving addresses.
  const rowsLeft = f.local(I32), rowOut = f.local(I32), left = f.local(I32), pOut = f.local(I32);
  const rowIn = inDtypes.map((_, j) => (addressed(j) ? f.local(I32) : -1));
  const p = inDtypes.map((_, j) => (moving(j) ? f.local(I32) : -1));
  const lanes = new Lanes(f);

  // Broadcast values: a 'c' input splat once, before all loops; an 'r' input once per row (below),
  // at its row's address.
  const { splatRows, inputs } = laneOperands(f, lanes, inDtypes, modes, IN, p, STEP);

  /** Emits one step: LANES elements (`vector`) or one, in lane 0. */
  const step = (vector: boolean) => {
    // The store: the JS kernel stores a bool output by truthiness, others through the typed array (ToInt32 for int32).
    f.get(pOut);
    if (outKind === 'b') {
      lanes.expr(expr, inputs(vector), vector, 'b');
      lanes.maskToInt();
      const t = f.local(V128);
      f.tee(t).get(t).simdOp('i16x8.narrow_i32x4_u');
      f.tee(t).get(t).simdOp('i8x16.narrow_i16x8_u');
      if (vector) f.v128Store32Lane(0);
      else f.v128Store8Lane(0);
    } else {
      lanes.expr(expr, inputs(vector), vector, outKind);
      if (vector) f.v128StoreUnaligned();
      else f.v128Store32Lane(0);
    }
  };

  const advance = (elements: number) => {
    f.incr(pOut, elements * bytesOf(outDtype));
    inDtypes.forEach((d, j) => {
      if (modes[j] === 'v') f.incr(p[j], elements * bytesOf(d));
      else if (modes[j] === 's') f.get(p[j]).get(STEP[j]).i32Const(elements).i32Mul().i32Add().set(p[j]);
    });
    f.incr(left, -elements);
  };
  // for each plane
  f.block().loop();
  f.get(PLANES).i32Eqz().brIf(1);
  f.get(ROWS).set(rowsLeft).get(OUT).set(rowOut);
  inDtypes.forEach((_, j) => { if (addressed(j)) f.get(IN[j]).set(rowIn[j]); });
  //   for each row
  f.block().loop();
  f.get(rowsLeft).i32Eqz().brIf(1);
  f.get(N).set(left).get(rowOut).set(pOut);
  inDtypes.forEach((_, j) => { if (moving(j)) f.get(rowIn[j]).set(p[j]); });
  splatRows(rowIn);
  //     while (left >= 4) { four lanes }
  f.block().loop();
  f.get(left).i32Const(LANES).i32LtS().brIf(1);
  step(true);
  advance(LANES);
  f.br(0).end().end();
  //     while (left > 0) { one lane }
  f.block().loop();
  f.get(left).i32Eqz().brIf(1);
  step(false);
  advance(1);
  f.br(0).end().end();
  //     next row
  f.get(rowOut).get(OUT_STRIDE).i32Add().set(rowOut);
  inDtypes.forEach((_, j) => { if (addressed(j)) f.get(rowIn[j]).get(STRIDE[j]).i32Add().set(rowIn[j]); });
  f.incr(rowsLeft, -1);
  f.br(0).end().end();
  //   next plane
  f.get(OUT).get(OUT_PLANE).i32Add().set(OUT);
  inDtypes.forEach((_, j) => { if (addressed(j)) f.get(IN[j]).get(PLANE[j]).i32Add().set(IN[j]); });
  f.incr(PLANES, -1);
  f.br(0).end().end();
  return f;
}

const cache = new Map<string, SimdElementwise | null>();

/**
 * The Wasm kernel for `expr` (inputs of `inDtypes`, read as `modes` says) writing `outDtype`,
 * compiled once per key on the heap's memory (./kernel.ts); null when some node or dtype has no Wasm rendering
 * (the caller keeps the JS kernel).
 */
export function compileSimdElementwise(key: string, expr: Expr, inDtypes: readonly DType[], outDtype: DType, modes: readonly LaneMode[]): SimdElementwise | null {
  return compileCached(cache, key, () => buildFunction(expr, inDtypes, outDtype, modes));
}

/** Below this many elements per row, a strided kernel stays on JS. */
const MIN_ROW = 4;
/**
 * Below this many elements in all, a kernel stays on JS: a Wasm call's fixed cost outweighs its
 * speed. Measured (a prepared step's 3-node kernel over heap operands, us per call, JS -> Wasm):
 * 16 elements 0.13 -> 0.50, 64 0.28 -> 0.55, 200 0.69 -> 0.56, 256 -> 0.57.
 */
export const MIN_WASM_ELEMENTS = 128;
/**
 * An operand outside the heap is copied in when it spans at most 1/STAGE_RATIO of the elements
 * computed, or, for work of at least copyInThreshold() elements, at most STAGE_RATIO times them:
 * a strided view is copied as its whole span with one TypedArray.set (~0.15 ns a float) where the
 * JS kernel takes 2-3 ns an element. Measured (eager, [64, 10, 12, 12], one 2x2 max-pool tap of a
 * [64, 10, 24, 24] tensor, spanning 4x its elements, us): isnan 248 JS -> 161 Wasm, gt 268 -> 177.
 */
const STAGE_RATIO = 8;
/** A view spanning more than twice its elements is copied in only up to this many elements (16 MB of floats): the heap never shrinks. */
const SPARSE_COPY_MAX = 4 << 20;

type Merged = { readonly shape: readonly number[]; readonly strides: readonly (readonly number[])[] };

/**
 * Runs an elementwise kernel in Wasm when the output is contiguous along the innermost dim, every
 * input is contiguous along it, broadcast, or (not bool) strided, and the expression has a Wasm
 * rendering; returns false, having done nothing, otherwise. `merged` is the coalesced loop
 * (../strided.ts: the shape, then per operand its strides, the output's first). The kernel loops
 * over the three innermost dims; any outer dims are a loop here, one call per step. An operand
 * outside the heap (an eager tensor) is copied into a reusable scratch area for the call when it
 * is small next to the work (a bias: at most 1/STAGE_RATIO of the elements computed) or when the
 * work has at least copyInThreshold() elements (./copy-in.ts); an output outside the heap is then
 * written there and copied out. Below that the copies cost more than the kernel saves: JS runs.
 * `sig` names the expression and dtypes (with the lane modes, the kernel cache key).
 */
export function runSimdElementwise(sig: string, expr: Expr, merged: Merged, out: Operand, inputs: readonly Operand[]): boolean {
  const modes = laneModesOf(merged, inputs.map((x) => x.dtype));
  if (!modes) return false;
  const { shape, strides } = merged;
  const total = shape.reduce((a, b) => a * b, 1);
  const heap = wasmHeap();
  if (!heap) return false;
  // Big enough work may copy operands outside the heap in, and the output out (./copy-in.ts).
  const copyAll = total >= copyInThreshold();
  const outAt = heap.addressOf(out.data);
  // An output outside the heap: written to scratch, then copied out with one set, so it must be contiguous.
  if (outAt < 0 && (!copyAll || spanOf(shape, strides[0]) !== total)) return false;
  // Inputs outside the heap: copied in when small next to the work (a bias: at most
  // 1/STAGE_RATIO of the elements computed) or when the work is big enough to pay for the copy
  // (and the operand spans at most STAGE_RATIO times the elements computed: not a sparse view).
  const spans: number[] = [];
  for (let j = 0; j < inputs.length; j++) {
    if (modes[j] === 'c' || heap.addressOf(inputs[j].data) >= 0) { spans.push(0); continue; }
    const span = spanOf(shape, strides[j + 1]);
    const worthCopying = copyAll && (span <= 2 * total || (span <= STAGE_RATIO * total && span <= SPARSE_COPY_MAX));
    if (span < 0 || (span * STAGE_RATIO > total && !worthCopying)) return false;
    spans.push(span);
  }
  const kernel = compileSimdElementwise(`${sig}|${modes.join('')}`, expr, inputs.map((x) => x.dtype), out.dtype, modes);
  if (!kernel) return false;
  // Operands outside the heap go to the scratch area (./copy-in.ts); a 'c' operand travels by value
  // (a plan's constants are not in the heap), so it is given no place.
  const staged = stage(heap, [
    ...inputs.map((x, j) => ({ data: x.data, lo: x.offset, hi: x.offset + spans[j], read: true, write: false })),
    { data: out.data, lo: out.offset, hi: out.offset + total, read: false, write: true },
  ]);
  callsOf(kernel, modes, merged, [out.data.BYTES_PER_ELEMENT, ...inputs.map((x) => x.data.BYTES_PER_ELEMENT)])(out, staged.at[inputs.length], inputs, staged.at.slice(0, inputs.length));
  staged.done();
  return true;
}

/**
 * How the Wasm kernel reads each input of a loop `merged` (see runSimdElementwise), or null when
 * the loop is not one for Wasm (Wasm off, too small, short or strided rows of output, a strided
 * bool). Depends on the shapes, strides and dtypes only.
 */
function laneModesOf(merged: Merged, inDtypes: readonly DType[]): LaneMode[] | null {
  if (!wasmKernelsEnabled) return null;
  const { shape, strides } = merged;
  const ndim = shape.length;
  const inner = ndim - 1, row = ndim - 2;
  if (ndim > 1 && shape[inner] < MIN_ROW) return null;
  if (shape.reduce((a, b) => a * b, 1) < MIN_WASM_ELEMENTS) return null;
  if (ndim > 0 && strides[0][inner] !== 1) return null;
  const stride = (j: number, d: number) => (d < 0 ? 0 : strides[j + 1][d]);
  const modes = inDtypes.map((dtype, j): LaneMode | null => {
    const s = stride(j, inner);
    if (s === 1) return 'v';
    if (s !== 0) return dtype === 'bool' ? null : 's';
    // One value for the whole call only if it is one along the kernel's row and plane dims too.
    return stride(j, row) === 0 && stride(j, row - 1) === 0 ? 'c' : 'r';
  });
  return modes.includes(null) ? null : (modes as LaneMode[]);
}

/**
 * The Wasm kernel for one elementwise step of a compiled plan, its choice made once (see
 * runSimdElementwise; the same kernel): `run(out, inputs)` runs it when every operand lies in the
 * heap and returns true, else returns false having done nothing (the caller takes the general
 * path, which can copy operands in). Null when the loop or expression has no Wasm kernel.
 */
export function prepareSimdElementwise(sig: string, expr: Expr, merged: Merged, outDtype: DType, inDtypes: readonly DType[]): { run: (out: Operand, inputs: readonly Operand[]) => boolean } | null {
  const modes = laneModesOf(merged, inDtypes);
  const heap = wasmHeap();
  if (!modes || !heap) return null;
  const kernel = compileSimdElementwise(`${sig}|${modes.join('')}`, expr, inDtypes, outDtype, modes);
  if (!kernel) return null;
  const at = inDtypes.map(() => 0);
  const calls = callsOf(kernel, modes, merged, [bytesOf(outDtype), ...inDtypes.map(bytesOf)]);
  return {
    run(out, inputs) {
      const outAt = heap.addressOf(out.data);
      if (outAt < 0) return false;
      for (let j = 0; j < inputs.length; j++) {
        if (modes[j] === 'c') continue;
        const a = heap.addressOf(inputs[j].data);
        if (a < 0) return false;
        at[j] = a;
      }
      calls(out, outAt, inputs, at);
      return true;
    },
  };
}

/**
 * The kernel's calls for loop `merged`, made once per loop (a prepared step keeps it): `call(out,
 * outAt, inputs, at)` makes one call per step of the dims outside the kernel's three (../strided.ts
 * forEachIndex), the operands' offsets turned into addresses.
 */
function callsOf(kernel: SimdElementwise, laneModes: readonly LaneMode[], merged: Merged, bytes: readonly number[]): (out: Operand, outAt: number, inputs: readonly Operand[], at: readonly number[]) => void {
  const { shape, strides } = merged;
  const ndim = shape.length;
  const inner = ndim - 1, row = ndim - 2, plane = ndim - 3;
  const size = (d: number) => (d < 0 ? 1 : shape[d]);
  // bytes[0]: the output's element size, bytes[j + 1] input j's.
  const stride = (j: number, d: number) => (d < 0 ? 0 : strides[j][d] * bytes[j]);
  // Arguments: fixed ones now, addresses and 'c' values per call.
  const args: number[] = [size(inner), size(row), size(plane), 0, stride(0, row), stride(0, plane)];
  const slot: number[] = [];
  laneModes.forEach((mode, j) => {
    slot.push(args.length);
    if (mode === 'c') args.push(0);
    else args.push(0, stride(j + 1, row), stride(j + 1, plane));
    if (mode === 's') args.push(stride(j + 1, inner));
  });
  const invoke = invoker(args.length);
  const outer = shape.slice(0, Math.max(0, plane));
  const n = laneModes.length;
  return (out, outAt, inputs, at) => {
    const place = (offs: readonly number[]): void => {
      args[3] = outAt + offs[0] * bytes[0];
      for (let j = 0; j < n; j++) args[slot[j]] = laneModes[j] === 'c' ? inputs[j].data[offs[j + 1]] : at[j] + offs[j + 1] * bytes[j + 1];
      invoke(kernel, args);
    };
    const offsets = [out.offset];
    for (let j = 0; j < n; j++) offsets.push(inputs[j].offset);
    // Most loops have no dims outside the kernel's: one call, without forEachIndex.
    if (outer.length === 0) place(offsets);
    else forEachIndex(outer, offsets, strides, place);
  };
}

