// The Tensor: a shape, a dtype, a device and (in eager mode) a strided view of a storage, plus its
// autograd state. Every method is a thin call into the functional ops (runtime/ops/), so a method
// and its `kiln.*` function are the same code.
import { contiguousStrides, isContiguous, isFloating, normalizeDim, numel, OPS, type DType, type Layout } from '../ir/index.js';

import * as autograd from './autograd/engine.js';
import type { Node } from './autograd/node.js';
import { backendFor, type HostArray, type View } from './backend.js';
import { DynamicTraceError } from './dynamic.js';
import { formatTensor } from './format.js';
import * as creation from './creation.js';
import * as ops from './ops/index.js';
import { scaledPair, type Scalar, type TensorLike } from './ops/lift.js';

export type { Scalar, TensorLike };
export type NestedNumbers = number | boolean | readonly NestedNumbers[];

export interface HookHandle {
  remove(): void;
}

export class Tensor {
  /** Where the values live (eager tensors); undefined for the compiler's symbolic tensors. */
  _view: View | undefined;
  /** The tensor whose storage this view shares, if it is a view. */
  _base: Tensor | undefined;
  /** The compiler's handle on a symbolic tensor (undefined in eager mode). */
  _symbol: unknown;
  /** The autograd node that produced this tensor (null for leaves). */
  gradFn: Node | null = null;
  /** Accumulated gradient of a leaf (or of a non-leaf after `retainGrad()`). */
  grad: Tensor | null = null;
  _requiresGrad = false;
  _retainsGrad = false;
  /** The node that accumulates into `.grad` for a leaf, created on first use. */
  _accumulator: Node | undefined;

  constructor(
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly device: string,
    view?: View,
    base?: Tensor,
  ) {
    this._view = view;
    this._base = base;
    if (view?.storage.retain) trackStorage(this, view.storage);
  }

