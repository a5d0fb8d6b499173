// Elementwise ops: primitives bound from the op table, and composites (clamp, maskedFill, ...)
// built from them so their gradients come for free.
import { OPS, type DType } from '../../ir/index.js';
import { bind } from '../dispatch.js';
import type { Tensor } from '../tensor.js';
import { lift, liftPair, scaledPair, type Scalar, type TensorLike } from './lift.js';

const unary = (name: string) => (x: Tensor): Tensor => bind(OPS[name], [x]);
const binary = (name: string) => (a: TensorLike, b: TensorLike): Tensor => bind(OPS[name], liftPair(a, b, name));

export const neg = unary('neg');
export const exp = unary('exp');
export const log = unary('log');
export const sqrt = unary('sqrt');
export const abs = unary('abs');
export const sign = unary('sign');
export const relu = unary('relu');
export const sigmoid = unary('sigmoid');
export const tanh = unary('tanh');
export const sin = unary('sin');
export const cos = unary('cos');
export const floor = unary('floor');
export const ceil = unary('ceil');
export const logicalNot = unary('logicalNot');
export const isnan = unary('isnan');

export const mul = binary('mul');
export const div = binary('div');
export const pow = binary('pow');
export const maximum = binary('maximum');
export const minimum = binary('minimum');
export const lt = binary('lt');
export const le = binary('le');
export const gt = binary('gt');
export const ge = binary('ge');
export const eq = binary('eq');
export const ne = binary('ne');
export const logicalAnd = binary('logicalAnd');
export const logicalOr = binary('logicalOr');

/** a + alpha * b */
export const add = (a: TensorLike, b: TensorLike, opts: { alpha?: number } = {}): Tensor => bind(OPS.add, scaledPair(a, b, opts, 'add'));

/** a - alpha * b */
export const sub = (a: TensorLike, b: TensorLike, opts: { alpha?: number } = {}): Tensor => bind(OPS.sub, scaledPair(a, b, opts, 'sub'));

export const square = (x: Tensor): Tensor => mul(x, x);
export const reciprocal = (x: Tensor): Tensor => div(lift(1, x), x);
export const rsqrt = (x: Tensor): Tensor => reciprocal(sqrt(x));

export function where(condition: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = liftPair(a, b, 'where');
  return bind(OPS.where, [condition, x, y]);
}

/**
 * clamp(x, min, max), also clamp(x, { min, max }). The gradient flows where min <= x <= max,
 * as in PyTorch (so clamp(min=0) passes it at x == 0, where relu does not).
 */
export function clamp(x: Tensor, min?: number | null | { min?: number; max?: number }, max?: number | null): Tensor {
  const bounds = typeof min === 'object' && min !== null ? min : { min: min ?? undefined, max: max ?? undefined };
  if (bounds.min === undefined && bounds.max === undefined) throw new TypeError('clamp: at least one of min and max must be given');
  let r = x;
  if (bounds.min !== undefined) r = where(lt(r, bounds.min), bounds.min, r);
  if (bounds.max !== undefined) r = where(gt(r, bounds.max), bounds.max, r);
  return r;
}

/** x with `value` wherever `mask` is true (`x[mask] = value`, out of place). */
export function maskedFill(x: Tensor, mask: Tensor, value: Scalar): Tensor {
  if (mask.dtype !== 'bool') throw new TypeError(`maskedFill: mask must be a bool tensor, got ${mask.dtype}`);
  return where(mask, lift(value, x), x);
}

export function cast(x: Tensor, dtype: DType): Tensor {
  return x.dtype === dtype ? x : bind(OPS.cast, [x], { dtype });
}
