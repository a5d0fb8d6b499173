// TwoLayerNet (seed: "PyTorch: Custom nn Modules"): linear, clamp(min=0), linear.
import { nn, type Tensor } from 'kiln';

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
