// The executor of compiled plans: every storage a plan needs is allocated once, every view and
// kernel argument built once, so running a plan allocates nothing but its output tensors. A plan is
// plain data (compiler/plan.ts makes it; a bundle can carry it as JSON).
import { contiguousStrides, coversWhole, numel, OPS, type DType, type Expr, type OpDef } from '../ir/index.js';
import { backendFor, type Backend, type Storage, type View } from './backend.js';
import { toHostArray } from './host.js';
import { Tensor } from './tensor.js';

export interface PlanView {
  readonly slot: number;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
}

export interface PlanStep {
  /** An op of the op table, or 'fused' (an elementwise kernel running `expr`). */
  readonly op: string;
  readonly expr?: Expr;
  readonly attrs: unknown;
  readonly inputs: readonly number[];
  readonly out: number;
}

export interface Plan {
  readonly device: string;
  readonly slots: readonly { readonly dtype: DType; readonly length: number }[];
  /** The slot of each graph input (bound to the caller's tensors at each run). */
  readonly inputSlots: readonly number[];
  readonly constants: readonly { readonly slot: number; readonly data: ArrayLike<number> }[];
  readonly views: readonly PlanView[];
  readonly steps: readonly PlanStep[];
  readonly outputs: readonly number[];
  /** After the steps: graph input `input` (a captured tensor) is overwritten with view `view`. */
  readonly updates: readonly { readonly input: number; readonly view: number; readonly inPlace?: boolean }[];
  /** Bytes of all non-input storages: the plan's memory footprint. */
  readonly peakBytes: number;
}

type MutableView = { -readonly [K in keyof View]: View[K] };

function fusedOp(expr: Expr): OpDef {
  return { name: 'fused', arity: -1, infer: () => { throw new Error('fused kernels are typed by the compiler'); }, lowering: { kind: 'elementwise', expr: () => expr } };
}

/** The op a step runs: an op of the table, a fused elementwise kernel, or a routine/reduction with its fused prologue/epilogue. */
function opOf(s: PlanStep): OpDef {
  if (!s.expr) return OPS[s.op];
  if (s.op === 'fused') return fusedOp(s.expr);
  const base = OPS[s.op];
  if (base.lowering.kind === 'reduce') return { ...base, lowering: { ...base.lowering, prologue: s.expr } };
  if (base.lowering.kind === 'routine') return { ...base, lowering: { ...base.lowering, epilogue: s.expr } };
  throw new Error(`executor: ${s.op} cannot carry a fused expression`);
}

export class Executable {
  private readonly backend: Backend;
  private readonly storages: (Storage | undefined)[];
  private readonly views: MutableView[];
  private readonly ops: OpDef[];
  private readonly stepViews: { inputs: View[]; out: View }[];
  private readonly boundByInput: number[][];

  constructor(readonly plan: Plan) {
    this.backend = backendFor(plan.device);
    const isInput = new Set(plan.inputSlots);
    const alloc = this.backend.allocArena ?? this.backend.alloc;
    this.storages = plan.slots.map((s, i) => (isInput.has(i) ? undefined : alloc.call(this.backend, s.dtype, s.length)));
    for (const c of plan.constants) {
      const storage = this.backend.upload(toHostArray(c.data, plan.slots[c.slot].dtype), plan.slots[c.slot].dtype);
      // Where the arena lives, so kernels read constants in place too (a matmul epilogue's 0, say).
      this.backend.adopt?.(storage);
      this.storages[c.slot] = storage;
    }
    this.views = plan.views.map((v) => ({ storage: this.storages[v.slot]!, shape: v.shape, strides: v.strides, offset: v.offset, dtype: v.dtype }));
    this.boundByInput = plan.inputSlots.map((slot) => plan.views.flatMap((v, i) => (v.slot === slot ? [i] : [])));
    this.ops = plan.steps.map(opOf);
    this.stepViews = plan.steps.map((s) => ({ inputs: s.inputs.map((i) => this.views[i]), out: this.views[s.out] }));
  }

  get kernelCount(): number {
    return this.plan.steps.length;
  }

  private prepared: ((() => void) | null)[] | undefined;
  private readonly aliases: (Tensor | undefined)[] = [];
  /** The storage each input was bound to in the last run. */
  private readonly lastBound: (Storage | undefined)[] = [];

  /** A tensor viewing output k where the plan keeps it: no copy, but the next run overwrites it. */
  private aliasOf(k: number): Tensor {
    const v = this.views[this.plan.outputs[k]];
    return (this.aliases[k] ??= new Tensor(v.shape, v.dtype, this.plan.device, v));
  }

  /**
   * Runs the plan on `inputs` (one tensor per graph input). Output k is a fresh tensor, or, when
   * `alias[k]`, a tensor over the plan's own memory (the same object every run, overwritten by the
   * next: a training step's gradients).
   */
  run(inputs: readonly Tensor[], alias: readonly boolean[] = []): Tensor[] {
    const plan = this.plan;
    const bound = inputs.map((t, k) => {
      const storage = wholeStorage(t);
      // The same tensor a second time in a row (a fixed batch, an inference input): let the
      // device adopt it as it does captured parameters, so that on the CPU the Wasm kernels read
      // it in place instead of copying it in every call (16 MB per call for a 4096x1000 batch).
      // A fresh tensor each call (a data loader's batches) is left where it is.
      if (storage === this.lastBound[k]) this.backend.adopt?.(storage);
      this.lastBound[k] = storage;
      for (const i of this.boundByInput[k]) this.views[i].storage = storage;
      return storage;
    });
    // Each step's runner, made on the first run; null where the backend has none (Backend.prepareStep).
    const prepared = (this.prepared ??= plan.steps.map((s, i) => this.backend.prepareStep?.(this.ops[i], this.stepViews[i].inputs, s.attrs, this.stepViews[i].out) ?? null));
    for (let i = 0; i < plan.steps.length; i++) {
      const p = prepared[i];
      if (p) {
        p();
        continue;
      }
      const v = this.stepViews[i];
      this.backend.run(this.ops[i], v.inputs, plan.steps[i].attrs, v.out);
    }
    const outputs = plan.outputs.map((i, k) => {
      const src = this.views[i];
      if (alias[k]) {
        src.storage.version++;
        return this.aliasOf(k);
      }
      const storage = this.backend.alloc(src.dtype, numel(src.shape));
      const dst: View = { storage, shape: src.shape, strides: contiguousStrides(src.shape), offset: 0, dtype: src.dtype };
      this.backend.copy(src, dst);
      return new Tensor(src.shape, src.dtype, plan.device, dst);
    });
    for (const u of plan.updates) {
      const target = inputs[u.input];
      // An in-place update was written by its kernel straight into the target (bound as the input's storage).
      // (Unless the target was not laid out plainly and ran from a copy: then copy the result back.)
      if (!u.inPlace || bound[u.input] !== target._view!.storage) this.backend.copy(this.views[u.view], target._view!);
      target._view!.storage.version++;
    }
    // One command buffer per run on devices that batch (WebGPU).
    this.backend.flush?.();
    return outputs;
  }
}


/** The storage of a tensor laid out exactly as a plan input (contiguous from offset 0); anything else is copied first. */
function wholeStorage(t: Tensor): Storage {
  const v = t.eagerView('compiled call');
  const n = t.numel();
  if (coversWhole(v, v.storage.length)) return v.storage;
  const b = backendFor(t.device);
  const storage = b.alloc(t.dtype, n);
  b.copy(v, { storage, shape: t.shape, strides: contiguousStrides(t.shape), offset: 0, dtype: t.dtype });
  return storage;
}

