// Numbers next to tensors: `x.mul(2)` lifts 2 to a 0-d tensor of x's kind, following PyTorch's
// rule that a Python scalar does not widen a tensor's dtype (float32 * 2.5 stays float32).
import { isFloating, OPS, type DType } from '../../ir/index.js';
import { bind } from '../dispatch.js';
import { Tensor } from '../tensor.js';

export type Scalar = number | boolean;
export type TensorLike = Tensor | Scalar;

export function scalarDType(value: Scalar, ref: DType): DType {
  if (typeof value === 'boolean') return ref;
  if (isFloating(ref)) return ref;
  return Number.isInteger(value) ? (ref === 'bool' ? 'int32' : ref) : 'float32';
}

/** A 0-d tensor holding `value` on `device`. */
export function scalarTensor(value: number, dtype: DType, device: string): Tensor {
  return bind(OPS.full, [], { shape: [], value: Number(value), dtype, device });
}

export function lift(value: TensorLike, ref: Tensor): Tensor {
  if (value instanceof Tensor) return value;
  if (typeof value !== 'number' && typeof value !== 'boolean') {
    throw new TypeError(`expected a Tensor or a number, got ${describe(value)}`);
  }
  return scalarTensor(Number(value), scalarDType(value, ref.dtype), ref.device);
}

/** The operands of add and sub (and add_, sub_): a and alpha * b, as tensors. */
export function scaledPair(a: TensorLike, b: TensorLike, opts: { alpha?: number }, op: string): [Tensor, Tensor] {
  const [x, y] = liftPair(a, b, op);
  return [x, opts.alpha === undefined || opts.alpha === 1 ? y : bind(OPS.mul, liftPair(y, opts.alpha, 'mul'))];
}

/** Both operands as tensors; at least one must already be a tensor. */
export function liftPair(a: TensorLike, b: TensorLike, op: string): [Tensor, Tensor] {
  if (a instanceof Tensor) return [a, lift(b, a)];
  if (b instanceof Tensor) return [lift(a, b), b];
  throw new TypeError(`${op}: expected at least one Tensor, got ${describe(a)} and ${describe(b)}`);
}

export function describe(v: unknown): string {
  if (v instanceof Tensor) return `Tensor of shape [${v.shape.join(', ')}]`;
  if (Array.isArray(v)) return 'an array';
  return v === null ? 'null' : typeof v;
}
