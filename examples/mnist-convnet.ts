// Seed (i): the MNIST ConvNet, with a forward hook and a full backward hook on conv2 printing what
// the seed prints, a CrossEntropyLoss on an integer class target, and one SGD step (API.md §7).
import * as kiln from 'kiln';
import { nn, optim, type Tensor } from 'kiln';
import { MNISTConvNet } from '../models/mnist-convnet.js';
import { isMain } from './is-main.js';

export function printNorm(self: nn.Module, input: unknown[], output: Tensor): void {
  // input is an array of the module's inputs; output is a Tensor.
  console.log(`Inside ${self.constructor.name} forward`);
  console.log('');
  console.log('input size:', (input[0] as Tensor).size());
  console.log('output size:', output.size());
  console.log('output norm:', output.norm().itemSync());
}

export function printGradNorm(self: nn.Module, gradInput: (Tensor | null)[], gradOutput: (Tensor | null)[]): void {
  console.log(`Inside ${self.constructor.name} backward`);
  console.log(`Inside class: ${self.constructor.name}`);
  console.log('');
  console.log('grad_input size:', gradInput[0]?.size());
  console.log('grad_output size:', gradOutput[0]?.size());
  console.log('grad_input norm:', gradInput[0]?.norm().itemSync());
}

/** One forward/backward with the hooks, then one SGD step and a second forward; returns both losses. */
export async function convNetStep(net: MNISTConvNet, input: Tensor, target: Tensor, lr: number) {
  const lossFn = new nn.CrossEntropyLoss();
  const out = net(input);
  const err = lossFn(out, target);
  err.backward();
  const optimizer = new optim.SGD(net.parameters(), { lr });
  optimizer.step();
  const after = lossFn(net(input), target);
  return { out, loss: await err.item(), lossAfterStep: await after.item() };
}

if (isMain(import.meta.url)) {
  kiln.manualSeed(0);
  const net = new MNISTConvNet();
  console.log(net.toString());
  const fwd = net.conv2.registerForwardHook(printNorm);
  const bwd = net.conv2.registerFullBackwardHook(printGradNorm);
  const input = kiln.randn(1, 1, 28, 28);
  const target = kiln.tensor([3], { dtype: 'int32' });
  const { loss, lossAfterStep } = await convNetStep(net, input, target, 0.01);
  fwd.remove();
  bwd.remove();
  console.log('loss', loss, 'after one SGD step', lossAfterStep);
}