  /** Releases this tensor's hold on device memory now (WebGPU), rather than when it is garbage collected. */
  dispose(): void {
    if (!this._view || disposed.has(this)) return;
    disposed.add(this);
    registry.unregister(this);
    this._view.storage.release?.();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  // ---- type and layout ----
  get ndim(): number { return this.shape.length; }
  dim(): number { return this.shape.length; }
  numel(): number { return numel(this.shape); }
  size(): number[];
  size(dim: number): number;
  size(dim?: number): number[] | number {
    return dim === undefined ? [...this.shape] : this.shape[normalizeDim(dim, this.ndim, 'size')];
  }
  stride(): number[];
  stride(dim: number): number;
  stride(dim?: number): number[] | number {
    const s = this.eagerView('stride').strides;
    return dim === undefined ? [...s] : s[normalizeDim(dim, this.ndim, 'stride')];
  }
  isContiguous(): boolean {
    return this._view ? isContiguous(this._view) : true;
  }
  isFloatingPoint(): boolean { return isFloating(this.dtype); }

  /** The storage view; a symbolic tensor has none, and reading it names the op that needed values. */
  eagerView(what: string): View {
    if (!this._view) throw new DynamicTraceError(`${what}() reads the values of a tensor being traced`);
    return this._view;
  }

  // ---- reading values ----
  async data(): Promise<HostArray> {
    const v = this.eagerView('data');
    return backendFor(this.device).read(v);
  }
  dataSync(): HostArray {
    const v = this.eagerView('dataSync');
    return backendFor(this.device).readSync(v);
  }
  async item(): Promise<number> {
    this.checkOneElement('item');
    return (await this.data())[0];
  }
  itemSync(): number {
    this.checkOneElement('itemSync');
    return this.dataSync()[0];
  }
  async tolist(): Promise<NestedNumbers> {
    return nest(await this.data(), this.shape, this.dtype === 'bool');
  }
  tolistSync(): NestedNumbers {
    return nest(this.dataSync(), this.shape, this.dtype === 'bool');
  }
  private checkOneElement(what: string): void {
    if (this.numel() !== 1) {
      throw new Error(`${what}(): a Tensor with ${this.numel()} elements cannot be converted to a number (shape [${this.shape.join(', ')}])`);
    }
  }

  // ---- autograd ----
  get requiresGrad(): boolean { return this._requiresGrad; }
  set requiresGrad(flag: boolean) { this.requiresGrad_(flag); }
  get isLeaf(): boolean { return this.gradFn === null; }

  requiresGrad_(flag = true): this {
    if (!this.isLeaf) {
      throw new Error('requiresGrad_: you can only change requiresGrad of leaf tensors; use detach() to get a leaf from a computed tensor');
    }
    if (flag && !isFloating(this.dtype)) {
      throw new TypeError(`requiresGrad_: only floating point tensors can require gradients, got ${this.dtype}`);
    }
    this._requiresGrad = flag;
    return this;
  }
  backward(gradient?: Tensor, opts: { retainGraph?: boolean; createGraph?: boolean; inputs?: Tensor[] } = {}): void {
    autograd.backward([this], gradient ? [gradient] : undefined, opts);
  }
  /** Calls `hook(grad)` when this tensor's gradient is computed; a returned tensor replaces the gradient. */
  registerHook(hook: (grad: Tensor) => Tensor | void): HookHandle {
    return autograd.registerTensorHook(this, hook);
  }
  /** Keeps `.grad` for a non-leaf tensor after backward. */
  retainGrad(): this {
    autograd.retainGrad(this);
    return this;
  }
  /** The same values, cut from the autograd graph (shares storage). */
  detach(): Tensor {
    const d = new Tensor(this.shape, this.dtype, this.device, this._view, this._base ?? this);
    d._symbol = this._symbol;
    return d;
  }
  detach_(): this {
    this.gradFn = null;
    this._requiresGrad = false;
    return this;
  }

  // ---- elementwise ----
  add(other: TensorLike, opts?: { alpha?: number }): Tensor { return ops.add(this, other, opts); }
  sub(other: TensorLike, opts?: { alpha?: number }): Tensor { return ops.sub(this, other, opts); }
  mul(other: TensorLike): Tensor { return ops.mul(this, other); }
  div(other: TensorLike): Tensor { return ops.div(this, other); }
  pow(exponent: TensorLike): Tensor { return ops.pow(this, exponent); }
  neg(): Tensor { return ops.neg(this); }
  exp(): Tensor { return ops.exp(this); }
  log(): Tensor { return ops.log(this); }
  sqrt(): Tensor { return ops.sqrt(this); }
  rsqrt(): Tensor { return ops.rsqrt(this); }
  abs(): Tensor { return ops.abs(this); }
  sign(): Tensor { return ops.sign(this); }
  relu(): Tensor { return ops.relu(this); }
  sigmoid(): Tensor { return ops.sigmoid(this); }
  tanh(): Tensor { return ops.tanh(this); }
  sin(): Tensor { return ops.sin(this); }
  cos(): Tensor { return ops.cos(this); }
  floor(): Tensor { return ops.floor(this); }
  ceil(): Tensor { return ops.ceil(this); }
  square(): Tensor { return ops.square(this); }
  reciprocal(): Tensor { return ops.reciprocal(this); }
  maximum(other: TensorLike): Tensor { return ops.maximum(this, other); }
  minimum(other: TensorLike): Tensor { return ops.minimum(this, other); }
  clamp(min?: number | null | { min?: number; max?: number }, max?: number | null): Tensor { return ops.clamp(this, min, max); }
  lt(other: TensorLike): Tensor { return ops.lt(this, other); }
  le(other: TensorLike): Tensor { return ops.le(this, other); }
  gt(other: TensorLike): Tensor { return ops.gt(this, other); }
  ge(other: TensorLike): Tensor { return ops.ge(this, other); }
  eq(other: TensorLike): Tensor { return ops.eq(this, other); }
  ne(other: TensorLike): Tensor { return ops.ne(this, other); }
  logicalNot(): Tensor { return ops.logicalNot(this); }
  logicalAnd(other: TensorLike): Tensor { return ops.logicalAnd(this, other); }
  logicalOr(other: TensorLike): Tensor { return ops.logicalOr(this, other); }
  isnan(): Tensor { return ops.isnan(this); }
  where(condition: Tensor, other: TensorLike): Tensor { return ops.where(condition, this, other); }
  maskedFill(mask: Tensor, value: Scalar): Tensor { return ops.maskedFill(this, mask, value); }

  // ---- types and devices ----
  to(target: DType | string | { dtype?: DType; device?: string }): Tensor { return ops.to(this, target); }
  float(): Tensor { return ops.cast(this, 'float32'); }
  double(): Tensor { return ops.cast(this, 'float64'); }
  half(): Tensor { return ops.cast(this, 'float16'); }
  int(): Tensor { return ops.cast(this, 'int32'); }
  bool(): Tensor { return ops.cast(this, 'bool'); }
  cpu(): Tensor { return ops.to(this, 'cpu'); }

  // ---- reductions ----
  sum(dim?: number | number[] | null, keepdim = false): Tensor { return ops.sum(this, dim, keepdim); }
  mean(dim?: number | number[] | null, keepdim = false): Tensor { return ops.mean(this, dim, keepdim); }
  var(dim?: number | number[] | null, opts?: { unbiased?: boolean; keepdim?: boolean }): Tensor { return ops.variance(this, dim, opts); }
  std(dim?: number | number[] | null, opts?: { unbiased?: boolean; keepdim?: boolean }): Tensor { return ops.std(this, dim, opts); }
  amax(dim?: number | number[] | null, keepdim = false): Tensor { return ops.amax(this, dim, keepdim); }
  amin(dim?: number | number[] | null, keepdim = false): Tensor { return ops.amin(this, dim, keepdim); }
  max(): Tensor;
  max(dim: number, keepdim?: boolean): ops.ValuesIndices;
  max(dim?: number, keepdim = false): Tensor | ops.ValuesIndices { return dim === undefined ? ops.amax(this) : ops.maxDim(this, dim, keepdim); }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): ops.ValuesIndices;
  min(dim?: number, keepdim = false): Tensor | ops.ValuesIndices { return dim === undefined ? ops.amin(this) : ops.minDim(this, dim, keepdim); }
  argmax(dim?: number, keepdim = false): Tensor { return ops.argmax(this, dim, keepdim); }
  argmin(dim?: number, keepdim = false): Tensor { return ops.argmin(this, dim, keepdim); }
  norm(p = 2, dim?: number | number[] | null, keepdim = false): Tensor { return ops.norm(this, p, dim, keepdim); }

