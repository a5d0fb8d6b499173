// A compiled Wasm kernel module that runs on the CPU backend's heap (./heap.ts): it imports the
// heap's memory as env.memory, so it reads operands where they lie, and worker threads
// (runtime/cpu/threads/pool.ts) can instantiate the same module on the same memory.
import { emitModule, type FuncBuilder } from './emit.js';
import { wasmHeap, type WasmHeap } from './heap.js';
import { nodeProcess } from '../threads/thread-count.js';

/**
 * KILN_WASM=0 keeps every CPU kernel on its JS version, the reference (read once, at load; a
 * browser has no process, and keeps Wasm).
 */
export const wasmKernelsEnabled = nodeProcess()?.env?.KILN_WASM !== '0';

export interface WasmKernel {
  /** Unique per kernel, so worker threads can cache their instances of it. */
  readonly id: number;
  readonly module: WebAssembly.Module;
  /** The main thread's instance. */
  readonly instance: WebAssembly.Instance;
  readonly heap: WasmHeap;
}

let nextId = 1;

/**
 * Emits `funcs` as a module importing the heap's memory, compiles and instantiates it. Throws when
 * there is no heap (no WebAssembly). A shared import must declare a maximum no smaller than the
 * memory's; 65536 pages (4 GiB) is the largest any heap reserves.
 */
export function compileKernel(funcs: FuncBuilder[]): WasmKernel {
  const heap = wasmHeap();
  if (!heap) throw new Error('compileKernel: this engine has no WebAssembly');
  const bytes = emitModule(funcs, heap.shared ? { minPages: 1, maxPages: 65536, shared: true } : { minPages: 1, shared: false });
  const module = new WebAssembly.Module(bytes);
  const instance = new WebAssembly.Instance(module, { env: { memory: heap.memory } }); // as the workers do (threads/protocol.ts)
  return { id: nextId++, module, instance, heap };
}
