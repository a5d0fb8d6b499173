// Learning-rate schedulers (torch.optim.lr_scheduler): each `step()` writes a new `lr` into every
// parameter group, with PyTorch's recursive formulas (so a schedule composes with other changes
// to `lr`), or the closed form when `step(epoch)` jumps to an epoch.
import { Optimizer } from './optimizer.js';

export abstract class LRScheduler {
  readonly optimizer: Optimizer;
  baseLrs: number[];
  lastEpoch: number;
  protected stepCount = 0;
  protected lastLr: number[] = [];

  /** Subclasses set their own fields, then call `initialStep()` (PyTorch's constructor does so itself). */
  constructor(optimizer: Optimizer, lastEpoch = -1) {
    if (!(optimizer instanceof Optimizer)) throw new TypeError('LRScheduler: expected an Optimizer');
    this.optimizer = optimizer;
    const groups = optimizer.paramGroups;
    if (lastEpoch === -1) {
      for (const g of groups) g.initialLr ??= g.lr;
    } else {
      groups.forEach((g, i) => {
        if (g.initialLr === undefined) throw new Error(`LRScheduler: initialLr is not specified in paramGroups[${i}] when resuming an optimizer`);
      });
    }
    this.baseLrs = groups.map((g) => g.initialLr!);
    this.lastEpoch = lastEpoch;
  }

  protected initialStep(): void {
    this.stepCount = 0;
    this.step();
  }

  /** The learning rates for `lastEpoch`, from the groups' current ones. */
  protected abstract getLr(): number[];

  /** The learning rates for `lastEpoch` from the base ones alone. */
  protected abstract closedFormLr(): number[];

  /** Advances one epoch, or (deprecated in PyTorch) jumps to `epoch` with the closed form. */
  step(epoch?: number): void {
    this.stepCount++;
    let values: number[];
    if (epoch === undefined) {
      this.lastEpoch++;
      values = this.getLr();
    } else {
      this.lastEpoch = epoch;
      values = this.closedFormLr();
    }
    this.optimizer.paramGroups.forEach((g, i) => (g.lr = values[i]));
    this.lastLr = this.optimizer.paramGroups.map((g) => g.lr);
  }

  /** The learning rates the last `step()` set, one per group. */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  /** Every field but the optimizer, as PyTorch's scheduler state_dict. */
  stateDict(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(this)) if (k !== 'optimizer') out[k] = Array.isArray(v) ? [...v] : v;
    return out;
  }

  loadStateDict(sd: Record<string, unknown>): void {
    for (const [k, v] of Object.entries(sd)) {
      if (k !== 'optimizer') (this as unknown as Record<string, unknown>)[k] = Array.isArray(v) ? [...v] : v;
    }
  }

  protected currentLrs(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }
}

/** Multiplies the learning rate by `gamma` every `stepSize` epochs. */
export class StepLR extends LRScheduler {
  stepSize: number;
  gamma: number;

  constructor(optimizer: Optimizer, stepSize: number, opts: { gamma?: number; lastEpoch?: number } = {}) {
    super(optimizer, opts.lastEpoch ?? -1);
    if (!(Number.isInteger(stepSize) && stepSize > 0)) throw new RangeError(`StepLR: stepSize must be a positive integer, got ${stepSize}`);
    this.stepSize = stepSize;
    this.gamma = opts.gamma ?? 0.1;
    this.initialStep();
  }

  protected getLr(): number[] {
    if (this.lastEpoch === 0 || this.lastEpoch % this.stepSize !== 0) return this.currentLrs();
    return this.currentLrs().map((lr) => lr * this.gamma);
  }

  protected closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** Math.floor(this.lastEpoch / this.stepSize));
  }
}

/** Multiplies the learning rate by `gamma` every epoch. */
export class ExponentialLR extends LRScheduler {
  gamma: number;

  constructor(optimizer: Optimizer, gamma: number, opts: { lastEpoch?: number } = {}) {
    super(optimizer, opts.lastEpoch ?? -1);
    this.gamma = gamma;
    this.initialStep();
  }

  protected getLr(): number[] {
    if (this.lastEpoch === 0) return this.currentLrs();
    return this.currentLrs().map((lr) => lr * this.gamma);
  }

  protected closedFormLr(): number[] {
    return this.baseLrs.map((b) => b * this.gamma ** this.lastEpoch);
  }
}

/** Cosine annealing from the base lr down to `etaMin` over `tMax` epochs (SGDR without restarts). */
export class CosineAnnealingLR extends LRScheduler {
  tMax: number;
  etaMin: number;

  constructor(optimizer: Optimizer, tMax: number, opts: { etaMin?: number; lastEpoch?: number } = {}) {
    super(optimizer, opts.lastEpoch ?? -1);
    if (!(tMax > 0)) throw new RangeError(`CosineAnnealingLR: tMax must be positive, got ${tMax}`);
    this.tMax = tMax;
    this.etaMin = opts.etaMin ?? 0;
    this.initialStep();
  }

  protected getLr(): number[] {
    const { lastEpoch: e, tMax: T, etaMin } = this;
    if (e === 0) return this.currentLrs();
    if (this.stepCount === 1 && e > 0) {
      return this.baseLrs.map((b) => etaMin + ((b - etaMin) * (1 + Math.cos((e * Math.PI) / T))) / 2);
    }
    if (pyMod(e - 1 - T, 2 * T) === 0) {
      return this.currentLrs().map((lr, i) => lr + ((this.baseLrs[i] - etaMin) * (1 - Math.cos(Math.PI / T))) / 2);
    }
    return this.currentLrs().map(
      (lr) => ((1 + Math.cos((Math.PI * e) / T)) / (1 + Math.cos((Math.PI * (e - 1)) / T))) * (lr - etaMin) + etaMin,
    );
  }

  protected closedFormLr(): number[] {
    return this.baseLrs.map((b) => this.etaMin + ((b - this.etaMin) * (1 + Math.cos((Math.PI * this.lastEpoch) / this.tMax))) / 2);
  }
}

/** Python's `%`: the sign of the divisor. */
function pyMod(a: number, b: number): number {
  return ((a % b) + b) % b;
}
