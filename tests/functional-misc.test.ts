// nn.functional: error messages for bad input, dropout, max-pool tie-breaking, batch-norm modes and
// strided (non-contiguous) inputs to unfold/fold.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import * as F from '../runtime/nn/functional/index.js';

const int = (data: number[]) => kiln.tensor(data, { dtype: 'int32' });

describe('errors name the shapes and dtypes', () => {
  const x = kiln.randn([1, 4, 5, 5]);
  it('convolution', () => {
    expect(() => F.conv2d(kiln.randn([3, 5]), kiln.randn([2, 3, 3, 3]))).toThrow(/conv2d: expected a 3-D \(unbatched\) or 4-D \(batched\) input .*got \[3, 5\]/);
    expect(() => F.conv2d(x, kiln.randn([2, 3, 3]))).toThrow('conv2d: weight must be 4-D');
    expect(() => F.conv2d(x, kiln.randn([2, 3, 3, 3]))).toThrow('given groups=1, weight of size [2, 3, 3, 3], expected input [1, 4, 5, 5] to have 3 channels, but got 4 channels instead');
    expect(() => F.conv2d(x, kiln.randn([3, 2, 3, 3]), null, { groups: 2 })).toThrow('out_channels 3 (weight [3, 2, 3, 3]) must be divisible by groups=2');
    expect(() => F.conv2d(x, kiln.randn([2, 4, 3, 3], { dtype: 'float64' }))).toThrow('conv2d: input dtype float32 and weight dtype float64 differ');
    expect(() => F.conv2d(x, kiln.randn([2, 4, 3, 3]), null, { padding: 'same', stride: 2 })).toThrow("padding='same' is not supported for strided convolutions");
    expect(() => F.conv2d(x, kiln.randn([2, 4, 3, 3]), kiln.randn([3]))).toThrow('conv2d: bias must have shape [2] (out_channels), got [3]');
    expect(() => F.conv2d(x, kiln.randn([2, 4, 7, 7]))).toThrow('unfold: kernel [7, 7] with dilation [1, 1] is larger than the padded input [5, 5]');
  });
  it('pooling', () => {
    expect(() => F.maxPool2d(x, 2, { padding: 2 })).toThrow('maxPool2d: pad should be at most half of kernel size');
    expect(() => F.maxPool2d(kiln.randn([5]), 2)).toThrow(/maxPool2d: expected a 3-D \(unbatched\) or 4-D \(batched\) input .*got \[5\]/);
    expect(() => F.avgPool1d(int([1, 2, 3]).reshape([1, 1, 3]), 2)).toThrow('avgPool1d: input must be a floating point tensor, got int32');
  });
  it('losses', () => {
    const logits = kiln.randn([3, 5]);
    expect(() => F.crossEntropy(logits, kiln.tensor([1, 2, 3]))).toThrow('crossEntropy: target must hold int32 class indices, got dtype float32');
    expect(() => F.crossEntropy(logits, int([1, 2]))).toThrow('crossEntropy: expected target of shape [3] for input [3, 5] (classes along dim 1), got [2]');
    expect(() => F.nllLoss(logits, int([1, 2, 3]), { weight: kiln.ones([4]) })).toThrow('nllLoss: weight must have shape [5] (one per class), got [4]');
    expect(() => F.mseLoss(kiln.randn([3, 1]), kiln.randn([3]))).toThrow('mseLoss: target shape [3] differs from input shape [3, 1]');
    expect(() => F.l1Loss(logits, logits, { reduction: 'avg' as 'mean' })).toThrow("l1Loss: reduction must be 'none', 'mean' or 'sum'");
  });
  it('layers', () => {
    expect(() => F.linear(kiln.randn([2, 3]), kiln.randn([4, 5]))).toThrow('linear: input [2, 3] has 3 features but weight [4, 5] expects 5 (in_features)');
    expect(() => F.layerNorm(kiln.randn([2, 3]), [2])).toThrow('layerNorm: given normalizedShape=[2], expected input with shape [*, 2], but got input of size [2, 3]');
    expect(() => F.batchNorm(kiln.randn([1, 3]), null, null, null, null, { training: true })).toThrow('expected more than 1 value per channel when training, got input of shape [1, 3]');
    expect(() => F.batchNorm(kiln.randn([2, 3]), kiln.zeros([4]), kiln.ones([4]))).toThrow('batchNorm: runningMean must have shape [3]');
    expect(() => F.embedding(kiln.tensor([0, 1]), kiln.randn([3, 2]))).toThrow('embedding: indices must be an int32 tensor, got float32');
    expect(() => F.dropout(x, 1.5)).toThrow('dropout: probability has to be between 0 and 1, but got 1.5');
    expect(() => F.fold(kiln.randn([1, 4, 5]), [3, 3], 2)).toThrow('fold: input [1, 4, 5] has 5 blocks, but outputSize [3, 3] with kernel [2, 2] gives [2, 2] = 4');
  });
});

