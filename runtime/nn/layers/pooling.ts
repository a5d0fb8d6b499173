// Pooling, padding and upsampling layers over nn.functional.
import { pad } from '../../ops/shape.js';
import type { Tensor } from '../../tensor.js';
import * as F from '../functional/index.js';
import { Module } from '../module.js';
import { ntuple, py, pyTuple } from './util.js';

type Size = number | number[];
const show = (v: Size) => (typeof v === 'number' ? String(v) : pyTuple(v));

export interface MaxPoolOptions {
  stride?: Size;
  padding?: Size;
  dilation?: Size;
  ceilMode?: boolean;
  returnIndices?: boolean;
}

abstract class MaxPoolNd extends Module {
  readonly stride: Size;
  readonly padding: Size;
  readonly dilation: Size;
  readonly ceilMode: boolean;
  readonly returnIndices: boolean;
  constructor(readonly kernelSize: Size, stride?: Size | MaxPoolOptions, opts: MaxPoolOptions = {}) {
    super();
    const o = typeof stride === 'object' && !Array.isArray(stride) ? stride : { ...opts, stride };
    this.stride = o.stride ?? kernelSize;
    this.padding = o.padding ?? 0;
    this.dilation = o.dilation ?? 1;
    this.ceilMode = o.ceilMode ?? false;
    this.returnIndices = o.returnIndices ?? false;
  }
  protected get poolOptions() {
    return { stride: this.stride, padding: this.padding, dilation: this.dilation, ceilMode: this.ceilMode };
  }
  override extraRepr(): string {
    return `kernel_size=${show(this.kernelSize)}, stride=${show(this.stride)}, padding=${show(this.padding)}, dilation=${show(this.dilation)}, ceil_mode=${py(this.ceilMode)}`;
  }
}

/** `new MaxPool2d(2, 2)` or `new MaxPool2d(3, { stride: 2, padding: 1 })`. */
export class MaxPool2d extends MaxPoolNd {
  override forward(x: Tensor): any {
    return this.returnIndices ? F.maxPool2d(x, this.kernelSize, { ...this.poolOptions, returnIndices: true }) : F.maxPool2d(x, this.kernelSize, this.poolOptions);
  }
}

export class MaxPool1d extends MaxPoolNd {
  override forward(x: Tensor): any {
    return this.returnIndices ? F.maxPool1d(x, this.kernelSize, { ...this.poolOptions, returnIndices: true }) : F.maxPool1d(x, this.kernelSize, this.poolOptions);
  }
}

export interface AvgPoolOptions {
  stride?: Size;
  padding?: Size;
  ceilMode?: boolean;
  countIncludePad?: boolean;
}

abstract class AvgPoolNd extends Module {
  readonly stride: Size;
  readonly padding: Size;
  readonly ceilMode: boolean;
  readonly countIncludePad: boolean;
  constructor(readonly kernelSize: Size, stride?: Size | AvgPoolOptions, opts: AvgPoolOptions = {}) {
    super();
    const o = typeof stride === 'object' && !Array.isArray(stride) ? stride : { ...opts, stride };
    this.stride = o.stride ?? kernelSize;
    this.padding = o.padding ?? 0;
    this.ceilMode = o.ceilMode ?? false;
    this.countIncludePad = o.countIncludePad ?? true;
  }
  protected get poolOptions() {
    return { stride: this.stride, padding: this.padding, ceilMode: this.ceilMode, countIncludePad: this.countIncludePad };
  }
  override extraRepr(): string {
    return `kernel_size=${show(this.kernelSize)}, stride=${show(this.stride)}, padding=${show(this.padding)}`;
  }
}

export class AvgPool2d extends AvgPoolNd {
  override forward(x: Tensor): Tensor {
    return F.avgPool2d(x, this.kernelSize, this.poolOptions);
  }
}

export class AvgPool1d extends AvgPoolNd {
  override forward(x: Tensor): Tensor {
    return F.avgPool1d(x, this.kernelSize, this.poolOptions);
  }
}

export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: Size) {
    super();
  }
  override forward(x: Tensor): Tensor {
    return F.adaptiveAvgPool2d(x, this.outputSize);
  }
  override extraRepr(): string {
    return `output_size=${show(this.outputSize)}`;
  }
}

/** Zero padding of the last two dims: a number, or [left, right, top, bottom]. */
export class ZeroPad2d extends Module {
  readonly padding: number[];
  constructor(padding: number | [number, number, number, number]) {
    super();
    this.padding = ntuple(padding, 4);
  }
  override forward(x: Tensor): Tensor {
    return pad(x, this.padding, 0);
  }
  override extraRepr(): string {
    return pyTuple(this.padding);
  }
}

export class Upsample extends Module {
  readonly size: Size | undefined;
  readonly scaleFactor: number | number[] | undefined;
  readonly mode: 'nearest';
  constructor(opts: { size?: Size; scaleFactor?: number | number[]; mode?: 'nearest' }) {
    super();
    this.size = opts.size;
    this.scaleFactor = opts.scaleFactor;
    this.mode = opts.mode ?? 'nearest';
  }
  override forward(x: Tensor): Tensor {
    return F.interpolate(x, { size: this.size, scaleFactor: this.scaleFactor, mode: this.mode });
  }
  override extraRepr(): string {
    return this.size !== undefined ? `size=${show(this.size)}, mode=${this.mode}` : `scale_factor=${py(this.scaleFactor as number, true)}, mode=${this.mode}`;
  }
}
