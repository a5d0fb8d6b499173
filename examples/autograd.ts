// Seed (c): the two-layer network with autograd (API.md §2).
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';
import { isMain } from './is-main.js';
import type { StepInfo } from './numpy-style.js';

/** w1 and w2 must require grad; they are updated in place. */
export async function trainAutograd(x: Tensor, y: Tensor, w1: Tensor, w2: Tensor, lr: number, steps: number, onStep: (t: number, s: StepInfo) => void) {
  for (let t = 0; t < steps; t++) {
    // Forward pass: compute predicted y using operations on Tensors
    const yPred = x.mm(w1).clamp({ min: 0 }).mm(w2);
    // Compute and print loss
    const loss = yPred.sub(y).pow(2).sum();
    // Use autograd to compute the backward pass
    loss.backward();
    onStep(t, { loss: await loss.item(), yPred, gradW1: w1.grad!, gradW2: w2.grad! });
    // Update weights using gradient descent, outside the autograd graph
    kiln.noGrad(() => {
      w1.sub_(w1.grad!.mul(lr));
      w2.sub_(w2.grad!.mul(lr));
      // Manually zero the gradients after updating weights
      w1.grad!.zero_();
      w2.grad!.zero_();
    });
  }
}

if (isMain(import.meta.url)) {
  const [N, D_in, H, D_out] = [64, 1000, 100, 10];
  kiln.manualSeed(0);
  const x = kiln.randn([N, D_in]);
  const y = kiln.randn([N, D_out]);
  const w1 = kiln.randn([D_in, H], { requiresGrad: true });
  const w2 = kiln.randn([H, D_out], { requiresGrad: true });
  const start = performance.now();
  await trainAutograd(x, y, w1, w2, 1e-6, 500, (t, s) => console.log(t, s.loss));
  console.log(`500 steps in ${((performance.now() - start) / 1000).toFixed(2)} s`);
}
