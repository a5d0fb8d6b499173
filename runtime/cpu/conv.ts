// unfold (im2col) and fold (col2im) on the CPU, for any number of spatial dims and strided inputs.
import type { FoldAttrs, UnfoldAttrs, WindowAttrs } from '../../ir/ops/conv.js';
import { windowCounts } from '../../ir/ops/conv.js';
import type { HostArray, View } from '../backend.js';

type DataOf = (v: View) => HostArray;

/**
 * For tap k (row-major over the kernel) and window position l (row-major over the output grid),
 * entry k*L + l is the offset of the spatial element it reads (with `strides`), or -1 where it
 * falls in the padding. One table serves every (n, c) plane.
 */
function tapOffsets(spatial: readonly number[], strides: readonly number[], a: WindowAttrs): Int32Array {
  const counts = windowCounts(spatial, a);
  const nd = spatial.length;
  const taps = a.kernel.reduce((p, k) => p * k, 1);
  const l = counts.reduce((p, c) => p * c, 1);
  const table = new Int32Array(taps * l);
  const k = new Array<number>(nd).fill(0);
  const o = new Array<number>(nd).fill(0);
  let j = 0;
  for (let t = 0; t < taps; t++) {
    o.fill(0);
    for (let p = 0; p < l; p++) {
      let off = 0;
      for (let d = 0; d < nd; d++) {
        const i = o[d] * a.stride[d] - a.padding[d] + k[d] * a.dilation[d];
        if (i < 0 || i >= spatial[d]) { off = -1; break; }
        off += i * strides[d];
      }
      table[j++] = off;
      for (let d = nd - 1; d >= 0 && ++o[d] === counts[d]; d--) o[d] = 0;
    }
    for (let d = nd - 1; d >= 0 && ++k[d] === a.kernel[d]; d--) k[d] = 0;
  }
  return table;
}

/** out[n, c*K + k, l] = x[n, c, window l's tap k], or padValue in the padding. */
export function runUnfold(x: View, out: View, a: UnfoldAttrs, dataOf: DataOf): void {
  const [n, ch] = x.shape;
  const table = tapOffsets(x.shape.slice(2), x.strides.slice(2), a);
  const xd = dataOf(x), od = dataOf(out);
  const pad = a.padValue;
  let o = out.offset;
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < ch; c++) {
      const base = x.offset + b * x.strides[0] + c * x.strides[1];
      for (let j = 0; j < table.length; j++) {
        const off = table[j];
        od[o++] = off < 0 ? pad : xd[base + off];
      }
    }
  }
}

/** out[n, c, position] = sum of the column entries whose tap lands there (out is contiguous; it may hold stale values from a reused plan slot, so it is zeroed first). */
export function runFold(cols: View, out: View, a: FoldAttrs, dataOf: DataOf): void {
  const [n, ch] = out.shape;
  const outStrides = out.shape.slice(2).map((_, d, s) => s.slice(d + 1).reduce((p, v) => p * v, 1));
  const table = tapOffsets(a.outputSize, outStrides, a);
  const l = cols.shape[2];
  const taps = table.length / Math.max(l, 1);
  const cd = dataOf(cols), od = dataOf(out);
  od.fill(0, out.offset, out.offset + out.shape.reduce((p, v) => p * v, 1));
  const [s0, s1, s2] = cols.strides;
  const plane = outStrides.length ? outStrides[0] * a.outputSize[0] : 1;
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < ch; c++) {
      const base = out.offset + (b * ch + c) * plane;
      for (let t = 0; t < taps; t++) {
        const row = cols.offset + b * s0 + (c * taps + t) * s1;
        for (let p = 0, j = t * l; p < l; p++, j++) {
          const off = table[j];
          if (off >= 0) od[base + off] += cd[row + p * s2];
        }
      }
    }
  }
}
