// unfold's index mapping, the one definition of im2col on WebGPU: element i of the contiguous
// [N, C*K, L] output is x[b, c, window l's tap k], or the pad value in the padding. The unfold
// kernel stores it for every i; the implicit-GEMM matmul (matmul-kernel.ts) reads a conv's columns
// through it instead of from a materialised buffer.
import { numel, type DType } from '../../ir/index.js';
import { windowCounts, type UnfoldAttrs } from '../../ir/ops/conv.js';
import type { View } from '../backend.js';
import { f32ToF16 } from '../half.js';
import { storageType } from './render-wgsl.js';

/** Words per spatial dim: size, kernel, stride, padding, dilation, count, x stride. */
const DIM_WORDS = 7;
/** Words before the per-dim ones: C*K, K, L, pad value bits, x batch stride, x channel stride, x offset. */
const HEAD_WORDS = 7;

/** How many metadata words the map of an `ns`-d unfold takes. */
export const unfoldMapWords = (ns: number) => HEAD_WORDS + DIM_WORDS * ns;

/** The pad value as a storage word of `dtype`, converted as the CPU's typed arrays convert it (-Infinity is 0 in an int32 tensor). */
function padWord(value: number, dtype: DType): number {
  const word = new Uint32Array(1);
  if (dtype === 'float32') new Float32Array(word.buffer)[0] = value;
  else if (dtype === 'float16') word[0] = f32ToF16(value); // the low half of the word (read as vec2<f16>.x)
  else if (dtype === 'int32') new Int32Array(word.buffer)[0] = value;
  else word[0] = new Uint8Array([value])[0];
  return word[0];
}

/** The map's metadata words for unfolding `x` (any strided view) with `a`. */
export function unfoldMapMeta(x: View, a: UnfoldAttrs): number[] {
  const spatial = x.shape.slice(2);
  const counts = windowCounts(spatial, a);
  const taps = numel(a.kernel);
  return [
    x.shape[1] * taps, taps, numel(counts), padWord(a.padValue, x.dtype), x.strides[0], x.strides[1], x.offset,
    ...spatial.flatMap((s, d) => [s, a.kernel[d], a.stride[d], a.padding[d], a.dilation[d], counts[d], x.strides[2 + d]]),
  ];
}

/**
 * WGSL `fn <name>(i: u32) -> <storage type of dtype>`: element i of the unfold of the view whose map
 * starts at md[base], read from the array `src`.
 */
export function unfoldMapWgsl(name: string, src: string, dtype: DType, ns: number, base: number): string {
  const m = (k: number) => `md[${base + k}u]`;
  const t = storageType(dtype);
  const pad = dtype === 'float16' ? `bitcast<vec2<f16>>(${m(3)}).x` : `bitcast<${t}>(${m(3)})`;
  const dims = ns === 0 ? '' : `
  for (var e = 0u; e < ${ns}u; e++) {
    let f = ${base + HEAD_WORDS}u + (${ns - 1}u - e) * ${DIM_WORDS}u;
    let kd = k % md[f + 1u];
    k = k / md[f + 1u];
    let od = l % md[f + 5u];
    l = l / md[f + 5u];
    let pos = i32(od * md[f + 2u] + kd * md[f + 4u]) - i32(md[f + 3u]);
    if (pos < 0 || pos >= i32(md[f])) { return ${pad}; }
    px += u32(pos) * md[f + 6u];
  }`;
  return `fn ${name}(i: u32) -> ${t} {
  var l = i % ${m(2)};
  let row = (i / ${m(2)}) % ${m(0)};
  let b = i / (${m(2)} * ${m(0)});
  var k = row % ${m(1)};
  var px = ${m(6)} + b * ${m(4)} + (row / ${m(1)}) * ${m(5)};${dims}
  return ${src}[px];
}`;
}