describe('dropout', () => {
  it('is the identity in evaluation and for p = 0', () => {
    const x = kiln.randn([3, 4]);
    expect(F.dropout(x, 0.5, false)).toBe(x);
    expect(F.dropout(x, 0)).toBe(x);
    expect(F.dropout(x, 1).abs().tolistSync()).toEqual([[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]);
  });
  it('zeroes about p of the elements, scales the rest by 1/(1-p), and routes the gradient the same way', () => {
    kiln.manualSeed(11);
    const x = kiln.ones([100, 100], { requiresGrad: true });
    const y = F.dropout(x, 0.3);
    const v = Array.from(y.dataSync());
    const zeros = v.filter((a) => a === 0).length / v.length;
    expect(zeros).toBeGreaterThan(0.27);
    expect(zeros).toBeLessThan(0.33);
    expect(v.every((a) => a === 0 || Math.abs(a - 1 / 0.7) < 1e-6)).toBe(true);
    y.sum().backward();
    expect(Array.from(x.grad!.dataSync())).toEqual(v);
  });
});

describe('max-pooling ties and layouts', () => {
  it('picks the first maximum of a window, for the value, the index and the gradient', () => {
    const x = kiln.tensor([[[1, 3, 3, 2]]], { requiresGrad: true });
    const [out, idx] = F.maxPool1d(x, 2, { stride: 1, returnIndices: true });
    expect(out.tolistSync()).toEqual([[[3, 3, 3]]]);
    expect(idx.tolistSync()).toEqual([[[1, 1, 2]]]);
    out.sum().backward();
    expect(x.grad!.tolistSync()).toEqual([[[0, 2, 1, 0]]]);
  });
  it('picks the last NaN of a window, with few taps (a comparison chain) and many (reductions)', () => {
    // PyTorch's CPU kernel takes every NaN it meets (`val > max || isnan(val)`), so the last one wins.
    for (const k of [4, 20]) {
      const v = Array.from({ length: 2 * k }, (_, i) => (i % 5) - 2);
      v[1] = NaN;
      v[k - 2] = NaN; // window 0: NaNs at taps 1 and k-2
      v[k + 3] = 9; // window 1: no NaN, its maximum at tap 3
      const x = kiln.tensor([[v]], { requiresGrad: true });
      const [out, idx] = F.maxPool1d(x, k, { returnIndices: true });
      expect(idx.tolistSync(), `kernel ${k}`).toEqual([[[k - 2, k + 3]]]);
      expect(Number.isNaN(out.dataSync()[0]), `kernel ${k}`).toBe(true);
      out.sum().backward();
      const grad = Array.from(x.grad!.dataSync());
      expect(grad.map((g, i) => (g !== 0 ? i : -1)).filter((i) => i >= 0), `kernel ${k}`).toEqual([k - 2, k + 3]);
    }
  });
  it('a window of -inf beside the padding picks its first tap inside the input, as PyTorch does', () => {
    const x = kiln.tensor([[[-Infinity, -Infinity, 1, 2]]], { requiresGrad: true });
    const [out, idx] = F.maxPool1d(x, 3, { stride: 1, padding: 1, returnIndices: true });
    expect(out.tolistSync()).toEqual([[[-Infinity, 1, 2, 2]]]);
    expect(idx.tolistSync()).toEqual([[[0, 2, 3, 3]]]);
    out.sum().backward();
    expect(x.grad!.tolistSync()).toEqual([[[1, 0, 1, 2]]]);
  });
  it('accepts unbatched input [C, H, W]', () => {
    const x = kiln.arange(16, { dtype: 'float32' }).reshape([1, 4, 4]);
    const [out, idx] = F.maxPool2d(x, 2, { returnIndices: true });
    expect(out.tolistSync()).toEqual([[[5, 7], [13, 15]]]);
    expect(idx.tolistSync()).toEqual([[[5, 7], [13, 15]]]);
  });
});

describe('batchNorm modes', () => {
  it('evaluation uses and keeps the running statistics', () => {
    const rm = kiln.tensor([1, -1]);
    const rv = kiln.tensor([4, 0.25]);
    const y = F.batchNorm(kiln.tensor([[3, 0], [1, -1]]), rm, rv, null, null, { eps: 0 });
    expect(y.tolistSync()).toEqual([[1, 2], [0, 0]]);
    expect(rm.tolistSync()).toEqual([1, -1]);
    expect(rv.tolistSync()).toEqual([4, 0.25]);
  });
});

describe('strided inputs', () => {
  it('conv2d and fold read non-contiguous views in place', () => {
    kiln.manualSeed(5);
    const x = kiln.randn([2, 3, 6, 5]).transpose(2, 3);
    const w = kiln.randn([4, 3, 3, 2]);
    expect(x.isContiguous()).toBe(false);
    const got = F.conv2d(x, w, null, { stride: [2, 1], padding: 1 }).dataSync();
    const want = F.conv2d(x.contiguous(), w, null, { stride: [2, 1], padding: 1 }).dataSync();
    expect(Array.from(got)).toEqual(Array.from(want));
    const cols = kiln.randn([2, 20, 9]).transpose(1, 2);
    expect(Array.from(F.fold(cols, [4, 5], [3, 1], { padding: [1, 0] }).dataSync())).toEqual(Array.from(F.fold(cols.contiguous(), [4, 5], [3, 1], { padding: [1, 0] }).dataSync()));
  });
});
