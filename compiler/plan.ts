// The memory plan: turns an optimised graph into an executor Plan. Movement ops become views (no
// kernel, no memory); every other value gets a storage slot; slots are reused once every value
// living in them is dead (liveness over the node order), exact size for exact size, so a compiled
// step needs a fixed arena allocated once.
import { contiguousStrides, coversWhole, itemSize, numel, OPS, type DType, type Graph, type Layout } from '../ir/index.js';
import type { Plan, PlanStep, PlanView } from '../runtime/executor.js';
import { viewStrides } from '../ir/ops/movement.js';

export function buildPlan(g: Graph, device: string): Plan {
  const slots: { dtype: DType; length: number }[] = [];
  const views: PlanView[] = [];
  const viewOf = new Map<number, number>(); // graph value -> view index
  const steps: PlanStep[] = [];
  const newSlot = (dtype: DType, length: number) => slots.push({ dtype, length }) - 1;
  const addView = (v: PlanView) => views.push(v) - 1;
  const contiguousView = (slot: number, shape: readonly number[], dtype: DType) => addView({ slot, shape, strides: contiguousStrides(shape), offset: 0, dtype });

  const inputSlots = g.inputs.map((inp) => {
    const v = g.value(inp.value);
    const slot = newSlot(v.dtype, numel(v.shape));
    viewOf.set(inp.value, contiguousView(slot, v.shape, v.dtype));
    return slot;
  });
  const constants = g.constants.map((c) => {
    const v = g.value(c.value);
    const slot = newSlot(v.dtype, numel(v.shape));
    viewOf.set(c.value, contiguousView(slot, v.shape, v.dtype));
    return { slot, data: c.data };
  });
  const fixed = slots.length;

  // Pass 1: one virtual slot per materialised value; views alias their input's slot.
  for (const n of g.nodes) {
    const out = g.value(n.output);
    const lowering = n.op === 'fused' ? ({ kind: 'elementwise' } as const) : OPS[n.op].lowering;
    // Fused reductions read their prologue's inputs broadcast to the pre-reduction shape; a matmul
    // epilogue's extra inputs are broadcast to the output shape.
    const broadcastTo = (k: number): readonly number[] | undefined =>
      lowering.kind === 'elementwise' ? out.shape
        : lowering.kind === 'reduce' && n.expr ? (n.attrs as { shape: number[] }).shape
        : n.op === 'matmul' && n.expr && k >= 2 ? out.shape
        : undefined;
    if (lowering.kind === 'view') {
      let src = views[viewOf.get(n.inputs[0])!];
      let layout = lowering.layout(src as Layout, n.attrs as never);
      if (!layout) {
        // Not expressible as a view of this layout: materialise a contiguous copy first.
        const copy = contiguousView(newSlot(src.dtype, numel(src.shape)), src.shape, src.dtype);
        steps.push({ op: 'copy', attrs: {}, inputs: [viewOf.get(n.inputs[0])!], out: copy });
        src = views[copy];
        layout = lowering.layout(src as Layout, n.attrs as never)!;
      }
      viewOf.set(n.output, addView({ slot: src.slot, shape: layout.shape, strides: layout.strides, offset: layout.offset, dtype: out.dtype }));
      continue;
    }
    const slot = newSlot(out.dtype, numel(out.shape));
    const outView = contiguousView(slot, out.shape, out.dtype);
    // A matmul whose epilogue was fused through a reshape (conv) computes in the product's shape.
    const productShape = n.op === 'matmul' && n.expr ? (n.attrs as { productShape?: number[] }).productShape : undefined;
    const stepOut = productShape ? contiguousView(slot, productShape, out.dtype) : outView;
    const inputs = n.inputs.map((i, k) => {
      const vi = viewOf.get(i)!;
      const to = broadcastTo(k);
      const b = to ? broadcast(vi, to) : vi;
      if (!productShape || k < 2) return b;
      // An extra input that cannot be re-viewed in the product's shape (a transposed view) is
      // made contiguous first; the fusion rule checked that a contiguous one can be.
      return reView(b, productShape) ?? reView(broadcast(copyContiguous(vi), to!), productShape)!;
    });
    viewOf.set(n.output, outView);
    steps.push({ op: n.op, expr: n.expr, attrs: n.attrs, inputs, out: stepOut });
  }

  function reView(vi: number, shape: readonly number[]): number | undefined {
    const v = views[vi];
    const strides = viewStrides(v.shape, v.strides, shape);
    return strides ? addView({ ...v, shape, strides }) : undefined;
  }

  function copyContiguous(vi: number): number {
    const v = views[vi];
    const copy = contiguousView(newSlot(v.dtype, numel(v.shape)), v.shape, v.dtype);
    steps.push({ op: 'copy', attrs: {}, inputs: [vi], out: copy });
    return copy;
  }

  function broadcast(vi: number, shape: readonly number[]): number {
    const v = views[vi];
    if (v.shape.length === shape.length && v.shape.every((d, i) => d === shape[i])) return vi;
    const lead = shape.length - v.shape.length;
    const strides = shape.map((d, i) => (i < lead || v.shape[i - lead] !== d ? 0 : v.strides[i - lead]));
    return addView({ ...v, shape, strides });
  }

  // In-place updates: an elementwise step that computes a parameter's (or optimizer state's) new
  // value writes it straight into that tensor's memory, when nothing after it reads the old value
  // and it reads the old value element for element. The update then needs no copy and no slot.
  const inPlace = new Set<number>();
  g.updates.forEach((u, k) => {
    const target = views[viewOf.get(u.input)!];
    const vi = viewOf.get(u.value)!;
    const at = steps.findIndex((st) => st.out === vi);
    if (at < 0) return;
    const step = steps[at];
    const elementwise = step.op === 'fused' || (!step.expr && OPS[step.op].lowering.kind === 'elementwise');
    const sameLayout = (x: PlanView) => x.offset === 0 && x.shape.join() === target.shape.join() && x.strides.join() === contiguousStrides(x.shape).join();
    const readsLater = steps.slice(at + 1).some((st) => st.inputs.some((i) => views[i].slot === target.slot));
    const readsSafely = step.inputs.every((i) => views[i].slot !== target.slot || sameLayout(views[i]));
    if (!elementwise || readsLater || !readsSafely || !sameLayout(views[vi])) return;
    const virtual = views[vi].slot;
    views.forEach((v, i) => { if (v.slot === virtual) views[i] = { ...v, slot: target.slot }; });
    inPlace.add(k);
  });

  // A scatterAdd adds into a copy of its base. When the base fills its own slot and nothing after
  // the scatterAdd reads that slot (max-pool's gradient: a zeros tensor the indices scatter into),
  // the scatterAdd takes that slot and adds in place: the copy costs nothing (a backend copying a
  // view onto itself does nothing). Asked by slot, like the updates above, so another view of the
  // same memory counts as a reader.
  const kept = new Set([...g.outputs.map((o) => views[viewOf.get(o)!].slot), ...g.updates.map((u) => views[viewOf.get(u.value)!].slot)]);
  steps.forEach((step, at) => {
    if (step.op !== 'scatterAdd') return;
    const base = views[step.inputs[0]], out = views[step.out];
    const fills = (v: PlanView) => coversWhole(v, slots[v.slot].length);
    const readsLater = steps.slice(at + 1).some((st) => st.inputs.some((i) => views[i].slot === base.slot));
    const readsTwice = step.inputs.slice(1).some((i) => views[i].slot === base.slot);
    if (base.slot < fixed || kept.has(base.slot) || !fills(base) || !fills(out) || base.dtype !== out.dtype || readsLater || readsTwice) return;
    const virtual = out.slot;
    views.forEach((v, i) => { if (v.slot === virtual) views[i] = { ...v, slot: base.slot }; });
  });

  // Pass 2: liveness of virtual slots, then a greedy map onto reused physical slots.
  const lastUse = new Map<number, number>();
  steps.forEach((s, i) => {
    for (const vi of [...s.inputs, s.out]) lastUse.set(views[vi].slot, i);
  });
  const live = Infinity;
  for (const o of g.outputs) lastUse.set(views[viewOf.get(o)!].slot, live);
  for (const u of g.updates) lastUse.set(views[viewOf.get(u.value)!].slot, live);
  const physical = new Map<number, number>();
  const finalSlots = slots.slice(0, fixed);
  const free: number[] = [];
  steps.forEach((s, i) => {
    const v = views[s.out].slot;
    if (v >= fixed && !physical.has(v)) {
      const want = slots[v];
      const k = free.findIndex((p) => finalSlots[p].dtype === want.dtype && finalSlots[p].length === want.length);
      physical.set(v, k >= 0 ? free.splice(k, 1)[0] : finalSlots.push({ ...want }) - 1);
    }
    // Free the slots whose last use is this step (after it ran, so inputs are never clobbered by its output).
    // By slot, not by view: two views of one slot (slices of the same tensor) free it once.
    for (const slot of new Set([...s.inputs, s.out].map((vi) => views[vi].slot))) {
      if (slot >= fixed && lastUse.get(slot) === i && physical.has(slot)) free.push(physical.get(slot)!);
    }
  });
  const remap = (slot: number) => (slot < fixed ? slot : physical.get(slot)!);
  const finalViews = views.map((v) => ({ ...v, slot: remap(v.slot) }));
  const peakBytes = finalSlots.slice(fixed).reduce((sum, s) => sum + s.length * itemSize(s.dtype), 0)
    + constants.reduce((sum, c) => sum + slots[c.slot].length * itemSize(slots[c.slot].dtype), 0);
  return {
    device,
    slots: finalSlots,
    inputSlots,
    constants,
    views: finalViews,
    steps,
    outputs: g.outputs.map((o) => viewOf.get(o)!),
    updates: g.updates.map((u, k) => ({ input: g.inputs.findIndex((i) => i.value === u.input), view: viewOf.get(u.value)!, inPlace: inPlace.has(k) })),
    peakBytes,
  };
}
