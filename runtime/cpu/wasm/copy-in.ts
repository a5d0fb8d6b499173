// The copy-in path of the Wasm kernels (elementwise, sums, unfold/fold, gather/scatterAdd) for
// operands outside the heap (eager tensors are plain typed arrays): `stage` copies each such
// operand's span into one reusable heap scratch area with one TypedArray.set, the kernel runs
// there, and an output outside the heap is copied out the same way.
//
// Eager storages cannot live in the heap themselves: their blocks would only be freed by a
// FinalizationRegistry, whose callbacks never run during a synchronous training loop. The
// scratch area is reused from call to call (grown when a call needs more) and freed after a call
// that needed more than KEEP_BYTES, so the heap holds at most that much for it between calls.
// (The matmul keeps its own ScratchArea, sized for its operands, so the two do not keep re-growing each other's.)
import type { HostArray } from '../../backend.js';
import { alignBytes, ScratchArea, type WasmHeap } from './heap.js';

/**
 * Below this many elements computed (read, for sums), an operand outside the heap that is as big
 * as the work keeps the kernel on JS (a small one, a bias, is copied in at any size). Measured on
 * eager ops (dispatch included, fresh output per call, JS vs copy-in interleaved, 2-core VM), in
 * ns/element: at 2048 add 3.8 vs 3.5, relu 3.9 vs 2.4, sum 2.1 vs 2.0 (even); at 4096 add 3.6 vs
 * 1.8, exp 10.5 vs 5.3, sum 1.5 vs 1.1; at 65536 add 2.4 vs 1.1, exp 16 vs 4.2, relu 4.1 vs 1.0,
 * sum 1.0 vs 0.35. Inside training steps 2048, 4096 and 16384 measured alike.
 */
let minCopyElements = 4096;

/** The current threshold (see above). */
export function copyInThreshold(): number {
  return minCopyElements;
}

/** Sets the threshold, returning the previous one (Infinity turns the copy-in path off: benchmarks, tests). */
export function setMinCopyElements(n: number): number {
  const prev = minCopyElements;
  minCopyElements = n;
  return prev;
}

/** An area bigger than this (bytes) is freed after the call that needed it. */
const KEEP_BYTES = 16 << 20;

const areas = new WeakMap<WasmHeap, ScratchArea>();
let uses = 0;

/** Byte address of at least `bytes` bytes of scratch (64-byte aligned), valid until `trimScratch`. */
function scratch(heap: WasmHeap, bytes: number): number {
  uses++;
  let area = areas.get(heap);
  if (!area) areas.set(heap, (area = new ScratchArea(heap)));
  return area.get(bytes);
}

/** After a call: frees the area if it grew past KEEP_BYTES (one big call should not pin it forever). */
function trimScratch(heap: WasmHeap): void {
  areas.get(heap)?.trim(KEEP_BYTES);
}

/** The scratch area's current size in bytes (tests check that it stays bounded). */
export function scratchBytes(heap: WasmHeap): number {
  return areas.get(heap)?.bytes ?? 0;
}

/** How many kernel calls have used the scratch area (tests check which path ran). */
export function scratchUses(): number {
  return uses;
}

/**
 * Bytes past an 8-byte boundary at which a copy from `data`, starting at its element `lo`, should
 * start in the heap. V8 copies between a plain and a shared buffer (TypedArray.set) word by word
 * only when both ends are equally aligned to 8 bytes, and byte by byte otherwise: 1.47 MB took
 * ~400 us instead of ~55 (a max-pool tap at an odd offset, a slice's rows). Placing the copy at the
 * same alignment as its source keeps every copy in and out on the fast path.
 */
export function copyMisalignment(data: ArrayBufferView, lo: number): number {
  return (data.byteOffset + lo * (data as HostArray).BYTES_PER_ELEMENT) % 8;
}

/** A typed array like `like`, of `length` elements at byte address `at` in the heap. */
function viewAt(heap: WasmHeap, like: HostArray, at: number, length: number): HostArray {
  const Ctor = like.constructor as new (buffer: ArrayBufferLike, byteOffset: number, length: number) => HostArray;
  return new Ctor(heap.buffer, at, length);
}

/** Elements a view spans in its array from its first element, or -1 when some stride is negative. */
export function spanOf(shape: readonly number[], strides: readonly number[]): number {
  let span = 1;
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 0) return 0;
    if (strides[i] < 0) return -1;
    span += (shape[i] - 1) * strides[i];
  }
  return span;
}

/** An operand's array and the span [lo, hi) of it a kernel call touches. */
export interface Span {
  readonly data: HostArray;
  readonly lo: number;
  readonly hi: number;
}

/** The span of `data` a view covers (hi < lo when a stride is negative). */
export function spanned(v: { readonly offset: number; readonly shape: readonly number[]; readonly strides: readonly number[] }, data: HostArray): Span {
  return { data, lo: v.offset, hi: v.offset + spanOf(v.shape, v.strides) };
}

/** One operand of a kernel call that `stage` places in the heap. */
export interface StagedOperand extends Span {
  /** Copy the values in (the kernel reads them). */
  readonly read: boolean;
  /** Copy the values back out after the call (the kernel writes them). */
  readonly write: boolean;
}

/**
 * Places a kernel call's operands in the heap: one that lies there already is used in place; the
 * others get a piece of the scratch area, filled with their values when read. `at[j]` is the byte
 * address of operand j's element 0 (as if the whole array lay there); `done()` copies the written
 * operands back and trims the area. For routines whose operands are not all elementwise-shaped
 * (unfold/fold, gather/scatterAdd) called on eager tensors.
 */
export function stage(heap: WasmHeap, operands: readonly StagedOperand[]): { at: number[]; done: () => void } {
  let bytes = 0;
  // -1: used in place, or nothing to place (an empty span outside the heap: a scalar passed by value).
  const place = operands.map((o) => {
    if (o.hi <= o.lo || heap.addressOf(o.data) >= 0) return -1;
    const at = bytes + copyMisalignment(o.data, o.lo);
    bytes += alignBytes((o.hi - o.lo) * o.data.BYTES_PER_ELEMENT + 8);
    return at;
  });
  const base = bytes > 0 ? scratch(heap, bytes) : 0;
  const copyOf = (j: number) => viewAt(heap, operands[j].data, base + place[j], operands[j].hi - operands[j].lo);
  const at = operands.map((o, j) => {
    if (place[j] < 0) return Math.max(0, heap.addressOf(o.data));
    if (o.read) (copyOf(j) as Float32Array).set(o.data.subarray(o.lo, o.hi) as Float32Array);
    return base + place[j] - o.lo * o.data.BYTES_PER_ELEMENT;
  });
  const done = () => {
    operands.forEach((o, j) => {
      if (place[j] >= 0 && o.write) (o.data as Float32Array).set(copyOf(j) as Float32Array, o.lo);
    });
    trimScratch(heap);
  };
  return { at, done };
}
