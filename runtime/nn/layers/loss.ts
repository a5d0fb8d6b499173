// Loss modules: each holds its options and calls its nn.functional form.
import type { Tensor } from '../../tensor.js';
import * as F from '../functional/index.js';
import { Module } from '../module.js';

export type Reduction = 'none' | 'mean' | 'sum';

abstract class Loss<O extends { reduction?: string }> extends Module {
  constructor(readonly opts: O = {} as O) {
    super();
  }
}

export class MSELoss extends Loss<{ reduction?: Reduction }> {
  override forward(input: Tensor, target: Tensor): Tensor {
    return F.mseLoss(input, target, this.opts);
  }
}

export class L1Loss extends Loss<{ reduction?: Reduction }> {
  override forward(input: Tensor, target: Tensor): Tensor {
    return F.l1Loss(input, target, this.opts);
  }
}

export class SmoothL1Loss extends Loss<{ reduction?: Reduction; beta?: number }> {
  override forward(input: Tensor, target: Tensor): Tensor {
    return F.smoothL1Loss(input, target, this.opts);
  }
}

export class CrossEntropyLoss extends Loss<{ reduction?: Reduction; weight?: Tensor; ignoreIndex?: number; labelSmoothing?: number }> {
  override forward(input: Tensor, target: Tensor): Tensor {
    return F.crossEntropy(input, target, this.opts);
  }
}

export class NLLLoss extends Loss<{ reduction?: Reduction; weight?: Tensor; ignoreIndex?: number }> {
  override forward(input: Tensor, target: Tensor): Tensor {
    return F.nllLoss(input, target, this.opts);
  }
}

export class BCELoss extends Loss<{ reduction?: Reduction; weight?: Tensor }> {
  override forward(input: Tensor, target: Tensor): Tensor {
    return F.binaryCrossEntropy(input, target, this.opts);
  }
}

export class BCEWithLogitsLoss extends Loss<{ reduction?: Reduction; weight?: Tensor; posWeight?: Tensor }> {
  override forward(input: Tensor, target: Tensor): Tensor {
    return F.binaryCrossEntropyWithLogits(input, target, this.opts);
  }
}

export class KLDivLoss extends Loss<{ reduction?: Reduction | 'batchmean'; logTarget?: boolean }> {
  override forward(input: Tensor, target: Tensor): Tensor {
    return F.klDiv(input, target, this.opts);
  }
}
