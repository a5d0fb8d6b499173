// Layout rewrites for convolution, run before fusion. Conv computes its whole batch as one GEMM
// whose product is [O, N*L], and its NCHW output is a permuted view of that product
// (runtime/nn/functional/conv.ts). Two rewrites keep elementwise work in the product's layout:
//
// A. `ew(permute(reshape(x)), scalars...)` -> `permute(reshape(ew(x, scalars...)))`: the op after a
//    conv (its ReLU) runs over the product itself, so fusion can make it the GEMM's epilogue
//    (rule 5 of fuse.ts) instead of a pass that reads the product transposed.
// B. `reshape(permute(ew(xs...)))` where the reshape cannot view the permuted result ->
//    `reshape(ew(permute(xs)...))`: the gradient reaching the conv (the ReLU's mask times the
//    pooling's gradient) is computed straight into the [O, N*L] layout the GEMMs read, instead of
//    being written in NCHW and then copied.
//
// Both only move a permute across an elementwise op (the same arithmetic, element for element),
// and only where the moved values have no other user.
import { contiguousStrides, numel, OPS, type Graph, type Node } from '../../ir/index.js';
import { viewStrides } from '../../ir/ops/movement.js';
import { soleUser, usesOf } from './uses.js';

// Pure elementwise primitives only: an impure op's values must stay in the order it draws them
// (defensive: today's only impure op, random, is a routine).
const isElementwise = (n: Node) => n.op !== 'fused' && !n.expr && OPS[n.op]?.lowering.kind === 'elementwise' && !OPS[n.op].impure;

export function convLayouts(g: Graph): Graph {
  sinkIntoElementwise(g);
  hoistOutOfElementwise(g);
  return g;
}

/** A node's replacement: the nodes to put in its place. */
type Rewrites = Map<Node, Node[]>;

function apply(g: Graph, rewrites: Rewrites, removed: Set<Node>): void {
  g.nodes = g.nodes.flatMap((n) => rewrites.get(n) ?? (removed.has(n) ? [] : [n]));
}

/** What both rewrites start from: who uses and who produces each value, and empty edits. */
function rewriteSetup(g: Graph) {
  const uses = usesOf(g);
  return {
    escaping: uses.escaping,
    producer: new Map<number, Node>(g.nodes.map((n) => [n.output, n])),
    only: (v: number, user: Node) => soleUser(g, uses, v, user),
    rewrites: new Map() as Rewrites,
    removed: new Set<Node>(),
  };
}

/** Rewrite A. */
function sinkIntoElementwise(g: Graph): void {
  const { escaping, producer, only, rewrites, removed } = rewriteSetup(g);
  for (const e of g.nodes) {
    if (!isElementwise(e) || escaping.has(e.output)) continue;
    const viewed = e.inputs.filter((v) => numel(g.value(v).shape) !== 1);
    if (new Set(viewed).size !== 1) continue;
    const p = producer.get(viewed[0]);
    const r = p?.op === 'permute' ? producer.get(p.inputs[0]) : undefined;
    const x = r?.op === 'reshape' ? producer.get(r.inputs[0]) : undefined;
    if (!p || !r || !x || removed.has(p) || removed.has(r) || !only(p.output, e) || !only(r.output, p)) continue;
    // Only where the product of a GEMM (or its bias add) is what the permute exposes.
    if (x.op !== 'matmul' && !(isElementwise(x) && x.inputs.some((v) => producer.get(v)?.op === 'matmul'))) continue;
    const out = g.value(e.output);
    const inner = g.value(r.inputs[0]);
    const pre: Node[] = [];
    const inputs = e.inputs.map((v) => {
      if (v === p.output) return r.inputs[0];
      if (g.value(v).shape.length === 0) return v;
      // A one-element operand broadcasts against any shape once it has rank 0.
      const s = g.newValue([], g.value(v).dtype);
      pre.push({ op: 'reshape', inputs: [v], attrs: { shape: [] }, output: s.id });
      return s.id;
    });
    const y = g.newValue(inner.shape, out.dtype);
    const yr = g.newValue(g.value(r.output).shape, out.dtype);
    rewrites.set(e, [
      ...pre,
      { ...e, inputs, output: y.id },
      { op: 'reshape', inputs: [y.id], attrs: r.attrs, output: yr.id },
      { op: 'permute', inputs: [yr.id], attrs: p.attrs, output: e.output },
    ]);
    removed.add(p).add(r);
  }
  apply(g, rewrites, removed);
}

/** Rewrite B. */
function hoistOutOfElementwise(g: Graph): void {
  const { producer, only, rewrites, removed } = rewriteSetup(g);
  for (const r of g.nodes) {
    if (r.op !== 'reshape') continue;
    const p = producer.get(r.inputs[0]);
    const e = p?.op === 'permute' ? producer.get(p.inputs[0]) : undefined;
    if (!p || !e || !isElementwise(e) || rewrites.has(e) || !only(p.output, r) || !only(e.output, p)) continue;
    const perm = (p.attrs as { perm: readonly number[] }).perm;
    const eShape = g.value(e.output).shape;
    const own = contiguousStrides(eShape);
    if (viewStrides(g.value(p.output).shape, perm.map((d) => own[d]), g.value(r.output).shape)) continue; // already a view
    const pre: Node[] = [];
    const moved = new Map<number, number>();
    // Operand v of `user`, permuted: an elementwise producer used only there is itself computed
    // permuted (so `where(gt(a, 0), g, 0)` stays one kernel); anything else gets a permuted view.
    const permuted = (v: number, user: Node): number => {
      const val = g.value(v);
      if (numel(val.shape) === 1) return v;
      const known = moved.get(v);
      if (known !== undefined) return known;
      const q = producer.get(v);
      let t: number;
      if (q && q !== e && isElementwise(q) && only(v, user) && val.shape.join() === eShape.join()) {
        const inputs = q.inputs.map((x) => permuted(x, q));
        t = g.newValue(perm.map((d) => eShape[d]), val.dtype).id;
        pre.push({ ...q, inputs, output: t });
        removed.add(q);
      } else {
        let src = v;
        if (val.shape.length < eShape.length) {
          const full = [...new Array<number>(eShape.length - val.shape.length).fill(1), ...val.shape];
          src = g.newValue(full, val.dtype).id;
          pre.push({ op: 'reshape', inputs: [v], attrs: { shape: full }, output: src });
        }
        t = g.newValue(perm.map((d) => g.value(src).shape[d]), val.dtype).id;
        pre.push({ op: 'permute', inputs: [src], attrs: { perm }, output: t });
      }
      moved.set(v, t);
      return t;
    };
    const inputs = e.inputs.map((v) => permuted(v, e));
    rewrites.set(e, [...pre, { ...e, inputs, output: p.output }]);
    removed.add(p);
  }
  apply(g, rewrites, removed);
}
