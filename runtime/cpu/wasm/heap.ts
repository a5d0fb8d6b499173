// The CPU backend's WebAssembly heap: one WebAssembly.Memory that every Wasm kernel module imports,
// with a small allocator over it.
//
// Why one memory: a Wasm kernel can only read its own linear memory. Data that already lies in
// the heap (a compiled plan's arena, the parameters and optimizer state a compiled step adopted)
// is used where it lies; anything else is copied in first, which at 64x1000x100 cost ~20 % of a
// matmul. Why shared (a SharedArrayBuffer underneath, where the engine allows it): worker threads
// can then run kernels on the same memory, and a shared memory never moves when it grows, so typed
// arrays over it stay valid forever. A non-shared memory's buffer is detached on growth, so
// without SharedArrayBuffer (a browser page that is not cross-origin isolated) the heap only
// serves short-lived scratch space and storages stay plain typed arrays (see `canHoldStorages`).
import type { DType } from '../../../ir/index.js';
import type { HostArray } from '../../backend.js';
import { hostBytesPer } from '../../host.js';

const PAGE = 65536;
/** Every block starts on a 64-byte boundary: a cache line, and aligned for v128 loads. */
const ALIGN = 64;

/** `bytes` rounded up to the heap's alignment, so that pieces laid out one after another each start aligned. */
export const alignBytes = (bytes: number): number => Math.ceil(bytes / ALIGN) * ALIGN;

export interface HeapStats {
  /** Bytes in live blocks (rounded up to ALIGN each). */
  bytesInUse: number;
  blocks: number;
  /** Bytes of the memory itself (it grows, never shrinks). */
  bytesReserved: number;
}

export class WasmHeap {
  /** Byte address -> size of each live block. */
  private readonly live = new Map<number, number>();
  /** Free ranges [start, end), sorted by start, never adjacent (freeing coalesces). */
  private free: { start: number; end: number }[] = [];
  /** Every `memory.buffer` object seen: after a shared memory grows it hands out a new SharedArrayBuffer object. */
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private lastBuffer: ArrayBufferLike;
  private readonly finalizer = new FinalizationRegistry<number>((ptr) => this.freeBytes(ptr));

  constructor(readonly memory: WebAssembly.Memory, readonly shared: boolean) {
    this.lastBuffer = memory.buffer;
    this.buffers.add(this.lastBuffer);
    // Address 0 is never handed out, so 0 can mean "none" in kernels' arguments.
    this.free.push({ start: ALIGN, end: memory.buffer.byteLength });
  }

  /** A typed array over the heap (see `addressOf`). Shared heaps only: only they keep views valid across growth. */
  get canHoldStorages(): boolean {
    return this.shared;
  }

  /** The memory's current buffer (re-read after every allocation: growth replaces it). */
  get buffer(): ArrayBufferLike {
    const b = this.memory.buffer;
    if (b !== this.lastBuffer) {
      this.lastBuffer = b;
      this.buffers.add(b);
    }
    return b;
  }

  /** Reserves `bytes` (at least 1) and returns the byte address, 64-byte aligned; grows the memory when no free range fits. */
  allocBytes(bytes: number): number {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    let i = this.free.findIndex((r) => r.end - r.start >= size);
    if (i < 0) {
      this.grow(size);
      i = this.free.findIndex((r) => r.end - r.start >= size);
    }
    const r = this.free[i];
    const ptr = r.start;
    r.start += size;
    if (r.start === r.end) this.free.splice(i, 1);
    this.live.set(ptr, size);
    return ptr;
  }

  /** Returns a block to the free list (a no-op for an address already freed). */
  freeBytes(ptr: number): void {
    const size = this.live.get(ptr);
    if (size === undefined) return;
    this.live.delete(ptr);
    const start = ptr, end = ptr + size;
    let i = 0;
    while (i < this.free.length && this.free[i].start < start) i++;
    const before = this.free[i - 1], after = this.free[i];
    if (before && before.end === start && after && after.start === end) {
      before.end = after.end;
      this.free.splice(i, 1);
    } else if (before && before.end === start) before.end = end;
    else if (after && after.start === end) after.start = start;
    else this.free.splice(i, 0, { start, end });
  }

