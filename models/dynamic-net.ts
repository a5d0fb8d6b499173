// DynamicNet (seed: "PyTorch: Control Flow + Weight Sharing"): each forward reuses middleLinear a
// random number of times (0..3), so the graph differs from call to call. It runs eagerly.
import { nn, type Tensor } from 'kiln';
import type { ModelSpec } from 'kiln';

/** The seed's `random.randint(0, 3)`. */
export const randomDepth = (): number => Math.floor(Math.random() * 4);

export class DynamicNet extends nn.Module {
  inputLinear: nn.Linear;
  middleLinear: nn.Linear;
  outputLinear: nn.Linear;
  /** Where the depth comes from: Math.random by default; tests pass a fixed sequence. */
  sampleDepth: () => number;
  constructor(dIn: number, h: number, dOut: number, sampleDepth: () => number = randomDepth) {
    super();
    this.inputLinear = new nn.Linear(dIn, h);
    this.middleLinear = new nn.Linear(h, h);
    this.outputLinear = new nn.Linear(h, dOut);
    this.sampleDepth = sampleDepth;
  }
  override forward(x: Tensor): Tensor {
    let hRelu = this.inputLinear(x).clamp({ min: 0 });
    const depth = this.sampleDepth();
    for (let i = 0; i < depth; i++) hRelu = this.middleLinear(hRelu).clamp({ min: 0 });
    return this.outputLinear(hRelu);
  }
}

/** The seed's sizes (64 x 1000 -> 100 -> 10) and its SGD with momentum; forward is dynamic (runs eagerly). */
export const modelSpec: ModelSpec<DynamicNet> = {
  name: 'dynamic-net',
  create: () => new DynamicNet(1000, 100, 10),
  inputs: [{ shape: [64, 1000], dtype: 'float32' }],
  target: { shape: [64, 10], dtype: 'float32' },
  loss: 'mse-sum',
  optim: { name: 'sgd', lr: 1e-4, momentum: 0.9 },
  data: 'random',
};
