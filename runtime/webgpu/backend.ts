// The WebGPU backend. Storages are GPUBuffers from an exact-size pool (bool and int32 take 4 bytes
// like float32; float16, where the device has `shader-f16`, takes 2, and a buffer's size is rounded
// up to a multiple of 4 bytes as WebGPU requires), reference-counted by the tensors viewing them.
// The host has no Float16Array (Node 20): float16 values are uploaded from float32 (rounded to the
// nearest half, ties to even) and read back as a Float32Array, so `await t.data()` of a float16
// tensor gives float32 values (each exactly a half). Kernels are WGSL generated from
// the op table's lowerings (kernels.ts, matmul-kernel.ts, render-wgsl.ts); pipelines are cached by
// source, shapes travel in a metadata buffer, and dispatches are recorded into one command encoder,
// consecutive dispatches into one compute pass, until a readback or an explicit flush submits them.
// A `run` called again with the same inputs array (a compiled plan's step) replays what it recorded
// the first time (see Memo). With `implicitGemm = true` (off by default) unfolds are deferred so
// that a conv's forward matmul can read its columns in place (deferred-unfold.ts); gather and
// scatterAdd report out-of-range indices at the next read (index-check.ts).
import { contiguousStrides, coversWhole, E, exprToString, isContiguous, numel, type DType, type Expr, type OpDef, type Reducer } from '../../ir/index.js';
import type { FullAttrs, RandomAttrs } from '../../ir/ops/creation.js';
import { drawRandom } from '../random.js';
import type { PadAttrs } from '../../ir/ops/movement.js';
import type { ReduceAttrs } from '../../ir/ops/reduce.js';
import { windowCounts, type FoldAttrs, type UnfoldAttrs } from '../../ir/ops/conv.js';
import type { Backend, HostArray, Storage, View } from '../backend.js';
import { newHostArray } from '../host.js';
import { catRegions, padRegion } from '../cpu/routines.js';
import { f16ToF32, f32ToF16 } from '../half.js';
import { throwIfDeviceFailed } from './device.js';
import { DeferredUnfolds } from './deferred-unfold.js';
import { BLOCK, chooseMatmulVariant, chooseTile, loadsPerElement, matmulKernel, matmulKey, MAX_IMPLICIT_LOADS, variantName, type MatmulOperandLayout } from './matmul-kernel.js';
import { unfoldMapMeta } from './unfold-map.js';
import { ERROR_BYTES, indexError, IndexErrors } from './index-check.js';
import { isFloatKind, resultKind } from './render-wgsl.js';
import { elementwiseKernel, elementwiseKey, elementwiseMeta, reduceKernel, reduceKey, wideReduction, WORKGROUP, type KernelSpec, type Operand } from './kernels.js';
import { foldKernel, gatherKernel, gatherMeta, scatterAddKernel, scatterAddMeta, unfoldKernel } from './kernels.js';

const IDENTITY = E.input(0);

/** Bytes per element in a GPU buffer (bool is stored as a u32 word). */
const elementBytes = (dtype: DType) => (dtype === 'float16' ? 2 : 4);
/** A buffer's size for `length` elements: at least 4 bytes, a multiple of 4 (copies and clears need it). */
const bufferSize = (dtype: DType, length: number) => Math.max(4, Math.ceil((length * elementBytes(dtype)) / 4) * 4);

export class GpuStorage implements Storage {
  readonly device = 'webgpu';
  version = 0;
  refs = 0;
  /** Creation order, so a test can count the storages a loop leaves alive. */
  readonly serial: number;
  constructor(readonly dtype: DType, readonly length: number, readonly buffer: GPUBuffer, private readonly owner: WebGPUBackend) {
    this.serial = owner.nextSerial++;
  }
  retain(): void {
    this.refs++;
  }
  release(): void {
    if (--this.refs === 0) this.owner.recycle(this);
  }
}

/** Does `v` cover its whole storage, contiguous from offset 0 (so writing it overwrites everything there)? */
const isWhole = (v: View) => coversWhole(v, v.storage.length);
const bufferOf = (v: View) => (v.storage as GpuStorage).buffer;
/** The buffers a kernel binds for `inputs`: undefined for one aliased to the output (read through its binding). */
const bindable = (ops: readonly Operand[], inputs: readonly View[]) => inputs.map((v, j) => (ops[j].aliasOut ? undefined : bufferOf(v)));

