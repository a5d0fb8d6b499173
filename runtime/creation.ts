// Creating tensors: from data (kiln.tensor), filled (zeros, ones, full, eye, arange) and random
// (rand, randn, randint) with Kiln's seeded generator.
import { assertDType, checkShape, OPS, type DType } from '../ir/index.js';
import type { RandomAttrs } from '../ir/ops/creation.js';
import { backendFor, type HostArray } from './backend.js';
import { bind, constant } from './dispatch.js';
import { dtypeOfHostArray, newHostArray, toHostArray } from './host.js';
import { Tensor, type NestedNumbers } from './tensor.js';

export interface TensorOptions {
  dtype?: DType;
  device?: string;
  requiresGrad?: boolean;
}

type ShapeArgs = (number | readonly number[] | TensorOptions)[];

/** Splits `(2, 3)`, `([2, 3])`, `([2, 3], opts)` and `(2, 3, opts)` into a shape and options. */
function shapeAndOptions(args: ShapeArgs, op: string): [number[], TensorOptions] {
  const last = args[args.length - 1];
  const opts = last !== undefined && typeof last === 'object' && !Array.isArray(last) ? (args.pop() as TensorOptions) : {};
  const shape = args.length === 1 && Array.isArray(args[0]) ? [...(args[0] as number[])] : (args as number[]);
  return [checkShape(shape, op), opts];
}

