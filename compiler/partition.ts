// Splitting a joint forward+backward graph (traced once, VJPs included) into the forward graph,
// run at call time, and the backward graph, run by autograd. Values the forward computes and the
// backward needs are the residuals: the forward returns them after its own outputs and the
// backward takes them as inputs (save everything; recomputing cheap chains is a later refinement).
import { Graph, type GraphInput, type Node } from '../ir/index.js';

export interface Partition {
  forward: Graph;
  backward: Graph;
  /** Values (of the joint graph) the forward returns after its outputs, in order. */
  residuals: number[];
  /** The joint graph's inputs the backward reads, after residuals and incoming gradients. */
  backwardInputs: GraphInput[];
}

function needed(nodes: readonly Node[], roots: readonly number[]): Set<number> {
  const producer = new Map(nodes.map((n, i) => [n.output, i]));
  const keep = new Set<number>();
  const stack = [...roots];
  while (stack.length) {
    const v = stack.pop()!;
    const i = producer.get(v);
    if (i === undefined || keep.has(i)) continue;
    keep.add(i);
    stack.push(...nodes[i].inputs);
  }
  return keep;
}

function subgraph(joint: Graph, inputs: GraphInput[], nodes: Node[], outputs: number[]): Graph {
  const g = new Graph();
  g.values.push(...joint.values);
  g.inputs.push(...inputs);
  const used = new Set<number>([...outputs, ...nodes.flatMap((n) => n.inputs)]);
  g.constants.push(...joint.constants.filter((c) => used.has(c.value)));
  g.nodes = nodes;
  g.outputs = outputs;
  return g;
}

/**
 * `forwardOutputs` and `gradOutputs` are values of `joint`; `gradInputs` are its inputs that carry
 * the incoming gradients of the forward outputs.
 */
export function partition(joint: Graph, forwardOutputs: number[], gradOutputs: number[], gradInputs: number[]): Partition {
  const gIn = new Set(gradInputs);
  const fwdNodes = needed(joint.nodes, [...forwardOutputs, ...joint.updates.map((u) => u.value)]);
  const bwdNodes = needed(joint.nodes, gradOutputs);
  const bwdOnly = [...bwdNodes].filter((i) => !fwdNodes.has(i)).sort((a, b) => a - b);
  const producedByFwd = new Set([...fwdNodes].map((i) => joint.nodes[i].output));
  const constants = new Set(joint.constants.map((c) => c.value));
  const residuals: number[] = [];
  const backwardInputs: GraphInput[] = [];
  const noteUse = (v: number) => {
    if (producedByFwd.has(v)) {
      if (!residuals.includes(v)) residuals.push(v);
    } else if (!constants.has(v) && !gIn.has(v) && !bwdOnly.some((i) => joint.nodes[i].output === v)) {
      const input = joint.inputs.find((i) => i.value === v)!;
      if (!backwardInputs.includes(input)) backwardInputs.push(input);
    }
  };
  for (const i of bwdOnly) joint.nodes[i].inputs.forEach(noteUse);
  gradOutputs.forEach(noteUse);
  const forwardInputs = joint.inputs.filter((i) => !gIn.has(i.value));
  const forward = subgraph(joint, forwardInputs, [...fwdNodes].sort((a, b) => a - b).map((i) => joint.nodes[i]), [...forwardOutputs, ...residuals]);
  forward.updates = joint.updates;
  const bwdInputList: GraphInput[] = [
    ...residuals.map((v, k) => ({ value: v, kind: 'arg' as const, name: `saved${k}` })),
    ...gradInputs.map((v) => joint.inputs.find((i) => i.value === v)!),
    ...backwardInputs,
  ];
  const backward = subgraph(joint, bwdInputList, bwdOnly.map((i) => joint.nodes[i]), gradOutputs);
  return { forward, backward, residuals, backwardInputs };
}
