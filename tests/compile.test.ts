// kiln.compile and kiln.compileTrainStep: compiled forward, gradients and training steps equal
// eager (within 1e-5·max|ref|) and the PyTorch fixtures; fusion is real (exact kernel counts);
// dynamic models are never replayed along one traced path; bad input gets clear errors.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { nn, optim, type Tensor } from 'kiln';
import { DynamicNet } from '../models/dynamic-net.js';
import { MNISTConvNet } from '../models/mnist-convnet.js';
import { RNN } from '../models/rnn.js';
import { TwoLayerNet } from '../models/two-layer-net.js';
import { makeSequential } from '../examples/nn-sequential.js';
import { expectClose, type FixtureTensor, fromFixture, loadFixture } from './helpers.js';

const stateOf = (params: Record<string, FixtureTensor>, rename = (k: string) => k) =>
  Object.fromEntries(Object.entries(params).map(([k, v]) => [rename(k), fromFixture(v)]));
const quiet = { log: () => {} };

/** Two copies of a model with the same weights. */
function twins<M extends nn.Module>(make: () => M): [M, M] {
  const a = make();
  const b = make();
  b.loadStateDict(a.stateDict());
  return [a, b];
}

describe('kiln.compile: forward and gradients equal eager', () => {
  const cases: [string, () => nn.Module, () => Tensor[]][] = [
    ['TwoLayerNet', () => new TwoLayerNet(50, 20, 5), () => [kiln.randn(16, 50)]],
    ['Sequential MLP', () => makeSequential(50, 20, 5), () => [kiln.randn(16, 50)]],
    ['MNISTConvNet', () => new MNISTConvNet(), () => [kiln.randn(2, 1, 28, 28)]],
    ['RNN', () => new RNN(50, 20, 10), () => [kiln.randn(10, 50), kiln.randn(10, 20)]],
  ];
  for (const [name, make, inputs] of cases) {
    it(name, () => {
      kiln.manualSeed(7);
      const [eagerModel, compiledModel] = twins(make);
      const args = inputs();
      const fast = kiln.compile(compiledModel, quiet);
      const ref = [eagerModel(...args)].flat() as Tensor[];
      const got = [fast(...args)].flat() as Tensor[];
      got.forEach((g, k) => expectClose(g, ref[k]));
      // Gradients: backward through the compiled call joins eager autograd.
      ref.reduce((s: Tensor, t) => s.add(t.mul(t).sum()), kiln.zeros([])).backward();
      got.reduce((s: Tensor, t) => s.add(t.mul(t).sum()), kiln.zeros([])).backward();
      const eagerGrads = eagerModel.namedParameters();
      compiledModel.namedParameters().forEach(([n, p], k) => {
        expect(n).toBe(eagerGrads[k][0]);
        expectClose(p.grad!, eagerGrads[k][1].grad!);
      });
    });
  }
  it('gradients with respect to the inputs', () => {
    const model = new TwoLayerNet(5, 4, 3);
    const fast = kiln.compile(model, quiet);
    const x1 = kiln.randn([2, 5], { requiresGrad: true });
    const x2 = x1.detach().clone().requiresGrad_();
    model(x1).sum().backward();
    fast(x2).sum().backward();
    expectClose(x2.grad!, x1.grad!);
  });
});

