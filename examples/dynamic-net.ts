// Seed (h): DynamicNet (control flow and weight sharing) with SGD and momentum, eagerly (API.md §5).
import * as kiln from 'kiln';
import { nn, optim, type Tensor } from 'kiln';
import { DynamicNet } from '../models/dynamic-net.js';
import { isMain } from './is-main.js';
import type { NnStep } from './nn-sequential.js';

/** `setToNone`: PyTorch 2's zero_grad default (true) or PyTorch 1's (false); they differ once a parameter goes unused. */
export async function trainDynamicNet(model: nn.Module, x: Tensor, y: Tensor, lr: number, steps: number, onStep: (t: number, s: NnStep) => void, opts: { setToNone?: boolean } = {}) {
  const criterion = new nn.MSELoss({ reduction: 'sum' });
  const optimizer = new optim.SGD(model.parameters(), { lr, momentum: 0.9 });
  for (let t = 0; t < steps; t++) {
    const yPred = model(x);
    const loss = criterion(yPred, y);
    optimizer.zeroGrad(opts.setToNone ?? true);
    loss.backward();
    onStep(t, { loss: await loss.item(), yPred });
    optimizer.step();
  }
}

if (isMain(import.meta.url)) {
  const [N, D_in, H, D_out] = [64, 1000, 100, 10];
  kiln.manualSeed(0);
  const x = kiln.randn(N, D_in);
  const y = kiln.randn(N, D_out);
  await trainDynamicNet(new DynamicNet(D_in, H, D_out), x, y, 1e-4, 500, (t, s) => console.log(t, s.loss));
}
