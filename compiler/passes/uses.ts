// Who uses each value of a graph (nodes by index; outputs and updates count as uses that keep a value alive).
import type { Graph, Node } from '../../ir/index.js';

export interface Uses {
  /** Node indices using each value. */
  readonly users: Map<number, number[]>;
  /** Values that must exist after the graph runs (outputs, update values). */
  readonly escaping: Set<number>;
}

export function usesOf(g: Graph): Uses {
  const users = new Map<number, number[]>();
  g.nodes.forEach((n, i) => {
    for (const v of n.inputs) {
      const list = users.get(v) ?? [];
      if (!list.includes(i)) list.push(i);
      users.set(v, list);
    }
  });
  const escaping = new Set<number>([...g.outputs, ...g.updates.map((u) => u.value)]);
  return { users, escaping };
}

/** Is node `user` the one and only reader of value `v` (and `v` not kept after the graph)? */
export function soleUser(g: Graph, uses: Uses, v: number, user: Node): boolean {
  const list = uses.users.get(v) ?? [];
  return !uses.escaping.has(v) && list.length === 1 && g.nodes[list[0]] === user;
}

/** Rewrites every reference to value `from` into `to` (inputs, outputs, updates). */
export function replaceAllUses(g: Graph, from: number, to: number): void {
  g.nodes = g.nodes.map((n) => (n.inputs.includes(from) ? { ...n, inputs: n.inputs.map((i) => (i === from ? to : i)) } : n));
  g.outputs = g.outputs.map((o) => (o === from ? to : o));
  g.updates = g.updates.map((u) => (u.value === from ? { ...u, value: to } : u));
}
