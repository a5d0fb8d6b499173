// Stochastic gradient descent with optional momentum, dampening, Nesterov and weight decay
// (torch.optim.SGD, PyTorch 1.13's single-tensor update).
import type { Tensor } from '../tensor.js';
import { checkOption, defined, Optimizer, type ParamGroup, type ParamGroupInput } from './optimizer.js';

export interface SGDOptions {
  lr: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weightDecay: number;
  maximize: boolean;
}

export class SGD extends Optimizer<SGDOptions> {
  /** Defaults: lr 1e-3 (PyTorch 2's default; 1.13 required it), no momentum, no weight decay. */
  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInput<SGDOptions>>, options: Partial<SGDOptions> = {}) {
    const o: SGDOptions = { lr: 1e-3, momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, maximize: false, ...defined(options) };
    checkOption(o.lr >= 0, 'learning rate', o.lr);
    checkOption(o.momentum >= 0, 'momentum value', o.momentum);
    checkOption(o.weightDecay >= 0, 'weightDecay value', o.weightDecay);
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) throw new RangeError('Nesterov momentum requires a momentum and zero dampening');
    super(params, o);
  }

  protected updateGroup(group: ParamGroup<SGDOptions>): void {
    const { lr, momentum, dampening, nesterov, weightDecay, maximize } = group;
    for (const p of group.params) {
      if (p.grad === null) continue;
      let d = maximize ? p.grad.neg() : p.grad;
      if (weightDecay !== 0) d = d.add(p, { alpha: weightDecay });
      const state = this.stateOf(p);
      if (momentum !== 0) {
        let buf = state.momentum_buffer as Tensor | null | undefined;
        if (!buf) {
          // The first step takes the gradient as it is, without dampening (PyTorch's choice).
          buf = d.detach().clone();
          state.momentum_buffer = buf;
        } else {
          buf.mul_(momentum).add_(d, { alpha: 1 - dampening });
        }
        d = nesterov ? d.add(buf, { alpha: momentum }) : buf;
      } else {
        state.momentum_buffer = null; // PyTorch records a None buffer too
      }
      p.add_(d, { alpha: -lr });
    }
  }
}
