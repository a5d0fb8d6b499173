// Identity, Linear, Bilinear, Flatten.
import { flatten } from '../../ops/shape.js';
import type { Tensor } from '../../tensor.js';
import * as F from '../functional/index.js';
import { Module } from '../module.js';
import type { Parameter } from '../parameter.js';
import { py, uniformParameter } from './util.js';

export class Identity extends Module {
  override forward(x: Tensor): Tensor {
    return x;
  }
}

/** y = x W^T + b, with W of shape [outFeatures, inFeatures] (PyTorch's layout). */
export class Linear extends Module {
  weight!: Parameter;
  bias!: Parameter | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, opts: { bias?: boolean } = {}) {
    super();
    this.weight = uniformParameter([outFeatures, inFeatures], inFeatures);
    if (opts.bias ?? true) this.bias = uniformParameter([outFeatures], inFeatures);
    else this.registerParameter('bias', null);
  }
  override forward(x: Tensor): Tensor {
    return F.linear(x, this.weight, this.bias ?? undefined);
  }
  override extraRepr(): string {
    return `in_features=${this.inFeatures}, out_features=${this.outFeatures}, bias=${py(this.bias !== null)}`;
  }
}

/** y = x1^T A x2 + b, A of shape [out, in1, in2]. */
export class Bilinear extends Module {
  weight!: Parameter;
  bias!: Parameter | null;
  constructor(readonly in1Features: number, readonly in2Features: number, readonly outFeatures: number, opts: { bias?: boolean } = {}) {
    super();
    this.weight = uniformParameter([outFeatures, in1Features, in2Features], in1Features);
    if (opts.bias ?? true) this.bias = uniformParameter([outFeatures], in1Features);
    else this.registerParameter('bias', null);
  }
  override forward(x1: Tensor, x2: Tensor): Tensor {
    return F.bilinear(x1, x2, this.weight, this.bias ?? undefined);
  }
  override extraRepr(): string {
    return `in1_features=${this.in1Features}, in2_features=${this.in2Features}, out_features=${this.outFeatures}, bias=${py(this.bias !== null)}`;
  }
}

export class Flatten extends Module {
  constructor(readonly startDim = 1, readonly endDim = -1) {
    super();
  }
  override forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }
  override extraRepr(): string {
    return `start_dim=${this.startDim}, end_dim=${this.endDim}`;
  }
}
