// Dead code elimination: drop nodes and constants that no output or update depends on.
import type { Graph } from '../../ir/index.js';

export function dce(g: Graph): Graph {
  const live = new Set<number>([...g.outputs, ...g.updates.map((u) => u.value)]);
  const kept: typeof g.nodes = [];
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (!live.has(n.output)) continue;
    kept.push(n);
    for (const v of n.inputs) live.add(v);
  }
  g.nodes = kept.reverse();
  const constants = g.constants.filter((c) => live.has(c.value));
  g.constants.splice(0, g.constants.length, ...constants);
  return g;
}
