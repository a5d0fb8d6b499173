// nn layers: PyTorch's parameter names, shapes and printouts, train/eval behaviour, BatchNorm's
// running statistics against the PyTorch fixture, and gradcheck of every layer and loss module
// (float64) with respect to its input. The functional forms are checked in tests/functional-*.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { nn, type Tensor } from 'kiln';
import { expectClose, fromFixture, loadFixture } from './helpers.js';

const shapes = (m: nn.Module) => Object.fromEntries(Object.entries(m.stateDict()).map(([k, v]) => [k, [...v.shape]]));

describe('layers have PyTorch parameter names and shapes', () => {
  it('Linear, Bilinear, Conv, BatchNorm, LayerNorm, Embedding', () => {
    expect(shapes(new nn.Linear(3, 4))).toEqual({ weight: [4, 3], bias: [4] });
    expect(shapes(new nn.Linear(3, 4, { bias: false }))).toEqual({ weight: [4, 3] });
    expect(shapes(new nn.Bilinear(3, 4, 5))).toEqual({ weight: [5, 3, 4], bias: [5] });
    expect(shapes(new nn.Conv2d(4, 8, 3, { groups: 2 }))).toEqual({ weight: [8, 2, 3, 3], bias: [8] });
    expect(shapes(new nn.Conv1d(4, 8, 3))).toEqual({ weight: [8, 4, 3], bias: [8] });
    expect(shapes(new nn.BatchNorm1d(6))).toEqual({ weight: [6], bias: [6], running_mean: [6], running_var: [6], num_batches_tracked: [] });
    expect(shapes(new nn.LayerNorm([2, 3]))).toEqual({ weight: [2, 3], bias: [2, 3] });
    expect(shapes(new nn.Embedding(10, 3))).toEqual({ weight: [10, 3] });
  });
  it('default init is U(-1/sqrt(fanIn), 1/sqrt(fanIn))', () => {
    const w = new nn.Linear(400, 300).weight;
    const bound = 1 / Math.sqrt(400);
    expect(w.amax().itemSync()).toBeLessThanOrEqual(bound);
    expect(w.amin().itemSync()).toBeGreaterThanOrEqual(-bound);
    expect(w.amax().itemSync()).toBeGreaterThan(0.95 * bound);
  });
});

describe('layers print like PyTorch', () => {
  // Expected strings printed by PyTorch 1.13.1's repr() of the same layers.
  const cases: [nn.Module, string][] = [
    [new nn.BatchNorm1d(6), 'BatchNorm1d(6, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)'],
    [new nn.BatchNorm2d(3, { momentum: null }), 'BatchNorm2d(3, eps=1e-05, momentum=None, affine=True, track_running_stats=True)'],
    [new nn.LayerNorm(10), 'LayerNorm((10,), eps=1e-05, elementwise_affine=True)'],
    [new nn.LayerNorm([2, 3], { elementwiseAffine: false }), 'LayerNorm((2, 3), eps=1e-05, elementwise_affine=False)'],
    [new nn.Embedding(10, 3), 'Embedding(10, 3)'],
    [new nn.Embedding(10, 3, { paddingIdx: 0 }), 'Embedding(10, 3, padding_idx=0)'],
    [new nn.Dropout(), 'Dropout(p=0.5, inplace=False)'],
    [new nn.LeakyReLU(), 'LeakyReLU(negative_slope=0.01)'],
    [new nn.ELU(), 'ELU(alpha=1.0)'],
    [new nn.GELU(), "GELU(approximate='none')"],
    [new nn.Softmax(1), 'Softmax(dim=1)'],
    [new nn.LogSoftmax(-1), 'LogSoftmax(dim=-1)'],
    [new nn.ReLU(), 'ReLU()'],
    [new nn.Sigmoid(), 'Sigmoid()'],
    [new nn.Tanh(), 'Tanh()'],
    [new nn.Flatten(), 'Flatten(start_dim=1, end_dim=-1)'],
    [new nn.Identity(), 'Identity()'],
    [new nn.Conv1d(4, 8, 3, { stride: 2, padding: 1, bias: false }), 'Conv1d(4, 8, kernel_size=(3,), stride=(2,), padding=(1,), bias=False)'],
    [new nn.Conv2d(4, 8, 3, { padding: 1, groups: 2, dilation: 2 }), 'Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(2, 2), groups=2)'],
    [new nn.MaxPool2d(3, { stride: 2, padding: 1 }), 'MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)'],
    [new nn.AvgPool2d(2), 'AvgPool2d(kernel_size=2, stride=2, padding=0)'],
    [new nn.AdaptiveAvgPool2d([1, 1]), 'AdaptiveAvgPool2d(output_size=(1, 1))'],
    [new nn.AdaptiveAvgPool2d(1), 'AdaptiveAvgPool2d(output_size=1)'],
    [new nn.ZeroPad2d(2), 'ZeroPad2d((2, 2, 2, 2))'],
    [new nn.Upsample({ scaleFactor: 2 }), 'Upsample(scale_factor=2.0, mode=nearest)'],
    [new nn.Bilinear(3, 4, 5), 'Bilinear(in1_features=3, in2_features=4, out_features=5, bias=True)'],
    [new nn.MSELoss(), 'MSELoss()'],
    [new nn.CrossEntropyLoss(), 'CrossEntropyLoss()'],
    [new nn.MaxPool1d(2), 'MaxPool1d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)'],
    [new nn.Linear(3, 4, { bias: false }), 'Linear(in_features=3, out_features=4, bias=False)'],
    [new nn.Sequential(new nn.Linear(2, 3), new nn.Sequential(new nn.ReLU(), new nn.Linear(3, 1))),
      'Sequential(\n  (0): Linear(in_features=2, out_features=3, bias=True)\n  (1): Sequential(\n    (0): ReLU()\n    (1): Linear(in_features=3, out_features=1, bias=True)\n  )\n)'],
  ];
  for (const [m, want] of cases) it(want.split('(')[0], () => expect(m.toString()).toBe(want));
});

