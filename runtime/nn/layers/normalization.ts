// BatchNorm1d/2d (running statistics, train/eval) and LayerNorm over nn.functional.
import { full, ones, zeros } from '../../creation.js';
import type { Tensor } from '../../tensor.js';
import { noGrad } from '../../autograd/grad-mode.js';
import * as F from '../functional/index.js';
import { Module } from '../module.js';
import { Parameter } from '../parameter.js';
import { py, pyTuple } from './util.js';

export interface BatchNormOptions {
  eps?: number;
  /** null: a cumulative moving average (PyTorch's momentum=None). */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

abstract class BatchNormNd extends Module {
  weight!: Parameter | null;
  bias!: Parameter | null;
  running_mean!: Tensor | null;
  running_var!: Tensor | null;
  num_batches_tracked!: Tensor | null;
  readonly eps: number;
  readonly momentum: number | null;
  readonly affine: boolean;
  readonly trackRunningStats: boolean;

  constructor(readonly numFeatures: number, opts: BatchNormOptions = {}) {
    super();
    this.eps = opts.eps ?? 1e-5;
    this.momentum = opts.momentum === undefined ? 0.1 : opts.momentum;
    this.affine = opts.affine ?? true;
    this.trackRunningStats = opts.trackRunningStats ?? true;
    if (this.affine) {
      this.weight = new Parameter(ones([numFeatures]));
      this.bias = new Parameter(zeros([numFeatures]));
    } else {
      this.registerParameter('weight', null);
      this.registerParameter('bias', null);
    }
    // Buffer names are PyTorch's, so state dicts move between the two.
    this.registerBuffer('running_mean', this.trackRunningStats ? zeros([numFeatures]) : null);
    this.registerBuffer('running_var', this.trackRunningStats ? ones([numFeatures]) : null);
    this.registerBuffer('num_batches_tracked', this.trackRunningStats ? full([], 0, { dtype: 'int32' }) : null);
  }

  protected abstract checkInput(x: Tensor): void;

  override forward(x: Tensor): Tensor {
    this.checkInput(x);
    let momentum = this.momentum ?? 0;
    const useBatchStats = this.training || this.running_mean === null;
    if (this.training && this.trackRunningStats && this.num_batches_tracked) {
      noGrad(() => this.num_batches_tracked!.add_(1));
      if (this.momentum === null) momentum = 1 / this.num_batches_tracked.itemSync();
    }
    return F.batchNorm(x, this.running_mean, this.running_var, this.weight ?? undefined, this.bias ?? undefined, {
      training: useBatchStats,
      momentum,
      eps: this.eps,
    });
  }

  override extraRepr(): string {
    return `${this.numFeatures}, eps=${py(this.eps)}, momentum=${py(this.momentum)}, affine=${py(this.affine)}, track_running_stats=${py(this.trackRunningStats)}`;
  }
}

export class BatchNorm1d extends BatchNormNd {
  protected checkInput(x: Tensor): void {
    if (x.ndim !== 2 && x.ndim !== 3) throw new Error(`BatchNorm1d: expected 2D or 3D input, got shape [${x.shape.join(', ')}]`);
  }
}

export class BatchNorm2d extends BatchNormNd {
  protected checkInput(x: Tensor): void {
    if (x.ndim !== 4) throw new Error(`BatchNorm2d: expected 4D input, got shape [${x.shape.join(', ')}]`);
  }
}

export class LayerNorm extends Module {
  weight!: Parameter | null;
  bias!: Parameter | null;
  readonly normalizedShape: number[];
  readonly eps: number;
  readonly elementwiseAffine: boolean;
  constructor(normalizedShape: number | number[], opts: { eps?: number; elementwiseAffine?: boolean } = {}) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    this.eps = opts.eps ?? 1e-5;
    this.elementwiseAffine = opts.elementwiseAffine ?? true;
    if (this.elementwiseAffine) {
      this.weight = new Parameter(ones(this.normalizedShape));
      this.bias = new Parameter(zeros(this.normalizedShape));
    } else {
      this.registerParameter('weight', null);
      this.registerParameter('bias', null);
    }
  }
  override forward(x: Tensor): Tensor {
    return F.layerNorm(x, this.normalizedShape, this.weight ?? undefined, this.bias ?? undefined, this.eps);
  }
  override extraRepr(): string {
    return `${pyTuple(this.normalizedShape)}, eps=${py(this.eps)}, elementwise_affine=${py(this.elementwiseAffine)}`;
  }
}
