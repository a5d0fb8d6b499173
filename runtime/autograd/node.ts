// Nodes of the autograd graph. Each computed tensor that requires grad points at the node that
// made it (`gradFn`); a node points at the nodes of its inputs (`next`). Leaves get an
// AccumulateGrad node that adds into `.grad`.
import type { Tensor } from '../tensor.js';

export type TensorHook = (grad: Tensor) => Tensor | void;

export abstract class Node {
  abstract readonly name: string;
  /** Per input: the node its gradient goes to, or null when that input needs none. */
  abstract readonly next: readonly (Node | null)[];
  /** Hooks registered on the tensor this node produced (run on its summed gradient, in order). */
  readonly tensorHooks = new Map<number, TensorHook>();
  /** Non-leaf tensors that asked to keep their gradient (`retainGrad()`). */
  readonly retained: Tensor[] = [];
  /** Gradients of the inputs, given the gradient of the output. */
  abstract apply(grad: Tensor): (Tensor | null)[];
  /** Drops saved tensors after a backward pass without `retainGraph`. */
  release(): void {}
}

let nextHookId = 0;
export function addHook(node: Node, hook: TensorHook): { remove(): void } {
  const id = nextHookId++;
  node.tensorHooks.set(id, hook);
  return { remove: () => void node.tensorHooks.delete(id) };
}

/** A tensor kept for backward, with the storage version it had then. */
export class SavedTensor {
  private tensor: Tensor | undefined;
  private readonly version: number;
  /** Under tracing an in-place op rebinds a symbolic tensor's value instead of bumping a version. */
  private readonly symbol: unknown;
  constructor(tensor: Tensor, private readonly owner: string, private readonly role: string) {
    this.tensor = tensor;
    this.version = tensor._view?.storage.version ?? 0;
    this.symbol = tensor._symbol;
  }
  unpack(): Tensor {
    const t = this.tensor;
    if (!t) {
      throw new Error(
        `${this.owner}: trying to backward through the graph a second time (or to read saved tensors after they were freed). ` +
          'Saved values are freed by backward() and autograd.grad(); pass { retainGraph: true } to the first call to keep them.',
      );
    }
    const now = t._view?.storage.version ?? 0;
    if (now !== this.version || t._symbol !== this.symbol) {
      throw new Error(
        `one of the variables needed for gradient computation has been modified by an in-place operation: ` +
          `the ${t.dtype} tensor of shape [${t.shape.join(', ')}] saved as ${this.role} of ${this.owner} is at version ${now}; ` +
          `expected version ${this.version} instead. Clone it before modifying it in place.`,
      );
    }
    return t;
  }
  free(): void {
    this.tensor = undefined;
  }
}

/** The node of a leaf tensor: adds the incoming gradient into `variable.grad`. */
export class AccumulateGrad extends Node {
  readonly name = 'AccumulateGrad';
  readonly next: readonly (Node | null)[] = [];
  constructor(readonly variable: Tensor) {
    super();
  }
  apply(): (Tensor | null)[] {
    throw new Error('AccumulateGrad is applied by the engine');
  }
}
