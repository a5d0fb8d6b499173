// gradcheck (float64 finite differences) of every nn.functional op, unfold and fold included:
// the gradients all come from the op table's VJPs, and this checks they compose correctly.
import { beforeAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';
import * as F from '../runtime/nn/functional/index.js';

/** Random float64 leaf in [lo, hi). */
const rnd = (shape: number[], lo = -1, hi = 1, requiresGrad = true) =>
  kiln.rand(shape, { dtype: 'float64' }).mul(hi - lo).add(lo).detach().requiresGrad_(requiresGrad);
const check = (fn: (...xs: Tensor[]) => Tensor, ...inputs: Tensor[]) => expect(kiln.autograd.gradcheck(fn, inputs)).toBe(true);
const int = (data: number[] | number[][]) => kiln.tensor(data, { dtype: 'int32' });

beforeAll(() => kiln.manualSeed(7));

describe('unfold and fold', () => {
  it('unfold 2-D with stride, padding and dilation', () =>
    check((x) => F.unfold(x, [2, 3], { stride: [2, 1], padding: 1, dilation: [1, 2] }), rnd([2, 2, 5, 6])));
  it('unfold 1-D', () => check((x) => F.unfold(x, [3], { stride: 2, padding: 1 }), rnd([1, 2, 7])));
  it('fold 2-D', () => check((x) => F.fold(x, [4, 5], 2, { stride: [2, 1], padding: 1 }), rnd([1, 8, 18])));
});

describe('linear layers and convolution (input, weight and bias)', () => {
  it('linear', () => check(F.linear, rnd([2, 3, 4]), rnd([5, 4]), rnd([5])));
  it('matmul of operands laid out transposed: their gradients are built transposed, in their layout', () => {
    // x @ wᵀ with w [5, 4] (Linear's weight), and aᵀ @ b: each transposed operand takes the rule's other form.
    check((w, x) => x.matmul(w.t()), rnd([5, 4]), rnd([3, 4]));
    check((a, b) => a.t().matmul(b), rnd([4, 3]), rnd([4, 5]));
    check((a, b) => a.t().matmul(b.t()), rnd([4, 3]), rnd([5, 4]));
    const w = rnd([5, 4]), x = rnd([3, 4]);
    const wt = w.t();
    let dwt: Tensor | undefined;
    wt.registerHook((g) => { dwt = g; });
    x.matmul(wt).sum().backward();
    expect(dwt!.shape).toEqual([4, 5]);
    expect(dwt!.stride()).toEqual([1, 4]); // wᵀ's own layout: its transpose is w's contiguous gradient
    expect(w.grad!.isContiguous()).toBe(true);
  });
  it('bilinear', () => check(F.bilinear, rnd([3, 2]), rnd([3, 4]), rnd([2, 2, 4]), rnd([2])));
  it('conv1d with groups, stride and dilation', () =>
    check((x, w, b) => F.conv1d(x, w, b, { stride: 2, padding: 1, dilation: 2, groups: 2 }), rnd([2, 4, 9]), rnd([4, 2, 3]), rnd([4])));
  it('conv2d with groups and padding', () =>
    check((x, w, b) => F.conv2d(x, w, b, { stride: [1, 2], padding: 1, groups: 2 }), rnd([1, 4, 5, 5]), rnd([2, 2, 3, 2]), rnd([2])));
  it("conv2d padding 'same' with an even kernel", () =>
    check((x, w, b) => F.conv2d(x, w, b, { padding: 'same' }), rnd([1, 2, 4, 4]), rnd([2, 2, 2, 3]), rnd([2])));
});

describe('pooling', () => {
  it('maxPool1d with padding, dilation and ceilMode', () =>
    check((x) => F.maxPool1d(x, 3, { stride: 2, padding: 1, dilation: 2, ceilMode: true }), rnd([2, 2, 10])));
  it('maxPool2d with overlapping windows', () => check((x) => F.maxPool2d(x, 3, { stride: 2, padding: 1 }), rnd([1, 2, 6, 5])));
  it('avgPool1d ceilMode without the padding in the divisor', () =>
    check((x) => F.avgPool1d(x, 3, { stride: 2, padding: 1, ceilMode: true, countIncludePad: false }), rnd([2, 2, 8])));
  it('avgPool2d', () => check((x) => F.avgPool2d(x, [3, 2], { stride: 2, padding: 1 }), rnd([1, 2, 6, 5])));
  it('adaptiveAvgPool1d', () => check((x) => F.adaptiveAvgPool1d(x, 3), rnd([2, 2, 7])));
  it('adaptiveAvgPool2d', () => check((x) => F.adaptiveAvgPool2d(x, [2, 3]), rnd([1, 2, 5, 4])));
});

describe('activations', () => {
  // Inputs kept away from the kinks at 0.
  const away = () => rnd([3, 4], 0.1, 2).mul(kiln.tensor([1, -1, 1, -1], { dtype: 'float64' })).detach().requiresGrad_();
  const cases: [string, (x: Tensor) => Tensor][] = [
    ['relu', F.relu], ['leakyRelu', (x) => F.leakyRelu(x, 0.1)], ['elu', (x) => F.elu(x, 1.3)],
    ['gelu', (x) => F.gelu(x)], ['gelu tanh', (x) => F.gelu(x, { approximate: 'tanh' })], ['sigmoid', F.sigmoid], ['tanh', F.tanh],
    ['softmax', (x) => F.softmax(x, 1)], ['logSoftmax', (x) => F.logSoftmax(x, 0)], ['erf', kiln.erf],
  ];
  for (const [name, fn] of cases) it(name, () => check(fn, away()));
  it('erf at 0 has slope 2/sqrt(pi)', () => {
    const x = kiln.tensor([0], { dtype: 'float64', requiresGrad: true });
    kiln.erf(x).sum().backward();
    expect(x.grad!.itemSync()).toBeCloseTo(2 / Math.sqrt(Math.PI), 12);
  });
  it('dropout (same mask on every call)', () =>
    check((x) => { kiln.manualSeed(3); return F.dropout(x, 0.4); }, rnd([4, 5])));
});

describe('normalisation, embedding, distances, interpolate', () => {
  it('batchNorm in training (input, weight, bias)', () =>
    check((x, w, b) => F.batchNorm(x, null, null, w, b, { training: true }), rnd([3, 2, 4]), rnd([2]), rnd([2])));
  it('batchNorm in evaluation', () => {
      const [rm, rv] = [rnd([2], -1, 1, false), rnd([2], 0.5, 2, false)];
      check((x, w, b) => F.batchNorm(x, rm, rv, w, b), rnd([3, 2]), rnd([2]), rnd([2]));
    });
  it('layerNorm (input, weight, bias)', () => check((x, w, b) => F.layerNorm(x, [2, 3], w, b), rnd([2, 2, 3]), rnd([2, 3]), rnd([2, 3])));
  it('embedding (weight); the paddingIdx row gets no gradient', () => {
    check((w) => F.embedding(int([[0, 3], [3, 1]]), w), rnd([4, 3]));
    const w = rnd([4, 2]);
    F.embedding(int([[0, 3], [3, 1]]), w, { paddingIdx: -1 }).sum().backward();
    expect(w.grad!.tolistSync()).toEqual([[1, 1], [1, 1], [0, 0], [0, 0]]);
  });
  it('cosineSimilarity', () => check((a, b) => F.cosineSimilarity(a, b), rnd([3, 4]), rnd([3, 4])));
  it('pairwiseDistance, p = 2 and 3', () => {
    check((a, b) => F.pairwiseDistance(a, b), rnd([3, 4]), rnd([3, 4]));
    check((a, b) => F.pairwiseDistance(a, b, { p: 3 }), rnd([3, 4]), rnd([3, 4]));
  });
  it('interpolate nearest', () => check((x) => F.interpolate(x, { size: [3, 5] }), rnd([1, 2, 2, 3])));
});

describe('losses (w.r.t. the input)', () => {
  const t = () => rnd([3, 4], -1, 1, false);
  for (const reduction of ['none', 'mean', 'sum'] as const) {
    it(`mseLoss, l1Loss, smoothL1Loss (${reduction})`, () => {
      const target = t();
      check((x) => F.mseLoss(x, target, { reduction }), rnd([3, 4]));
      check((x) => F.l1Loss(x, target, { reduction }), rnd([3, 4]));
      check((x) => F.smoothL1Loss(x, target, { reduction, beta: 0.7 }), rnd([3, 4]));
    });
  }
  it('crossEntropy with class weights, ignoreIndex and label smoothing, [N, C, d]', () => {
    const target = int([[0, 2, -100], [1, -100, 1]]);
    const weight = rnd([3], 0.5, 2, false);
    for (const reduction of ['none', 'mean', 'sum'] as const) {
      check((x) => F.crossEntropy(x, target, { weight, labelSmoothing: 0.2, reduction }), rnd([2, 3, 3]));
    }
  });
  it('crossEntropy with class probabilities', () => {
    const target = F.softmax(rnd([2, 4], -1, 1, false), 1);
    check((x) => F.crossEntropy(x, target, { labelSmoothing: 0.1 }), rnd([2, 4]));
  });
  it('nllLoss with weights and ignoreIndex', () =>
    check((x) => F.nllLoss(x, int([0, 3, 1]), { weight: kiln.tensor([1, 2, 3, 4], { dtype: 'float64' }), ignoreIndex: 3 }), rnd([3, 4])));
  it('binaryCrossEntropy with weight', () => {
    const [target, weight] = [rnd([3, 4], 0, 1, false), rnd([4], 0.5, 2, false)];
    check((x) => F.binaryCrossEntropy(x, target, { weight }), rnd([3, 4], 0.05, 0.95));
  });
  it('binaryCrossEntropyWithLogits with posWeight', () => {
    const [target, posWeight] = [rnd([3, 4], 0, 1, false), rnd([4], 0.5, 3, false)];
    check((x) => F.binaryCrossEntropyWithLogits(x, target, { posWeight, reduction: 'sum' }), rnd([3, 4], -3, 3));
  });
  it('klDiv (batchmean, and logTarget)', () => {
    const target = F.softmax(rnd([2, 3], -1, 1, false), 1);
    check((x) => F.klDiv(x, target, { reduction: 'batchmean' }), rnd([2, 3]));
    check((x) => F.klDiv(x, target.log(), { logTarget: true, reduction: 'sum' }), rnd([2, 3]));
  });
});
