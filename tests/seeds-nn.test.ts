// Seeds (e)-(j) against the PyTorch golden outputs: each fixture's inputs and initial state dict are
// loaded with loadStateDict, the example's own training code runs, and every stored output matches
// within max|got - ref| <= 1e-5 * max|ref|.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import type { nn, Tensor } from 'kiln';
import { DynamicNet } from '../models/dynamic-net.js';
import { MNISTConvNet } from '../models/mnist-convnet.js';
import { RNN } from '../models/rnn.js';
import { TwoLayerNet } from '../models/two-layer-net.js';
import { trainDynamicNet } from '../examples/dynamic-net.js';
import { convNetStep } from '../examples/mnist-convnet.js';
import { trainAdam } from '../examples/nn-adam.js';
import { makeSequential, trainSequential, type NnStep } from '../examples/nn-sequential.js';
import { trainRNN, unroll } from '../examples/rnn.js';
import { trainTwoLayerNet } from '../examples/two-layer-net.js';
import { expectClose, type FixtureTensor, fromFixture, loadFixture } from './helpers.js';

const snakeToCamel = (k: string) => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function stateDictOf(params: Record<string, FixtureTensor>, rename = (k: string) => k): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(params).map(([k, v]) => [rename(k), fromFixture(v)]));
}

function expectParams(model: nn.Module, ref: Record<string, FixtureTensor>, rename = (k: string) => k) {
  const sd = model.stateDict();
  for (const [k, v] of Object.entries(ref)) expectClose(sd[rename(k)], v);
}

function gradsOf(model: nn.Module): Record<string, number[]> {
  return Object.fromEntries(model.namedParameters().map(([n, p]) => [n, [...p.grad!.double().dataSync()]]));
}

/** Runs a training loop, recording the losses and the gradients after the first backward. */
async function record(model: nn.Module, run: (onStep: (t: number, s: NnStep) => void) => Promise<unknown>) {
  const losses: number[] = [];
  let grads0: Record<string, number[]> = {};
  let yPred0: number[] = [];
  await run((t, s) => {
    losses.push(s.loss);
    if (t === 0) { grads0 = gradsOf(model); yPred0 = [...s.yPred.double().dataSync()]; }
  });
  return { losses, grads0, yPred0 };
}

