// Conv1d and Conv2d over F.conv1d / F.conv2d.
import type { Tensor } from '../../tensor.js';
import * as F from '../functional/index.js';
import { Module } from '../module.js';
import type { Parameter } from '../parameter.js';
import { ntuple, pyTuple, uniformParameter } from './util.js';

export interface ConvOptions {
  stride?: number | number[];
  padding?: number | number[] | 'valid' | 'same';
  dilation?: number | number[];
  groups?: number;
  bias?: boolean;
}

abstract class ConvNd extends Module {
  weight!: Parameter;
  bias!: Parameter | null;
  readonly kernelSize: number[];
  readonly stride: number[];
  readonly padding: number[] | 'valid' | 'same';
  readonly dilation: number[];
  readonly groups: number;

  constructor(readonly inChannels: number, readonly outChannels: number, kernelSize: number | number[], dims: number, opts: ConvOptions) {
    super();
    this.kernelSize = ntuple(kernelSize, dims);
    this.stride = ntuple(opts.stride ?? 1, dims);
    this.padding = typeof opts.padding === 'string' ? opts.padding : ntuple(opts.padding ?? 0, dims);
    this.dilation = ntuple(opts.dilation ?? 1, dims);
    this.groups = opts.groups ?? 1;
    if (inChannels % this.groups !== 0 || outChannels % this.groups !== 0) {
      throw new Error(`${new.target.name}: inChannels (${inChannels}) and outChannels (${outChannels}) must be divisible by groups (${this.groups})`);
    }
    const fanIn = (inChannels / this.groups) * this.kernelSize.reduce((a, b) => a * b, 1);
    this.weight = uniformParameter([outChannels, inChannels / this.groups, ...this.kernelSize], fanIn);
    if (opts.bias ?? true) this.bias = uniformParameter([outChannels], fanIn);
    else this.registerParameter('bias', null);
  }

  protected get convOptions() {
    return { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups };
  }

  override extraRepr(): string {
    let s = `${this.inChannels}, ${this.outChannels}, kernel_size=${pyTuple(this.kernelSize)}, stride=${pyTuple(this.stride)}`;
    if (typeof this.padding === 'string') s += `, padding=${this.padding}`;
    else if (this.padding.some((p) => p !== 0)) s += `, padding=${pyTuple(this.padding)}`;
    if (this.dilation.some((d) => d !== 1)) s += `, dilation=${pyTuple(this.dilation)}`;
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (this.bias === null) s += ', bias=False';
    return s;
  }
}

export class Conv1d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], opts: ConvOptions = {}) {
    super(inChannels, outChannels, kernelSize, 1, opts);
  }
  override forward(x: Tensor): Tensor {
    return F.conv1d(x, this.weight, this.bias ?? undefined, this.convOptions);
  }
}

export class Conv2d extends ConvNd {
  constructor(inChannels: number, outChannels: number, kernelSize: number | number[], opts: ConvOptions = {}) {
    super(inChannels, outChannels, kernelSize, 2, opts);
  }
  override forward(x: Tensor): Tensor {
    return F.conv2d(x, this.weight, this.bias ?? undefined, this.convOptions);
  }
}
