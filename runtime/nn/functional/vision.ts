// interpolate (nearest only): an indexSelect per spatial dim with PyTorch's source indices.
import { fmtShape } from '../../../ir/index.js';
import { tensor } from '../../creation.js';
import { indexSelect } from '../../ops/index.js';
import type { Tensor } from '../../tensor.js';

export interface InterpolateOptions {
  size?: number | readonly number[];
  scaleFactor?: number | readonly number[];
  mode?: 'nearest';
  /** Derive the index scale from the output size instead of scaleFactor (PyTorch's recompute_scale_factor). */
  recomputeScaleFactor?: boolean;
}

/** Nearest-neighbour resampling of [N, C, *spatial] (1 to 3 spatial dims), as torch's mode='nearest'. */
export function interpolate(x: Tensor, opts: InterpolateOptions): Tensor {
  const mode = opts.mode ?? 'nearest';
  if (mode !== 'nearest') throw new Error(`interpolate: only mode='nearest' is supported, got '${mode}'`);
  const nd = x.ndim - 2;
  if (nd < 1 || nd > 3) throw new Error(`interpolate: expected a 3-D, 4-D or 5-D input [N, C, *spatial], got ${fmtShape(x.shape)}`);
  if ((opts.size === undefined) === (opts.scaleFactor === undefined)) throw new Error('interpolate: give exactly one of size and scaleFactor');
  const spatial = x.shape.slice(2);
  const list = (v: number | readonly number[], name: string): number[] => {
    const out = typeof v === 'number' ? new Array<number>(nd).fill(v) : [...v];
    if (out.length !== nd) throw new Error(`interpolate: ${name} must have ${nd} entries for input ${fmtShape(x.shape)}, got ${JSON.stringify(v)}`);
    return out;
  };
  const scales = opts.scaleFactor === undefined ? null : list(opts.scaleFactor, 'scaleFactor');
  const sizes = opts.size !== undefined ? list(opts.size, 'size') : spatial.map((n, d) => Math.floor(n * scales![d]));
  if (sizes.some((s) => !Number.isInteger(s) || s < 1)) throw new Error(`interpolate: output size ${JSON.stringify(sizes)} must be positive integers`);
  let y = x;
  for (let d = 0; d < nd; d++) {
    const scale = scales && !opts.recomputeScaleFactor ? scales[d] : null;
    const index = Int32Array.from({ length: sizes[d] }, (_, i) => nearestIndex(i, spatial[d], sizes[d], scale));
    y = indexSelect(y, d + 2, tensor(index, { device: x.device }));
  }
  return y;
}

/** PyTorch's nearest_idx, including its float32 arithmetic (which decides some boundary cases). */
function nearestIndex(i: number, inSize: number, outSize: number, scaleFactor: number | null): number {
  if (outSize === inSize) return i;
  if (outSize === 2 * inSize) return i >> 1;
  const scale = scaleFactor !== null && scaleFactor > 0 ? Math.fround(1 / scaleFactor) : Math.fround(inSize / outSize);
  return Math.min(Math.floor(Math.fround(i * scale)), inSize - 1);
}