function finish(t: Tensor, opts: TensorOptions): Tensor {
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

function resolve(opts: TensorOptions, fallback: DType, op: string): { dtype: DType; device: string } {
  const dtype = opts.dtype === undefined ? fallback : assertDType(opts.dtype, op);
  const device = opts.device ?? 'cpu';
  const backend = backendFor(device);
  if (!backend.supports(dtype)) throw new TypeError(`${op}: device '${device}' does not support dtype ${dtype}`);
  return { dtype, device };
}

function fromHost(values: HostArray, shape: number[], opts: TensorOptions, dtype: DType): Tensor {
  const { device } = resolve(opts, dtype, 'tensor');
  return finish(constant(values, shape, dtype, device), opts);
}

/**
 * A tensor from a number, nested arrays, a flat array or a typed array. Numbers default to
 * float32 (JavaScript has no separate integers), booleans to bool, typed arrays to their type.
 */
export function tensor(data: NestedNumbers | ArrayBufferView | readonly number[], opts: TensorOptions = {}): Tensor {
  if (ArrayBuffer.isView(data)) {
    const own = dtypeOfHostArray(data);
    if (!own) throw new TypeError(`tensor: unsupported typed array ${data.constructor.name}; use Float32Array, Float64Array, Int32Array or Uint8Array`);
    const { dtype } = resolve(opts, own, 'tensor');
    const arr = data as unknown as ArrayLike<number>;
    return fromHost(toHostArray(arr, dtype), [arr.length], opts, dtype);
  }
  const shape: number[] = [];
  const flat: (number | boolean)[] = [];
  flattenNested(data, 0, shape, flat);
  const fallback: DType = flat.length > 0 && typeof flat[0] === 'boolean' ? 'bool' : 'float32';
  const { dtype } = resolve(opts, fallback, 'tensor');
  return fromHost(toHostArray(flat, dtype), shape, opts, dtype);
}

function flattenNested(data: NestedNumbers, depth: number, shape: number[], out: (number | boolean)[]): void {
  if (Array.isArray(data)) {
    if (shape.length === depth) shape.push(data.length);
    else if (shape[depth] !== data.length) {
      throw new Error(`tensor: nested arrays are ragged (expected length ${shape[depth]} at depth ${depth}, got ${data.length})`);
    }
    for (const d of data) flattenNested(d, depth + 1, shape, out);
    return;
  }
  if (typeof data !== 'number' && typeof data !== 'boolean') throw new TypeError(`tensor: expected numbers or booleans, got ${typeof data}`);
  if (shape.length !== depth) throw new Error(`tensor: nested arrays are ragged (a number where an array of length ${shape[depth]} was expected)`);
  out.push(data);
}

export function full(shape: readonly number[], value: number | boolean, opts: TensorOptions = {}): Tensor {
  const fallback: DType = typeof value === 'boolean' ? 'bool' : 'float32';
  const { dtype, device } = resolve(opts, fallback, 'full');
  return finish(bind(OPS.full, [], { shape: checkShape(shape, 'full'), value: Number(value), dtype, device }), opts);
}

export function zeros(...args: ShapeArgs): Tensor {
  const [shape, opts] = shapeAndOptions(args, 'zeros');
  return full(shape, 0, opts);
}

export function ones(...args: ShapeArgs): Tensor {
  const [shape, opts] = shapeAndOptions(args, 'ones');
  return full(shape, 1, opts);
}

export function eye(n: number, m: number | TensorOptions = n, opts: TensorOptions = {}): Tensor {
  const cols = typeof m === 'number' ? m : n;
  const o = typeof m === 'number' ? opts : m;
  const { dtype } = resolve(o, 'float32', 'eye');
  const values = newHostArray(dtype, n * cols);
  for (let i = 0; i < Math.min(n, cols); i++) values[i * cols + i] = 1;
  return fromHost(values, [n, cols], o, dtype);
}

/** arange(end), arange(start, end), arange(start, end, step); integers give int32, as PyTorch gives int64. */
export function arange(a: number, b?: number | TensorOptions, c?: number | TensorOptions, d?: TensorOptions): Tensor {
  const nums = [a, b, c].filter((v): v is number => typeof v === 'number');
  const opts = ([b, c, d].find((v) => typeof v === 'object') as TensorOptions | undefined) ?? {};
  const [start, end, step] = nums.length === 1 ? [0, nums[0], 1] : [nums[0], nums[1], nums[2] ?? 1];
  if (step === 0) throw new RangeError('arange: step must be nonzero');
  const n = Math.max(0, Math.ceil((end - start) / step));
  const fallback: DType = [start, end, step].every(Number.isInteger) ? 'int32' : 'float32';
  const { dtype } = resolve(opts, fallback, 'arange');
  const values = newHostArray(dtype, n);
  for (let i = 0; i < n; i++) values[i] = start + i * step;
  return fromHost(values, [n], opts, dtype);
}

export function linspace(start: number, end: number, steps: number, opts: TensorOptions = {}): Tensor {
  const { dtype } = resolve(opts, 'float32', 'linspace');
  const values = newHostArray(dtype, steps);
  for (let i = 0; i < steps; i++) values[i] = steps === 1 ? start : start + ((end - start) * i) / (steps - 1);
  return fromHost(values, [steps], opts, dtype);
}

function randomTensor(shape: number[], opts: TensorOptions, op: string, distribution: RandomAttrs['distribution'], a: number, b: number): Tensor {
  const { dtype, device } = resolve(opts, 'float32', op);
  return finish(bind(OPS.random, [], { shape, dtype, device, distribution, a, b } satisfies RandomAttrs), opts);
}

/** Uniform on [0, 1). */
export function rand(...args: ShapeArgs): Tensor {
  const [shape, opts] = shapeAndOptions(args, 'rand');
  return randomTensor(shape, opts, 'rand', 'uniform', 0, 1);
}

/** Standard normal. */
export function randn(...args: ShapeArgs): Tensor {
  const [shape, opts] = shapeAndOptions(args, 'randn');
  return randomTensor(shape, opts, 'randn', 'normal', 0, 1);
}

/** randint(high, shape) or randint(low, high, shape): integers in [low, high), int32 by default. */
export function randint(a: number, b: number | readonly number[], c?: readonly number[] | TensorOptions, d?: TensorOptions): Tensor {
  const [low, high, shape, opts] = typeof b === 'number' ? [a, b, c as readonly number[], d ?? {}] : [0, a, b, (c as TensorOptions) ?? {}];
  if (!(high > low)) throw new RangeError(`randint: high (${high}) must be greater than low (${low})`);
  return randomTensor(checkShape([...shape], 'randint'), { dtype: 'int32', ...opts }, 'randint', 'integer', low, high);
}

type LikeOptions = TensorOptions;
const like = (x: Tensor, opts: LikeOptions): TensorOptions => ({ dtype: x.dtype, device: x.device, ...opts });

export const zerosLike = (x: Tensor, opts: LikeOptions = {}) => full(x.shape, 0, like(x, opts));
export const onesLike = (x: Tensor, opts: LikeOptions = {}) => full(x.shape, 1, like(x, opts));
export const fullLike = (x: Tensor, value: number | boolean, opts: LikeOptions = {}) => full(x.shape, value, like(x, opts));
export const randLike = (x: Tensor, opts: LikeOptions = {}) => rand([...x.shape], like(x, opts));
export const randnLike = (x: Tensor, opts: LikeOptions = {}) => randn([...x.shape], like(x, opts));

/** Uniform on [low, high) or normal(mean, std), shaped like x: what `uniform_` and `normal_` write. */
export function uniformLike(x: Tensor, low: number, high: number): Tensor {
  return randomTensor([...x.shape], { dtype: x.dtype, device: x.device }, 'uniform_', 'uniform', low, high);
}
export function normalLike(x: Tensor, mean: number, std: number): Tensor {
  return randomTensor([...x.shape], { dtype: x.dtype, device: x.device }, 'normal_', 'normal', mean, std);
}
