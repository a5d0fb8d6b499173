// The CPU backend: storages are typed arrays; kernels come from the op table's lowerings.
import { contiguousStrides, E, type DType, type Expr, type OpDef } from '../../ir/index.js';
import type { FoldAttrs, UnfoldAttrs } from '../../ir/ops/conv.js';
import type { FullAttrs, RandomAttrs } from '../../ir/ops/creation.js';
import { drawRandom } from '../random.js';
import type { PadAttrs } from '../../ir/ops/movement.js';
import type { ReduceAttrs } from '../../ir/ops/reduce.js';
import type { Backend, HostArray, Storage, TemporaryScope, View } from '../backend.js';
import { hostBytesPer, newHostArray } from '../host.js';
import { wasmHeap } from './wasm/heap.js';
import { runFold, runUnfold } from './conv.js';
import { prepareElementwise, runElementwise, type Operand } from './elementwise.js';
import { prepareFusedReduce, runFusedReduce } from './reduce-fused.js';
import { catRegions, padRegion, prepareRunMatmul, runFull, runGather, runMatmul, runScatterAdd } from './routines.js';

export class CpuStorage implements Storage {
  readonly device = 'cpu';
  version = 0;
  /** Mutable only so `adopt` can move it into the Wasm heap (same values, same storage object). */
  constructor(readonly dtype: DType, public data: HostArray) {}
  get length(): number {
    return this.data.length;
  }
}

/**
 * An elementwise op's expression, built once per (op, arity, attributes) and then reused: the same
 * Expr object lets the kernel cache recognise it cheaply (eager runs this for every small op).
 */
const exprCache = new WeakMap<OpDef, Map<string, Expr>>();
function elementwiseExpr(op: OpDef, arity: number, attrs: unknown): Expr {
  const lowering = op.lowering as Extract<OpDef['lowering'], { kind: 'elementwise' }>;
  let byKey = exprCache.get(op);
  if (!byKey) exprCache.set(op, (byKey = new Map()));
  const key = attrs === undefined ? `${arity}` : `${arity}|${JSON.stringify(attrs)}`;
  let expr = byKey.get(key);
  if (!expr) byKey.set(key, (expr = lowering.expr(Array.from({ length: arity }, (_, i) => E.input(i)), attrs)));
  return expr;
}

const EMPTY = new Float32Array(0);
/** The data of a temporary after its scope closed: any kernel given it throws (dataOf). */
const FREED = new Float32Array(0);

/**
 * The open temporary scope's storages (Backend.openTemporaryScope), or null. They live in the Wasm
 * heap, so kernels read and write them in place (no copy in or out, and no fresh pages for the
 * system to fault in, which a new typed array of a few hundred KB costs here), and are freed when
 * it closes. Smaller ones stay plain arrays, which JS kernels read faster than heap arrays.
 */
let temporaries: CpuStorage[] | null = null;
const TEMPORARY_MIN_LENGTH = 4096;
/** At most this many bytes of one scope's temporaries go to the heap (which never shrinks; the seed ConvNet's backward at batch 64 peaks at 11.7 MB); the rest are plain arrays. */
const TEMPORARY_MAX_BYTES = 64 << 20;
let temporaryBytes = 0;

/** New zero-filled storage: a temporary in the heap while a scope is open (and the heap can hold it), else a plain array. */
function allocStorage(dtype: DType, length: number): CpuStorage {
  const bytes = length * hostBytesPer(dtype);
  const heap = temporaries && length >= TEMPORARY_MIN_LENGTH && temporaryBytes + bytes <= TEMPORARY_MAX_BYTES ? wasmHeap() : null;
  if (heap) {
    const storage = new CpuStorage(dtype, EMPTY);
    let data: HostArray | undefined;
    try {
      data = heap.allocArray(dtype, length, storage);
    } catch {
      data = undefined; // the memory cannot grow that far: a plain array instead
    }
    if (data) {
      temporaryBytes += bytes;
      storage.data = data;
      // A reused heap block holds old values; callers are promised zeros (the Wasm fill: see runFull).
      runFull(data, { value: 0, dtype } as FullAttrs, 0, length);
      temporaries!.push(storage);
      return storage;
    }
  }
  return new CpuStorage(dtype, newHostArray(dtype, length));
}

function openTemporaryScope(): TemporaryScope {
  if (temporaries) throw new Error('openTemporaryScope: a scope is already open (scopes do not nest)');
  const mine: CpuStorage[] = (temporaries = []);
  return {
    pause<R>(fn: () => R): R {
      const open = temporaries;
      temporaries = null;
      try {
        return fn();
      } finally {
        temporaries = open;
      }
    },
    close() {
      if (temporaries === mine) temporaries = null;
      temporaryBytes = 0;
      const heap = wasmHeap()!;
      for (const s of mine) {
        heap.release(s, s.data);
        s.data = FREED;
      }
      mine.length = 0;
    },
  };
}
/**
 * Smaller storages stay plain typed arrays. 1: every captured parameter goes to the heap, biases
 * included, since a matmul's epilogue otherwise copies a small bias in on every call.
 */
const ADOPT_MIN_LENGTH = 1;

const dataOf = (v: View): HostArray => {
  const data = (v.storage as CpuStorage).data;
  if (data === FREED) throw new Error('a tensor made during backward() was used after backward() freed it (a Kiln bug: please report it)');
  return data;
};
const operand = (v: View): Operand => ({ data: dataOf(v), offset: v.offset, strides: v.strides, dtype: v.dtype });
const IDENTITY = E.input(0);
/** What a copy from src to dst computes: the value, converted where the dtypes differ. */
const copyExpr = (src: View, dst: View): Expr => (src.dtype === dst.dtype ? IDENTITY : E.cast(dst.dtype, IDENTITY));
const sameView = (a: View, b: View): boolean =>
  a.storage === b.storage && a.dtype === b.dtype && a.offset === b.offset && a.shape.join() === b.shape.join() && a.strides.join() === b.strides.join();

