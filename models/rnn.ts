// The seed's RNN (003): hidden = i2h(cat(data, lastHidden)) (no nonlinearity), output = h2o(hidden).
import * as kiln from 'kiln';
import { nn, type Tensor } from 'kiln';
import type { ModelSpec } from 'kiln';

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

/**
 * The seed's training loss: `timesteps` steps of `rnn` over the same data from hidden state h,
 * each step's output scored by `loss` (MSE) against the target, summed.
 */
export function unrolledLoss(rnn: RNN, timesteps: number, loss: (output: Tensor, target: Tensor) => Tensor = new nn.MSELoss()): (data: Tensor, h: Tensor, target: Tensor) => Tensor {
  return (data, h, target) => {
    let hidden = h;
    let total = kiln.zeros([]);
    for (let k = 0; k < timesteps; k++) {
      const [next, output] = rnn(data, hidden);
      hidden = next;
      total = total.add(loss(output, target));
    }
    return total;
  };
}

/**
 * The seed's sizes: a batch of 10, 50 data features, 20 hidden units, 10 outputs. `inputs` are
 * forward's two arguments in order (data, then the last hidden state: the CLI feeds random values
 * for both). forward returns `[hidden, output]`, so the loss is given as a function rather than the
 * name 'mse': it is the mean squared error of the *output* (the second element) against the target;
 * the new hidden state is not trained against anything. The CLI passes the whole result as
 * `output` to a function loss, as it does to any loss, and needs no special case for this model.
 */
export const modelSpec: ModelSpec<RNN> = {
  name: 'rnn',
  create: () => new RNN(50, 20, 10),
  inputs: [
    { shape: [10, 50], dtype: 'float32' },
    { shape: [10, 20], dtype: 'float32' },
  ],
  target: { shape: [10, 10], dtype: 'float32' },
  loss: function mse(output: [Tensor, Tensor], target: Tensor): Tensor {
    return nn.functional.mseLoss(output[1], target);
  },
  optim: { name: 'sgd', lr: 0.01 },
  data: 'random',
};
