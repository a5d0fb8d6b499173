// MyReLU (seed: "PyTorch: Defining new autograd functions").
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';

export class MyReLU extends kiln.autograd.Function {
  static override forward(ctx: kiln.autograd.Context, input: Tensor): Tensor {
    ctx.saveForBackward(input);
    return input.clamp({ min: 0 });
  }
  static override backward(ctx: kiln.autograd.Context, gradOutput: Tensor): Tensor {
    const [input] = ctx.savedTensors;
    const gradInput = gradOutput.clone();
    gradInput.maskedFill_(input.lt(0), 0);
    return gradInput;
  }
}