export const cpu: Backend = {
  device: 'cpu',

  supports: (dtype) => dtype !== 'float16',

  alloc: allocStorage,

  openTemporaryScope,

  upload: (values, dtype) => new CpuStorage(dtype, values),

  read: async (view) => cpu.readSync(view),

  readSync(view) {
    const out = newHostArray(view.dtype, view.shape.reduce((a, b) => a * b, 1));
    runElementwise(IDENTITY, view.shape, { data: out, offset: 0, strides: contiguousStrides(view.shape), dtype: view.dtype }, [operand(view)]);
    return out;
  },

  run(op: OpDef, inputs: readonly View[], attrs: unknown, out: View) {
    const lowering = op.lowering;
    switch (lowering.kind) {
      case 'elementwise':
        return runElementwise(elementwiseExpr(op, inputs.length, attrs), out.shape, operand(out), inputs.map(operand));
      case 'reduce': {
        // A plain reduction is a fused one whose prologue is the identity.
        const a = attrs as ReduceAttrs & { shape?: number[] };
        return runFusedReduce(lowering.reducer, lowering.prologue ?? IDENTITY, a.shape ?? inputs[0].shape, a.dims, inputs.map(operand), dataOf(out), out.offset);
      }
      case 'view':
        throw new Error(`cpu: ${op.name} is a view and never runs as a kernel`);
      case 'routine':
        switch (lowering.routine) {
          case 'matmul': return runMatmul(inputs[0], inputs[1], out, dataOf, lowering.epilogue, inputs.slice(2));
          case 'full': return runFull(dataOf(out), attrs as FullAttrs, out.offset, out.shape.reduce((p, d) => p * d, 1));
          case 'random': {
            const a = attrs as RandomAttrs;
            return drawRandom(dataOf(out).subarray(out.offset, out.offset + out.shape.reduce((p, d) => p * d, 1)), a.distribution, a.a, a.b);
          }
          case 'cat': return catRegions(inputs, out, (attrs as { dim: number }).dim).forEach((r, i) => cpu.copy(inputs[i], r));
          case 'pad': {
            const a = attrs as PadAttrs;
            runFull(dataOf(out), { value: a.value, dtype: out.dtype } as FullAttrs, out.offset, out.shape.reduce((p, d) => p * d, 1));
            return cpu.copy(inputs[0], padRegion(out, inputs[0], a));
          }
          case 'gather': return runGather(inputs[0], inputs[1], out, (attrs as { dim: number }).dim, dataOf);
          case 'scatterAdd':
            cpu.copy(inputs[0], out);
            return runScatterAdd(inputs[2], inputs[1], out, (attrs as { dim: number }).dim, dataOf);
          case 'unfold': return runUnfold(inputs[0], out, attrs as UnfoldAttrs, dataOf);
          case 'fold': return runFold(inputs[0], out, attrs as FoldAttrs, dataOf);
        }
    }
  },

  prepareStep(op, inputs, attrs, out) {
    const lowering = op.lowering;
    if (lowering.kind === 'elementwise') {
      const expr = elementwiseExpr(op, inputs.length, attrs);
      return prepareElementwise(expr, out.shape, out, inputs, () => [operand(out), inputs.map(operand)]);
    }
    if (lowering.kind === 'reduce') {
      const a = attrs as ReduceAttrs & { shape?: number[] };
      const reduce = prepareFusedReduce(lowering.reducer, lowering.prologue ?? IDENTITY, a.shape ?? inputs[0].shape, a.dims, inputs);
      return () => reduce(inputs.map(operand), dataOf(out), out.offset);
    }
    if (lowering.kind !== 'routine') return undefined;
    if (lowering.routine === 'matmul') return prepareRunMatmul(inputs[0], inputs[1], out, dataOf, lowering.epilogue, inputs.slice(2));
    if (lowering.routine === 'cat') {
      // One prepared copy per input into its region of the output (read from out's storage at each call).
      const copies = catRegions(inputs, out, (attrs as { dim: number }).dim).map((r, i) =>
        prepareElementwise(copyExpr(inputs[i], r), r.shape, r, [inputs[i]], () => [{ data: dataOf(out), offset: r.offset, strides: r.strides, dtype: r.dtype }, [operand(inputs[i])]]));
      return () => { for (const c of copies) c(); };
    }
    return undefined;
  },

  copy(src, dst) {
    // A view onto itself: nothing to do (a compiled plan's scatterAdd adding into its base in place).
    if (sameView(src, dst)) return;
    runElementwise(copyExpr(src, dst), dst.shape, operand(dst), [operand(src)]);
  },

  free() {},

  allocArena(dtype, length) {
    const storage = new CpuStorage(dtype, EMPTY);
    storage.data = wasmHeap()?.allocArray(dtype, length, storage) ?? newHostArray(dtype, length);
    // A reused heap block holds old values; callers are promised zeros.
    storage.data.fill(0);
    return storage;
  },

  adopt(storage) {
    const s = storage as CpuStorage;
    const heap = wasmHeap();
    // Only whole arrays (a storage's data never starts inside a bigger array) of a size worth a block.
    if (!heap || heap.addressOf(s.data) >= 0 || s.data.length < ADOPT_MIN_LENGTH) return;
    const moved = heap.allocArray(s.dtype, s.data.length, s);
    if (!moved) return;
    moved.set(s.data as never);
    s.data = moved;
  },
};

