// Custom autograd functions (torch.autograd.Function): a subclass gives static `forward` and
// `backward`; `apply` runs forward without recording and attaches a node that calls backward.
import { fmtShape, shapesEqual } from '../../ir/index.js';
import { Tensor } from '../tensor.js';
import { isGradEnabled, noGrad } from './grad-mode.js';
import { Node, SavedTensor } from './node.js';
import { gradEdge } from './op-node.js';

export class Context {
  /** Per tensor argument of forward: does it need a gradient? */
  needsInputGrad: boolean[] = [];
  private saved: SavedTensor[] = [];
  private owner = 'Function';
  [key: string]: unknown;

  saveForBackward(...tensors: Tensor[]): void {
    this.saved = tensors.map((t, i) => new SavedTensor(t, this.owner, `saved tensor ${i}`));
  }
  get savedTensors(): Tensor[] {
    return this.saved.map((s) => s.unpack());
  }
  /** @internal */
  _setOwner(name: string): void {
    this.owner = name;
  }
  /** @internal */
  _release(): void {
    this.saved.forEach((s) => s.free());
  }
}

type FunctionClass = {
  name: string;
  forward(ctx: Context, ...args: any[]): Tensor;
  backward(ctx: Context, ...grads: Tensor[]): Tensor | null | (Tensor | null)[];
};

class FunctionNode extends Node {
  readonly name: string;
  readonly next: (Node | null)[];
  constructor(private readonly fn: FunctionClass, private readonly ctx: Context, private readonly inputs: Tensor[]) {
    super();
    this.name = `${fn.name}Backward`;
    this.next = inputs.map(gradEdge);
  }
  apply(grad: Tensor): (Tensor | null)[] {
    const result = this.fn.backward(this.ctx, grad);
    const grads = Array.isArray(result) ? result : [result];
    return this.inputs.map((t, i) => {
      const g = grads[i] ?? null;
      if (g && !shapesEqual(g.shape, t.shape)) {
        throw new Error(`${this.fn.name}.backward returned a gradient of shape ${fmtShape(g.shape)} for input ${i} of shape ${fmtShape(t.shape)}`);
      }
      return g;
    });
  }
  override release(): void {
    this.ctx._release();
  }
}

export class Function {
  static forward(_ctx: Context, ..._args: any[]): Tensor {
    throw new Error(`${this.name}: subclasses of autograd.Function implement static forward(ctx, ...inputs)`);
  }
  static backward(_ctx: Context, ..._grads: Tensor[]): Tensor | null | (Tensor | null)[] {
    throw new Error(`${this.name}: subclasses of autograd.Function implement static backward(ctx, gradOutput)`);
  }
  /** Runs `forward` and, when a tensor argument requires grad, records `backward` for it. Gradients are matched to the tensor arguments in order. */
  static apply(this: FunctionClass, ...args: unknown[]): Tensor {
    const ctx = new Context();
    ctx._setOwner(`${this.name}Backward`);
    const tensors = args.filter((a): a is Tensor => a instanceof Tensor);
    ctx.needsInputGrad = tensors.map((t) => t.requiresGrad);
    const out = noGrad(() => this.forward(ctx, ...args));
    if (!(out instanceof Tensor)) throw new TypeError(`${this.name}.forward must return a Tensor`);
    if (!isGradEnabled() || !tensors.some((t) => t.requiresGrad)) return out;
    // A fresh tensor object, so forward may return an input as-is without rewiring that input's history.
    const result = new Tensor(out.shape, out.dtype, out.device, out._view, out._base);
    result.gradFn = new FunctionNode(this, ctx, tensors);
    result._requiresGrad = true;
    return result;
  }
}
