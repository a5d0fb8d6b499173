// The WebGPU backend. Storages are GPUBuffers from an exact-size pool (bool and int32 take 4 bytes
// like float32; float16, where the device has `shader-f16`, takes 2, and a buffer's size is rounded
// up to a multiple of 4 bytes as WebGPU requires), reference-counted by the tensors viewing them.
// The host has no Float16Array (Node 20): float16 values are uploaded from float32 (rounded to the
// nearest half, ties to even) and read back as a Float32Array, so `await t.data()` of a float16
// tensor gives float32 values (each exactly a half). Kernels are WGSL generated from
// the op table's lowerings (kernels.ts, matmul-kernel.ts, render-wgsl.ts); pipelines are cached by
// source, shapes travel in a metadata buffer, and dispatches are recorded into one command encoder
// until a readback or an explicit flush submits them. Unfolds are deferred so that a matmul can read
// conv columns in place (deferred-unfold.ts); gather and scatterAdd report out-of-range indices at
// the next read (index-check.ts).
import { contiguousStrides, E, exprToString, numel, type DType, type Expr, type OpDef, type Reducer } from '../../ir/index.js';
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
import { BLOCK, chooseMatmulVariant, chooseTile, loadsPerElement, matmulKernel, MAX_IMPLICIT_LOADS, variantName, type MatmulOperandLayout } from './matmul-kernel.js';
import { unfoldMapMeta } from './unfold-map.js';
import { ERROR_BYTES, indexError, IndexErrors } from './index-check.js';
import { isFloatKind, resultKind } from './render-wgsl.js';
import { elementwiseKernel, elementwiseMeta, reduceKernel, WORKGROUP, type KernelSpec, type Operand } from './kernels.js';
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

const numelOf = numel;

/** Does `v` cover its whole storage, contiguous from offset 0 (so writing it overwrites everything there)? */
const isWhole = (v: View) => v.offset === 0 && numelOf(v.shape) === v.storage.length && v.strides.every((s, i) => v.shape[i] === 1 || s === contiguousStrides(v.shape)[i]);
const bufferOf = (v: View) => (v.storage as GpuStorage).buffer;

export class WebGPUBackend implements Backend {
  readonly device = 'webgpu';
  private readonly pool = new Map<number, GPUBuffer[]>();
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private encoder: GPUCommandEncoder | undefined;
  private pendingMeta: GPUBuffer[] = [];
  private live = new Set<GpuStorage>();
  nextSerial = 0;
  /** Dispatches and submits since creation (tests assert them for compiled steps). */
  readonly counters = { dispatches: 0, submits: 0 };

