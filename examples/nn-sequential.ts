// Seed (e): nn.Sequential with MSELoss(sum) and a hand-written SGD update (API.md §4).
import * as kiln from 'kiln';
import { nn, type Tensor } from 'kiln';
import { isMain } from './is-main.js';

export interface NnStep {
  loss: number;
  yPred: Tensor;
}

export function makeSequential(dIn: number, h: number, dOut: number): nn.Sequential {
  return new nn.Sequential(new nn.Linear(dIn, h), new nn.ReLU(), new nn.Linear(h, dOut));
}

/** `onStep` runs after backward, so it sees that step's gradients. */
export async function trainSequential(model: nn.Module, x: Tensor, y: Tensor, lr: number, steps: number, onStep: (t: number, s: NnStep) => void) {
  const lossFn = new nn.MSELoss({ reduction: 'sum' });
  for (let t = 0; t < steps; t++) {
    // Forward pass: compute predicted y by passing x to the model.
    const yPred = model(x);
    const loss = lossFn(yPred, y);
    // Zero the gradients before running the backward pass.
    model.zeroGrad();
    loss.backward();
    onStep(t, { loss: await loss.item(), yPred });
    // Update the weights using gradient descent.
    kiln.noGrad(() => {
      for (const param of model.parameters()) param.sub_(param.grad!.mul(lr));
    });
  }
}

if (isMain(import.meta.url)) {
  const [N, D_in, H, D_out] = [64, 1000, 100, 10];
  kiln.manualSeed(0);
  const x = kiln.randn(N, D_in);
  const y = kiln.randn(N, D_out);
  await trainSequential(makeSequential(D_in, H, D_out), x, y, 1e-4, 500, (t, s) => console.log(t, s.loss));
}
