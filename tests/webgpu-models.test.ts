// The seed models on WebGPU (Mesa's lavapipe in CI): eager and compiled, against the PyTorch
// fixtures and the CPU; a compiled step is one command buffer; a 500-step eager loop does not leak.
import { beforeAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { nn, optim, type Tensor } from 'kiln';
import { DynamicNet } from '../models/dynamic-net.js';
import { MNISTConvNet } from '../models/mnist-convnet.js';
import { RNN } from '../models/rnn.js';
import { TwoLayerNet } from '../models/two-layer-net.js';
import { makeSequential } from '../examples/nn-sequential.js';
import { type FixtureTensor, expectCloseAsync, fromFixture, loadFixture } from './helpers.js';

let gpu: kiln.WebGPUBackend;
beforeAll(async () => {
  gpu = await kiln.initWebGPU();
});

const toGpu = (t: FixtureTensor) => fromFixture(t).to('webgpu');
const stateOf = (params: Record<string, FixtureTensor>) => Object.fromEntries(Object.entries(params).map(([k, v]) => [k, fromFixture(v)]));

type Train = (x: Tensor, y: Tensor) => Tensor;

function trainer(model: nn.Module, lossFn: nn.Module, opt: optim.Optimizer<any>, compiled: boolean): Train {
  if (compiled) return kiln.compileTrainStep(model, lossFn as never, opt, { log: () => {} });
  return (x, y) => {
    opt.zeroGrad();
    const loss = (lossFn as unknown as (a: Tensor, b: Tensor) => Tensor)(model(x), y);
    loss.backward();
    opt.step();
    return loss;
  };
}

describe('seed models on WebGPU match the PyTorch fixtures', () => {
  for (const compiled of [false, true]) {
    const mode = compiled ? 'compiled' : 'eager';
    it(`(g) TwoLayerNet with SGD, ${mode}`, async () => {
      const fx = loadFixture('g_twolayernet_sgd');
      const model = new TwoLayerNet(fx.config.D_in, fx.config.H, fx.config.D_out);
      model.loadStateDict(stateOf(fx.params_init));
      model.to('webgpu');
      const step = trainer(model, new nn.MSELoss({ reduction: 'sum' }), new optim.SGD(model.parameters(), { lr: fx.hyper.lr }), compiled);
      const [x, y] = [toGpu(fx.inputs.x), toGpu(fx.inputs.y)];
      const losses: number[] = [];
      for (let t = 0; t < fx.hyper.steps; t++) losses.push(await step(x, y).item());
      await expectCloseAsync('losses', losses, fx.outputs.losses);
      for (const [k, v] of Object.entries(fx.outputs.params_after)) await expectCloseAsync(k, model.stateDict()[k], v as FixtureTensor);
    });

    it(`(f) Sequential with Adam, ${mode}`, async () => {
      const fx = loadFixture('f_sequential_adam');
      const model = makeSequential(fx.config.D_in, fx.config.H, fx.config.D_out);
      model.loadStateDict(stateOf(fx.params_init));
      model.to('webgpu');
      const step = trainer(model, new nn.MSELoss({ reduction: 'sum' }), new optim.Adam(model.parameters(), { lr: fx.hyper.lr }), compiled);
      const [x, y] = [toGpu(fx.inputs.x), toGpu(fx.inputs.y)];
      const losses: number[] = [];
      for (let t = 0; t < fx.hyper.steps; t++) losses.push(await step(x, y).item());
      await expectCloseAsync('losses', losses, fx.outputs.losses);
      for (const [k, v] of Object.entries(fx.outputs.params_after)) await expectCloseAsync(k, model.stateDict()[k], v as FixtureTensor);
    });

    it(`(j) the RNN loop, ${mode}`, async () => {
      const fx = loadFixture('j_rnn');
      const rnn = new RNN(50, 20, 10);
      rnn.loadStateDict(stateOf(fx.params_init));
      rnn.to('webgpu');
      const mse = new nn.MSELoss();
      const lossOf = (batch: Tensor, h0: Tensor, target: Tensor) => {
        let hidden = h0;
        let loss = kiln.zeros([], { device: 'webgpu' });
        for (let t = 0; t < fx.hyper.timesteps; t++) {
          const [h, out] = rnn(batch, hidden);
          hidden = h;
          loss = loss.add(mse(out, target));
        }
        return loss;
      };
      const opt = new optim.SGD(rnn.parameters(), { lr: fx.hyper.lr });
      const step = compiled ? kiln.compileTrainStep(lossOf, opt, { log: () => {} }) : (b: Tensor, h: Tensor, t: Tensor) => {
        opt.zeroGrad();
        const l = lossOf(b, h, t);
        l.backward();
        opt.step();
        return l;
      };
      const [batch, h0, target] = ['batch', 'hidden0', 'target'].map((k) => toGpu(fx.inputs[k]));
      const losses: number[] = [];
      for (let t = 0; t < fx.hyper.steps; t++) losses.push(await step(batch, h0, target).item());
      await expectCloseAsync('losses', losses, fx.outputs.losses);
      for (const [k, v] of Object.entries(fx.outputs.params_after)) await expectCloseAsync(k, rnn.stateDict()[k], v as FixtureTensor);
    });
  }

  it('(i) MNISTConvNet, eager: output, loss, what the conv2 hooks see, gradients, one SGD step', async () => {
    const fx = loadFixture('i_mnist_convnet');
    const net = new MNISTConvNet();
    net.loadStateDict(stateOf(fx.params_init));
    net.to('webgpu');
    let conv2Out: Tensor | undefined;
    let gradIn: Tensor | null = null;
    let gradOut: Tensor | null = null;
    net.conv2.registerForwardHook((_m, _inputs, output) => { conv2Out ??= output; });
    net.conv2.registerFullBackwardHook((_m, gin, gout) => { gradIn = gin[0]; gradOut = gout[0]; });
    const lossFn = new nn.CrossEntropyLoss();
    const out = net(toGpu(fx.inputs.input));
    const loss = lossFn(out, toGpu(fx.inputs.target));
    loss.backward();
    await expectCloseAsync('out', out, fx.outputs.out);
    await expectCloseAsync('loss', [await loss.item()], fx.outputs.loss);
    await expectCloseAsync('conv2 output', conv2Out!, fx.outputs.conv2_output);
    await expectCloseAsync('conv2 grad output', gradOut!, fx.outputs.conv2_grad_output);
    await expectCloseAsync('conv2 grad input', gradIn!, fx.outputs.conv2_grad_input);
    for (const [k, p] of net.namedParameters()) await expectCloseAsync(`grad ${k}`, p.grad!, fx.outputs.grads[k]);
    new optim.SGD(net.parameters(), { lr: fx.hyper.lr }).step();
    await expectCloseAsync('loss after the SGD step', [await lossFn(net(toGpu(fx.inputs.input)), toGpu(fx.inputs.target)).item()], fx.outputs.loss_after_sgd_step);
  });

  it('(i) MNISTConvNet, compiled training step', async () => {
    const fx = loadFixture('i_mnist_convnet');
    const net = new MNISTConvNet();
    net.loadStateDict(stateOf(fx.params_init));
    net.to('webgpu');
    const step = kiln.compileTrainStep(net, new nn.CrossEntropyLoss(), new optim.SGD(net.parameters(), { lr: fx.hyper.lr }), { log: () => {} });
    const [x, y] = [toGpu(fx.inputs.input), toGpu(fx.inputs.target)];
    await expectCloseAsync('loss', [await step(x, y).item()], fx.outputs.loss);
    await expectCloseAsync('loss after the SGD step', [await step(x, y).item()], fx.outputs.loss_after_sgd_step);
  });

  it('(h) DynamicNet with SGD momentum, eager, following the fixture depth sequence', async () => {
    const fx = loadFixture('h_dynamicnet_sgd_momentum');
    const camel = (k: string) => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    const depths: number[] = [...fx.hyper.depths];
    const model = new DynamicNet(fx.config.D_in, fx.config.H, fx.config.D_out, () => depths.shift()!);
    model.loadStateDict(Object.fromEntries(Object.entries(fx.params_init as Record<string, FixtureTensor>).map(([k, v]) => [camel(k), fromFixture(v)])));
    model.to('webgpu');
    const step = trainer(model, new nn.MSELoss({ reduction: 'sum' }), new optim.SGD(model.parameters(), { lr: fx.hyper.lr, momentum: 0.9 }), false);
    const [x, y] = [toGpu(fx.inputs.x), toGpu(fx.inputs.y)];
    const losses: number[] = [];
    for (let t = 0; t < fx.hyper.steps; t++) losses.push(await step(x, y).item());
    await expectCloseAsync('losses', losses, fx.outputs.losses_set_to_none_true);
    for (const [k, v] of Object.entries(fx.outputs.params_after_set_to_none_true as Record<string, FixtureTensor>)) await expectCloseAsync(k, model.stateDict()[camel(k)], v);
  });

  it('compiled forward and gradients on WebGPU equal the CPU', async () => {
    kiln.manualSeed(3);
    const cpuModel = new TwoLayerNet(50, 20, 5);
    const gpuModel = new TwoLayerNet(50, 20, 5);
    gpuModel.loadStateDict(cpuModel.stateDict());
    gpuModel.to('webgpu');
    const x = kiln.randn(16, 50);
    const fast = kiln.compile(gpuModel, { log: () => {} });
    const ref = cpuModel(x);
    const got = fast(x.to('webgpu'));
    await expectCloseAsync('output', got, ref);
    ref.square().sum().backward();
    got.square().sum().backward();
    const cpuGrads = cpuModel.namedParameters();
    for (const [k, [, p]] of gpuModel.namedParameters().entries()) {
      await expectCloseAsync(`grad ${k}`, p.grad!, cpuGrads[k][1].grad!);
    }
  });
});

describe('WebGPU execution', () => {
  it('a compiled TwoLayerNet training step is 15 dispatches (14 kernels, the loss copied out; gradients stay where the plan computed them) in one command buffer', async () => {
    const model = new TwoLayerNet(50, 20, 5).to('webgpu');
    const step = kiln.compileTrainStep(model, new nn.MSELoss({ reduction: 'sum' }), new optim.SGD(model.parameters(), { lr: 1e-4 }), { log: () => {} });
    const x = kiln.randn(16, 50).to('webgpu');
    const y = kiln.randn(16, 5).to('webgpu');
    step(x, y);
    await step(x, y).item();
    const before = { ...gpu.counters };
    const loss = step(x, y);
    expect(gpu.counters.dispatches - before.dispatches).toBe(15);
    expect(gpu.counters.submits - before.submits).toBe(1);
    expect(step.stats(x, y).kernels).toBe(14);
    await loss.item();
  });

  it('a 500-step eager training loop ends with as many live buffers as after its first step', async () => {
    const model = new TwoLayerNet(50, 20, 5).to('webgpu');
    const lossFn = new nn.MSELoss({ reduction: 'sum' });
    const opt = new optim.SGD(model.parameters(), { lr: 1e-4, momentum: 0.9 });
    const x = kiln.randn(16, 50).to('webgpu');
    const y = kiln.randn(16, 5).to('webgpu');
    const step = () => kiln.tidy(() => {
      opt.zeroGrad();
      const loss = lossFn(model(x), y);
      loss.backward();
      opt.step();
      return loss;
    });
    // Count only this loop's storages: the garbage collector may meanwhile free other tests' tensors.
    const start = gpu.nextSerial;
    let loss = step();
    await loss.item();
    loss.dispose();
    const after1 = gpu.liveSince(start);
    for (let t = 1; t < 500; t++) {
      loss = step();
      if (t % 100 === 0) await loss.item();
      loss.dispose();
    }
    await model.parameters()[0].data();
    expect(gpu.liveSince(start)).toBe(after1);
    expect(kiln.memory().buffers).toBeGreaterThanOrEqual(after1);
  });

  it('backward through .to(\'webgpu\') of a CPU leaf says where to put the leaf instead', () => {
    const x = kiln.randn(3).requiresGrad_();
    const loss = x.to('webgpu').mul(2).sum();
    expect(() => loss.backward()).toThrow(/backward through \.to\('webgpu'\): the gradient of a cpu tensor.*model\.to\('webgpu'\)/);
  });

  it('reading synchronously on WebGPU says to await', () => {
    const t = kiln.ones([1], { device: 'webgpu' });
    expect(() => t.itemSync()).toThrow(/cannot be read synchronously: use 'await t.data\(\)'/);
  });
});

describe('printing WebGPU tensors', () => {
  it('console.log does not throw; toStringAsync prints the values like PyTorch', async () => {
    await kiln.initWebGPU();
    const t = kiln.tensor([[1, 2], [3, 4]]).to('webgpu');
    expect(String(t)).toBe("tensor(<4 values on webgpu: await t.data() or await t.tolist() to read them>, shape=[2, 2], device='webgpu')");
    expect(await t.toStringAsync()).toBe("tensor([[1., 2.],\n        [3., 4.]], device='webgpu')");
  });
});
