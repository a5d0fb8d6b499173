// Classification losses over class indices: nllLoss on log-probabilities and crossEntropy on
// logits (logSoftmax + nllLoss, with label smoothing), with PyTorch's weighted-mean semantics.
import { fmtShape, isFloating } from '../../../ir/index.js';
import { div, gather, indexSelect, lift, mul, ne, neg, sum, where } from '../../ops/index.js';
import type { Tensor } from '../../tensor.js';
import { logSoftmax } from './activation.js';
import { requireFloat, type Reduction } from './utils.js';

export interface NllOptions {
  /** One weight per class ([C]). */
  weight?: Tensor | null;
  /** Targets equal to this contribute nothing, and are left out of the mean's denominator. */
  ignoreIndex?: number;
  reduction?: Reduction;
}

export interface CrossEntropyOptions extends NllOptions {
  labelSmoothing?: number;
}

/** Input [N, C, *] (or [C]) with int32 target [N, *] (or []): the class dim is 1 (0 when unbatched). */
function checkIndexTarget(input: Tensor, target: Tensor, op: string): number {
  requireFloat(input, op);
  if (target.dtype !== 'int32') {
    throw new TypeError(`${op}: target must hold int32 class indices, got dtype ${target.dtype}${isFloating(target.dtype) && op === 'crossEntropy' ? ` (class probabilities need the input's shape ${fmtShape(input.shape)})` : ''}`);
  }
  if (input.ndim < 1) throw new Error(`${op}: input must have a class dim, got a 0-d tensor`);
  const classDim = input.ndim === 1 ? 0 : 1;
  const want = input.shape.filter((_, i) => i !== classDim);
  if (fmtShape(target.shape) !== fmtShape(want)) {
    throw new Error(`${op}: expected target of shape ${fmtShape(want)} for input ${fmtShape(input.shape)} (classes along dim ${classDim}), got ${fmtShape(target.shape)}`);
  }
  return classDim;
}

function checkWeight(weight: Tensor | null | undefined, classes: number, op: string): void {
  if (weight && (weight.ndim !== 1 || weight.shape[0] !== classes)) throw new Error(`${op}: weight must have shape [${classes}] (one per class), got ${fmtShape(weight.shape)}`);
}

/** Per-element -w[t] logp[t] (0 where ignored) and the weights w[t] (0 where ignored) for the mean. */
function pickTargets(logp: Tensor, target: Tensor, classDim: number, o: NllOptions): { loss: Tensor; w: Tensor; keep: Tensor } {
  const ignore = o.ignoreIndex ?? -100;
  const keep = ne(target, ignore);
  // Ignored targets may be out of range (-100): point them at class 0 before gathering.
  const safe = where(keep, target, lift(0, target));
  const picked = gather(logp, classDim, safe.unsqueeze(classDim)).squeeze(classDim);
  const zero = lift(0, logp);
  const w = o.weight ? where(keep, indexSelect(o.weight, 0, safe.reshape([-1])).reshape(target.shape), zero) : where(keep, lift(1, logp), zero);
  const loss = where(keep, neg(o.weight ? mul(picked, w) : picked), zero);
  return { loss, w, keep };
}

function reduceWeighted(loss: Tensor, w: Tensor, reduction: Reduction | undefined, op: string): Tensor {
  switch (reduction ?? 'mean') {
    case 'none': return loss;
    case 'sum': return sum(loss);
    case 'mean': return div(sum(loss), sum(w));
    default: throw new Error(`${op}: reduction must be 'none', 'mean' or 'sum', got ${JSON.stringify(reduction)}`);
  }
}

/** Negative log-likelihood of class indices given log-probabilities; 'mean' divides by the summed weights of the targets kept. */
export function nllLoss(input: Tensor, target: Tensor, opts: NllOptions = {}): Tensor {
  const classDim = checkIndexTarget(input, target, 'nllLoss');
  checkWeight(opts.weight, input.shape[classDim], 'nllLoss');
  const { loss, w } = pickTargets(input, target, classDim, opts);
  return reduceWeighted(loss, w, opts.reduction, 'nllLoss');
}

/**
 * logSoftmax + nllLoss on logits [N, C, *] and int32 class indices [N, *]; or, with a floating
 * target of the input's shape, class probabilities (PyTorch's two forms).
 */
export function crossEntropy(input: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const ls = opts.labelSmoothing ?? 0;
  if (!(ls >= 0 && ls <= 1)) throw new RangeError(`crossEntropy: labelSmoothing must be between 0.0 and 1.0, got ${ls}`);
  if (isFloating(target.dtype) && fmtShape(target.shape) === fmtShape(input.shape)) return crossEntropyProbs(input, target, opts, ls);
  const classDim = checkIndexTarget(input, target, 'crossEntropy');
  const classes = input.shape[classDim];
  checkWeight(opts.weight, classes, 'crossEntropy');
  const logp = logSoftmax(input, classDim);
  const { loss, w, keep } = pickTargets(logp, target, classDim, opts);
  const nll = reduceWeighted(loss, w, opts.reduction, 'crossEntropy');
  if (ls === 0) return nll;
  // PyTorch's smoothing term: -sum_c w_c logp_c per element, reduced like the nll term.
  const wb = opts.weight ? mul(logp, opts.weight.reshape(input.shape.map((n, i) => (i === classDim ? n : 1)))) : logp;
  const smooth = where(keep, neg(sum(wb, classDim)), lift(0, logp));
  const smoothReduced = reduceWeighted(smooth, w, opts.reduction, 'crossEntropy');
  return mul(nll, 1 - ls).add(mul(smoothReduced, ls / classes));
}

function crossEntropyProbs(input: Tensor, target: Tensor, opts: CrossEntropyOptions, ls: number): Tensor {
  requireFloat(input, 'crossEntropy');
  if ((opts.ignoreIndex ?? -100) >= 0) throw new Error('crossEntropy: ignoreIndex is not supported for class-probability targets');
  const classDim = input.ndim === 1 ? 0 : 1;
  const classes = input.shape[classDim];
  checkWeight(opts.weight, classes, 'crossEntropy');
  const t = ls > 0 ? mul(target, 1 - ls).add(ls / classes) : target;
  let prod = mul(logSoftmax(input, classDim), t);
  if (opts.weight) prod = mul(prod, opts.weight.reshape(input.shape.map((n, i) => (i === classDim ? n : 1))));
  switch (opts.reduction ?? 'mean') {
    case 'none': return neg(sum(prod, classDim));
    case 'sum': return neg(sum(prod));
    case 'mean': return neg(sum(prod)).div(input.numel() / classes);
    default: throw new Error(`crossEntropy: reduction must be 'none', 'mean' or 'sum', got ${JSON.stringify(opts.reduction)}`);
  }
}

