// Out-of-range indices on the GPU. A shader cannot throw, so gather and scatterAdd clamp a bad index
// (no out-of-bounds access) and record the first one they meet in a small error buffer; the backend
// copies that buffer out with the next read and throws the CPU backend's error for the same case.
// "First" is the first recorded: GPU threads have no order, so it may not be the CPU's first.
import { indexOutOfBounds } from '../backend.js';

/** The ops whose kernels check indices, by the code the kernels record. */
export const CHECKED_OPS = ['gather', 'scatterAdd'] as const;
export type CheckedOp = (typeof CHECKED_OPS)[number];

/** Words of the error buffer: [recorded, op code, index (i32 bits), size, dim]. */
const WORDS = 5;
export const ERROR_BYTES = 32;

/** The error buffer's binding and `kiln_bad_index(op, index, size, dim)`, which records once. */
export function indexCheckWgsl(binding: number): string {
  return `@group(0) @binding(${binding}) var<storage, read_write> kiln_err: array<atomic<u32>, ${WORDS}>;
fn kiln_bad_index(op: u32, index: i32, size: u32, dim: u32) {
  loop {
    // The weak exchange may fail spuriously: retry until someone has recorded.
    let r = atomicCompareExchangeWeak(&kiln_err[0], 0u, 1u);
    if (r.exchanged) {
      atomicStore(&kiln_err[1], op);
      atomicStore(&kiln_err[2], bitcast<u32>(index));
      atomicStore(&kiln_err[3], size);
      atomicStore(&kiln_err[4], dim);
      return;
    }
    if (r.old_value != 0u) { return; }
  }
}`;
}

/** The op's code in the WGSL. */
export const opCode = (op: CheckedOp): number => CHECKED_OPS.indexOf(op);

/**
 * The error the words of the error buffer describe, or undefined when nothing was recorded. The
 * message is the one every backend raises (runtime/backend.ts), so both devices say the same.
 */
export function indexError(words: Uint32Array): RangeError | undefined {
  if (words[0] === 0) return undefined;
  const op = CHECKED_OPS[words[1]] ?? `op #${words[1]}`;
  const index = words[2] | 0;
  return indexOutOfBounds(op, index, words[4], words[3]);
}

/**
 * The backend's error buffer: `buffer` is bound by every index-checking dispatch (which marks it
 * dirty); `drainInto` records its copy into a read's staging buffer and its reset, only when a
 * checking kernel ran since the last read.
 */
export class IndexErrors {
  /** Created at first use (WebGPU zero-fills it). */
  private buffer: GPUBuffer | undefined;
  private dirty = false;
  constructor(private readonly gpu: GPUDevice) {}
  /** The buffer, for a dispatch that checks indices. */
  use(): GPUBuffer {
    this.dirty = true;
    return (this.buffer ??= this.gpu.createBuffer({ size: ERROR_BYTES, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST }));
  }
  /** Copies the words to `staging` at `at` and clears them; false (nothing recorded) when no checking kernel ran. */
  drainInto(enc: GPUCommandEncoder, staging: GPUBuffer, at: number): boolean {
    if (!this.dirty || !this.buffer) return false;
    enc.copyBufferToBuffer(this.buffer, 0, staging, at, ERROR_BYTES);
    enc.clearBuffer(this.buffer);
    this.dirty = false;
    return true;
  }
}