  /** Where gather and scatterAdd record an out-of-range index; checked at each read. */
  private readonly indexErrors: IndexErrors;
  /** Unfolds not run yet: a matmul reads their columns through the unfold's index map (implicit GEMM). */
  private readonly deferred = new DeferredUnfolds(bufferOf, (d) => this.unfoldNow(d.x, d.out, d.attrs));
  /** Defer unfolds so that matmuls read conv columns in place (false: always materialise them; for comparisons). */
  implicitGemm = true;
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
    if (pooled) this.commands().clearBuffer(buffer);
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
    const n = numelOf(view.shape);
    let src = view;
    const plain = view.offset === 0 && view.strides.every((s, i) => view.shape[i] === 1 || s === contiguousStrides(view.shape)[i]);
    if (!plain) {
      const tmp = this.alloc(view.dtype, n);
      src = { storage: tmp, shape: view.shape, strides: contiguousStrides(view.shape), offset: 0, dtype: view.dtype };
      this.copy(view, src);
    }
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
    if (!this.encoder) return;
    this.gpu.queue.submit([this.encoder.finish()]);
    this.counters.submits++;
    this.encoder = undefined;
    for (const b of this.pendingMeta) b.destroy();
    this.pendingMeta = [];
  }

  private commands(): GPUCommandEncoder {
    return (this.encoder ??= this.gpu.createCommandEncoder());
  }

  private pipeline(spec: KernelSpec): GPUComputePipeline {
    let p = this.pipelines.get(spec.key);
    if (!p) {
      p = this.gpu.createComputePipeline({ layout: 'auto', compute: { module: this.gpu.createShaderModule({ code: spec.code }), entryPoint: 'main' } });
      this.pipelines.set(spec.key, p);
    }
    return p;
  }

  // Metadata buffers and bind groups are cached by content, so a compiled plan, which dispatches the
  // same kernels on the same buffers every call, creates them once. Both caches are bounded; an
  // evicted metadata buffer is destroyed after the next submit (pending commands may still use it).
  private readonly metaCache = new Map<string, GPUBuffer>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly bufferIds = new WeakMap<GPUBuffer, number>();
  private nextBufferId = 0;
  private static readonly CACHE_LIMIT = 4096;

  private meta(data: Uint32Array): [GPUBuffer, string] {
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
      }
      this.metaCache.set(key, b);
    }
    return [b, key];
  }

  private idOf(b: GPUBuffer): number {
    let id = this.bufferIds.get(b);
    if (id === undefined) this.bufferIds.set(b, (id = this.nextBufferId++));
    return id;
  }

  /** Records one dispatch: binding 0 = out, 1 = metadata, 2.. = the inputs (undefined: aliased to out, not bound). */
  private dispatch(spec: KernelSpec, outView: View, meta: Uint32Array, inputs: readonly (GPUBuffer | undefined)[], grid: [number, number, number]): void {
    const out = (outView.storage as GpuStorage).buffer;
    this.deferred.beforeKernel(out, isWhole(outView), inputs);
    const pipeline = this.pipeline(spec);
    const [metaBuffer, metaKey] = this.meta(meta);
    const key = `${spec.key}|${metaKey}|${this.idOf(out)}|${inputs.map((b) => (b ? this.idOf(b) : '-')).join(',')}`;
    let bindGroup = this.bindGroups.get(key);
    if (!bindGroup) {
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: out } }, { binding: 1, resource: { buffer: metaBuffer } }];
      inputs.forEach((b, j) => b && entries.push({ binding: 2 + j, resource: { buffer: b } }));
      bindGroup = this.gpu.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
      if (this.bindGroups.size >= WebGPUBackend.CACHE_LIMIT) this.bindGroups.clear();
      this.bindGroups.set(key, bindGroup);
    }
    const pass = this.commands().beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...grid);
    pass.end();
    this.counters.dispatches++;
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
    const n = numelOf(out.shape);
    if (n === 0) return;
    const ops = this.operands(inputs, out);
    const spec = elementwiseKernel(expr, exprToString(expr), ops, out.dtype, out.shape.length);
    const meta = elementwiseMeta(n, out.shape, out, inputs);
    this.dispatch(spec, out, meta, inputs.map((v, j) => (ops[j].aliasOut ? undefined : (v.storage as GpuStorage).buffer)), this.grid(n));
  }

  private reduce(reducer: Reducer, prologue: Expr | undefined, attrs: ReduceAttrs & { shape?: number[] }, inputs: readonly View[], out: View): void {
    const shape = attrs.shape ?? inputs[0].shape;
    const nOut = numelOf(out.shape);
    if (nOut === 0) return;
    const kept = shape.map((_, i) => i).filter((i) => !attrs.dims.includes(i));
    const red = [...attrs.dims];
    const nRed = numelOf(red.map((d) => shape[d]));
    const expr = prologue ?? IDENTITY;
    const ops = this.operands(inputs, out);
    // Accumulate in the kind of value the prologue produces: integers stay exact in i32, floating
    // values (float16 included, as PyTorch does on GPUs) add in f32.
    const intAcc = !isFloatKind(resultKind(expr, inputs.map((v) => v.dtype)));
    const spec = reduceKernel(reducer, expr, exprToString(expr), ops, out.dtype, kept.length, red.length, intAcc ? 'i32' : 'f32');
    const meta = Uint32Array.from([nOut, nRed, ...kept.map((d) => shape[d]), ...red.map((d) => shape[d]), ...inputs.flatMap((v) => [...kept.map((d) => v.strides[d]), ...red.map((d) => v.strides[d]), v.offset])]);
    this.dispatch(spec, out, meta, inputs.map((v, j) => (ops[j].aliasOut ? undefined : (v.storage as GpuStorage).buffer)), this.grid(nOut));
  }

  private matmul(a: View, b: View, out: View, epilogue: Expr | undefined, extras: readonly View[]): void {
    const [m, k] = a.shape.slice(-2);
    const n = b.shape[b.shape.length - 1];
    const batch = out.shape.slice(0, -2);
    const nb = batch.length;
    const batches = numelOf(batch);
    if (m * n * batches === 0) return;
    const batchStrides = (v: View) => batch.map((d, i) => {
      const j = i - (nb - (v.shape.length - 2));
      return j < 0 || v.shape[j] === 1 ? 0 : v.strides[j];
    });
    const layout = (v: View): MatmulOperandLayout => ({ rowStride: v.strides[v.strides.length - 2], colStride: v.strides[v.strides.length - 1], batchStrides: batchStrides(v), offset: v.offset });
    // An operand that is a deferred unfold's columns is read through its index map, from its input,
    // unless the product overwrites that input or would decode each element more than
    // MAX_IMPLICIT_LOADS times: then the columns are materialised first (dispatch does it).
    const tile = chooseTile(batches, m, n);
    const implicit = (v: View, otherExtent: number) => {
      const d = this.deferred.get(bufferOf(v));
      const cheap = loadsPerElement(tile, otherExtent, batch, batchStrides(v)) <= MAX_IMPLICIT_LOADS;
      return d && cheap && bufferOf(d.x) !== bufferOf(out) ? d : undefined;
    };
    const ua = implicit(a, n);
    const ub = implicit(b, m);
    const variant = chooseMatmulVariant(a.dtype, batches, m, n, k, layout(a), layout(b), ua && ua.x.shape.length - 2, ub && ub.x.shape.length - 2);
    const exOps = extras.map((v) => ({ dtype: v.dtype, aliasOut: false }));
    const spec = matmulKernel(a.dtype, nb, epilogue, epilogue ? exprToString(epilogue) : '', exOps, variant);
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
    this.dispatch(spec, out, meta, buffers, [Math.ceil(n / block), Math.ceil(m / block), batches]);
    const name = variantName(variant);
    this.matmulVariants.set(name, (this.matmulVariants.get(name) ?? 0) + 1);
  }

  /** Binds the inputs not aliased to `out` and dispatches one thread per output element. */
  private routine(spec: KernelSpec, ops: readonly Operand[], inputs: readonly View[], out: View, meta: Uint32Array, n: number): void {
    this.dispatch(spec, out, meta, inputs.map((v, j) => (ops[j].aliasOut ? undefined : (v.storage as GpuStorage).buffer)), this.grid(n));
  }

  /** An out-of-range index reads element 0 and is reported at the next read (index-check.ts). */
  private gather(x: View, index: View, out: View, dim: number): void {
    const n = numelOf(out.shape);
    if (n === 0) return;
    const ops = this.operands([x, index], out);
    const spec = gatherKernel(ops[0], ops[1], out.shape.length);
    this.checkedRoutine(spec, ops, [x, index], out, gatherMeta(n, out.shape, out, x, index, dim, x.shape[dim]), n);
  }

  /** A gather over the sources (no float atomics in WGSL); an out-of-range index adds nothing and is reported as for gather. */
  private scatterAdd(base: View, index: View, src: View, out: View, dim: number): void {
    const n = numelOf(out.shape);
    if (n === 0) return;
    const ops = this.operands([base, index, src], out);
    const spec = scatterAddKernel(ops[0], ops[1], ops[2], out.shape.length);
    this.checkedRoutine(spec, ops, [base, index, src], out, scatterAddMeta(n, out.shape, out, base, index, src, dim), n);
  }

  /** As routine(), with the index-error buffer bound after the inputs. */
  private checkedRoutine(spec: KernelSpec, ops: readonly Operand[], inputs: readonly View[], out: View, meta: Uint32Array, n: number): void {
    const buffers = inputs.map((v, j) => (ops[j].aliasOut ? undefined : (v.storage as GpuStorage).buffer));
    this.dispatch(spec, out, meta, [...buffers, this.indexErrors.use()], this.grid(n));
  }

  /** Deferred when its columns fill their storage (deferred-unfold.ts); run now otherwise. */
  private unfold(x: View, out: View, a: UnfoldAttrs): void {
    if (numelOf(out.shape) === 0) return;
    if (!this.implicitGemm || !isWhole(out) || bufferOf(x) === bufferOf(out)) return this.unfoldNow(x, out, a);
    this.deferred.beforeKernel(bufferOf(out), true, [bufferOf(x)]);
    this.deferred.defer({ x, attrs: a, out });
  }

  private unfoldNow(x: View, out: View, a: UnfoldAttrs): void {
    const n = numelOf(out.shape);
    const ops = this.operands([x], out);
    this.routine(unfoldKernel(ops[0], x.shape.length - 2), ops, [x], out, Uint32Array.from([n, out.offset, ...unfoldMapMeta(x, a)]), n);
  }

  private fold(cols: View, out: View, a: FoldAttrs): void {
    const n = numelOf(out.shape);
    if (n === 0) return;
    const counts = windowCounts(a.outputSize, a);
    const taps = numelOf(a.kernel);
    const meta = Uint32Array.from([
      n, out.shape[1], taps, cols.shape[2], numelOf(a.outputSize), out.offset, ...cols.strides, cols.offset,
      ...a.outputSize.flatMap((s, d) => [s, a.kernel[d], a.stride[d], a.padding[d], a.dilation[d], counts[d]]),
    ]);
    const ops = this.operands([cols], out);
    this.routine(foldKernel(ops[0], a.outputSize.length), ops, [cols], out, meta, n);
  }

  /** Random numbers are drawn on the host, from Kiln's one generator (so every device gives the same values), and written after the recorded work. */
  private random(out: View, a: RandomAttrs): void {
    const n = numelOf(out.shape);
    if (n === 0) return;
    const values = a.dtype === 'int32' ? new Int32Array(n) : new Float32Array(n);
    drawRandom(values, a.distribution, a.a, a.b);
    const words = out.dtype === 'float16' ? Uint16Array.from(values, (v) => f32ToF16(v)) : values;
    // writeBuffer runs before the next submit, so everything recorded so far is submitted first.
    this.deferred.beforeKernel(bufferOf(out), isWhole(out), []);
    this.flush();
    const bytes = out.dtype === 'float16' ? 2 : 4;
    this.gpu.queue.writeBuffer((out.storage as GpuStorage).buffer, out.offset * bytes, words.buffer, words.byteOffset, words.byteLength);
  }
}
