// Seed (b): the two-layer network with tensors and manual backprop (API.md §1).
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';
import { isMain } from './is-main.js';
import type { StepInfo } from './numpy-style.js';

export async function trainTensors(x: Tensor, y: Tensor, w1: Tensor, w2: Tensor, lr: number, steps: number, onStep: (t: number, s: StepInfo) => void) {
  for (let t = 0; t < steps; t++) {
    // Forward pass: compute predicted y
    const h = x.mm(w1);
    const hRelu = h.clamp({ min: 0 });
    const yPred = hRelu.mm(w2);
    // Compute and print loss
    const loss = await yPred.sub(y).pow(2).sum().item();
    // Backprop to compute gradients of w1 and w2 with respect to loss
    const gradYPred = yPred.sub(y).mul(2.0);
    const gradW2 = hRelu.t().mm(gradYPred);
    const gradHRelu = gradYPred.mm(w2.t());
    const gradH = gradHRelu.clone();
    gradH.maskedFill_(h.lt(0), 0); // grad_h[h < 0] = 0
    const gradW1 = x.t().mm(gradH);
    onStep(t, { loss, yPred, gradW1, gradW2 });
    // Update weights using gradient descent
    w1.sub_(gradW1.mul(lr));
    w2.sub_(gradW2.mul(lr));
  }
}

if (isMain(import.meta.url)) {
  const [N, D_in, H, D_out] = [64, 1000, 100, 10];
  kiln.manualSeed(0);
  const x = kiln.randn([N, D_in]);
  const y = kiln.randn([N, D_out]);
  const w1 = kiln.randn([D_in, H]);
  const w2 = kiln.randn([H, D_out]);
  await trainTensors(x, y, w1, w2, 1e-6, 500, (t, s) => console.log(t, s.loss));
}