describe('train and eval', () => {
  it('Dropout zeroes and rescales in training, is the identity in eval', () => {
    const d = new nn.Dropout(0.5);
    const x = kiln.ones([1000]);
    const y = d(x);
    const zeros = y.eq(0).sum().itemSync();
    expect(zeros).toBeGreaterThan(400);
    expect(zeros).toBeLessThan(600);
    expect(y.amax().itemSync()).toBe(2);
    d.eval();
    expect(d(x).tolistSync()).toEqual(x.tolistSync());
  });
  it('BatchNorm1d matches the PyTorch fixture in training, then uses its running stats in eval', () => {
    const fx = loadFixture('op_batchnorm1d_train');
    for (const key of ['x2d', 'x3d']) {
      const bn = new nn.BatchNorm1d(6, { eps: fx.hyper.eps ?? 1e-5, momentum: fx.hyper.momentum ?? 0.1 });
      bn.loadStateDict({ ...bn.stateDict(), weight: fromFixture(fx.params_init.weight), bias: fromFixture(fx.params_init.bias) });
      const x = fromFixture(fx.inputs[key], { requiresGrad: true });
      const out = bn(x);
      const ref = fx.outputs[key];
      expectClose(out, ref.out);
      out.mul(fromFixture(fx.inputs[key === 'x2d' ? 'grad_out2d' : 'grad_out3d'])).sum().backward();
      expectClose(x.grad!, ref.grad_x);
      expectClose(bn.weight!.grad!, ref.grad_weight);
      expectClose(bn.bias!.grad!, ref.grad_bias);
      expectClose(bn.running_mean!, ref.running_mean_after);
      expectClose(bn.running_var!, ref.running_var_after);
      expect(bn.num_batches_tracked!.itemSync()).toBe(ref.num_batches_tracked_after);
      bn.eval();
      const evalOut = bn(x.detach());
      const col = (t: Tensor) => t.detach().view(x.ndim === 3 ? [1, 6, 1] : [1, 6]);
      const manual = x.detach().sub(col(bn.running_mean!)).div(col(bn.running_var!.add(1e-5).sqrt())).mul(col(bn.weight!)).add(col(bn.bias!));
      expectClose(evalOut, manual);
      expect(bn.num_batches_tracked!.itemSync()).toBe(ref.num_batches_tracked_after);
    }
  });
});

