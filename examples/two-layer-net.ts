// Seed (g): a custom Module, TwoLayerNet, trained with optim.SGD (API.md §4).
import * as kiln from 'kiln';
import { nn, optim, type Tensor } from 'kiln';
import { TwoLayerNet } from '../models/two-layer-net.js';
import { isMain } from './is-main.js';
import type { NnStep } from './nn-sequential.js';

export async function trainTwoLayerNet(model: nn.Module, x: Tensor, y: Tensor, lr: number, steps: number, onStep: (t: number, s: NnStep) => void) {
  const criterion = new nn.MSELoss({ reduction: 'sum' });
  const optimizer = new optim.SGD(model.parameters(), { lr });
  for (let t = 0; t < steps; t++) {
    const yPred = model(x);
    const loss = criterion(yPred, y);
    optimizer.zeroGrad();
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
  await trainTwoLayerNet(new TwoLayerNet(D_in, H, D_out), x, y, 1e-4, 500, (t, s) => console.log(t, s.loss));
}
