// The autograd node of one primitive op: it keeps what the op's VJP rule reads (declared in the op
// table's `saves`) and runs that rule through ir/autodiff.ts, the same code symbolic
// differentiation uses.
import { inputGradients, type Meta, type OpDef, type VjpContext } from '../../ir/index.js';
import type { Tensor } from '../tensor.js';
import { tensorOps } from '../kops.js';
import { Node, SavedTensor, AccumulateGrad } from './node.js';

export function accumulatorOf(t: Tensor): AccumulateGrad {
  return (t._accumulator ??= new AccumulateGrad(t)) as AccumulateGrad;
}

/** Where the gradient of `t` goes: its producer, its accumulator, or nowhere. */
export function gradEdge(t: Tensor): Node | null {
  if (!t.requiresGrad) return null;
  return t.gradFn ?? accumulatorOf(t);
}

export function backwardName(op: string): string {
  return `${op[0].toUpperCase()}${op.slice(1)}Backward`;
}

export class OpNode extends Node {
  readonly name: string;
  readonly next: (Node | null)[];
  private readonly inputMetas: Meta[];
  private readonly outputMeta: Meta;
  private readonly savedInputs: (SavedTensor | undefined)[];
  private savedOutput: SavedTensor | undefined;

  constructor(private readonly op: OpDef, private readonly attrs: unknown, inputs: readonly Tensor[], output: Tensor) {
    super();
    this.name = backwardName(op.name);
    this.next = inputs.map(gradEdge);
    this.inputMetas = inputs.map((t) => ({ shape: t.shape, dtype: t.dtype }));
    this.outputMeta = { shape: output.shape, dtype: output.dtype };
    const want = op.saves?.inputs;
    this.savedInputs = inputs.map((t, i) =>
      want === 'all' || want?.includes(i) ? new SavedTensor(t, this.name, `input ${i}`) : undefined,
    );
    this.savedOutput = op.saves?.output ? new SavedTensor(output, this.name, 'its output') : undefined;
  }

  apply(grad: Tensor): (Tensor | null)[] {
    const ctx: VjpContext<Tensor, unknown> = {
      attrs: this.attrs,
      inputs: this.inputMetas,
      output: this.outputMeta,
      x: (i) => {
        const s = this.savedInputs[i];
        if (!s) throw new Error(`internal: the VJP of ${this.op.name} reads input ${i}, which its op table entry does not save`);
        return s.unpack();
      },
      out: () => {
        if (!this.savedOutput) throw new Error(`internal: the VJP of ${this.op.name} reads its output, which its op table entry does not save`);
        return this.savedOutput.unpack();
      },
    };
    return inputGradients(this.op, grad, ctx, tensorOps, this.next.map((n) => n !== null));
  }

  override release(): void {
    this.savedInputs.forEach((s) => s?.free());
    this.savedOutput?.free();
  }
}