describe('gradcheck of every layer and loss module (float64, w.r.t. the input)', () => {
  const rnd = (...shape: number[]) => kiln.randn(shape, { dtype: 'float64' }).requiresGrad_();
  const check = (m: nn.Module, ...inputs: Tensor[]) => {
    m.double();
    expect(kiln.autograd.gradcheck((...xs) => m(...xs), inputs)).toBe(true);
  };
  kiln.manualSeed(3);
  const layers: [string, () => nn.Module, () => Tensor[]][] = [
    ['Linear', () => new nn.Linear(4, 3), () => [rnd(2, 4)]],
    ['Bilinear', () => new nn.Bilinear(2, 3, 2), () => [rnd(2, 2), rnd(2, 3)]],
    ['Conv1d', () => new nn.Conv1d(2, 3, 3, { padding: 1 }), () => [rnd(1, 2, 5)]],
    ['Conv2d', () => new nn.Conv2d(2, 4, 3, { stride: 2, padding: 1, groups: 2 }), () => [rnd(1, 2, 5, 5)]],
    ['MaxPool1d', () => new nn.MaxPool1d(2), () => [rnd(1, 2, 6)]],
    ['MaxPool2d', () => new nn.MaxPool2d(3, { stride: 2, padding: 1 }), () => [rnd(1, 2, 5, 5)]],
    ['AvgPool1d', () => new nn.AvgPool1d(2), () => [rnd(1, 2, 6)]],
    ['AvgPool2d', () => new nn.AvgPool2d(2), () => [rnd(1, 2, 4, 4)]],
    ['AdaptiveAvgPool2d', () => new nn.AdaptiveAvgPool2d([2, 3]), () => [rnd(1, 2, 5, 7)]],
    ['ZeroPad2d', () => new nn.ZeroPad2d([1, 0, 2, 1]), () => [rnd(1, 1, 2, 2)]],
    ['Upsample', () => new nn.Upsample({ scaleFactor: 2 }), () => [rnd(1, 1, 2, 3)]],
    ['ReLU', () => new nn.ReLU(), () => [rnd(3, 4)]],
    ['LeakyReLU', () => new nn.LeakyReLU(0.1), () => [rnd(3, 4)]],
    ['ELU', () => new nn.ELU(), () => [rnd(3, 4)]],
    ['GELU', () => new nn.GELU(), () => [rnd(3, 4)]],
    ['GELU tanh', () => new nn.GELU('tanh'), () => [rnd(3, 4)]],
    ['Sigmoid', () => new nn.Sigmoid(), () => [rnd(3, 4)]],
    ['Tanh', () => new nn.Tanh(), () => [rnd(3, 4)]],
    ['Softmax', () => new nn.Softmax(1), () => [rnd(3, 4)]],
    ['LogSoftmax', () => new nn.LogSoftmax(1), () => [rnd(3, 4)]],
    ['BatchNorm1d', () => new nn.BatchNorm1d(3), () => [rnd(4, 3)]],
    ['BatchNorm2d', () => new nn.BatchNorm2d(2), () => [rnd(2, 2, 2, 2)]],
    ['LayerNorm', () => new nn.LayerNorm(4), () => [rnd(3, 4)]],
    ['Flatten', () => new nn.Flatten(), () => [rnd(2, 3, 2)]],
    ['Identity', () => new nn.Identity(), () => [rnd(2)]],
    ['CosineSimilarity', () => new nn.CosineSimilarity(), () => [rnd(3, 4), rnd(3, 4)]],
    ['PairwiseDistance', () => new nn.PairwiseDistance(), () => [rnd(3, 4), rnd(3, 4)]],
    ['MSELoss', () => new nn.MSELoss(), () => [rnd(3, 4), rnd(3, 4).detach()]],
    ['L1Loss', () => new nn.L1Loss({ reduction: 'sum' }), () => [rnd(3, 4), rnd(3, 4).detach()]],
    ['SmoothL1Loss', () => new nn.SmoothL1Loss(), () => [rnd(3, 4).mul(3).detach().requiresGrad_(), rnd(3, 4).detach()]],
    ['CrossEntropyLoss', () => new nn.CrossEntropyLoss({ labelSmoothing: 0.1 }), () => [rnd(3, 5), kiln.tensor([0, 4, 2], { dtype: 'int32' })]],
    ['NLLLoss', () => new nn.NLLLoss(), () => [rnd(3, 5), kiln.tensor([0, 4, 2], { dtype: 'int32' })]],
    ['BCELoss', () => new nn.BCELoss(), () => [kiln.rand([3, 4], { dtype: 'float64' }).mul(0.8).add(0.1).requiresGrad_(), kiln.rand([3, 4], { dtype: 'float64' })]],
    ['BCEWithLogitsLoss', () => new nn.BCEWithLogitsLoss(), () => [rnd(3, 4), kiln.rand([3, 4], { dtype: 'float64' })]],
    ['KLDivLoss', () => new nn.KLDivLoss({ reduction: 'batchmean' }), () => [rnd(3, 4), kiln.rand([3, 4], { dtype: 'float64' }).add(0.1)]],
  ];
  for (const [name, make, inputs] of layers) it(name, () => check(make(), ...inputs()));
  it('Embedding (w.r.t. nothing differentiable in its input: checks the weight gradient instead)', () => {
    const emb = new nn.Embedding(5, 3).double();
    const idx = kiln.tensor([1, 3, 1], { dtype: 'int32' });
    emb(idx).sum().backward();
    expect(emb.weight.grad!.sum(1).tolistSync()).toEqual([0, 6, 0, 3, 0]);
  });
});
