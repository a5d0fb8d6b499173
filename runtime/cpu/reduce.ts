// Reductions over any set of dims of a strided view, into a contiguous output.
import type { Reducer } from '../../ir/index.js';
import type { HostArray } from '../backend.js';
import { coalesce, forEachIndex } from './strided.js';

export interface ReduceInput {
  readonly data: HostArray;
  readonly offset: number;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
}

/**
 * Writes into `out` (contiguous, in the order of the kept dims) the reduction of `x` over `dims`.
 * argmax/argmin give the row-major index within the reduced dims of the first extreme value;
 * NaN counts as the extreme, as in PyTorch.
 */
export function runReduce(reducer: Reducer, x: ReduceInput, dims: readonly number[], out: HostArray, outOffset = 0): void {
  const keptShape: number[] = [];
  const keptStrides: number[] = [];
  const redShape: number[] = [];
  const redStrides: number[] = [];
  x.shape.forEach((d, i) => {
    if (dims.includes(i)) { redShape.push(d); redStrides.push(x.strides[i]); }
    else { keptShape.push(d); keptStrides.push(x.strides[i]); }
  });
  // Index order matters for argmax/argmin, so only merge the reduced dims when it cannot change it.
  const inner = reducer === 'argmax' || reducer === 'argmin' ? { shape: redShape, strides: [redStrides] } : coalesce(redShape, [redStrides]);
  const rShape = inner.shape;
  const rStrides = inner.strides[0];
  const last = rShape.length - 1;
  const len = last >= 0 ? rShape[last] : 1;
  const step = last >= 0 ? rStrides[last] : 0;
  const outerShape = rShape.slice(0, -1);
  const outerStrides = rStrides.slice(0, -1);
  const data = x.data;
  let o = outOffset;
  forEachIndex(keptShape, [x.offset], [keptStrides], ([base]) => {
    let acc = reducer === 'sum' ? 0 : reducer === 'max' || reducer === 'argmax' ? -Infinity : Infinity;
    let best = -1;
    let count = 0;
    forEachIndex(outerShape, [base], [outerStrides], ([start]) => {
      switch (reducer) {
        case 'sum':
          for (let i = 0, p = start; i < len; i++, p += step) acc += data[p];
          break;
        case 'max':
          for (let i = 0, p = start; i < len; i++, p += step) { const v = data[p]; if (v > acc || v !== v) acc = v; if (acc !== acc) break; }
          break;
        case 'min':
          for (let i = 0, p = start; i < len; i++, p += step) { const v = data[p]; if (v < acc || v !== v) acc = v; if (acc !== acc) break; }
          break;
        case 'argmax':
          for (let i = 0, p = start; i < len; i++, p += step, count++) {
            const v = data[p];
            if (best < 0 || (acc === acc && (v > acc || v !== v))) { acc = v; best = count; }
          }
          break;
        case 'argmin':
          for (let i = 0, p = start; i < len; i++, p += step, count++) {
            const v = data[p];
            if (best < 0 || (acc === acc && (v < acc || v !== v))) { acc = v; best = count; }
          }
          break;
      }
    });
    out[o++] = reducer === 'argmax' || reducer === 'argmin' ? best : acc;
  });
}
