// Regression, binary and divergence losses as composites; every one takes PyTorch's `reduction`.
import { abs, add, clamp, exp, gt, lift, log, lt, mul, neg, sub, sum, where } from '../../ops/index.js';
import type { Tensor } from '../../tensor.js';
import { reduceLoss, requireFloat, requireSameShape, type Reduction } from './utils.js';

export interface LossOptions {
  reduction?: Reduction;
}

function checkPair(input: Tensor, target: Tensor, op: string): void {
  requireFloat(input, op);
  requireFloat(target, op, 'target');
  requireSameShape(input, target, op);
}

export function mseLoss(input: Tensor, target: Tensor, opts: LossOptions = {}): Tensor {
  checkPair(input, target, 'mseLoss');
  const d = sub(input, target);
  return reduceLoss(mul(d, d), opts.reduction, 'mseLoss');
}

export function l1Loss(input: Tensor, target: Tensor, opts: LossOptions = {}): Tensor {
  checkPair(input, target, 'l1Loss');
  return reduceLoss(abs(sub(input, target)), opts.reduction, 'l1Loss');
}

/** 0.5 d^2 / beta where |d| < beta, else |d| - beta / 2 (plain L1 when beta is 0). */
export function smoothL1Loss(input: Tensor, target: Tensor, opts: LossOptions & { beta?: number } = {}): Tensor {
  checkPair(input, target, 'smoothL1Loss');
  const beta = opts.beta ?? 1;
  if (beta < 0) throw new RangeError(`smoothL1Loss: beta must be non-negative, got ${beta}`);
  const d = sub(input, target);
  const z = abs(d);
  const loss = beta === 0 ? z : where(lt(z, beta), mul(mul(d, d), 0.5 / beta), sub(z, 0.5 * beta));
  return reduceLoss(loss, opts.reduction, 'smoothL1Loss');
}

/** log(x) floored at -100 as PyTorch's BCE does, with a finite (zero) gradient where x is 0. */
function clampedLog(x: Tensor): Tensor {
  const pos = gt(x, 0);
  return where(pos, clamp(log(where(pos, x, lift(1, x))), { min: -100 }), lift(-100, x));
}

/** -w (t log x + (1 - t) log(1 - x)) on probabilities x, logs floored at -100. */
export function binaryCrossEntropy(input: Tensor, target: Tensor, opts: LossOptions & { weight?: Tensor | null } = {}): Tensor {
  checkPair(input, target, 'binaryCrossEntropy');
  const oneMinus = (t: Tensor) => sub(lift(1, t), t);
  let loss = neg(add(mul(target, clampedLog(input)), mul(oneMinus(target), clampedLog(oneMinus(input)))));
  if (opts.weight) loss = mul(loss, opts.weight);
  return reduceLoss(loss, opts.reduction, 'binaryCrossEntropy');
}

/**
 * BCE on logits, in PyTorch's overflow-free form (1 - t) x + lw (log(e^-m + e^(-x-m)) + m), m = max(-x, 0),
 * where lw = 1 + (posWeight - 1) t weights the positive term.
 */
export function binaryCrossEntropyWithLogits(input: Tensor, target: Tensor, opts: LossOptions & { weight?: Tensor | null; posWeight?: Tensor | null } = {}): Tensor {
  checkPair(input, target, 'binaryCrossEntropyWithLogits');
  const m = clamp(neg(input), { min: 0 });
  let softplus = add(log(add(exp(neg(m)), exp(sub(neg(input), m)))), m); // log(1 + e^-x)
  if (opts.posWeight) softplus = mul(softplus, add(mul(sub(opts.posWeight, 1), target), 1));
  let loss = add(mul(sub(lift(1, target), target), input), softplus);
  if (opts.weight) loss = mul(loss, opts.weight);
  return reduceLoss(loss, opts.reduction, 'binaryCrossEntropyWithLogits');
}

/**
 * KL(target || input) with input given as log-probabilities: target (log target - input), 0 where
 * target is 0 (or exp(t) (t - input) with logTarget). 'batchmean' divides the sum by the batch size.
 */
export function klDiv(input: Tensor, target: Tensor, opts: { reduction?: Reduction | 'batchmean'; logTarget?: boolean } = {}): Tensor {
  checkPair(input, target, 'klDiv');
  let loss: Tensor;
  if (opts.logTarget) loss = mul(exp(target), sub(target, input));
  else {
    const zero = target.eq(0);
    const xlogx = where(zero, lift(0, target), mul(target, log(where(zero, lift(1, target), target))));
    loss = sub(xlogx, mul(target, input));
  }
  if (opts.reduction === 'batchmean') return input.ndim === 0 ? sum(loss) : sum(loss).div(input.shape[0]);
  return reduceLoss(loss, opts.reduction, 'klDiv');
}
