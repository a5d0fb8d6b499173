// Seeds (a)-(d) against the PyTorch golden outputs (fixtures/abcd_manual_backprop.json).
import { describe, expect, it } from 'vitest';
import type { Tensor } from 'kiln';
import { trainAutograd } from '../examples/autograd.js';
import { trainMyReLU } from '../examples/custom-function.js';
import type { StepInfo } from '../examples/numpy-style.js';
import { trainNumpyStyle } from '../examples/numpy-style.js';
import { trainTensors } from '../examples/tensors.js';
import { expectClose, fromFixture, loadFixture } from './helpers.js';

const fx = loadFixture('abcd_manual_backprop');

type Trainer = (x: Tensor, y: Tensor, w1: Tensor, w2: Tensor, lr: number, steps: number, onStep: (t: number, s: StepInfo) => void) => Promise<void>;

const seeds: [string, Trainer, boolean][] = [
  ['(a) numpy-style manual backprop', trainNumpyStyle, false],
  ['(b) tensors, manual backprop', trainTensors, false],
  ['(c) autograd', trainAutograd, true],
  ['(d) custom autograd Function MyReLU', trainMyReLU, true],
];

describe('seeds (a)-(d) match PyTorch', () => {
  for (const [name, train, requiresGrad] of seeds) {
    it(name, async () => {
      const x = fromFixture(fx.inputs.x);
      const y = fromFixture(fx.inputs.y);
      const w1 = fromFixture(fx.params_init.w1, { requiresGrad });
      const w2 = fromFixture(fx.params_init.w2, { requiresGrad });
      const losses: number[] = [];
      let step0: { yPred: number[]; gradW1: number[]; gradW2: number[] } | undefined;
      await train(x, y, w1, w2, fx.hyper.lr, fx.hyper.steps, (t, s) => {
        losses.push(s.loss);
        // Read now: the autograd seeds zero the gradients in place after the update.
        if (t === 0) step0 = { yPred: [...s.yPred.double().dataSync()], gradW1: [...s.gradW1.double().dataSync()], gradW2: [...s.gradW2.double().dataSync()] };
      });
      expectClose(losses, fx.outputs.losses);
      expectClose(step0!.yPred, fx.outputs.y_pred_step0);
      expectClose(step0!.gradW1, fx.outputs.grads_step0.w1);
      expectClose(step0!.gradW2, fx.outputs.grads_step0.w2);
      expectClose(w1, fx.outputs.params_after.w1);
      expectClose(w2, fx.outputs.params_after.w2);
    });
  }
});

describe("Kiln's main job", () => {
  it('trains the seed TwoLayerNet with a compiled step: the loss falls by orders of magnitude', async () => {
    const { trainCompiled } = await import('../examples/compiled-training.js');
    const lines: string[] = [];
    const { loss } = await trainCompiled({ steps: 200, log: (l) => lines.push(l) });
    expect(Number(lines[0].split(' ')[1])).toBeGreaterThan(100);
    expect(loss).toBeLessThan(1);
    expect(lines[lines.length - 1]).toMatch(/^200 compiled steps on cpu in /);
  });
});
