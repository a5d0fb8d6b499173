// The backward pass: walk the graph from the roots in topological order, sum the gradients
// arriving at each node, run its tensor hooks, apply its VJP, and hand the results to its inputs'
// nodes. Leaves accumulate into `.grad`; `autograd.grad` captures gradients instead.
import { fmtShape, shapesEqual } from '../../ir/index.js';
import { full } from '../creation.js';
import { add } from '../ops/elementwise.js';
import { clone } from '../ops/shape.js';
import { keep, type Tensor } from '../tensor.js';
import { enableGrad, noGrad } from './grad-mode.js';
import { AccumulateGrad, addHook, type Node, type TensorHook } from './node.js';
import { accumulatorOf, gradEdge, OpNode } from './op-node.js';
import { openTemporaryScopes, type TemporaryScope } from '../backend.js';

export interface BackwardOptions {
  retainGraph?: boolean;
  createGraph?: boolean;
  /** Accumulate only into these leaves' `.grad`. */
  inputs?: Tensor[];
}

function rootGradients(roots: readonly Tensor[], grads: readonly (Tensor | null | undefined)[] | undefined): Tensor[] {
  return roots.map((r, i) => {
    const g = grads?.[i];
    if (g) {
      if (!shapesEqual(g.shape, r.shape)) {
        throw new Error(`backward: the gradient has shape ${fmtShape(g.shape)} but the output has shape ${fmtShape(r.shape)}`);
      }
      return g;
    }
    if (r.numel() !== 1) {
      throw new Error(`backward: grad can be implicitly created only for scalar outputs, but this output has shape ${fmtShape(r.shape)}; pass a gradient of that shape`);
    }
    return full(r.shape, 1, { dtype: r.dtype, device: r.device });
  });
}

function rootNodes(roots: readonly Tensor[]): Node[] {
  return roots.map((r, i) => {
    const n = gradEdge(r);
    if (!n) throw new Error(`backward: element ${i} of the outputs does not require grad and has no gradFn (was it computed inside noGrad, or from tensors without requiresGrad?)`);
    return n;
  });
}

interface RunOptions {
  retainGraph: boolean;
  createGraph: boolean;
  /** autograd.grad: capture the gradients reaching these nodes, and touch no `.grad`. */
  capture?: Map<Node, Tensor | null>;
  /** backward(inputs): only these leaves accumulate. */
  onlyLeaves?: Set<Node>;
}

function run(roots: Node[], rootGrads: Tensor[], opts: RunOptions): void {
  const useful = usefulNodes(roots, opts.capture);
  // Count, for every reachable node, how many edges lead into it.
  const deps = new Map<Node, number>();
  const seen = new Set<Node>(roots);
  // The same output listed twice is one node: walk it once, or its inputs would wait forever.
  const stack = [...seen];
  while (stack.length) {
    const n = stack.pop()!;
    for (const m of n.next) {
      if (!m || !useful(m)) continue;
      deps.set(m, (deps.get(m) ?? 0) + 1);
      if (!seen.has(m)) { seen.add(m); stack.push(m); }
    }
  }
  // The gradients this pass computes are its own temporaries (the backends may keep them where their
  // kernels work in place, and free them when it ends) unless something outside the engine can
  // take hold of one: a hook, retainGrad, a custom Function's backward, autograd.grad's capture, a
  // graph of gradients (createGraph). What `.grad` keeps is made outside the scope. (Only eager
  // passes: a traced one, compileTrainStep's, makes no storages and must capture none as constants.)
  const scope: TemporaryScope | undefined = !opts.createGraph && !opts.capture && rootGrads.every((g) => g._view !== undefined) &&
    [...seen].every((n) => (n instanceof OpNode || n instanceof AccumulateGrad) && n.tensorHooks.size === 0 && n.retained.length === 0)
    ? openTemporaryScopes() : undefined;
  try {
    propagate(roots, rootGrads, opts, useful, deps, scope);
  } finally {
    scope?.close();
  }
}

