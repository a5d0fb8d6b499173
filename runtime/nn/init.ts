// nn.init: fill a tensor in place (under noGrad) with PyTorch's initialisation schemes and fan
// rules. Values come from Kiln's seeded generator, not PyTorch's stream, so only their
// distribution matches PyTorch.
import { isFloating, numel } from '../../ir/index.js';
import { noGrad } from '../autograd/grad-mode.js';
import { eye } from '../creation.js';
import { constant } from '../dispatch.js';
import { newHostArray } from '../host.js';
import { defaultGenerator } from '../random.js';
import type { Tensor } from '../tensor.js';

export type Nonlinearity =
  | 'linear' | 'conv1d' | 'conv2d' | 'conv3d' | 'conv_transpose1d' | 'conv_transpose2d' | 'conv_transpose3d'
  | 'sigmoid' | 'tanh' | 'relu' | 'leaky_relu' | 'selu';

/** Fan mode; PyTorch's spellings 'fan_in' / 'fan_out' are accepted too. */
export type FanMode = 'fanIn' | 'fanOut' | 'fan_in' | 'fan_out';

const LINEAR = ['linear', 'conv1d', 'conv2d', 'conv3d', 'conv_transpose1d', 'conv_transpose2d', 'conv_transpose3d'];

/** The recommended gain for a nonlinearity (`param` is leaky_relu's negative slope, 0.01 by default). */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  if (LINEAR.includes(nonlinearity) || nonlinearity === 'sigmoid') return 1;
  if (nonlinearity === 'tanh') return 5 / 3;
  if (nonlinearity === 'relu') return Math.SQRT2;
  if (nonlinearity === 'leaky_relu') {
    if (param !== undefined && (typeof param !== 'number' || !Number.isFinite(param))) throw new TypeError(`negative_slope ${String(param)} not a valid number`);
    const slope = param ?? 0.01;
    return Math.sqrt(2 / (1 + slope * slope));
  }
  if (nonlinearity === 'selu') return 3 / 4; // PyTorch's choice, for self-normalising networks
  throw new Error(`Unsupported nonlinearity ${String(nonlinearity)}`);
}

/** PyTorch's `_calculate_fan_in_and_fan_out`: [inFeatures * receptive field, outFeatures * receptive field]. */
export function calculateFanInAndFanOut(t: Tensor): [number, number] {
  if (t.ndim < 2) throw new Error('Fan in and fan out can not be computed for tensor with fewer than 2 dimensions');
  const receptive = numel(t.shape.slice(2));
  return [t.shape[1] * receptive, t.shape[0] * receptive];
}

function correctFan(t: Tensor, mode: FanMode): number {
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  if (mode === 'fanIn' || mode === 'fan_in') return fanIn;
  if (mode === 'fanOut' || mode === 'fan_out') return fanOut;
  throw new Error(`Mode ${String(mode)} not supported, please use one of fanIn, fanOut`);
}

export function uniform_<T extends Tensor>(t: T, a = 0, b = 1): T {
  return noGrad(() => t.uniform_(a, b));
}

export function normal_<T extends Tensor>(t: T, mean = 0, std = 1): T {
  return noGrad(() => t.normal_(mean, std));
}

export function constant_<T extends Tensor>(t: T, value: number): T {
  return noGrad(() => t.fill_(value));
}

export const ones_ = <T extends Tensor>(t: T): T => constant_(t, 1);
export const zeros_ = <T extends Tensor>(t: T): T => constant_(t, 0);

/** The identity matrix (2-D tensors only), as in Linear layers that start as the identity. */
export function eye_<T extends Tensor>(t: T): T {
  if (t.ndim !== 2) throw new Error('Only tensors with 2 dimensions are supported');
  return noGrad(() => t.copy_(eye(t.shape[0], t.shape[1], { dtype: t.dtype, device: t.device })));
}

