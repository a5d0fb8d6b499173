// Operands for the CPU matmul tests (cpu-matmul-wasm, cpu-matmul-dot): random float32 matrices in
// the layouts a GEMM meets, in a plain array or in the shared Wasm heap (which the GEMM reads in place).
import { expect } from 'vitest';
import type { MatOperand } from '../runtime/cpu/matmul.js';
import { wasmHeap } from '../runtime/cpu/wasm/heap.js';
import { heapFloats } from './helpers.js';

export type Layout =
  | 'contiguous'
  | 'transposed' // x.t() of a [cols, rows] tensor
  | 'padded' // a slice of a wider tensor
  | 'paddedTransposed'
  | 'strided'
  | 'broadcastRows'
  | 'broadcastCols'
  | 'scalar'
  | 'wide'; // rows a multiple of 2 KiB apart (the unpacked-B path sweeps such a B 8 rows at a time)

/** Which of A, B and out lie in the Wasm heap. */
export interface Where {
  a?: boolean;
  b?: boolean;
  out?: boolean;
}

/** A Float32Array of n floats, in the shared Wasm heap when inHeap (kept alive for the test file) or a plain one. */
export function floats(n: number, inHeap: boolean): Float32Array {
  if (!inHeap) return new Float32Array(n);
  const arr = heapFloats(n);
  expect(wasmHeap()!.addressOf(arr)).toBeGreaterThan(0);
  return arr;
}

/** A rows x cols float32 operand laid out as `layout`, at a random offset, filled with random values in [-1, 1). */
export function operand(layout: Layout, rows: number, cols: number, rand: () => number, inHeap = false): MatOperand {
  const offset = Math.floor(rand() * 4);
  let rowStride: number, colStride: number, extent: number;
  switch (layout) {
    case 'contiguous': rowStride = cols; colStride = 1; extent = rows * cols; break;
    case 'transposed': rowStride = 1; colStride = rows; extent = rows * cols; break;
    case 'padded': rowStride = cols + 3; colStride = 1; extent = rows * (cols + 3); break;
    case 'paddedTransposed': rowStride = 1; colStride = rows + 5; extent = cols * (rows + 5); break;
    case 'strided': rowStride = 2; colStride = 2 * rows + 1; extent = cols * (2 * rows + 1); break;
    case 'broadcastRows': rowStride = 0; colStride = 1; extent = cols; break;
    case 'broadcastCols': rowStride = 1; colStride = 0; extent = rows; break;
    case 'scalar': rowStride = 0; colStride = 0; extent = 1; break;
    case 'wide': rowStride = 512 * Math.ceil((cols + 1) / 512); colStride = 1; extent = rows * rowStride; break;
  }
  const data = floats(offset + extent + 2, inHeap);
  for (let i = 0; i < data.length; i++) data[i] = rand() * 2 - 1;
  return { data, offset, rowStride, colStride };
}
