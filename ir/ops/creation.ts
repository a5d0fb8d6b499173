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

export interface RandomAttrs {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly device: string;
  /** uniform on [a, b), normal with mean a and standard deviation b, or integers in [a, b). */
  readonly distribution: 'uniform' | 'normal' | 'integer';
  readonly a: number;
  readonly b: number;
}

/**
 * A tensor of random numbers from Kiln's seeded generator. Impure: every run draws new values, so
 * the compiler never folds or merges it, and a compiled graph that uses it (dropout) draws fresh
 * numbers on each call, in the same order eager execution would.
 */
export const random = defineOp<RandomAttrs>({
  name: 'random',
  arity: 0,
  impure: true,
  infer: (_, a) => ({ shape: checkShape(a.shape, 'random'), dtype: a.dtype }),
  lowering: { kind: 'routine', routine: 'random' },
});