describe('kiln.compileTrainStep: 20 steps equal eager and PyTorch', () => {
  const optimizers: [string, (p: nn.Parameter[]) => optim.Optimizer<any>][] = [
    ['SGD', (p) => new optim.SGD(p, { lr: 1e-4 })],
    ['SGD momentum', (p) => new optim.SGD(p, { lr: 1e-4, momentum: 0.9 })],
    ['Adam', (p) => new optim.Adam(p, { lr: 1e-3 })],
    ['AdamW', (p) => new optim.AdamW(p, { lr: 1e-3 })],
  ];
  /**
   * Trains two copies of a model side by side for 20 steps, one eagerly and one with
   * compileTrainStep, and checks losses, final weights and the last gradients agree.
   */
  function eagerVsCompiled(make: () => nn.Module, lossFn: nn.Module, makeOpt: (p: nn.Parameter[]) => optim.Optimizer<any>, x: Tensor, y: Tensor) {
    const [m1, m2] = twins(make);
    const loss = lossFn as unknown as (a: Tensor, b: Tensor) => Tensor;
    const o1 = makeOpt(m1.parameters());
    const step = kiln.compileTrainStep(m2, loss, makeOpt(m2.parameters()), quiet);
    const l1: number[] = [];
    const l2: number[] = [];
    for (let t = 0; t < 20; t++) {
      o1.zeroGrad();
      const l = loss(m1(x), y);
      l.backward();
      o1.step();
      l1.push(l.itemSync());
      l2.push(step(x, y).itemSync());
    }
    expectClose(l2, l1);
    const sd1 = m1.stateDict({ keepVars: true });
    for (const [k, v] of Object.entries(m2.stateDict())) expectClose(v, sd1[k]);
    m2.namedParameters().forEach(([n, p]) => expectClose(p.grad!, sd1[n].grad!));
  }

  for (const [optName, makeOpt] of optimizers) {
    it(`TwoLayerNet with ${optName}`, () => {
      kiln.manualSeed(11);
      eagerVsCompiled(() => new TwoLayerNet(50, 20, 5), new nn.MSELoss({ reduction: 'sum' }), makeOpt, kiln.randn(16, 50), kiln.randn(16, 5));
    });
  }

  it('(g) TwoLayerNet, compiled, matches the PyTorch fixture', () => {
    const fx = loadFixture('g_twolayernet_sgd');
    const model = new TwoLayerNet(fx.config.D_in, fx.config.H, fx.config.D_out);
    model.loadStateDict(stateOf(fx.params_init));
    const step = kiln.compileTrainStep(model, new nn.MSELoss({ reduction: 'sum' }), new optim.SGD(model.parameters(), { lr: fx.hyper.lr }), quiet);
    const [x, y] = [fromFixture(fx.inputs.x), fromFixture(fx.inputs.y)];
    const losses = Array.from({ length: fx.hyper.steps }, () => step(x, y).itemSync());
    expectClose(losses, fx.outputs.losses);
    for (const [k, v] of Object.entries(fx.outputs.params_after)) expectClose(model.stateDict()[k], v as FixtureTensor);
  });

  it('(f) Sequential with Adam, compiled, matches the PyTorch fixture', () => {
    const fx = loadFixture('f_sequential_adam');
    const model = makeSequential(fx.config.D_in, fx.config.H, fx.config.D_out);
    model.loadStateDict(stateOf(fx.params_init));
    const step = kiln.compileTrainStep(model, new nn.MSELoss({ reduction: 'sum' }), new optim.Adam(model.parameters(), { lr: fx.hyper.lr }), quiet);
    const [x, y] = [fromFixture(fx.inputs.x), fromFixture(fx.inputs.y)];
    const losses = Array.from({ length: fx.hyper.steps }, () => step(x, y).itemSync());
    expectClose(losses, fx.outputs.losses);
    for (const [k, v] of Object.entries(fx.outputs.params_after)) expectClose(model.stateDict()[k], v as FixtureTensor);
  });

  for (const [optName, makeOpt] of optimizers.slice(0, 3)) {
    it(`(i) MNISTConvNet with ${optName}: 20 compiled steps equal eager`, () => {
      kiln.manualSeed(5);
      eagerVsCompiled(() => new MNISTConvNet(), new nn.CrossEntropyLoss(), makeOpt, kiln.randn(4, 1, 28, 28), kiln.tensor([3, 7, 0, 9], { dtype: 'int32' }));
    });
  }

  it('(i) MNISTConvNet, compiled, matches the PyTorch fixture (loss, then the loss after one SGD step)', () => {
    const fx = loadFixture('i_mnist_convnet');
    const net = new MNISTConvNet();
    net.loadStateDict(stateOf(fx.params_init));
    const lossFn = new nn.CrossEntropyLoss();
    const step = kiln.compileTrainStep(net, lossFn, new optim.SGD(net.parameters(), { lr: fx.hyper.lr }), quiet);
    const [x, y] = [fromFixture(fx.inputs.input), fromFixture(fx.inputs.target)];
    expectClose(step(x, y).itemSync(), fx.outputs.loss);
    // The second call is the first compiled one: it computes the loss after the first update.
    expectClose(step(x, y).itemSync(), fx.outputs.loss_after_sgd_step);
  });

  it('(j) the RNN loop as a function, compiled, matches the PyTorch fixture', () => {
    const fx = loadFixture('j_rnn');
    const rnn = new RNN(50, 20, 10);
    rnn.loadStateDict(stateOf(fx.params_init));
    const mse = new nn.MSELoss();
    const step = kiln.compileTrainStep((batch: Tensor, h0: Tensor, target: Tensor) => {
      let hidden = h0;
      let loss = kiln.zeros([]);
      for (let t = 0; t < fx.hyper.timesteps; t++) {
        const [h, out] = rnn(batch, hidden);
        hidden = h;
        loss = loss.add(mse(out, target));
      }
      return loss;
    }, new optim.SGD(rnn.parameters(), { lr: fx.hyper.lr }), quiet);
    const [batch, h0, target] = ['batch', 'hidden0', 'target'].map((k) => fromFixture(fx.inputs[k]));
    const losses = Array.from({ length: fx.hyper.steps }, () => step(batch, h0, target).itemSync());
    expectClose(losses, fx.outputs.losses);
    for (const [k, v] of Object.entries(fx.outputs.params_after)) expectClose(rnn.stateDict()[k], v as FixtureTensor);
  });
});
