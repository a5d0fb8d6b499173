// Host-side typed arrays for each dtype.
import type { DType } from '../ir/index.js';
import type { HostArray } from './backend.js';

export function newHostArray(dtype: DType, length: number): HostArray {
  switch (dtype) {
    case 'float32': return new Float32Array(length);
    case 'float64': return new Float64Array(length);
    case 'int32': return new Int32Array(length);
    case 'bool': return new Uint8Array(length);
    // No Float16Array in Node 20: float16 values travel as float32 (a device rounds them to halves on upload).
    case 'float16': return new Float32Array(length);
  }
}

/** Bytes per element of `dtype`'s host array (float16 travels as float32). */
export const hostBytesPer = (dtype: DType): number => (dtype === 'float64' ? 8 : dtype === 'bool' ? 1 : 4);

/** The dtype a typed array holds when handed to `kiln.tensor`. */
export function dtypeOfHostArray(a: ArrayBufferView): DType | undefined {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Uint8Array) return 'bool';
  return undefined;
}

/** Converts values to `dtype`'s host array (numbers to bools as PyTorch does: nonzero is true). */
export function toHostArray(values: ArrayLike<number | boolean>, dtype: DType): HostArray {
  const out = newHostArray(dtype, values.length);
  if (dtype === 'bool') {
    for (let i = 0; i < values.length; i++) out[i] = values[i] ? 1 : 0;
  } else if (dtype === 'int32') {
    for (let i = 0; i < values.length; i++) out[i] = Math.trunc(Number(values[i]));
  } else {
    for (let i = 0; i < values.length; i++) out[i] = Number(values[i]);
  }
  return out;
}
