// The autograd node of a compiled call: its backward runs the compiled backward plan. A call with
// several outputs gets one small node per output that hands its gradient to the shared node,
// which runs once all of them have reported (missing ones count as zeros).
import { Node } from '../runtime/autograd/node.js';
import { gradEdge } from '../runtime/autograd/op-node.js';
import { full, zeros } from '../runtime/creation.js';
import type { Tensor } from '../runtime/tensor.js';

type RunBackward = (gradsOfOutputs: Tensor[]) => Tensor[];

class CompiledBackward extends Node {
  readonly name = 'CompiledFunctionBackward';
  readonly next: (Node | null)[];
  readonly received: (Tensor | undefined)[];
  constructor(private readonly outputs: readonly Tensor[], inputs: readonly Tensor[], private readonly runBackward: RunBackward) {
    super();
    this.next = inputs.map(gradEdge);
    this.received = outputs.map(() => undefined);
  }
  apply(grad: Tensor): (Tensor | null)[] {
    if (this.outputs.length === 1) this.received[0] = grad;
    const grads = this.received.map((g, k) => g ?? zeros([...this.outputs[k].shape], { dtype: this.outputs[k].dtype, device: this.outputs[k].device }));
    this.received.fill(undefined);
    return this.runBackward(grads);
  }
}

/** Hands output k's gradient to the shared node, passing it a token so the engine schedules it. */
class OutputRelay extends Node {
  readonly name = 'CompiledOutputBackward';
  readonly next: Node[];
  constructor(private readonly shared: CompiledBackward, private readonly k: number) {
    super();
    this.next = [shared];
  }
  apply(grad: Tensor): Tensor[] {
    this.shared.received[this.k] = grad;
    return [full([], 0, { dtype: grad.dtype, device: grad.device })];
  }
}

export function attachBackward(outputs: Tensor[], inputs: Tensor[], runBackward: RunBackward): void {
  if (outputs.length === 0 || inputs.length === 0) return;
  const shared = new CompiledBackward(outputs, inputs, runBackward);
  outputs.forEach((o, k) => {
    o.gradFn = outputs.length === 1 ? shared : new OutputRelay(shared, k);
    o._requiresGrad = true;
  });
}

