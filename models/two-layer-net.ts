// TwoLayerNet (seed: "PyTorch: Custom nn Modules"): linear, clamp(min=0), linear.
import { nn, type Tensor } from 'kiln';
import type { ModelSpec } from 'kiln';

export class TwoLayerNet extends nn.Module {
  linear1: nn.Linear;
  linear2: nn.Linear;
  constructor(dIn: number, h: number, dOut: number) {
    super();
    this.linear1 = new nn.Linear(dIn, h);
    this.linear2 = new nn.Linear(h, dOut);
  }
  override forward(x: Tensor): Tensor {
    const hRelu = this.linear1(x).clamp({ min: 0 });
    return this.linear2(hRelu);
  }
}

/** The seed's sizes: a batch of 64, 1000 inputs, 100 hidden units, 10 outputs; summed squared error. */
export const modelSpec: ModelSpec<TwoLayerNet> = {
  name: 'two-layer-net',
  create: () => new TwoLayerNet(1000, 100, 10),
  inputs: [{ shape: [64, 1000], dtype: 'float32' }],
  target: { shape: [64, 10], dtype: 'float32' },
  loss: 'mse-sum',
  optim: { name: 'sgd', lr: 1e-4 },
  data: 'random',
};
