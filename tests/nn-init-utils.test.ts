// nn.init (distributions and fan rules; Kiln's generator is not PyTorch's stream, so values are
// checked by their statistics) and nn.utils (clipGradNorm_ against PyTorch's numbers).
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';
import * as init from '../runtime/nn/init.js';
import { clipGradNorm_, clipGradValue_, parametersToVector, vectorToParameters } from '../runtime/nn/utils.js';

function stats(t: Tensor): { min: number; max: number; mean: number; std: number } {
  const v = Array.from(t.double().dataSync());
  const mean = v.reduce((s, x) => s + x, 0) / v.length;
  const std = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / (v.length - 1));
  return { min: Math.min(...v), max: Math.max(...v), mean, std };
}

/** Mean and std within a few standard errors of the target (n = 20k+ values, so these are tight). */
function expectMoments(t: Tensor, mean: number, std: number): void {
  const s = stats(t);
  const n = t.numel();
  expect(Math.abs(s.mean - mean)).toBeLessThan((5 * std) / Math.sqrt(n));
  expect(Math.abs(s.std / std - 1)).toBeLessThan(0.03);
}

describe('calculateGain and fans', () => {
  it("gives PyTorch's gains", () => {
    expect(init.calculateGain('linear')).toBe(1);
    expect(init.calculateGain('conv2d')).toBe(1);
    expect(init.calculateGain('sigmoid')).toBe(1);
    expect(init.calculateGain('tanh')).toBe(5 / 3);
    expect(init.calculateGain('relu')).toBe(Math.SQRT2);
    expect(init.calculateGain('leaky_relu')).toBeCloseTo(Math.sqrt(2 / (1 + 0.01 ** 2)), 15);
    expect(init.calculateGain('leaky_relu', 0.2)).toBeCloseTo(Math.sqrt(2 / 1.04), 15);
    expect(init.calculateGain('leaky_relu', Math.sqrt(5))).toBeCloseTo(Math.sqrt(1 / 3), 15);
    expect(init.calculateGain('selu')).toBe(0.75);
    expect(() => init.calculateGain('gelu' as init.Nonlinearity)).toThrow(/Unsupported nonlinearity gelu/);
  });
  it('computes fan in / fan out like _calculate_fan_in_and_fan_out', () => {
    expect(init.calculateFanInAndFanOut(kiln.zeros([20, 50]))).toEqual([50, 20]);
    expect(init.calculateFanInAndFanOut(kiln.zeros([10, 3, 5, 5]))).toEqual([75, 250]);
    expect(() => init.calculateFanInAndFanOut(kiln.zeros([5]))).toThrow(/fewer than 2 dimensions/);
  });
});

