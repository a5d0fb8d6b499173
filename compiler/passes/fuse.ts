// Elementwise fusion. The rules, each with its reason:
//
// 1. Elementwise ops fuse into the elementwise op that consumes them: one loop instead of several,
//    and no intermediate array written and read back.
// 2. A value joins its consumer's kernel only if every use of it is inside that kernel; a value
//    used by two kernels (or returned, or written back to a parameter) is materialised, so nothing
//    is computed twice across kernels.
// 3. A producer fuses only if it has as many elements as the kernel's output: fusing a value that
//    the consumer broadcasts would recompute it once per broadcast copy.
// 4. A reduction absorbs the elementwise kernel that produces its input (its prologue) when it is
//    that kernel's only user: `sum((a - b)^2)` reads a and b once and never writes the square.
// 5. Matmul absorbs the elementwise kernel that consumes its product (its epilogue: bias, ReLU,
//    residual add) when that kernel is the product's only user and has the product's shape and
//    dtype: the product is never stored and read back (the CPU's Wasm GEMMs apply the epilogue
//    to their registers as they store C, WebGPU's matmul kernel before its store), and a small
//    matmul needs no second kernel.
// 6. Otherwise routines (matmul, conv's unfold/fold, gather, ...) and reductions are kernel
//    boundaries, and movement ops stay views between kernels.
// 7. An exception to rule 2, applied first: a mask (a bool value) that one elementwise op computes
//    from a single full-size input (its other inputs broadcast) and that several elementwise
//    kernels or reductions use is recomputed in each of them. Every user then reads one full-size
//    array either way, and the mask is never written: ReLU's `x < 0`, read by the forward ReLU and
//    by the backward, costs no kernel of its own. Only masks: a shared number (a matmul's output
//    plus its bias) recomputed downstream would cost its matmul that epilogue.
//
// The pass before this one (conv-layout.ts) moves the permutes around a conv's GEMM so that its
// ReLU can be an epilogue and its gradient is computed in the layout the GEMMs read.
//
// A group becomes one 'fused' node whose expression is the members' scalar expressions composed
// (ir/expr.ts), so every backend runs it with its ordinary elementwise code generator.
import { contiguousStrides, E, numel, OPS, type Expr, type Graph, type Node } from '../../ir/index.js';
import { viewStrides } from '../../ir/ops/movement.js';
import { soleUser, usesOf } from './uses.js';

const isElementwise = (n: Node) => n.op === 'fused' || OPS[n.op]?.lowering.kind === 'elementwise';

export function fuse(g: Graph): Graph {
  duplicateSharedMasks(g);
  const { users, escaping } = usesOf(g);
  const producer = new Map<number, number>(g.nodes.map((n, i) => [n.output, i]));
  const group = new Array<number>(g.nodes.length).fill(-1); // node index -> index of its group's root
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (!isElementwise(n)) continue;
    const us = users.get(n.output) ?? [];
    const roots = new Set(us.map((u) => group[u]));
    const root = [...roots][0];
    const joins = us.length > 0 && !escaping.has(n.output) && roots.size === 1 && root !== -1 &&
      numel(g.value(n.output).shape) === numel(g.value(g.nodes[root].output).shape);
    group[i] = joins ? root : i;
  }
  const fusedAt = new Map<number, Node>();
  group.forEach((root, i) => {
    if (root !== i || !g.nodes.some((_, j) => j !== i && group[j] === i)) return;
    fusedAt.set(i, buildFused(g, i, group, producer));
  });
  g.nodes = g.nodes.flatMap((n, i) => (fusedAt.has(i) ? [fusedAt.get(i)!] : group[i] !== -1 && group[i] !== i ? [] : [n]));
  absorbIntoRoutines(g);
  return g;
}

/** Rule 7: one copy of each cheap shared mask's op per extra user, placed right after the original. */
function duplicateSharedMasks(g: Graph): void {
  const { users, escaping } = usesOf(g);
  const size = (v: number) => numel(g.value(v).shape);
  const canFuseInto = (u: Node, v: number) =>
    (isElementwise(u) && size(u.output) === size(v)) || (FUSABLE_REDUCERS.has(u.op) && !u.expr && u.inputs[0] === v);
  const renames = new Map<Node, Map<number, number>>();
  const clonesAfter = new Map<Node, Node[]>();
  for (const n of g.nodes) {
    const us = users.get(n.output) ?? [];
    if (n.op === 'fused' || !isElementwise(n) || g.value(n.output).dtype !== 'bool' || escaping.has(n.output) || us.length < 2) continue;
    if (n.inputs.filter((v) => size(v) === size(n.output)).length !== 1) continue;
    if (!us.every((u) => canFuseInto(g.nodes[u], n.output))) continue;
    const clones: Node[] = [];
    for (const u of us.slice(1)) {
      const copy = g.newValue(g.value(n.output).shape, g.value(n.output).dtype);
      clones.push({ ...n, inputs: [...n.inputs], output: copy.id });
      const user = g.nodes[u];
      if (!renames.has(user)) renames.set(user, new Map());
      renames.get(user)!.set(n.output, copy.id);
    }
    clonesAfter.set(n, clones);
  }
  if (clonesAfter.size === 0) return;
  g.nodes = g.nodes.flatMap((n) => {
    const r = renames.get(n);
    const node = r ? { ...n, inputs: n.inputs.map((v) => r.get(v) ?? v) } : n;
    return [node, ...(clonesAfter.get(n) ?? [])];
  });
}

/** An elementwise node's expression over its own inputs. */
function exprOfNode(n: Node): Expr {
  if (n.op === 'fused') return n.expr!;
  return (OPS[n.op].lowering as { expr: (xs: Expr[], a: unknown) => Expr }).expr(n.inputs.map((_, k) => E.input(k)), n.attrs);
}

