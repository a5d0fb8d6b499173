// Seed (f): the same Sequential model trained with optim.Adam (API.md §4).
import * as kiln from 'kiln';
import { nn, optim, type Tensor } from 'kiln';
import { isMain } from './is-main.js';
import { makeSequential, type NnStep } from './nn-sequential.js';

export async function trainAdam(model: nn.Module, x: Tensor, y: Tensor, lr: number, steps: number, onStep: (t: number, s: NnStep) => void): Promise<optim.Adam> {
  const lossFn = new nn.MSELoss({ reduction: 'sum' });
  const optimizer = new optim.Adam(model.parameters(), { lr });
  for (let t = 0; t < steps; t++) {
    const yPred = model(x);
    const loss = lossFn(yPred, y);
    // Zero the gradients of the variables the optimizer will update, then backward and step.
    optimizer.zeroGrad();
    loss.backward();
    onStep(t, { loss: await loss.item(), yPred });
    optimizer.step();
  }
  return optimizer;
}

if (isMain(import.meta.url)) {
  const [N, D_in, H, D_out] = [64, 1000, 100, 10];
  kiln.manualSeed(0);
  const x = kiln.randn(N, D_in);
  const y = kiln.randn(N, D_out);
  await trainAdam(makeSequential(D_in, H, D_out), x, y, 1e-4, 500, (t, s) => console.log(t, s.loss));
}