/** One recorded dispatch: everything needed to record it again. */
interface Recorded {
  readonly pipeline: GPUComputePipeline;
  readonly bindGroup: GPUBindGroup;
  readonly x: number;
  readonly y: number;
  readonly z: number;
  /** For prepare: the output buffer, whether the kernel writes all of it, the buffers bound as inputs. */
  readonly out: GPUBuffer;
  readonly covers: boolean;
  readonly inputs: readonly (GPUBuffer | undefined)[];
  /** It binds the index-error buffer (gather, scatterAdd). */
  readonly checked: boolean;
  /** A matmul's variant name, counted in matmulVariants. */
  readonly variant: string | undefined;
}

/** A view as it was when a run was recorded: the replay checks that it is still the same. */
interface ViewSnapshot {
  readonly view: View;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
  readonly buffer: GPUBuffer;
}

const snapshot = (view: View): ViewSnapshot => ({ view, shape: view.shape, strides: view.strides, offset: view.offset, dtype: view.dtype, buffer: bufferOf(view) });
const unchanged = (s: ViewSnapshot, v: View) =>
  s.view === v && s.shape === v.shape && s.strides === v.strides && s.offset === v.offset && s.dtype === v.dtype && s.buffer === (v.storage as GpuStorage).buffer;

/**
 * What one `run` recorded, kept under its inputs array. A compiled plan (runtime/executor.ts) passes
 * the same op, inputs array, attrs and out View for a step on every call, so the second call of a
 * step replays these dispatches (pipeline and bind group already made) instead of building kernel
 * keys, metadata and bind-group keys again. A replay needs the same op, attrs and views (same
 * objects, the same shape/strides arrays and offsets, the same buffers: the executor rebinds its
 * input views' storages between calls) and the same generation (bumped when an evicted metadata
 * buffer is destroyed and when implicitGemm changes). Runs whose outcome depends on more state are
 * not kept: a deferred unfold (it records no dispatch), a matmul with an operand that is a deferred
 * unfold's columns (whether it reads them in place depends on the unfold), and random (it submits);
 * nor is a matmul replayed while an operand is such columns. A deferred unfold that a run
 * materialises is not part of its recording: at a replay, beforeKernel materialises what the state
 * then asks for. Eager ops pass a new array each call, so their memos are never hit and go with it.
 */
interface Memo {
  readonly op: OpDef;
  readonly attrs: unknown;
  readonly out: ViewSnapshot;
  readonly inputs: readonly ViewSnapshot[];
  readonly generation: number;
  readonly dispatches: readonly Recorded[];
}

interface Recording {
  readonly dispatches: Recorded[];
  spoiled: boolean;
}

export class WebGPUBackend implements Backend {
  readonly device = 'webgpu';
  private readonly pool = new Map<number, GPUBuffer[]>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private encoder: GPUCommandEncoder | undefined;
  /** The open compute pass; ended by anything else recorded into the encoder (copies, clears) and by flush. */
  private pass: GPUComputePassEncoder | undefined;
  /** The pipeline last set in the open pass. */
  private passPipeline: GPUComputePipeline | undefined;
  /** What the run in progress records (see Memo), and the memos by inputs array. */
  private recording: Recording | undefined;
  private readonly memos = new WeakMap<readonly View[], Memo>();
  /** Bumped when the metadata cache is cleared (its buffers are destroyed) and when implicitGemm changes: older memos are stale. */
  private generation = 0;
  private pendingMeta: GPUBuffer[] = [];
  private live = new Set<GpuStorage>();
  nextSerial = 0;
  /** Dispatches and submits since creation (tests assert them for compiled steps). */
  readonly counters = { dispatches: 0, submits: 0, passes: 0, replays: 0 };

  /** Buffers alloc took from the pool and has not zero-filled yet (see settle). */
  private readonly unzeroed = new Set<GPUBuffer>();
  /** Where gather and scatterAdd record an out-of-range index; checked at each read. */
  private readonly indexErrors: IndexErrors;
  /** Unfolds not run yet: a matmul reads their columns through the unfold's index map (implicit GEMM). */
  private readonly deferred = new DeferredUnfolds(bufferOf, (d) => {
    // Not part of the run being recorded: a replay's beforeKernel materialises what it needs then.
    const rec = this.recording;
    this.recording = undefined;
    try {
      this.unfoldNow(d.x, d.out, d.attrs);
    } finally {
      this.recording = rec;
    }
  });
  /**
   * Defer unfolds so that a conv's forward matmul reads its columns in place through the unfold's
   * index map (implicit GEMM) instead of materialising them. Off by default: on an H100 the
   * materialised columns were as fast or faster (MNISTConvNet step 3.2-3.6 ms against 3.7-4.5,
   * forward 1.0-1.3 against 1.1-1.6; bench/RESULTS.md, 2026-11-23); it saved 10-25 % of CPU time
   * only on lavapipe, a CPU emulation. It saves the columns' memory. Changing it makes every memo stale.
   */
  get implicitGemm(): boolean {
    return this.implicit;
  }
  set implicitGemm(on: boolean) {
    if (on === this.implicit) return;
    this.implicit = on;
    this.generation++;
  }
  private implicit = false;
  /** Matmul dispatches by variant name (matmul-kernel.ts variantName), so tests can see which kernel ran. */
  readonly matmulVariants = new Map<string, number>();

