// Shared test helpers: PyTorch fixtures and the project's closeness criterion.
import { readFileSync } from 'node:fs';
import { expect } from 'vitest';
import * as kiln from 'kiln';
import type { DType, Tensor } from 'kiln';

export interface FixtureTensor {
  shape: number[];
  dtype: 'float32' | 'float64' | 'int64';
  data: number[];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function loadFixture(name: string): any {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8'));
}

/** A fixture tensor as a Kiln tensor (int64 becomes int32; floats float32 unless asked). */
export function fromFixture(t: FixtureTensor, opts: { dtype?: DType; requiresGrad?: boolean } = {}): Tensor {
  const dtype = opts.dtype ?? (t.dtype === 'int64' ? 'int32' : 'float32');
  return kiln.tensor(t.data, { dtype }).reshape(t.shape).requiresGrad_(opts.requiresGrad ?? false);
}

function flat(x: Tensor | FixtureTensor | number[] | number): number[] {
  if (typeof x === 'number') return [x];
  if (Array.isArray(x)) return x;
  if ('data' in x && Array.isArray(x.data)) return x.data;
  return Array.from((x as Tensor).double().dataSync());
}

/** The fixtures' criterion: max|got - ref| <= tol * max|ref| (shapes must match too). */
export function expectClose(got: Tensor | number[] | number, ref: FixtureTensor | Tensor | number[] | number, tol = 1e-5): void {
  if (typeof got === 'object' && !Array.isArray(got) && typeof ref === 'object' && !Array.isArray(ref) && 'shape' in ref) {
    expect([...got.shape]).toEqual([...ref.shape]);
  }
  const g = flat(got);
  const r = flat(ref);
  expect(g.length).toBe(r.length);
  const maxRef = Math.max(...r.map(Math.abs));
  let maxErr = 0;
  for (let i = 0; i < g.length; i++) maxErr = Math.max(maxErr, Math.abs(g[i] - r[i]));
  if (!(maxErr <= tol * Math.max(maxRef, Number.MIN_VALUE))) {
    throw new Error(`not close: max|got-ref| = ${maxErr}, tol*max|ref| = ${tol * maxRef}`);
  }
}

/** A seeded generator of uniform numbers in [0, 1) (random-graphs.ts's mulberry32), so random test cases repeat exactly. */
export { mulberry32 as rng } from './random-graphs.js';
