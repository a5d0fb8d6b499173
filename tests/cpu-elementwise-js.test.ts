// The JS elementwise kernels' branch-free forms (render-js.ts) keep the reference semantics:
// NaN, -0 and infinities through select, relu, comparisons and bool logic.
import { describe, expect, it } from 'vitest';
import { contiguousStrides, E, type DType, type Expr } from '../ir/index.js';
import { runElementwise } from '../runtime/cpu/elementwise.js';
import { newHostArray } from '../runtime/host.js';

function run(expr: Expr, dtypes: DType[], outDtype: DType, cols: number[][]): number[] {
  const n = cols[0].length;
  const shape = [n];
  const ins = cols.map((c, j) => {
    const data = newHostArray(dtypes[j], n);
    data.set(c);
    return { data, offset: 0, strides: contiguousStrides(shape), dtype: dtypes[j] };
  });
  const out = { data: newHostArray(outDtype, n), offset: 0, strides: contiguousStrides(shape), dtype: outDtype };
  runElementwise(expr, shape, out, ins);
  return [...out.data];
}

const SPECIAL = [NaN, -0, 0, 1.5, -2.5, Infinity, -Infinity];
const $0 = E.input(0), $1 = E.input(1), $2 = E.input(2);

describe('JS elementwise kernels: branch-free forms', () => {
  it('relu keeps NaN and -0 (float) and zeroes negative int32', () => {
    expect(run(E.relu($0), ['float32'], 'float32', [SPECIAL])).toEqual([NaN, -0, 0, 1.5, 0, Infinity, 0]);
    expect(run(E.relu($0), ['int32'], 'int32', [[-5, 0, 7, -2147483648, 2147483647]])).toEqual([0, 0, 7, 0, 2147483647]);
  });

  it('select on a bool picks either branch exactly, NaN and -0 included', () => {
    const c = [1, 0, 1, 0, 1, 0, 1];
    const b = SPECIAL.map((_, i) => -i);
    const got = run(E.select($0, $1, $2), ['bool', 'float32', 'float32'], 'float32', [c, SPECIAL, b]);
    expect(got).toEqual(c.map((ci, i) => (ci ? SPECIAL[i] : b[i])));
    expect(Object.is(got[1], -1)).toBe(true);
    expect(Object.is(run(E.select($0, $1, $2), ['bool', 'float32', 'float32'], 'float32', [[1], [-0], [5]])[0], -0)).toBe(true);
  });

  it('select on a float condition tests its truthiness (NaN and 0 are false)', () => {
    expect(run(E.select($0, $1, $2), ['float32', 'float32', 'float32'], 'float32', [[NaN, 0, -0, 2], [1, 1, 1, 1], [9, 9, 9, 9]])).toEqual([9, 9, 9, 1]);
  });

  it('comparisons give 0/1 with NaN comparing false (ne true)', () => {
    const a = [NaN, 1, 2, -0], b = [1, NaN, 2, 0];
    expect(run(E.lt($0, $1), ['float32', 'float32'], 'bool', [a, b])).toEqual([0, 0, 0, 0]);
    expect(run(E.le($0, $1), ['float32', 'float32'], 'bool', [a, b])).toEqual([0, 0, 1, 1]);
    expect(run(E.eq($0, $1), ['float32', 'float32'], 'bool', [a, b])).toEqual([0, 0, 1, 1]);
    expect(run(E.ne($0, $1), ['float32', 'float32'], 'bool', [a, b])).toEqual([1, 1, 0, 0]);
    expect(run(E.isnan($0), ['float32'], 'bool', [a])).toEqual([1, 0, 0, 0]);
  });

  it('bool logic on bools and on numbers, and a float stored as bool by truthiness', () => {
    const p = [0, 0, 1, 1], q = [0, 1, 0, 1];
    expect(run(E.and($0, $1), ['bool', 'bool'], 'bool', [p, q])).toEqual([0, 0, 0, 1]);
    expect(run(E.or($0, $1), ['bool', 'bool'], 'bool', [p, q])).toEqual([0, 1, 1, 1]);
    expect(run(E.not($0), ['bool'], 'bool', [p])).toEqual([1, 1, 0, 0]);
    expect(run(E.not($0), ['float32'], 'bool', [[NaN, 0, 2, -0]])).toEqual([1, 1, 0, 1]);
    expect(run(E.and($0, $1), ['float32', 'float32'], 'bool', [[NaN, 2, 2], [1, 3, 0]])).toEqual([0, 1, 0]);
    expect(run($0, ['float32'], 'bool', [[NaN, 0, -0, 0.5, -Infinity]])).toEqual([0, 0, 0, 1, 1]);
    expect(run(E.cast('bool', $0), ['float32'], 'bool', [[NaN, 0, -0, 0.5]])).toEqual([1, 0, 0, 1]);
  });
});
