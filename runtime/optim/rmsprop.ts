// RMSprop (torch.optim.RMSprop, PyTorch 1.13's single-tensor update), optionally centered and
// with momentum.
import { zerosLike } from '../creation.js';
import type { Tensor } from '../tensor.js';
import { checkOption, defined, Optimizer, type ParamGroup, type ParamGroupInput } from './optimizer.js';

export interface RMSpropOptions {
  lr: number;
  alpha: number;
  eps: number;
  weightDecay: number;
  momentum: number;
  centered: boolean;
  maximize: boolean;
}

export class RMSprop extends Optimizer<RMSpropOptions> {
  /** Defaults: lr 1e-2, alpha 0.99, eps 1e-8, no weight decay, no momentum, not centered. */
  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInput<RMSpropOptions>>, options: Partial<RMSpropOptions> = {}) {
    const o: RMSpropOptions = { lr: 1e-2, alpha: 0.99, eps: 1e-8, weightDecay: 0, momentum: 0, centered: false, maximize: false, ...defined(options) };
    checkOption(o.lr >= 0, 'learning rate', o.lr);
    checkOption(o.eps >= 0, 'epsilon value', o.eps);
    checkOption(o.momentum >= 0, 'momentum value', o.momentum);
    checkOption(o.weightDecay >= 0, 'weightDecay value', o.weightDecay);
    checkOption(o.alpha >= 0, 'alpha value', o.alpha);
    super(params, o);
  }

  protected updateGroup(group: ParamGroup<RMSpropOptions>): void {
    const { lr, alpha, eps, weightDecay, momentum, centered, maximize } = group;
    for (const p of group.params) {
      if (p.grad === null) continue;
      const s = this.stateOf(p);
      if (Object.keys(s).length === 0) {
        s.step = 0;
        s.square_avg = zerosLike(p);
        if (momentum > 0) s.momentum_buffer = zerosLike(p);
        if (centered) s.grad_avg = zerosLike(p);
      }
      s.step = (s.step as number) + 1;
      let g = maximize ? p.grad.neg() : p.grad;
      if (weightDecay !== 0) g = g.add(p, { alpha: weightDecay });
      const squareAvg = (s.square_avg as Tensor).mul_(alpha).addcmul_(g, g, { value: 1 - alpha });
      let avg: Tensor;
      if (centered) {
        const gradAvg = (s.grad_avg as Tensor).mul_(alpha).add_(g, { alpha: 1 - alpha });
        avg = squareAvg.sub(gradAvg.mul(gradAvg)).sqrt(); // square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
      } else {
        avg = squareAvg.sqrt();
      }
      avg = avg.add(eps);
      if (momentum > 0) {
        const buf = (s.momentum_buffer as Tensor).mul_(momentum).addcdiv_(g, avg);
        p.add_(buf, { alpha: -lr });
      } else {
        p.addcdiv_(g, avg, { value: -lr });
      }
    }
  }
}