const FUSABLE_REDUCERS = new Set(['sum', 'max', 'min']);

const sameSize = (g: Graph, a: number, b: number) => numel(g.value(a).shape) === numel(g.value(b).shape) && g.value(a).shape.length === g.value(b).shape.length;

/** Can an input of `shape`, broadcast to `outShape`, be re-viewed (without a copy) in `productShape`? */
function extraViewable(shape: readonly number[], outShape: readonly number[], productShape: readonly number[]): boolean {
  const lead = outShape.length - shape.length;
  const own = contiguousStrides(shape);
  const strides = outShape.map((d, i) => (i < lead || shape[i - lead] !== d ? 0 : own[i - lead]));
  return viewStrides(outShape, strides, productShape) !== null;
}

/** Rules 4 and 5: reduction prologues and matmul epilogues. */
function absorbIntoRoutines(g: Graph): void {
  const uses = usesOf(g);
  const producer = new Map<number, Node>(g.nodes.map((n) => [n.output, n]));
  const onlyReader = (v: number, n: Node) => soleUser(g, uses, v, n);
  const removed = new Set<Node>();
  const replaced = new Map<Node, Node>();
  for (const n of g.nodes) {
    if (removed.has(n)) continue;
    if (FUSABLE_REDUCERS.has(n.op) && !n.expr) {
      const p = producer.get(n.inputs[0]);
      // A producer that already absorbed a matmul (rule 5) stays a matmul kernel.
      if (p && isElementwise(p) && !replaced.has(p) && onlyReader(p.output, n)) {
        replaced.set(n, { ...n, inputs: p.inputs, expr: exprOfNode(p), attrs: { ...(n.attrs as object), shape: g.value(p.output).shape } });
        removed.add(p);
      }
    } else if (isElementwise(n)) {
      const out = g.value(n.output);
      let product = -1;
      let through: Node | undefined;
      for (const v of n.inputs) {
        const p = producer.get(v);
        if (!p || !onlyReader(v, n) || removed.has(p)) continue;
        // The product's dtype must survive the epilogue: it is computed in the output's memory.
        if (p.op === 'matmul' && !p.expr && sameSize(g, v, n.output) && g.value(v).dtype === out.dtype) { product = v; break; }
        // Conv is matmul then a reshape to NCHW: look through the reshape when the epilogue's other
        // inputs can be viewed in the product's shape.
        const mm = p.op === 'reshape' ? producer.get(p.inputs[0]) : undefined;
        if (mm && mm.op === 'matmul' && !mm.expr && onlyReader(p.inputs[0], p) && g.value(v).dtype === out.dtype && sameSize(g, v, n.output) &&
          n.inputs.every((x) => x === v || extraViewable(g.value(x).shape, out.shape, g.value(mm.output).shape))) {
          product = v;
          through = p;
          break;
        }
      }
      if (product < 0) continue;
      const mm = through ? producer.get(through.inputs[0])! : producer.get(product)!;
      // The product may appear more than once (`add(mm, mm)`): every occurrence reads $0.
      const extras = [...new Set(n.inputs.filter((v) => v !== product))];
      const args = n.inputs.map((v) => (v === product ? E.input(0) : E.input(1 + extras.indexOf(v))));
      const attrs = through ? { productShape: g.value(mm.output).shape } : {};
      replaced.set(n, { op: 'matmul', inputs: [...mm.inputs, ...extras], attrs, output: n.output, expr: substituteInputs(exprOfNode(n), args) });
      removed.add(mm);
      if (through) removed.add(through);
    }
  }
  g.nodes = g.nodes.filter((n) => !removed.has(n)).map((n) => replaced.get(n) ?? n);
}

/** The fused node of the group rooted at node `root`: its external inputs and composed expression. */
function buildFused(g: Graph, root: number, group: number[], producer: Map<number, number>): Node {
  const inputs: number[] = [];
  const exprOf = new Map<number, Expr>(); // value -> expression (shared objects, so renderers compute a shared value once)
  const valueExpr = (v: number): Expr => {
    const known = exprOf.get(v);
    if (known) return known;
    const p = producer.get(v);
    let e: Expr;
    if (p !== undefined && group[p] === root) {
      const n = g.nodes[p];
      const args = n.inputs.map(valueExpr);
      e = n.op === 'fused' ? substituteInputs(n.expr!, args) : (OPS[n.op].lowering as { expr: (xs: Expr[], a: unknown) => Expr }).expr(args, n.attrs);
    } else {
      let k = inputs.indexOf(v);
      if (k < 0) k = inputs.push(v) - 1;
      e = E.input(k);
    }
    exprOf.set(v, e);
    return e;
  };
  const n = g.nodes[root];
  const expr = valueExpr(n.output);
  return { op: 'fused', inputs, attrs: {}, output: n.output, expr };
}

function substituteInputs(e: Expr, args: readonly Expr[]): Expr {
  const memo = new Map<Expr, Expr>();
  const go = (x: Expr): Expr => {
    const m = memo.get(x);
    if (m) return m;
    let r: Expr;
    switch (x.k) {
      case 'input': r = args[x.i]; break;
      case 'const': r = x; break;
      case 'unary': r = { ...x, a: go(x.a) }; break;
      case 'binary': r = { ...x, a: go(x.a), b: go(x.b) }; break;
      case 'select': r = { ...x, cond: go(x.cond), a: go(x.a), b: go(x.b) }; break;
      case 'cast': r = { ...x, a: go(x.a) }; break;
    }
    memo.set(x, r);
    return r;
  };
  return go(e);
}