describe('init functions (in place, returning the tensor)', () => {
  it('uniform_, normal_, constant_, ones_, zeros_', () => {
    kiln.manualSeed(1);
    const t = kiln.zeros([200, 100], { requiresGrad: true });
    expect(init.uniform_(t, -0.5, 1.5)).toBe(t);
    expect(t.requiresGrad).toBe(true);
    const u = stats(t);
    expect(u.min).toBeGreaterThanOrEqual(-0.5);
    expect(u.max).toBeLessThan(1.5);
    expectMoments(t, 0.5, 2 / Math.sqrt(12));
    init.normal_(t, 3, 0.5);
    expectMoments(t, 3, 0.5);
    expect(init.constant_(t, 0.25).tolistSync()).toEqual(kiln.full([200, 100], 0.25).tolistSync());
    expect(stats(init.ones_(t))).toMatchObject({ min: 1, max: 1 });
    expect(stats(init.zeros_(t))).toMatchObject({ min: 0, max: 0 });
  });
  it('eye_ (2-D only)', () => {
    expect(init.eye_(kiln.full([2, 3], 5, { dtype: 'float64' })).tolistSync()).toEqual([[1, 0, 0], [0, 1, 0]]);
    expect(() => init.eye_(kiln.zeros([2, 2, 2]))).toThrow(/Only tensors with 2 dimensions/);
  });
  it('xavierUniform_ and xavierNormal_ use gain * sqrt(2 / (fanIn + fanOut))', () => {
    kiln.manualSeed(2);
    const w = kiln.zeros([100, 50, 3, 3]); // fanIn 450, fanOut 900
    const std = 2 * Math.sqrt(2 / 1350);
    init.xavierUniform_(w, 2);
    const s = stats(w);
    expect(s.max).toBeLessThanOrEqual(Math.sqrt(3) * std);
    expect(s.min).toBeGreaterThanOrEqual(-Math.sqrt(3) * std);
    expect(s.max).toBeGreaterThan(0.99 * Math.sqrt(3) * std);
    expectMoments(w, 0, std);
    init.xavierNormal_(w);
    expectMoments(w, 0, Math.sqrt(2 / 1350));
  });
  it('kaimingUniform_ / kaimingNormal_ use gain / sqrt(fan), with modes and nonlinearities', () => {
    kiln.manualSeed(3);
    const w = kiln.zeros([400, 100]);
    init.kaimingUniform_(w); // leaky_relu with a = 0: gain sqrt(2), fanIn 100
    const bound = Math.sqrt(3) * Math.SQRT2 / 10;
    expect(stats(w).max).toBeLessThanOrEqual(bound);
    expect(stats(w).min).toBeGreaterThanOrEqual(-bound);
    expectMoments(w, 0, Math.SQRT2 / 10);
    // PyTorch's Linear default: a = sqrt(5) gives U(-1/sqrt(fanIn), 1/sqrt(fanIn)).
    init.kaimingUniform_(w, { a: Math.sqrt(5) });
    expect(stats(w).max).toBeLessThanOrEqual(0.1 + 1e-9);
    expect(stats(w).max).toBeGreaterThan(0.099);
    init.kaimingNormal_(w, { mode: 'fanOut', nonlinearity: 'relu' });
    expectMoments(w, 0, Math.SQRT2 / 20);
    init.kaimingNormal_(w, { mode: 'fan_in', nonlinearity: 'tanh' });
    expectMoments(w, 0, 5 / 3 / 10);
    expect(() => init.kaimingNormal_(w, { mode: 'fan_avg' as init.FanMode })).toThrow(/Mode fan_avg not supported/);
    const empty = kiln.zeros([0, 3]);
    expect(init.kaimingUniform_(empty)).toBe(empty);
  });
  it('truncNormal_ stays in [a, b] with the truncated normal moments', () => {
    kiln.manualSeed(4);
    const w = kiln.zeros([200, 200], { dtype: 'float64' });
    init.truncNormal_(w, { mean: 1, std: 2, a: -1, b: 5 }); // cut-offs at -1 and +2 std
    const s = stats(w);
    expect(s.min).toBeGreaterThanOrEqual(-1);
    expect(s.max).toBeLessThanOrEqual(5);
    expect(s.min).toBeLessThan(-0.99);
    expect(s.max).toBeGreaterThan(4.99);
    // The moments of N(1, 2²) truncated to [-1, 5] (alpha = -1, beta = 2).
    const pdf = (x: number) => Math.exp(-x * x / 2) / Math.sqrt(2 * Math.PI);
    const Z = 0.9772498680518208 - 0.15865525393145707; // Φ(2) - Φ(-1)
    const m = (pdf(-1) - pdf(2)) / Z;
    const variance = 1 + (-1 * pdf(-1) - 2 * pdf(2)) / Z - m * m;
    expectMoments(w, 1 + 2 * m, 2 * Math.sqrt(variance));
    init.truncNormal_(w, { std: 0.02 }); // the ViT / BERT use: a, b = ±2 in absolute units, far outside
    expectMoments(w, 0, 0.02);
    expect(() => init.truncNormal_(kiln.zeros([2], { dtype: 'int32' }))).toThrow(/floating point/);
  });
  it('draws from Kiln\'s seeded generator: the same seed gives the same values', () => {
    const draw = () => { kiln.manualSeed(9); return init.truncNormal_(init.kaimingUniform_(kiln.zeros([3, 4])), {}).tolistSync(); };
    expect(draw()).toEqual(draw());
  });
});

// PyTorch 1.13 (float64): grads G1 [2,3], G2 [4] of two parameters (a third has no grad), clipped.
const G1 = [[0.5, -1.5, 2.0], [3.0, -0.25, 1.0]];
const G2 = [-4.0, 0.75, 0.1, -2.2];
const TORCH_CLIP = [
  { maxNorm: 1.0, normType: 2, total: 6.162385901580653, grads: [0.08113739172588302, -0.24341217517764907, 0.3245495669035321, 0.48682435035529814, -0.04056869586294151, 0.16227478345176605, -0.6490991338070642, 0.12170608758882454, 0.016227478345176606, -0.35700452359388535] },
  { maxNorm: 100.0, normType: 2, total: 6.162385901580653, grads: [0.5, -1.5, 2.0, 3.0, -0.25, 1.0, -4.0, 0.75, 0.1, -2.2] },
  { maxNorm: 2.0, normType: 1, total: 15.3, grads: [0.06535947285232203, -0.19607841855696612, 0.26143789140928814, 0.39215683711393223, -0.03267973642616102, 0.13071894570464407, -0.5228757828185763, 0.09803920927848306, 0.013071894570464407, -0.287581680550217] },
  { maxNorm: 0.5, normType: Infinity, total: 4.0, grads: [0.062499984375003904, -0.18749995312501172, 0.24999993750001562, 0.37499990625002344, -0.031249992187501952, 0.12499996875000781, -0.49999987500003124, 0.09374997656250586, 0.012499996875000781, -0.2749999312500172] },
  { maxNorm: 1.5, normType: 3, total: 4.857108646158774, grads: [0.1544128205121197, -0.46323846153635906, 0.6176512820484787, 0.9264769230727181, -0.07720641025605984, 0.3088256410242394, -1.2353025640969575, 0.23161923076817953, 0.03088256410242394, -0.6794164102533267] },
];
/** clip_grad_value_(G1 as float32, 1.2). */
const TORCH_CLIP_VALUE = [0.5, -1.2000000476837158, 1.2000000476837158, 1.2000000476837158, -0.25, 1.0];

