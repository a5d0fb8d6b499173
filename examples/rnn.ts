// Seed (j): the RNN of seed 003, a Linear reused over 5 time steps, the losses summed before one
// backward, trained with SGD (API.md §7).
import * as kiln from 'kiln';
import { nn, optim, type Tensor } from 'kiln';
import { RNN } from '../models/rnn.js';
import { isMain } from './is-main.js';

/** The summed loss over `timesteps` steps of the same batch, and each step's output. */
export function unroll(rnn: RNN, batch: Tensor, hidden0: Tensor, target: Tensor, timesteps: number) {
  const lossFn = new nn.MSELoss();
  let hidden = hidden0;
  let loss = kiln.zeros([]);
  const outputs: Tensor[] = [];
  const perStep: Tensor[] = [];
  for (let t = 0; t < timesteps; t++) {
    const [h, output] = rnn(batch, hidden);
    hidden = h;
    const stepLoss = lossFn(output, target);
    loss = loss.add(stepLoss);
    outputs.push(output);
    perStep.push(stepLoss);
  }
  return { loss, outputs, perStep };
}

export async function trainRNN(rnn: RNN, batch: Tensor, hidden0: Tensor, target: Tensor, timesteps: number, lr: number, steps: number, onStep: (t: number, loss: number) => void) {
  const optimizer = new optim.SGD(rnn.parameters(), { lr });
  for (let t = 0; t < steps; t++) {
    const { loss } = unroll(rnn, batch, hidden0, target, timesteps);
    optimizer.zeroGrad();
    loss.backward();
    onStep(t, await loss.item());
    optimizer.step();
  }
}

if (isMain(import.meta.url)) {
  kiln.manualSeed(0);
  const rnn = new RNN(50, 20, 10);
  const batchSize = 10;
  const TIMESTEPS = 5;
  // Create some fake data
  const batch = kiln.randn(batchSize, 50);
  const hidden = kiln.zeros(batchSize, 20);
  const target = kiln.zeros(batchSize, 10);
  await trainRNN(rnn, batch, hidden, target, TIMESTEPS, 0.01, 20, (t, loss) => console.log(t, loss));
}
