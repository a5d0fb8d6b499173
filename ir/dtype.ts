// Kiln's element types. float16 exists only where a device has it (WebGPU's `shader-f16`).
export type DType = 'float32' | 'float64' | 'float16' | 'int32' | 'bool';

export const DTYPES: readonly DType[] = ['float32', 'float64', 'float16', 'int32', 'bool'];

export function isFloating(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16';
}

export function itemSize(d: DType): number {
  switch (d) {
    case 'float64': return 8;
    case 'float32': case 'int32': return 4;
    case 'float16': return 2;
    case 'bool': return 1;
  }
}

// PyTorch's promotion lattice restricted to our types: bool < int32 < float16 < float32 < float64.
const RANK: Record<DType, number> = { bool: 0, int32: 1, float16: 2, float32: 3, float64: 4 };

export function promoteTypes(a: DType, b: DType): DType {
  return RANK[a] >= RANK[b] ? a : b;
}

/** Can a value of type `from` be written into a tensor of type `to` without a lossy category change? (PyTorch's can_cast) */
export function canCast(from: DType, to: DType): boolean {
  if (isFloating(from) && !isFloating(to)) return false;
  if (from !== 'bool' && to === 'bool') return false;
  return true;
}

export function assertDType(d: unknown, where: string): DType {
  if (typeof d === 'string' && (DTYPES as readonly string[]).includes(d)) return d as DType;
  throw new TypeError(`${where}: unknown dtype ${JSON.stringify(d)}; expected one of ${DTYPES.join(', ')}`);
}