function withGrads(dtype: 'float32' | 'float64' = 'float64') {
  const a = kiln.zeros([2, 3], { dtype, requiresGrad: true });
  const b = kiln.zeros([4], { dtype, requiresGrad: true });
  const c = kiln.zeros([2], { dtype, requiresGrad: true });
  a.grad = kiln.tensor(G1, { dtype });
  b.grad = kiln.tensor(G2, { dtype });
  return [a, b, c];
}

describe('clipGradNorm_ and clipGradValue_ (PyTorch values)', () => {
  for (const ref of TORCH_CLIP) {
    it(`maxNorm ${ref.maxNorm}, normType ${ref.normType}`, () => {
      const ps = withGrads();
      const total = clipGradNorm_(ps, ref.maxNorm, { normType: ref.normType });
      expect(total.dtype).toBe('float64');
      expect(total.ndim).toBe(0);
      expect(total.itemSync()).toBeCloseTo(ref.total, 13);
      const got = [...ps[0].grad!.dataSync(), ...ps[1].grad!.dataSync()];
      got.forEach((g, i) => expect(Math.abs(g - ref.grads[i])).toBeLessThan(1e-14));
      expect(ps[2].grad).toBeNull();
    });
  }
  it('works on float32 grads and a single tensor, and returns 0 with no grads', () => {
    const [a] = withGrads('float32');
    const total = clipGradNorm_(a, 1);
    expect(total.dtype).toBe('float32');
    const norm1 = Math.hypot(...G1.flat());
    expect(total.itemSync()).toBeCloseTo(norm1, 5);
    expect(Math.hypot(...a.grad!.dataSync())).toBeCloseTo(1, 5);
    expect(clipGradNorm_([kiln.zeros([2], { requiresGrad: true })], 1).itemSync()).toBe(0);
  });
  it('errorIfNonfinite refuses a NaN or infinite norm; without it the grads are scaled anyway', () => {
    const [a] = withGrads();
    a.grad = kiln.tensor([1, NaN], { dtype: 'float64' });
    expect(() => clipGradNorm_([a], 1, { errorIfNonfinite: true })).toThrow(/total norm of order 2 for gradients from `parameters` is non-finite/);
    expect(a.grad.tolistSync()).toEqual([1, NaN]);
    expect(Number.isNaN(clipGradNorm_([a], 1).itemSync())).toBe(true);
    expect(() => clipGradNorm_([a], 1, { normType: 0 })).toThrow(/normType must be positive/);
  });
  it('clipGradValue_ clamps each gradient element', () => {
    const [a] = withGrads('float32');
    clipGradValue_([a], 1.2);
    expect(Array.from(a.grad!.dataSync())).toEqual(TORCH_CLIP_VALUE);
  });
});

describe('parametersToVector / vectorToParameters', () => {
  it('flattens in order and copies back', () => {
    const a = kiln.tensor([[1, 2], [3, 4]], { requiresGrad: true });
    const b = kiln.tensor([5, 6], { requiresGrad: true });
    const v = parametersToVector([a, b]);
    expect(v.tolistSync()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(v.requiresGrad).toBe(true);
    vectorToParameters(kiln.tensor([6, 5, 4, 3, 2, 1]), [a, b]);
    expect(a.tolistSync()).toEqual([[6, 5], [4, 3]]);
    expect(b.tolistSync()).toEqual([2, 1]);
    expect(a.requiresGrad).toBe(true);
    expect(a.isLeaf).toBe(true);
    expect(() => vectorToParameters(kiln.zeros([5]), [a, b])).toThrow(/expected a 1-D vector of 6 elements/);
  });
  it('flattens a transposed (non-contiguous) parameter by its logical order', () => {
    const a = kiln.tensor([[1, 2, 3], [4, 5, 6]]).t();
    expect(parametersToVector([a]).tolistSync()).toEqual([1, 4, 2, 5, 3, 6]);
  });
});
