// The backend contract. A backend owns memory on one device and runs primitive ops on it; it
// knows nothing of autograd, tracing or Modules. The CPU backend (runtime/cpu/) is the reference;
// WebGPU implements the same methods.
import type { DType, Layout, OpDef } from '../ir/index.js';

/** Host-side values of a tensor: bool is stored as one byte per element. */
export type HostArray = Float32Array | Float64Array | Int32Array | Uint8Array;

/** A block of device memory holding `length` elements of `dtype`. */
export interface Storage {
  readonly device: string;
  readonly dtype: DType;
  readonly length: number;
  /** Bumped by every in-place write; autograd compares it with the version it saved (shared by all views). */
  version: number;
  /** Device memory that is not garbage collected (WebGPU) is reference-counted by the tensors viewing it. */
  retain?(): void;
  release?(): void;
}

/** A strided window onto a storage: what every kernel reads and writes. */
export interface View extends Layout {
  readonly storage: Storage;
  readonly dtype: DType;
}

export interface Backend {
  /** The device name tensors carry (`'cpu'`, `'webgpu'`). */
  readonly device: string;

  /** The dtypes this device can hold; creating any other is an error naming the device. */
  supports(dtype: DType): boolean;

  /** New storage of `length` elements, filled with zeros. */
  alloc(dtype: DType, length: number): Storage;

  /** New storage holding a copy of `values` (already converted to `dtype`'s host array type). */
  upload(values: HostArray, dtype: DType): Storage;

  /** The values of a view, copied into a fresh contiguous host array in row-major order. Never blocks the device's queue. */
  read(view: View): Promise<HostArray>;

  /** As `read`, synchronously; devices that cannot (WebGPU) throw an error that says to await `read` instead. */
  readSync(view: View): HostArray;

  /**
   * Runs one primitive op: reads `inputs` (views of this device's storages, already broadcast to
   * the output shape for elementwise ops), writes every element of `out`, a contiguous view whose
   * memory may hold stale values (compiled plans reuse storage), so nothing may assume zeros.
   * `attrs` are the op's attributes, already checked by its shape rule.
   */
  run(op: OpDef, inputs: readonly View[], attrs: unknown, out: View): void;

  /**
   * Optional. A runner for one step of a compiled plan, made once and then called on every run in
   * place of `run(op, inputs, attrs, out)` with the same arguments: the op, attrs and the views'
   * shapes, strides, offsets and dtypes never change between runs, so what depends only on them
   * (loop shapes, kernel choice and compilation, argument layout) is decided here. What may change
   * is read at each call: which storage a view is bound to (a plan's inputs are rebound every run)
   * and where a storage's data lies (`adopt` moves it). Undefined: the step keeps calling `run`.
   */
  prepareStep?(op: OpDef, inputs: readonly View[], attrs: unknown, out: View): (() => void) | undefined;

  /** Copies `src` into `dst` element by element (same shape; dtypes may differ and are converted). Used by in-place ops and `.to()`. */
  copy(src: View, dst: View): void;

  /** Releases a storage's memory now (a no-op where the garbage collector does it). */
  free(storage: Storage): void;

  /** Submits work recorded so far (devices that batch commands: WebGPU); optional. */
  flush?(): void;

  /**
   * Optional. New zero-filled storage for long-lived data (a compiled plan's arena). The CPU puts
   * it in its WebAssembly heap, where its Wasm kernels (and worker threads) use it in place
   * instead of copying it in and out on every call. Devices without such a place omit it.
   */
  allocArena?(dtype: DType, length: number): Storage;

  /**
   * Optional. Moves a long-lived storage (the parameters and optimizer state a compiled plan
   * captures) to where allocArena puts memory, keeping its values and its identity: every view of
   * it sees the moved data. A no-op where it already lies there or cannot be moved.
   */
  adopt?(storage: Storage): void;

  /**
   * Optional. From now until `close()`, storages that `alloc` makes are temporaries: the backend
   * may put them where its kernels work fastest and free them all at `close()` (the CPU: its Wasm
   * heap). The caller promises that nothing it made while the scope was open and did not `pause`
   * for is used after `close()`. Scopes do not nest.
   */
  openTemporaryScope?(): TemporaryScope;
}

/** A scope of temporaries (Backend.openTemporaryScope). */
export interface TemporaryScope {
  /** Runs `fn` with allocations back to normal (for what must outlive the scope). */
  pause<R>(fn: () => R): R;
  /** Frees every temporary made in the scope. */
  close(): void;
}

/** Opens a temporary scope on every registered backend that has them; one scope over all of them. */
export function openTemporaryScopes(): TemporaryScope {
  const scopes = [...backends.values()].flatMap((b) => (b.openTemporaryScope ? [b.openTemporaryScope()] : []));
  return {
    pause: <R>(fn: () => R): R => scopes.reduceRight<() => R>((inner, s) => () => s.pause(inner), fn)(),
    close: () => scopes.forEach((s) => s.close()),
  };
}

/** The error every backend raises for an index outside its dimension (gather, scatterAdd and what is built on them), so all devices say the same. */
export function indexOutOfBounds(op: string, index: number, dim: number, size: number): RangeError {
  return new RangeError(`${op}: index ${index} is out of bounds for dimension ${dim} with size ${size}`);
}

const backends = new Map<string, Backend>();

export function registerBackend(backend: Backend): void {
  backends.set(backend.device, backend);
}

export function backendFor(device: string): Backend {
  const b = backends.get(device);
  if (b) return b;
  const known = [...backends.keys()].join(', ');
  const hint = device === 'webgpu' ? " (call 'await kiln.initWebGPU()' first)" : '';
  throw new Error(`unknown device '${device}'${hint}; available devices: ${known}`);
}
