// A reference evaluator for graphs: runs each node with the eager interpreter, one op at a time.
// The tests compare the planned, fused executor against it.
import { OPS, type Graph } from '../ir/index.js';
import { noGrad } from '../runtime/autograd/grad-mode.js';
import { tensor } from '../runtime/creation.js';
import { eager } from '../runtime/eager.js';
import { Executable } from '../runtime/executor.js';
import type { Tensor } from '../runtime/tensor.js';
import { buildPlan } from './plan.js';

export function evaluateGraph(g: Graph, inputs: readonly Tensor[]): Map<number, Tensor> {
  const env = new Map<number, Tensor>();
  g.inputs.forEach((inp, k) => env.set(inp.value, inputs[k]));
  for (const c of g.constants) {
    const v = g.value(c.value);
    env.set(c.value, tensor(Array.from(c.data), { dtype: v.dtype }).reshape([...v.shape]));
  }
  noGrad(() => {
    for (const n of g.nodes) {
      if (n.expr) throw new Error('evaluateGraph runs unfused graphs only');
      const attrs = OPS[n.op].arity === 0 ? { ...(n.attrs as object), device: 'cpu' } : n.attrs;
      env.set(n.output, eager.bind(OPS[n.op], n.inputs.map((i) => env.get(i)!), attrs));
    }
  });
  return env;
}

/** Runs the graph both ways and returns the first output that differs by more than `tol` (relative to its max), or undefined. */
export function firstMismatch(g: Graph, inputs: readonly Tensor[], tol = 1e-9): { output: number; err: number } | undefined {
  const ref = evaluateGraph(g, inputs);
  const got = new Executable(buildPlan(g, 'cpu')).run(inputs);
  for (let k = 0; k < g.outputs.length; k++) {
    const r = ref.get(g.outputs[k])!.double().dataSync();
    const o = got[k].double().dataSync();
    let err = 0, max = 0;
    for (let i = 0; i < r.length; i++) { err = Math.max(err, Math.abs(r[i] - o[i])); max = Math.max(max, Math.abs(r[i])); }
    if (err > tol * Math.max(1, max)) return { output: k, err };
  }
  return undefined;
}