  /**
   * A typed array of `dtype` and `length` in the heap, freed when `owner` is garbage-collected (or
   * by `release(owner)`). Returns undefined when the heap cannot hold storages (not shared).
   */
  allocArray(dtype: DType, length: number, owner: object): HostArray | undefined {
    if (!this.canHoldStorages) return undefined;
    const ptr = this.allocBytes(Math.max(1, length) * hostBytesPer(dtype));
    this.finalizer.register(owner, ptr, owner);
    const buf = this.buffer;
    switch (dtype) {
      case 'float64': return new Float64Array(buf, ptr, length);
      case 'int32': return new Int32Array(buf, ptr, length);
      case 'bool': return new Uint8Array(buf, ptr, length);
      default: return new Float32Array(buf, ptr, length);
    }
  }

  /** Frees the array `owner` was given by allocArray, now (explicit disposal). */
  release(owner: object, arr: ArrayBufferView): void {
    const ptr = this.addressOf(arr);
    if (ptr < 0) return;
    this.finalizer.unregister(owner);
    this.freeBytes(ptr);
  }

  /** The byte address of arr[0] when `arr` lies in this heap, else -1. */
  addressOf(arr: ArrayBufferView): number {
    const b = arr.buffer;
    if (b !== this.lastBuffer && !this.buffers.has(b)) return -1;
    return arr.byteOffset;
  }

  stats(): HeapStats {
    let bytesInUse = 0;
    for (const s of this.live.values()) bytesInUse += s;
    return { bytesInUse, blocks: this.live.size, bytesReserved: this.memory.buffer.byteLength };
  }

  private grow(size: number): void {
    const oldEnd = this.memory.buffer.byteLength;
    const last = this.free[this.free.length - 1];
    // Only the part not covered by a free range that already reaches the end needs new pages.
    const have = last && last.end === oldEnd ? last.end - last.start : 0;
    const pages = Math.ceil((size - have) / PAGE);
    // Grow by at least an eighth of the current size, so a sequence of growing requests stays cheap.
    const step = Math.max(pages, Math.ceil(oldEnd / PAGE / 8));
    try {
      this.memory.grow(step);
    } catch {
      this.memory.grow(pages); // at the limit: just what is needed (throws RangeError if even that is too much)
    }
    const newEnd = this.memory.buffer.byteLength;
    if (last && last.end === oldEnd) last.end = newEnd;
    else this.free.push({ start: oldEnd, end: newEnd });
    void this.buffer; // record the new buffer object
  }
}

/**
 * A block of heap scratch reused from call to call: grown (re-allocated) when a call needs more,
 * and freed by `trim` once it holds more than a caller's bound, so one big call does not pin its
 * memory. Kernels copy operands that lie outside the heap into one.
 */
export class ScratchArea {
  private ptr = 0;
  private size = 0;
  constructor(private readonly heap: WasmHeap) {}

  /** Byte address of at least `bytes` bytes (64-byte aligned), valid until the next get or trim. */
  get(bytes: number): number {
    if (this.size < bytes) {
      this.release();
      this.ptr = this.heap.allocBytes(bytes);
      this.size = bytes;
    }
    return this.ptr;
  }

  /** Frees the area if it holds more than `keep` bytes. */
  trim(keep: number): void {
    if (this.size > keep) this.release();
  }

  get bytes(): number {
    return this.size;
  }

  private release(): void {
    if (this.ptr) this.heap.freeBytes(this.ptr);
    this.ptr = 0;
    this.size = 0;
  }
}

let heap: WasmHeap | null | undefined;

/**
 * The process-wide heap, created on first use: shared (SharedArrayBuffer) when the engine allows,
 * otherwise a plain memory. Null where WebAssembly itself is missing.
 */
export function wasmHeap(): WasmHeap | null {
  if (heap !== undefined) return heap;
  heap = null;
  if (typeof WebAssembly !== 'object' || typeof WebAssembly.Memory !== 'function') return heap;
  const initial = 64; // 4 MiB
  if (typeof SharedArrayBuffer === 'function') {
    // A shared memory must declare its maximum; engines reserve address space for it, not memory.
    for (const maximum of [65536, 16384, 4096]) {
      try {
        heap = new WasmHeap(new WebAssembly.Memory({ initial, maximum, shared: true } as WebAssembly.MemoryDescriptor), true);
        return heap;
      } catch {
        // try a smaller reservation
      }
    }
  }
  heap = new WasmHeap(new WebAssembly.Memory({ initial }), false);
  return heap;
}
