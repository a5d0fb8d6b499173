// Seed (a): the two-layer network with hand-written backprop, in the style of the numpy version
// (x.dot(w1) -> matmul, np.maximum(h, 0) -> maximum, .T, copy, grad_h[h < 0] = 0).
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';
import { isMain } from './is-main.js';

export interface StepInfo {
  loss: number;
  yPred: Tensor;
  gradW1: Tensor;
  gradW2: Tensor;
}

/** Trains w1 and w2 in place for `steps` steps; `onStep` sees each step's loss and gradients. */
export async function trainNumpyStyle(x: Tensor, y: Tensor, w1: Tensor, w2: Tensor, lr: number, steps: number, onStep: (t: number, s: StepInfo) => void) {
  for (let t = 0; t < steps; t++) {
    // Forward pass: compute predicted y
    const h = x.matmul(w1);
    const hRelu = h.maximum(0);
    const yPred = hRelu.matmul(w2);
    // Compute and print loss
    const loss = await yPred.sub(y).square().sum().item();
    // Backprop to compute gradients of w1 and w2 with respect to loss
    const gradYPred = yPred.sub(y).mul(2.0);
    const gradW2 = hRelu.T.matmul(gradYPred);
    const gradHRelu = gradYPred.matmul(w2.T);
    const gradH = gradHRelu.clone();
    gradH.maskedFill_(h.lt(0), 0);
    const gradW1 = x.T.matmul(gradH);
    onStep(t, { loss, yPred, gradW1, gradW2 });
    // Update weights
    w1.sub_(gradW1.mul(lr));
    w2.sub_(gradW2.mul(lr));
  }
}

if (isMain(import.meta.url)) {
  const [N, D_in, H, D_out] = [64, 1000, 100, 10];
  kiln.manualSeed(0);
  const x = kiln.randn(N, D_in);
  const y = kiln.randn(N, D_out);
  const w1 = kiln.randn(D_in, H);
  const w2 = kiln.randn(H, D_out);
  await trainNumpyStyle(x, y, w1, w2, 1e-6, 500, (t, s) => console.log(t, s.loss));
}