  constructor(readonly gpu: GPUDevice) {
    this.indexErrors = new IndexErrors(gpu);
  }

  /** float32, int32 and bool; float16 exactly when the device was created with `shader-f16`. */
  supports(dtype: DType): boolean {
    if (dtype === 'float16') return this.gpu.features.has('shader-f16');
    return dtype === 'float32' || dtype === 'int32' || dtype === 'bool';
  }

  alloc(dtype: DType, length: number): Storage {
    const size = bufferSize(dtype, length);
    const pooled = this.pool.get(size)?.pop();
    const buffer = pooled ?? this.gpu.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    // A pooled buffer holds old values: it is zero-filled at its first use, unless that use
    // overwrites all of it (a kernel's whole output), which most do (see settle).
    if (pooled) this.unzeroed.add(buffer);
    const s = new GpuStorage(dtype, length, buffer, this);
    this.live.add(s);
    return s;
  }

  /** float16 takes its values as numbers (float32 on the host) and stores the nearest halves (ties to even). */
  upload(values: HostArray, dtype: DType): Storage {
    if (!this.supports(dtype)) throw new TypeError(`webgpu: dtype ${dtype} is not supported on this device`);
    const size = bufferSize(dtype, values.length);
    const buffer = this.gpu.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST, mappedAtCreation: true });
    const mapped = buffer.getMappedRange();
    if (dtype === 'float32') new Float32Array(mapped).set(values);
    else if (dtype === 'int32') new Int32Array(mapped).set(values);
    else if (dtype === 'bool') new Uint32Array(mapped).set(values);
    else {
      const halves = new Uint16Array(mapped, 0, values.length);
      for (let i = 0; i < values.length; i++) halves[i] = f32ToF16(values[i]);
    }
    buffer.unmap();
    const s = new GpuStorage(dtype, values.length, buffer, this);
    this.live.add(s);
    return s;
  }

  async read(view: View): Promise<HostArray> {
    this.deferred.materialise(bufferOf(view));
    const n = numel(view.shape);
    let src = view;
    const plain = view.offset === 0 && isContiguous(view);
    if (!plain) {
      const tmp = this.alloc(view.dtype, n);
      src = { storage: tmp, shape: view.shape, strides: contiguousStrides(view.shape), offset: 0, dtype: view.dtype };
      this.copy(view, src);
    }
    this.zeroFill((src.storage as GpuStorage).buffer);
    const size = bufferSize(view.dtype, n);
    // The index-error words ride along after the values, at a multiple of 8 (getMappedRange's alignment).
    const at = Math.ceil(size / 8) * 8;
    const staging = this.gpu.createBuffer({ size: at + ERROR_BYTES, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = this.commands();
    enc.copyBufferToBuffer((src.storage as GpuStorage).buffer, 0, staging, 0, size);
    const checked = this.indexErrors.drainInto(enc, staging, at);
    this.flush();
    if (src !== view) this.free(src.storage);
    try {
      await staging.mapAsync(GPUMapMode.READ);
    } catch (e) {
      staging.destroy();
      throw e;
    }
    const indexProblem = checked ? indexError(new Uint32Array(staging.getMappedRange(at, ERROR_BYTES))) : undefined;
    if (indexProblem) {
      staging.destroy();
      throw indexProblem;
    }
    // A validation error, out-of-memory or lost device since the last read surfaces here as an error.
    try {
      throwIfDeviceFailed();
    } catch (e) {
      staging.destroy();
      throw e;
    }
    const raw = staging.getMappedRange(0, size);
    let out: HostArray;
    if (view.dtype === 'float16') {
      // No Float16Array on the host: the halves come back as float32 values (exact).
      const halves = new Uint16Array(raw, 0, n);
      out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = f16ToF32(halves[i]);
    } else {
      out = newHostArray(view.dtype, n);
      if (view.dtype === 'float32') out.set(new Float32Array(raw, 0, n));
      else if (view.dtype === 'int32') out.set(new Int32Array(raw, 0, n));
      else out.set(new Uint32Array(raw, 0, n));
    }
    staging.unmap();
    staging.destroy();
    return out;
  }

  readSync(): HostArray {
    throw new Error("webgpu tensors cannot be read synchronously: use 'await t.data()', 'await t.item()' or 'await t.tolist()'");
  }

  run(op: OpDef, inputs: readonly View[], attrs: unknown, out: View): void {
    const memo = this.memos.get(inputs);
    if (memo !== undefined && this.replay(memo, op, inputs, attrs, out)) return;
    const rec: Recording = (this.recording = { dispatches: [], spoiled: false });
    try {
      this.runNow(op, inputs, attrs, out);
    } finally {
      this.recording = undefined;
    }
    if (!rec.spoiled && rec.dispatches.length > 0) {
      this.memos.set(inputs, { op, attrs, out: snapshot(out), inputs: inputs.map(snapshot), generation: this.generation, dispatches: rec.dispatches });
    } else if (memo !== undefined) this.memos.delete(inputs);
  }

  /** Records `memo`'s dispatches again if it still applies (see Memo); false otherwise. */
  private replay(memo: Memo, op: OpDef, inputs: readonly View[], attrs: unknown, out: View): boolean {
    if (memo.op !== op || memo.attrs !== attrs || memo.generation !== this.generation || !unchanged(memo.out, out) || memo.inputs.length !== inputs.length) return false;
    for (let i = 0; i < inputs.length; i++) if (!unchanged(memo.inputs[i], inputs[i])) return false;
    // A matmul run now would depend on its operands' deferred unfolds (its recording had none).
    if (op.lowering.kind === 'routine' && op.lowering.routine === 'matmul' && this.readsDeferred(inputs[0], inputs[1])) return false;
    for (const d of memo.dispatches) {
      this.prepare(d.out, d.covers, d.inputs, d.checked);
      this.encode(d);
    }
    this.counters.replays++;
    return true;
  }

  /** Is a matmul operand, `a` or `b`, a deferred unfold's columns? Such a run is not replayed (see Memo). */
  private readsDeferred(a: View, b: View): boolean {
    return this.deferred.get(bufferOf(a)) !== undefined || this.deferred.get(bufferOf(b)) !== undefined;
  }

  /** The run in progress, if recording, cannot be replayed. */
  private spoil(): void {
    if (this.recording) this.recording.spoiled = true;
  }

  private runNow(op: OpDef, inputs: readonly View[], attrs: unknown, out: View): void {
    const lowering = op.lowering;
    switch (lowering.kind) {
      case 'elementwise':
        return this.elementwise(lowering.expr(inputs.map((_, i) => E.input(i)), attrs), inputs, out);
      case 'reduce':
        return this.reduce(lowering.reducer, lowering.prologue, attrs as ReduceAttrs & { shape?: number[] }, inputs, out);
      case 'view':
        throw new Error(`webgpu: ${op.name} is a view and never runs as a kernel`);
      case 'routine':
        switch (lowering.routine) {
          case 'matmul': return this.matmul(inputs[0], inputs[1], out, lowering.epilogue, inputs.slice(2));
          case 'full': {
            const a = attrs as FullAttrs;
            return this.elementwise(E.const(a.dtype === 'bool' ? Number(!!a.value) : a.value), [], out);
          }
          case 'random': return this.random(out, attrs as RandomAttrs);
          case 'cat': return catRegions(inputs, out, (attrs as { dim: number }).dim).forEach((r, i) => this.copy(inputs[i], r));
          case 'pad': {
            const a = attrs as PadAttrs;
            this.elementwise(E.const(a.value), [], out);
            return this.copy(inputs[0], padRegion(out, inputs[0], a));
          }
          default:
            switch (lowering.routine) {
              case 'gather': return this.gather(inputs[0], inputs[1], out, (attrs as { dim: number }).dim);
              case 'scatterAdd': return this.scatterAdd(inputs[0], inputs[1], inputs[2], out, (attrs as { dim: number }).dim);
              case 'unfold': return this.unfold(inputs[0], out, attrs as UnfoldAttrs);
              case 'fold': return this.fold(inputs[0], out, attrs as FoldAttrs);
            }
            throw new Error(`webgpu: the ${lowering.routine} routine is not implemented on WebGPU yet`);
        }
    }
  }

  copy(src: View, dst: View): void {
    this.elementwise(src.dtype === dst.dtype ? IDENTITY : E.cast(dst.dtype, IDENTITY), [src], dst);
  }

  free(storage: Storage): void {
    const s = storage as GpuStorage;
    if (s.refs > 0) s.refs = 1;
    s.release();
  }

  /** Returns a storage's buffer to the pool once no tensor views it. */
  recycle(s: GpuStorage): void {
    if (!this.live.delete(s)) return;
    this.deferred.recycled(s.buffer);
    this.unzeroed.delete(s.buffer);
    const size = s.buffer.size;
    const list = this.pool.get(size) ?? [];
    list.push(s.buffer);
    this.pool.set(size, list);
  }

  /** Bytes and buffers held by live storages (what `kiln.memory()` reports). */
  memory(): { bytes: number; buffers: number; pooledBuffers: number } {
    let bytes = 0;
    for (const s of this.live) bytes += s.buffer.size;
    let pooled = 0;
    for (const list of this.pool.values()) pooled += list.length;
    return { bytes, buffers: this.live.size, pooledBuffers: pooled };
  }

  /** Live storages created at or after `serial` (see GpuStorage.serial). */
  liveSince(serial: number): number {
    let n = 0;
    for (const s of this.live) if (s.serial >= serial) n++;
    return n;
  }

  /** Submits the recorded dispatches. */
  flush(): void {
    this.spoil();
    this.endPass();
    if (!this.encoder) return;
    this.gpu.queue.submit([this.encoder.finish()]);
    this.counters.submits++;
    this.encoder = undefined;
    for (const b of this.pendingMeta) b.destroy();
    this.pendingMeta = [];
  }

  /** The encoder, for commands outside a compute pass (copies, clears): the open pass is ended first. */
  private commands(): GPUCommandEncoder {
    this.endPass();
    return (this.encoder ??= this.gpu.createCommandEncoder());
  }

  /**
   * The compute pass dispatches go into, begun when none is open. Dependent dispatches may share a
   * pass: WebGPU makes each dispatch its own usage scope, and the implementation synchronises
   * one dispatch's writes with the next one's reads (Dawn inserts the barriers).
   */
  private computePass(): GPUComputePassEncoder {
    if (this.pass) return this.pass;
    const pass = this.commands().beginComputePass();
    this.pass = pass;
    this.passPipeline = undefined;
    this.counters.passes++;
    return pass;
  }

  private endPass(): void {
    if (!this.pass) return;
    this.pass.end();
    this.pass = undefined;
    this.passPipeline = undefined;
  }

  /** A new pipeline for `spec`, cached under its key (callers look the key up first: `this.pipelines.get(key) ?? this.compile(...)`, so a kernel's source is built once). */
  private compile(spec: KernelSpec): GPUComputePipeline {
    const p = this.gpu.createComputePipeline({ layout: 'auto', compute: { module: this.gpu.createShaderModule({ code: spec.code }), entryPoint: 'main' } });
    this.pipelines.set(spec.key, p);
    return p;
  }

  private pipelineFor(spec: KernelSpec): GPUComputePipeline {
    return this.pipelines.get(spec.key) ?? this.compile(spec);
  }

  // Metadata buffers and bind groups are cached by content, so a compiled plan, which dispatches the
  // same kernels on the same buffers every call, creates them once. Both caches are bounded; an
  // evicted metadata buffer is destroyed after the next submit (pending commands may still use it).
  private readonly metaCache = new Map<string, GPUBuffer>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly objectIds = new WeakMap<object, number>();
  private nextBufferId = 0;
  private static readonly CACHE_LIMIT = 4096;

  private meta(data: Uint32Array): GPUBuffer {
    const key = data.join(',');
    let b = this.metaCache.get(key);
    if (!b) {
      b = this.gpu.createBuffer({ size: Math.max(4, data.byteLength), usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
      new Uint32Array(b.getMappedRange()).set(data);
      b.unmap();
      if (this.metaCache.size >= WebGPUBackend.CACHE_LIMIT) {
        for (const old of this.metaCache.values()) this.pendingMeta.push(old);
        this.metaCache.clear();
        this.bindGroups.clear();
        this.generation++;
      }
      this.metaCache.set(key, b);
    }
    return b;
  }

  /** A number per buffer or pipeline, for short bind-group keys. */
  private idOf(o: object): number {
    let id = this.objectIds.get(o);
    if (id === undefined) this.objectIds.set(o, (id = this.nextBufferId++));
    return id;
  }

  /**
   * Records one dispatch of `pipeline`: binding 0 = out, 1 = metadata, 2.. = the inputs (undefined:
   * aliased to out, not bound). `checked`: the last input is the index-error buffer; `variant`: a
   * matmul's, to count. Bind groups are cached by the ids of the pipeline and the buffers.
   */
  private dispatch(pipeline: GPUComputePipeline, outView: View, meta: Uint32Array, inputs: readonly (GPUBuffer | undefined)[], grid: [number, number, number], checked = false, variant?: string): void {
    const out = (outView.storage as GpuStorage).buffer;
    const covers = isWhole(outView);
    this.prepare(out, covers, inputs, checked);
    const metaBuffer = this.meta(meta);
    let groupKey = `${this.idOf(pipeline)}|${this.idOf(metaBuffer)}|${this.idOf(out)}|`;
    for (const b of inputs) groupKey += b ? `${this.idOf(b)},` : '-,';
    let bindGroup = this.bindGroups.get(groupKey);
    if (!bindGroup) {
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: out } }, { binding: 1, resource: { buffer: metaBuffer } }];
      inputs.forEach((b, j) => b && entries.push({ binding: 2 + j, resource: { buffer: b } }));
      bindGroup = this.gpu.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
      if (this.bindGroups.size >= WebGPUBackend.CACHE_LIMIT) this.bindGroups.clear();
      this.bindGroups.set(groupKey, bindGroup);
    }
    const d: Recorded = { pipeline, bindGroup, x: grid[0], y: grid[1], z: grid[2], out, covers, inputs, checked, variant };
    this.encode(d);
    this.recording?.dispatches.push(d);
  }

  /**
   * What every kernel that writes `out` (`covers`: all of it) and reads `inputs` needs before it is
   * recorded: the deferred unfolds it reads or overwrites settled, unzeroed buffers zero-filled
   * (settle), and the index-error buffer marked used when it is `checked`.
   */
  private prepare(out: GPUBuffer, covers: boolean, inputs: readonly (GPUBuffer | undefined)[], checked: boolean): void {
    this.deferred.beforeKernel(out, covers, inputs);
    this.settle(out, covers, inputs);
    if (checked) this.indexErrors.use();
  }

  /** Zero-fills `b` now (in command order) if alloc left it to its first use. */
  private zeroFill(b: GPUBuffer): void {
    if (this.unzeroed.delete(b)) this.commands().clearBuffer(b);
  }

  /**
   * Before a kernel that reads `inputs` (undefined: `out` itself) and writes `out` (`covers`: all of
   * it): the allocated-but-not-zeroed buffers it reads, or writes only in part, are zero-filled
   * first; an output it overwrites whole needs no zeros. So an op's fresh output does not end the
   * compute pass with a clear.
   */
  private settle(out: GPUBuffer, covers: boolean, inputs: readonly (GPUBuffer | undefined)[]): void {
    if (this.unzeroed.size === 0) return;
    for (const b of inputs) this.zeroFill(b ?? out);
    if (covers) this.unzeroed.delete(out);
    else this.zeroFill(out);
  }

  private encode(d: Recorded): void {
    const pass = this.computePass();
    if (this.passPipeline !== d.pipeline) {
      pass.setPipeline(d.pipeline);
      this.passPipeline = d.pipeline;
    }
    pass.setBindGroup(0, d.bindGroup);
    pass.dispatchWorkgroups(d.x, d.y, d.z);
    this.counters.dispatches++;
    if (d.variant !== undefined) this.matmulVariants.set(d.variant, (this.matmulVariants.get(d.variant) ?? 0) + 1);
  }

  private grid(threads: number): [number, number, number] {
    const groups = Math.max(1, Math.ceil(threads / WORKGROUP));
    const x = Math.min(groups, 65535);
    return [x, Math.ceil(groups / x), 1];
  }

  private operands(inputs: readonly View[], out: View): Operand[] {
    const outBuf = (out.storage as GpuStorage).buffer;
    return inputs.map((v) => ({ dtype: v.dtype, aliasOut: (v.storage as GpuStorage).buffer === outBuf }));
  }

  private elementwise(expr: Expr, inputs: readonly View[], out: View): void {
    const n = numel(out.shape);
    if (n === 0) return;
    const ops = this.operands(inputs, out);
    const exprKey = exprToString(expr);
    const key = elementwiseKey(exprKey, ops, out.dtype, out.shape.length);
    const meta = elementwiseMeta(n, out.shape, out, inputs);
    const pipeline = this.pipelines.get(key) ?? this.compile(elementwiseKernel(expr, exprKey, ops, out.dtype, out.shape.length));
    this.dispatch(pipeline, out, meta, bindable(ops, inputs), this.grid(n));
  }

  private reduce(reducer: Reducer, prologue: Expr | undefined, attrs: ReduceAttrs & { shape?: number[] }, inputs: readonly View[], out: View): void {
    const shape = attrs.shape ?? inputs[0].shape;
    const nOut = numel(out.shape);
    if (nOut === 0) return;
    const kept = shape.map((_, i) => i).filter((i) => !attrs.dims.includes(i));
    const red = [...attrs.dims];
    const nRed = numel(red.map((d) => shape[d]));
    const expr = prologue ?? IDENTITY;
    const ops = this.operands(inputs, out);
    // Accumulate in the kind of value the prologue produces: integers stay exact in i32, floating
    // values (float16 included, as PyTorch does on GPUs) add in f32.
    const intAcc = !isFloatKind(resultKind(expr, inputs.map((v) => v.dtype)));
    const exprKey = exprToString(expr);
    const acc = intAcc ? 'i32' : 'f32';
    const wide = wideReduction(reducer, nOut, nRed);
    const key = reduceKey(reducer, exprKey, ops, out.dtype, kept.length, red.length, acc, wide);
    const pipeline = this.pipelines.get(key) ?? this.compile(reduceKernel(reducer, expr, exprKey, ops, out.dtype, kept.length, red.length, acc, wide));
    const meta = Uint32Array.from([nOut, nRed, ...kept.map((d) => shape[d]), ...red.map((d) => shape[d]), ...inputs.flatMap((v) => [...kept.map((d) => v.strides[d]), ...red.map((d) => v.strides[d]), v.offset])]);
    // wide: one workgroup per output.
    this.dispatch(pipeline, out, meta, bindable(ops, inputs), this.grid(wide ? nOut * WORKGROUP : nOut));
  }

  private matmul(a: View, b: View, out: View, epilogue: Expr | undefined, extras: readonly View[]): void {
    const [m, k] = a.shape.slice(-2);
    const n = b.shape[b.shape.length - 1];
    const batch = out.shape.slice(0, -2);
    const nb = batch.length;
    const batches = numel(batch);
    if (m * n * batches === 0) return;
    const batchStrides = (v: View) => batch.map((d, i) => {
      const j = i - (nb - (v.shape.length - 2));
      return j < 0 || v.shape[j] === 1 ? 0 : v.strides[j];
    });
    const layout = (v: View): MatmulOperandLayout => ({ rowStride: v.strides[v.strides.length - 2], colStride: v.strides[v.strides.length - 1], batchStrides: batchStrides(v), offset: v.offset });
    // An operand that is a deferred unfold's columns is read through its index map, from its input,
    // unless the product overwrites that input, would decode each element more than
    // MAX_IMPLICIT_LOADS times, or reads the columns transposed: then the columns are materialised
    // first (dispatch does it). Transposed columns are a weight gradient's (dY @ colsᵀ, contracted
    // over every output position): on an H100 conv1's took 2.8 ms read in place against 0.8 ms
    // materialised, conv2's 0.95 against 0.16 (bench/RESULTS.md, 2026-11-23).
    const tile = chooseTile(batches, m, n);
    const implicit = (v: View, otherExtent: number) => {
      const d = this.deferred.get(bufferOf(v));
      const cheap = loadsPerElement(tile, otherExtent, batch, batchStrides(v)) <= MAX_IMPLICIT_LOADS;
      const asStored = v.strides[v.strides.length - 1] === 1;
      return d && cheap && asStored && bufferOf(d.x) !== bufferOf(out) ? d : undefined;
    };
    const ua = implicit(a, n);
    const ub = implicit(b, m);
    // Whether it reads columns in place depends on the deferred unfolds: not replayed (see Memo).
    if (this.readsDeferred(a, b)) this.spoil();
    const variant = chooseMatmulVariant(a.dtype, tile, n, k, layout(a), layout(b), ua && ua.x.shape.length - 2, ub && ub.x.shape.length - 2);
    const exOps = extras.map((v) => ({ dtype: v.dtype, aliasOut: false }));
    const exprKey = epilogue ? exprToString(epilogue) : '';
    const key = matmulKey(a.dtype, nb, exprKey, exOps, variant);
    const pipeline = this.pipelines.get(key) ?? this.compile(matmulKernel(a.dtype, nb, epilogue, exprKey, exOps, variant));
    const [ars, acs] = a.strides.slice(-2);
    const [brs, bcs] = b.strides.slice(-2);
    const meta = Uint32Array.from([
      m, n, k, batches, ...batch, ...batchStrides(a), ...batchStrides(b), ars, acs, brs, bcs, a.offset, b.offset,
      ...extras.flatMap((e) => [...e.strides.slice(-2), ...batchStrides(e), e.offset]),
      ...(ua ? unfoldMapMeta(ua.x, ua.attrs) : []), ...(ub ? unfoldMapMeta(ub.x, ub.attrs) : []),
    ]);
    // A and B bind at 2 and 3, the epilogue's extra inputs from 4: the dispatcher's convention.
    const buffers = [ua ? ua.x : a, ub ? ub.x : b, ...extras].map(bufferOf);
    const block = BLOCK[variant.tile];
    this.dispatch(pipeline, out, meta, buffers, [Math.ceil(n / block), Math.ceil(m / block), batches], false, variantName(variant));
  }

  /** Binds the inputs not aliased to `out` and dispatches one thread per output element. */
  private routine(spec: KernelSpec, ops: readonly Operand[], inputs: readonly View[], out: View, meta: Uint32Array, n: number): void {
    this.dispatch(this.pipelineFor(spec), out, meta, bindable(ops, inputs), this.grid(n));
  }

  /** An out-of-range index reads element 0 and is reported at the next read (index-check.ts). */
  private gather(x: View, index: View, out: View, dim: number): void {
    const n = numel(out.shape);
    if (n === 0) return;
    const ops = this.operands([x, index], out);
    const spec = gatherKernel(ops[0], ops[1], out.shape.length);
    this.checkedRoutine(spec, ops, [x, index], out, gatherMeta(n, out.shape, out, x, index, dim, x.shape[dim]), n);
  }

  /** A gather over the sources (no float atomics in WGSL); an out-of-range index adds nothing and is reported as for gather. */
  private scatterAdd(base: View, index: View, src: View, out: View, dim: number): void {
    const n = numel(out.shape);
    if (n === 0) return;
    const ops = this.operands([base, index, src], out);
    const spec = scatterAddKernel(ops[0], ops[1], ops[2], out.shape.length);
    this.checkedRoutine(spec, ops, [base, index, src], out, scatterAddMeta(n, out.shape, out, base, index, src, dim), n);
  }

  /** As routine(), with the index-error buffer bound after the inputs. */
  private checkedRoutine(spec: KernelSpec, ops: readonly Operand[], inputs: readonly View[], out: View, meta: Uint32Array, n: number): void {
    this.dispatch(this.pipelineFor(spec), out, meta, [...bindable(ops, inputs), this.indexErrors.use()], this.grid(n), true);
  }

  /** Deferred when its columns fill their storage (deferred-unfold.ts); run now otherwise. */
  private unfold(x: View, out: View, a: UnfoldAttrs): void {
    if (numel(out.shape) === 0) return;
    // Replayed only while implicitGemm is as now: changing it bumps the generation.
    if (!this.implicitGemm || !isWhole(out) || bufferOf(x) === bufferOf(out)) return this.unfoldNow(x, out, a);
    this.spoil(); // a deferral records no dispatch: done again each call
    this.deferred.beforeKernel(bufferOf(out), true, [bufferOf(x)]);
    this.deferred.defer({ x, attrs: a, out });
  }

  private unfoldNow(x: View, out: View, a: UnfoldAttrs): void {
    const n = numel(out.shape);
    const ops = this.operands([x], out);
    this.routine(unfoldKernel(ops[0], x.shape.length - 2), ops, [x], out, Uint32Array.from([n, out.offset, ...unfoldMapMeta(x, a)]), n);
  }

  private fold(cols: View, out: View, a: FoldAttrs): void {
    const n = numel(out.shape);
    if (n === 0) return;
    const counts = windowCounts(a.outputSize, a);
    const taps = numel(a.kernel);
    const meta = Uint32Array.from([
      n, out.shape[1], taps, cols.shape[2], numel(a.outputSize), out.offset, ...cols.strides, cols.offset,
      ...a.outputSize.flatMap((s, d) => [s, a.kernel[d], a.stride[d], a.padding[d], a.dilation[d], counts[d]]),
    ]);
    const ops = this.operands([cols], out);
    this.routine(foldKernel(ops[0], a.outputSize.length), ops, [cols], out, meta, n);
  }

  /** Random numbers are drawn on the host, from Kiln's one generator (so every device gives the same values), and written after the recorded work. */
  private random(out: View, a: RandomAttrs): void {
    const n = numel(out.shape);
    if (n === 0) return;
    this.spoil(); // new values each call
    const values = a.dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
    drawRandom(values, a.distribution, a.a, a.b);
    const words = out.dtype === 'float16' ? Uint16Array.from(values, (v) => f32ToF16(v)) : values;
    // writeBuffer runs before the next submit, so everything recorded so far is submitted first.
    this.prepare(bufferOf(out), isWhole(out), [], false);
    this.flush();
    const bytes = out.dtype === 'float16' ? 2 : 4;
    this.gpu.queue.writeBuffer((out.storage as GpuStorage).buffer, out.offset * bytes, words.buffer, words.byteOffset, words.byteLength);
  }
}