  // ---- linear algebra ----
  mm(other: Tensor): Tensor { return ops.mm(this, other); }
  bmm(other: Tensor): Tensor { return ops.bmm(this, other); }
  matmul(other: Tensor): Tensor { return ops.matmul(this, other); }
  mv(other: Tensor): Tensor { return ops.mv(this, other); }
  dot(other: Tensor): Tensor { return ops.dot(this, other); }

  // ---- movement ----
  reshape(...shape: number[] | [readonly number[]]): Tensor { return ops.reshape(this, flatArgs(shape)); }
  view(...shape: number[] | [readonly number[]]): Tensor { return ops.view(this, flatArgs(shape)); }
  viewAs(other: Tensor): Tensor { return ops.view(this, other.shape); }
  reshapeAs(other: Tensor): Tensor { return ops.reshape(this, other.shape); }
  permute(...dims: number[] | [readonly number[]]): Tensor { return ops.permute(this, flatArgs(dims)); }
  transpose(dim0: number, dim1: number): Tensor { return ops.transpose(this, dim0, dim1); }
  t(): Tensor { return ops.t(this); }
  get T(): Tensor { return ops.permute(this, [...this.shape.keys()].reverse()); }
  expand(...shape: number[] | [readonly number[]]): Tensor { return ops.expand(this, flatArgs(shape)); }
  expandAs(other: Tensor): Tensor { return ops.expand(this, other.shape); }
  squeeze(dim?: number): Tensor { return ops.squeeze(this, dim); }
  unsqueeze(dim: number): Tensor { return ops.unsqueeze(this, dim); }
  flatten(startDim = 0, endDim = -1): Tensor { return ops.flatten(this, startDim, endDim); }
  narrow(dim: number, start: number, length: number): Tensor { return ops.narrow(this, dim, start, length); }
  slice(dim: number, start?: number | null, end?: number | null, step = 1): Tensor { return ops.slice(this, dim, start, end, step); }
  select(dim: number, index: number): Tensor { return ops.select(this, dim, index); }
  split(size: number | number[], dim = 0): Tensor[] { return ops.split(this, size, dim); }
  chunk(chunks: number, dim = 0): Tensor[] { return ops.chunk(this, chunks, dim); }
  unbind(dim = 0): Tensor[] { return ops.unbind(this, dim); }
  contiguous(): Tensor { return ops.contiguous(this); }
  clone(): Tensor { return ops.clone(this); }
  gather(dim: number, index: Tensor): Tensor { return ops.gather(this, dim, index); }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor { return ops.scatterAdd(this, dim, index, src); }
  indexSelect(dim: number, index: Tensor): Tensor { return ops.indexSelect(this, dim, index); }

