// Small helpers shared by the layers.
import { zeros } from '../../creation.js';
import type { Tensor } from '../../tensor.js';
import { Parameter } from '../parameter.js';

/** PyTorch's default init for Linear/Conv weights and biases: U(-1/sqrt(fanIn), 1/sqrt(fanIn)) (kaiming_uniform with a=sqrt(5)). */
export function uniformParameter(shape: number[], fanIn: number): Parameter {
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  return new Parameter(zeros(shape).uniform_(-bound, bound));
}

/** `n` → `[n, n]`; tuples pass through. */
export function ntuple(v: number | readonly number[], n: number): number[] {
  return typeof v === 'number' ? Array(n).fill(v) : [...v];
}

/** Python's tuple text: `(5, 5)`, `(1,)`. */
export function pyTuple(v: readonly number[]): string {
  return v.length === 1 ? `(${v[0]},)` : `(${v.join(', ')})`;
}

/** Python's repr of a number/bool as PyTorch's printouts show them: `1e-05`, `0.1`, `True`, `1.0`. */
export function py(v: number | boolean | null | undefined, float = false): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (float && Number.isInteger(v)) return `${v}.0`;
  if (v !== 0 && Math.abs(v) < 1e-4) return v.toExponential().replace(/e([+-])(\d)$/, 'e$10$2');
  return String(v);
}

export type { Tensor };