describe('seeds (e)-(j) match PyTorch', () => {
  it('(e) Sequential, MSELoss(sum), manual SGD', async () => {
    const fx = loadFixture('e_sequential_sgd');
    const { N, D_in, H, D_out } = fx.config;
    const model = makeSequential(D_in, H, D_out);
    model.loadStateDict(stateDictOf(fx.params_init));
    const r = await record(model, (cb) => trainSequential(model, fromFixture(fx.inputs.x), fromFixture(fx.inputs.y), fx.hyper.lr, fx.hyper.steps, cb));
    expect(N).toBe(16);
    expectClose(r.losses, fx.outputs.losses);
    expectClose(r.yPred0, fx.outputs.y_pred_step0);
    for (const [k, v] of Object.entries(fx.outputs.grads_step0)) expectClose(r.grads0[k], v as FixtureTensor);
    expectParams(model, fx.outputs.params_after);
  });

  it('(f) Sequential with optim.Adam', async () => {
    const fx = loadFixture('f_sequential_adam');
    const { D_in, H, D_out } = fx.config;
    const model = makeSequential(D_in, H, D_out);
    model.loadStateDict(stateDictOf(fx.params_init));
    let optimizer: Awaited<ReturnType<typeof trainAdam>> | undefined;
    const r = await record(model, async (cb) => { optimizer = await trainAdam(model, fromFixture(fx.inputs.x), fromFixture(fx.inputs.y), fx.hyper.lr, fx.hyper.steps, cb); });
    expectClose(r.losses, fx.outputs.losses);
    for (const [k, v] of Object.entries(fx.outputs.grads_step0)) expectClose(r.grads0[k], v as FixtureTensor);
    expectParams(model, fx.outputs.params_after);
    const ref = fx.outputs['adam_state_after_0.weight'];
    const state = optimizer!.stateDict().state[0] as Record<string, Tensor | number>;
    expect(Number(state.step instanceof kiln.Tensor ? state.step.itemSync() : state.step)).toBe(ref.step);
    expectClose(state.exp_avg as Tensor, ref.exp_avg);
    expectClose(state.exp_avg_sq as Tensor, ref.exp_avg_sq);
  });

  it('(g) TwoLayerNet with optim.SGD', async () => {
    const fx = loadFixture('g_twolayernet_sgd');
    const { D_in, H, D_out } = fx.config;
    const model = new TwoLayerNet(D_in, H, D_out);
    model.loadStateDict(stateDictOf(fx.params_init));
    const r = await record(model, (cb) => trainTwoLayerNet(model, fromFixture(fx.inputs.x), fromFixture(fx.inputs.y), fx.hyper.lr, fx.hyper.steps, cb));
    expectClose(r.losses, fx.outputs.losses);
    for (const [k, v] of Object.entries(fx.outputs.grads_step0)) expectClose(r.grads0[k], v as FixtureTensor);
    expectParams(model, fx.outputs.params_after);
  });

  for (const setToNone of [false, true]) {
    it(`(h) DynamicNet with SGD momentum, the fixture's depth sequence, zeroGrad(setToNone=${setToNone})`, async () => {
      const fx = loadFixture('h_dynamicnet_sgd_momentum');
      const { D_in, H, D_out } = fx.config;
      const depths: number[] = [...fx.hyper.depths];
      const used: number[] = [];
      const model = new DynamicNet(D_in, H, D_out, () => { const d = depths.shift()!; used.push(d); return d; });
      model.loadStateDict(stateDictOf(fx.params_init, snakeToCamel));
      const r = await record(model, (cb) => trainDynamicNet(model, fromFixture(fx.inputs.x), fromFixture(fx.inputs.y), fx.hyper.lr, fx.hyper.steps, cb, { setToNone }));
      expect(used).toEqual(fx.hyper.depths);
      const tag = setToNone ? 'true' : 'false';
      expectClose(r.losses, fx.outputs[`losses_set_to_none_${tag}`]);
      for (const [k, v] of Object.entries(fx.outputs.grads_step0)) expectClose(r.grads0[snakeToCamel(k)], v as FixtureTensor);
      expectParams(model, fx.outputs[`params_after_set_to_none_${tag}`], snakeToCamel);
    });
  }

  it('(i) MNISTConvNet: output, loss, gradients, what the conv2 hooks see, one SGD step', async () => {
    const fx = loadFixture('i_mnist_convnet');
    const net = new MNISTConvNet();
    net.loadStateDict(stateDictOf(fx.params_init));
    let conv2Out: Tensor | undefined;
    let gradIn: Tensor | null = null;
    let gradOut: Tensor | null = null;
    net.conv2.registerForwardHook((_m, inputs, output) => {
      expect((inputs[0] as Tensor).shape).toEqual([4, 10, 12, 12]);
      conv2Out ??= output; // the first forward; convNetStep runs a second one after its SGD step
    });
    net.conv2.registerFullBackwardHook((_m, gin, gout) => { gradIn = gin[0]; gradOut = gout[0]; });
    const { out, loss, lossAfterStep } = await convNetStep(net, fromFixture(fx.inputs.input), fromFixture(fx.inputs.target), fx.hyper.lr);
    expectClose(out, fx.outputs.out);
    expectClose(loss, fx.outputs.loss);
    expectClose(conv2Out!, fx.outputs.conv2_output);
    expectClose(gradOut!, fx.outputs.conv2_grad_output);
    expectClose(gradIn!, fx.outputs.conv2_grad_input);
    expectClose(lossAfterStep, fx.outputs.loss_after_sgd_step);
  });

  it('(i) MNISTConvNet gradients', async () => {
    const fx = loadFixture('i_mnist_convnet');
    const net = new MNISTConvNet();
    net.loadStateDict(stateDictOf(fx.params_init));
    const loss = new kiln.nn.CrossEntropyLoss()(net(fromFixture(fx.inputs.input)), fromFixture(fx.inputs.target));
    loss.backward();
    const grads = gradsOf(net);
    for (const [k, v] of Object.entries(fx.outputs.grads)) expectClose(grads[k], v as FixtureTensor);
  });

  it('(j) RNN: summed loss over 5 steps, gradients, 20 SGD iterations', async () => {
    const fx = loadFixture('j_rnn');
    const rnn = new RNN(50, 20, 10);
    rnn.loadStateDict(stateDictOf(fx.params_init));
    const [batch, hidden0, target] = ['batch', 'hidden0', 'target'].map((k) => fromFixture(fx.inputs[k]));
    const { loss, outputs, perStep } = unroll(rnn, batch, hidden0, target, fx.hyper.timesteps);
    expectClose(loss.itemSync(), fx.outputs.loss);
    expectClose(perStep.map((l) => l.itemSync()), fx.outputs.per_timestep_losses);
    outputs.forEach((o, t) => expectClose(o, fx.outputs.outputs_step0[t]));
    loss.backward();
    const grads = gradsOf(rnn);
    for (const [k, v] of Object.entries(fx.outputs.grads)) expectClose(grads[k], v as FixtureTensor);
    rnn.zeroGrad();
    const losses: number[] = [];
    await trainRNN(rnn, batch, hidden0, target, fx.hyper.timesteps, fx.hyper.lr, fx.hyper.steps, (_t, l) => losses.push(l));
    expectClose(losses, fx.outputs.losses);
    expectParams(rnn, fx.outputs.params_after);
  });

  it('MNISTConvNet prints like the seed', () => {
    expect(new MNISTConvNet().toString()).toBe(
      'MNISTConvNet(\n' +
        '  (conv1): Conv2d(1, 10, kernel_size=(5, 5), stride=(1, 1))\n' +
        '  (pool1): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n' +
        '  (conv2): Conv2d(10, 20, kernel_size=(5, 5), stride=(1, 1))\n' +
        '  (pool2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n' +
        '  (fc1): Linear(in_features=320, out_features=50, bias=True)\n' +
        '  (fc2): Linear(in_features=50, out_features=10, bias=True)\n' +
        ')',
    );
  });
});
