// Strided iteration shared by the CPU kernels.

/**
 * Merges neighbouring dims that are laid out contiguously in every operand and drops size-1 dims,
 * so a kernel loops over as few dims as possible (a contiguous tensor becomes one flat dim).
 * `strides[j]` are operand j's strides; returns the merged shape and per-operand strides.
 */
export function coalesce(shape: readonly number[], strides: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const last = outShape.length - 1;
    const mergeable = last >= 0 && strides.every((s, j) => outStrides[j][last] === s[d] * shape[d]);
    if (mergeable) {
      outShape[last] *= shape[d];
      strides.forEach((s, j) => (outStrides[j][last] = s[d]));
    } else {
      outShape.push(shape[d]);
      strides.forEach((s, j) => outStrides[j].push(s[d]));
    }
  }
  return { shape: outShape, strides: outStrides };
}

/** Calls `fn(offsets)` for every index of `shape` in row-major order; offsets[j] = base[j] + index·strides[j]. */
export function forEachIndex(shape: readonly number[], bases: readonly number[], strides: readonly (readonly number[])[], fn: (offsets: number[]) => void): void {
  const n = shape.length;
  for (const d of shape) if (d === 0) return;
  const idx = new Array<number>(n).fill(0);
  const off = [...bases];
  for (;;) {
    fn(off);
    let d = n - 1;
    for (; d >= 0; d--) {
      idx[d]++;
      for (let j = 0; j < off.length; j++) off[j] += strides[j][d];
      if (idx[d] < shape[d]) break;
      for (let j = 0; j < off.length; j++) off[j] -= strides[j][d] * shape[d];
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

/**
 * A line naming a generated kernel by its cache key, to end its source with. V8 caches
 * `new Function` by source text and gives functions of identical source one shared feedback
 * vector, so without it kernels that render alike for different dtypes (a float32 and an int32
 * copy, say) would share polymorphic element-kind feedback: 1.8x slower per element, measured.
 * As a sourceURL it also names the kernel in CPU profiles (`--cpu-prof`).
 */
export function kernelTag(kind: string, key: string): string {
  return `\n//# sourceURL=kiln-${kind}:${encodeURIComponent(key)}`;
}