/** run's pass over the graph: each node's summed gradient through its VJP into its inputs' nodes, in dependency order. */
function propagate(roots: Node[], rootGrads: Tensor[], opts: RunOptions, useful: (n: Node) => boolean, deps: Map<Node, number>, scope: TemporaryScope | undefined): void {
  const keeping = <R>(fn: () => R): R => (scope ? scope.pause(fn) : fn());
  const buffers = new Map<Node, Tensor>();
  const accumulate = (n: Node, g: Tensor) => {
    const prev = buffers.get(n);
    buffers.set(n, prev ? add(prev, g) : g);
  };
  roots.forEach((n, i) => accumulate(n, rootGrads[i]));
  const ready = [...new Set(roots)].filter((n) => !deps.get(n));
  const mode = opts.createGraph ? enableGrad : noGrad;
  while (ready.length) {
    const n = ready.pop()!;
    let g = buffers.get(n);
    buffers.delete(n);
    let inputGrads: (Tensor | null)[] = [];
    if (g) {
      for (const hook of n.tensorHooks.values()) g = (mode(() => hook(g!)) as Tensor | void) ?? g;
      for (const t of n.retained) storeGrad(t, g, opts.createGraph);
      if (opts.capture?.has(n)) opts.capture.set(n, g);
      if (n instanceof AccumulateGrad) {
        if (!opts.capture && (!opts.onlyLeaves || opts.onlyLeaves.has(n))) keeping(() => storeGrad(n.variable, g!, opts.createGraph));
      } else {
        const grad = g;
        inputGrads = mode(() => n.apply(grad));
        if (!opts.retainGraph) n.release();
      }
    }
    n.next.forEach((m, i) => {
      if (!m || !useful(m)) return;
      const gi = inputGrads[i];
      if (gi) mode(() => accumulate(m, gi));
      const left = deps.get(m)! - 1;
      deps.set(m, left);
      if (left === 0) ready.push(m);
    });
  }
}

/** With a capture set, only nodes from which a captured node can be reached need to run. */
function usefulNodes(roots: Node[], capture: Map<Node, Tensor | null> | undefined): (n: Node) => boolean {
  if (!capture) return () => true;
  const memo = new Map<Node, boolean>();
  const reaches = (n: Node): boolean => {
    const known = memo.get(n);
    if (known !== undefined) return known;
    memo.set(n, false);
    const r = capture.has(n) || n.next.some((m) => m !== null && reaches(m));
    memo.set(n, r);
    return r;
  };
  roots.forEach(reaches);
  return (n) => memo.get(n) ?? reaches(n);
}

/** Gradient tensors the engine created for `.grad`: zeroGrad may release their device memory. */
const engineGrads = new WeakSet<Tensor>();

/** Drops a `.grad` the engine made, releasing its device memory now (WebGPU; a no-op on the CPU). */
export function releaseGrad(t: Tensor): void {
  const g = t.grad;
  t.grad = null;
  if (g && engineGrads.has(g)) g.dispose();
}

/** `.grad` accumulation: the first gradient is copied (so no two tensors share it), later ones are added in place. */
function storeGrad(t: Tensor, g: Tensor, createGraph: boolean): void {
  if (!t.grad) {
    t.grad = createGraph ? g : noGrad(() => clone(g)).detach();
    engineGrads.add(t.grad);
    keep(t.grad);
  }
  else if (createGraph) t.grad = add(t.grad, g);
  else noGrad(() => t.grad!.add_(g));
}

export function backward(roots: Tensor[], grads: (Tensor | null | undefined)[] | undefined, opts: BackwardOptions = {}): void {
  const nodes = rootNodes(roots);
  const rootGrads = rootGradients(roots, grads);
  const onlyLeaves = opts.inputs ? new Set<Node>(opts.inputs.map(accumulatorOf)) : undefined;
  run(nodes, rootGrads, { retainGraph: opts.retainGraph ?? opts.createGraph ?? false, createGraph: opts.createGraph ?? false, onlyLeaves });
}

export interface GradOptions {
  gradOutputs?: (Tensor | null)[];
  retainGraph?: boolean;
  createGraph?: boolean;
  /** Return null for an input the outputs do not depend on instead of raising. */
  allowUnused?: boolean;
}

/** Gradients of `outputs` with respect to `inputs`, without touching any `.grad` (torch.autograd.grad). */
export function grad(outputs: Tensor | Tensor[], inputs: Tensor | Tensor[], opts: GradOptions = {}): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const ins = Array.isArray(inputs) ? inputs : [inputs];
  const capture = new Map<Node, Tensor | null>();
  const inputNodes = ins.map((t, i) => {
    const n = gradEdge(t);
    if (!n) throw new Error(`autograd.grad: input ${i} does not require grad`);
    capture.set(n, null);
    return n;
  });
  run(rootNodes(outs), rootGradients(outs, opts.gradOutputs), {
    retainGraph: opts.retainGraph ?? opts.createGraph ?? false,
    createGraph: opts.createGraph ?? false,
    capture,
  });
  return inputNodes.map((n, i) => {
    const g = capture.get(n) ?? null;
    if (!g && !opts.allowUnused) {
      throw new Error(`autograd.grad: input ${i} was not used to compute the outputs; pass { allowUnused: true } to get null for it`);
    }
    return g;
  });
}

export function registerTensorHook(t: Tensor, hook: TensorHook): { remove(): void } {
  const node = gradEdge(t);
  if (!node) throw new Error("registerHook: cannot register a hook on a tensor that doesn't require grad");
  return addHook(node, hook);
}

export function retainGrad(t: Tensor): void {
  if (!t.requiresGrad) throw new Error("retainGrad: can't retain the gradient of a tensor that doesn't require grad");
  if (t.gradFn && !t.gradFn.retained.includes(t)) t.gradFn.retained.push(t);
  t._retainsGrad = true;
}
