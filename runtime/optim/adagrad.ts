// Adagrad (torch.optim.Adagrad, PyTorch 1.13's single-tensor update): the step shrinks with the
// running sum of squared gradients.
import { fullLike } from '../creation.js';
import type { Tensor } from '../tensor.js';
import { checkOption, defined, Optimizer, type ParamGroup, type ParamGroupInput, type ParamState } from './optimizer.js';

export interface AdagradOptions {
  lr: number;
  lrDecay: number;
  weightDecay: number;
  initialAccumulatorValue: number;
  eps: number;
  maximize: boolean;
}

export class Adagrad extends Optimizer<AdagradOptions> {
  /** Defaults: lr 1e-2, lrDecay 0, weightDecay 0, initialAccumulatorValue 0, eps 1e-10. */
  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInput<AdagradOptions>>, options: Partial<AdagradOptions> = {}) {
    const o: AdagradOptions = { lr: 1e-2, lrDecay: 0, weightDecay: 0, initialAccumulatorValue: 0, eps: 1e-10, maximize: false, ...defined(options) };
    checkOption(o.lr >= 0, 'learning rate', o.lr);
    checkOption(o.lrDecay >= 0, 'lrDecay value', o.lrDecay);
    checkOption(o.weightDecay >= 0, 'weightDecay value', o.weightDecay);
    checkOption(o.initialAccumulatorValue >= 0, 'initialAccumulatorValue value', o.initialAccumulatorValue);
    checkOption(o.eps >= 0, 'epsilon value', o.eps);
    super(params, o);
    // PyTorch creates Adagrad's state up front, so stateDict lists every parameter from the start.
    for (const group of this.paramGroups) for (const p of group.params) this.init(p, group);
  }

  private init(p: Tensor, group: AdagradOptions): ParamState {
    const s = this.stateOf(p);
    if (!('sum' in s)) {
      s.step = 0;
      s.sum = fullLike(p, group.initialAccumulatorValue);
    }
    return s;
  }

  protected updateGroup(group: ParamGroup<AdagradOptions>): void {
    const { lr, lrDecay, weightDecay, eps, maximize } = group;
    for (const p of group.params) {
      if (p.grad === null) continue;
      const s = this.init(p, group); // a group added later gets its state here
      const step = (s.step as number) + 1;
      s.step = step;
      let g = maximize ? p.grad.neg() : p.grad;
      if (weightDecay !== 0) g = g.add(p, { alpha: weightDecay });
      const clr = lr / (1 + (step - 1) * lrDecay);
      const sum = s.sum as Tensor;
      sum.addcmul_(g, g, { value: 1 });
      p.addcdiv_(g, sum.sqrt().add(eps), { value: -clr });
    }
  }
}
