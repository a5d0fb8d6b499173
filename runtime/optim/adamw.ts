// AdamW: Adam with decoupled weight decay (torch.optim.AdamW, PyTorch 1.13's single-tensor update).
import type { Tensor } from '../tensor.js';
import { adamOptions, adamUpdate, type AdamOptions } from './adam.js';
import { Optimizer, type ParamGroup, type ParamGroupInput } from './optimizer.js';

export type AdamWOptions = AdamOptions;

export class AdamW extends Optimizer<AdamWOptions> {
  /** Defaults: lr 1e-3, betas [0.9, 0.999], eps 1e-8, weightDecay 1e-2. */
  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInput<AdamWOptions>>, options: Partial<AdamWOptions> = {}) {
    super(params, adamOptions(options, 1e-2));
  }

  protected updateGroup(group: ParamGroup<AdamWOptions>): void {
    for (const p of group.params) if (p.grad !== null) adamUpdate(p, p.grad, this.stateOf(p), group, true);
  }
}
