// A tensor filled with one value. The only op with no tensor inputs, so it names its device.
import { defineOp } from '../op.js';
import type { DType } from '../dtype.js';
import { checkShape } from '../shape.js';

export interface FullAttrs {
  readonly shape: readonly number[];
  readonly value: number;
  readonly dtype: DType;
  readonly device: string;
}

export const full = defineOp<FullAttrs>({
  name: 'full',
  arity: 0,
  infer: (_, a) => ({ shape: checkShape(a.shape, 'full'), dtype: a.dtype }),
  lowering: { kind: 'routine', routine: 'full' },
});
