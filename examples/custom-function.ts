// Seed (d): a custom autograd Function, MyReLU, in the two-layer network (API.md §3).
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';
import { MyReLU } from '../models/my-relu.js';
import { isMain } from './is-main.js';
import type { StepInfo } from './numpy-style.js';

export async function trainMyReLU(x: Tensor, y: Tensor, w1: Tensor, w2: Tensor, lr: number, steps: number, onStep: (t: number, s: StepInfo) => void) {
  for (let t = 0; t < steps; t++) {
    const yPred = MyReLU.apply(x.mm(w1)).mm(w2);
    const loss = yPred.sub(y).pow(2).sum();
    loss.backward();
    onStep(t, { loss: await loss.item(), yPred, gradW1: w1.grad!, gradW2: w2.grad! });
    kiln.noGrad(() => {
      w1.sub_(w1.grad!.mul(lr));
      w2.sub_(w2.grad!.mul(lr));
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
  await trainMyReLU(x, y, w1, w2, 1e-6, 500, (t, s) => console.log(t, s.loss));
}
