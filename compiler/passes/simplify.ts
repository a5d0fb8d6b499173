// Algebraic simplification: rewrites that remove work without changing a value.
import { OPS, shapesEqual, type Graph } from '../../ir/index.js';
import { replaceAllUses } from './uses.js';

/** The single value every element of a constant holds, if it holds one. */
function uniformConstant(g: Graph, id: number): number | undefined {
  const c = g.constants.find((k) => k.value === id);
  if (!c || c.data.length === 0) return undefined;
  const first = c.data[0];
  for (let i = 1; i < c.data.length; i++) if (c.data[i] !== first) return undefined;
  return first;
}

/** Values that are graph inputs or views of one (external memory the plan does not own). */
function externalValues(g: Graph): Set<number> {
  const ext = new Set(g.inputs.map((i) => i.value));
  for (const n of g.nodes) if (OPS[n.op]?.lowering.kind === 'view' && ext.has(n.inputs[0])) ext.add(n.output);
  return ext;
}

export function simplify(g: Graph): Graph {
  const external = externalValues(g);
  for (const n of [...g.nodes]) {
    const out = g.value(n.output);
    const same = (id: number) => shapesEqual(g.value(id).shape, out.shape) && g.value(id).dtype === out.dtype;
    const [a, b] = n.inputs;
    let replacement: number | undefined;
    // x + 0, x - 0, x * 1, x / 1, 0 + x, 1 * x: the identity, when it neither broadcasts nor casts x.
    if ((n.op === 'add' || n.op === 'sub') && uniformConstant(g, b) === 0 && same(a)) replacement = a;
    else if (n.op === 'add' && uniformConstant(g, a) === 0 && same(b)) replacement = b;
    else if ((n.op === 'mul' || n.op === 'div') && uniformConstant(g, b) === 1 && same(a)) replacement = a;
    else if (n.op === 'mul' && uniformConstant(g, a) === 1 && same(b)) replacement = b;
    // Movement ops that do not move: reshape/expand to the same shape, the identity permutation.
    else if ((n.op === 'reshape' || n.op === 'expand') && same(a)) replacement = a;
    else if (n.op === 'permute' && (n.attrs as { perm: number[] }).perm.every((p, i) => p === i)) replacement = a;
    // copy(x) is x in SSA form (the plan materialises layouts itself); copies of inputs stay, so an
    // update that overwrites an input never changes a value read after it.
    else if (n.op === 'copy' && !external.has(a)) replacement = a;
    if (replacement !== undefined) replaceAllUses(g, n.output, replacement);
  }
  return g;
}
