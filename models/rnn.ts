// The seed's RNN (003): hidden = i2h(cat(data, lastHidden)) (no nonlinearity), output = h2o(hidden).
import * as kiln from 'kiln';
import { nn, type Tensor } from 'kiln';

export class RNN extends nn.Module {
  i2h: nn.Linear;
  h2o: nn.Linear;
  constructor(dataSize: number, readonly hiddenSize: number, outputSize: number) {
    super();
    this.i2h = new nn.Linear(dataSize + hiddenSize, hiddenSize);
    this.h2o = new nn.Linear(hiddenSize, outputSize);
  }
  override forward(data: Tensor, lastHidden: Tensor): [Tensor, Tensor] {
    const input = kiln.cat([data, lastHidden], 1);
    const hidden = this.i2h(input);
    const output = this.h2o(hidden);
    return [hidden, output];
  }
}
