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

/**
 * (A @ B)^T = B^T @ A^T: a transposed product is computed as the product of the transposed
 * operands (free views; the matmul kernel packs any strides), so the result is contiguous and the
 * kernels reading it (a weight update, the copy into `.grad`) run over plain memory.
 */
function transposeProducts(g: Graph): void {
  const producer = new Map(g.nodes.map((n, i) => [n.output, i]));
  const uses = new Map<number, number>();
  for (const n of g.nodes) for (const v of n.inputs) uses.set(v, (uses.get(v) ?? 0) + 1);
  for (const v of [...g.outputs, ...g.updates.map((u) => u.value)]) uses.set(v, (uses.get(v) ?? 0) + 1);
  const out: typeof g.nodes = [];
  for (const n of g.nodes) {
    const perm = (n.attrs as { perm?: number[] }).perm;
    const mi = n.op === 'permute' ? producer.get(n.inputs[0]) : undefined;
    const mm = mi === undefined ? undefined : g.nodes[mi];
    const r = perm?.length ?? 0;
    const swapsLastTwo = !!perm && r >= 2 && perm[r - 1] === r - 2 && perm[r - 2] === r - 1 && perm.slice(0, -2).every((p, i) => p === i);
    const [a, b] = mm?.inputs ?? [];
    if (!mm || mm.op !== 'matmul' || mm.expr || !swapsLastTwo || uses.get(mm.output) !== 1 ||
      g.value(a).shape.length !== r || g.value(b).shape.length !== r) {
      out.push(n);
      continue;
    }
    const t = (v: number) => {
      const { shape, dtype } = g.value(v);
      const p = [...shape.keys()];
      [p[r - 1], p[r - 2]] = [p[r - 2], p[r - 1]];
      const tv = g.newValue(p.map((i) => shape[i]), dtype);
      out.push({ op: 'permute', inputs: [v], attrs: { perm: p }, output: tv.id });
      return tv.id;
    };
    const bt = t(b);
    const at = t(a);
    out.push({ op: 'matmul', inputs: [bt, at], attrs: {}, output: n.output });
  }
  g.nodes = out;
}

export function simplify(g: Graph): Graph {
  transposeProducts(g);
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