  // ---- in place (PyTorch's trailing underscore): compute, then write into this tensor's storage ----
  // (The arithmetic ones end in one elementwise op over this tensor: written straight into it where that is safe.)
  add_(other: TensorLike, opts: { alpha?: number } = {}): this { return ops.inPlaceInto(this, 'add_', OPS.add, () => scaledPair(this, other, opts, 'add_')); }
  sub_(other: TensorLike, opts: { alpha?: number } = {}): this { return ops.inPlaceInto(this, 'sub_', OPS.sub, () => scaledPair(this, other, opts, 'sub_')); }
  mul_(other: TensorLike): this { return ops.inPlaceInto(this, 'mul_', OPS.mul, () => ops.liftPair(this, other, 'mul_')); }
  div_(other: TensorLike): this { return ops.inPlaceInto(this, 'div_', OPS.div, () => ops.liftPair(this, other, 'div_')); }
  pow_(exponent: TensorLike): this { return ops.inPlace(this, 'pow_', () => ops.pow(this, exponent)); }
  neg_(): this { return ops.inPlace(this, 'neg_', () => ops.neg(this)); }
  relu_(): this { return ops.inPlace(this, 'relu_', () => ops.relu(this)); }
  clamp_(min?: number | null | { min?: number; max?: number }, max?: number | null): this { return ops.inPlace(this, 'clamp_', () => ops.clamp(this, min, max)); }
  sqrt_(): this { return ops.inPlace(this, 'sqrt_', () => ops.sqrt(this)); }
  exp_(): this { return ops.inPlace(this, 'exp_', () => ops.exp(this)); }
  zero_(): this { return ops.inPlace(this, 'zero_', () => creation.fullLike(this, 0)); }
  fill_(value: Scalar): this { return ops.inPlace(this, 'fill_', () => creation.fullLike(this, value)); }
  maskedFill_(mask: Tensor, value: Scalar): this { return ops.inPlace(this, 'maskedFill_', () => ops.maskedFill(this, mask, value)); }
  copy_(src: Tensor): this { return ops.inPlace(this, 'copy_', () => ops.to(src, { device: this.device })); }
  addcmul_(a: Tensor, b: Tensor, opts: { value?: number } = {}): this { return ops.inPlaceInto(this, 'addcmul_', OPS.add, () => [this, ops.mul(ops.mul(a, b), opts.value ?? 1)]); }
  addcdiv_(a: Tensor, b: Tensor, opts: { value?: number } = {}): this { return ops.inPlaceInto(this, 'addcdiv_', OPS.add, () => [this, ops.mul(ops.div(a, b), opts.value ?? 1)]); }
  lerp_(end: Tensor, weight: number): this { return ops.inPlace(this, 'lerp_', () => ops.add(this, ops.mul(ops.sub(end, this), weight))); }
  uniform_(low = 0, high = 1): this { return ops.inPlace(this, 'uniform_', () => creation.uniformLike(this, low, high)); }
  normal_(mean = 0, std = 1): this { return ops.inPlace(this, 'normal_', () => creation.normalLike(this, mean, std)); }