/** U(-a, a) with a = gain * sqrt(6 / (fanIn + fanOut)) (Glorot & Bengio, 2010). */
export function xavierUniform_<T extends Tensor>(t: T, gain = 1): T {
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  const bound = Math.sqrt(3) * gain * Math.sqrt(2 / (fanIn + fanOut));
  return uniform_(t, -bound, bound);
}

/** N(0, std²) with std = gain * sqrt(2 / (fanIn + fanOut)). */
export function xavierNormal_<T extends Tensor>(t: T, gain = 1): T {
  const [fanIn, fanOut] = calculateFanInAndFanOut(t);
  return normal_(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)));
}

export interface KaimingOptions {
  /** The negative slope of the rectifier after this layer (leaky_relu only). */
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}

function kaimingStd(t: Tensor, { a = 0, mode = 'fanIn', nonlinearity = 'leaky_relu' }: KaimingOptions): number {
  return calculateGain(nonlinearity, a) / Math.sqrt(correctFan(t, mode));
}

/** U(-bound, bound) with bound = gain * sqrt(3 / fan) (He et al., 2015). */
export function kaimingUniform_<T extends Tensor>(t: T, opts: KaimingOptions = {}): T {
  if (t.numel() === 0) return t; // PyTorch warns and does nothing
  const bound = Math.sqrt(3) * kaimingStd(t, opts);
  return uniform_(t, -bound, bound);
}

/** N(0, std²) with std = gain / sqrt(fan). */
export function kaimingNormal_<T extends Tensor>(t: T, opts: KaimingOptions = {}): T {
  if (t.numel() === 0) return t;
  return normal_(t, 0, kaimingStd(t, opts));
}

export interface TruncNormalOptions {
  mean?: number;
  std?: number;
  /** Lower and upper cut-offs, in the tensor's units (not in standard deviations). */
  a?: number;
  b?: number;
}

/**
 * N(mean, std²) restricted to [a, b], by PyTorch's method: a uniform draw between the cut-offs'
 * CDF values, mapped back through the inverse normal CDF, then clamped. Computed on the host
 * (Kiln has no erfinv kernel) and copied in.
 */
export function truncNormal_<T extends Tensor>(t: T, { mean = 0, std = 1, a = -2, b = 2 }: TruncNormalOptions = {}): T {
  if (!isFloating(t.dtype)) throw new TypeError(`truncNormal_: expected a floating point tensor, got ${t.dtype}`);
  if (!(a < b)) throw new RangeError(`truncNormal_: the lower cut-off a (${a}) must be below b (${b})`);
  const lo = normalCdf((a - mean) / std);
  const hi = normalCdf((b - mean) / std);
  const hostType = t.dtype === 'float64' ? 'float64' : 'float32';
  const values = newHostArray(hostType, t.numel());
  for (let i = 0; i < values.length; i++) {
    const u = lo + (hi - lo) * defaultGenerator.uniform();
    values[i] = Math.min(b, Math.max(a, mean + std * normalQuantile(u)));
  }
  return noGrad(() => t.copy_(constant(values, t.shape, hostType, t.device)));
}

// ---- the normal CDF and its inverse, in plain JS ----

/** Φ(x), through erfc (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7). */
function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * z);
  const erfc = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - erfc / 2 : erfc / 2;
}

// Acklam's rational approximation of Φ⁻¹ (relative error < 1.2e-9).
const QA = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
const QB = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
const QC = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
const QD = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];

function normalQuantile(p: number): number {
  if (p <= 0) return -Infinity;
  if (p >= 1) return Infinity;
  const tail = (q: number) =>
    (((((QC[0] * q + QC[1]) * q + QC[2]) * q + QC[3]) * q + QC[4]) * q + QC[5]) / ((((QD[0] * q + QD[1]) * q + QD[2]) * q + QD[3]) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5;
  const r = q * q;
  return ((((((QA[0] * r + QA[1]) * r + QA[2]) * r + QA[3]) * r + QA[4]) * r + QA[5]) * q) /
    (((((QB[0] * r + QB[1]) * r + QB[2]) * r + QB[3]) * r + QB[4]) * r + 1);
}