  // ---- printing ----
  toString(): string {
    if (!this._view) return `Tensor(symbolic, shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device})`;
    const extras = this.printExtras();
    let values: HostArray;
    try {
      values = backendFor(this.device).readSync(this._view);
    } catch {
      // A device that cannot read synchronously (WebGPU): print what is known, and how to see values.
      return `tensor(<${this.numel()} values on ${this.device}: await t.data() or await t.tolist() to read them>, shape=[${this.shape.join(', ')}], ${extras.join(', ')})`.replace(/, \)$/, ')');
    }
    return formatTensor(values, this.shape, this.dtype, extras);
  }

  /** PyTorch's printout on any device (reads the values asynchronously where the device needs it). */
  async toStringAsync(): Promise<string> {
    if (!this._view || this.device === 'cpu') return this.toString();
    return formatTensor(await this.data(), this.shape, this.dtype, this.printExtras());
  }
  /** What PyTorch prints after the values: device, dtype, and the grad function or requiresGrad. */
  private printExtras(): string[] {
    const extras: string[] = [];
    if (this.device !== 'cpu') extras.push(`device='${this.device}'`);
    if (this.dtype !== 'float32' && this.dtype !== 'bool') extras.push(`dtype=${this.dtype}`);
    if (this.gradFn) extras.push(`gradFn=<${this.gradFn.name}>`);
    else if (this.requiresGrad) extras.push('requiresGrad=true');
    return extras;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
  /** `+t`, `t > 0.5`, `if (t.sum() > 5)`: a one-element tensor converts to its value (a branch on it is dynamic under tracing). */
  [Symbol.toPrimitive](hint: string): number | string {
    if (hint === 'string') return this.toString();
    if (!this._view) throw new DynamicTraceError('converting a tensor to a number (a comparison, arithmetic or branch on its value)');
    return this.itemSync();
  }
}

// Device memory held by tensors: each tensor viewing a reference-counted storage holds one
// reference, released by dispose(), by kiln.tidy, or (as a backstop) when the tensor is collected.
const disposed = new WeakSet<Tensor>();
const registry = new FinalizationRegistry<{ release?(): void }>((storage) => storage.release?.());
/** Tensors created inside the innermost kiln.tidy scope. */
export const tidyScopes: Tensor[][] = [];

/** Takes a tensor out of every enclosing kiln.tidy scope, so it outlives them (gradients, optimizer state). */
export function keep<T extends Tensor>(t: T): T {
  for (const scope of tidyScopes) {
    const i = scope.indexOf(t);
    if (i >= 0) scope.splice(i, 1);
  }
  return t;
}

function trackStorage(t: Tensor, storage: { retain?(): void; release?(): void }): void {
  storage.retain!();
  registry.register(t, storage, t);
  tidyScopes[tidyScopes.length - 1]?.push(t);
}

function flatArgs(args: number[] | [readonly number[]]): number[] {
  return Array.isArray(args[0]) ? [...(args[0] as readonly number[])] : (args as number[]);
}

function nest(flat: HostArray, shape: readonly number[], bool: boolean): NestedNumbers {
  const at = (i: number): number | boolean => (bool ? flat[i] !== 0 : flat[i]);
  if (shape.length === 0) return at(0);
  const strides = contiguousStrides(shape);
  const build = (d: number, off: number): NestedNumbers[] =>
    Array.from({ length: shape[d] }, (_, i) => (d === shape.length - 1 ? at(off + i) : build(d + 1, off + i * strides[d])));
  return build(0, 0);
}

export type { Layout };
