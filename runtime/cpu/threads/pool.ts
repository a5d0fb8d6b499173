// A pool of worker threads that run Wasm kernel exports on the shared heap.
//
// `runTasks(kernel, name, tasks, scratchBytes)` calls export `name` once per task, with the task's
// int args followed by the address of a scratch area private to the thread making the call. The
// calling thread takes tasks too, and returns once every task is done; tasks are claimed one at a
// time, so a worker that is slow to wake (a busy machine) just takes fewer. Workers exist only in
// Node (worker_threads) with a shared heap; elsewhere, or with threadCount() 1, every task runs on
// the calling thread. The workers are created on the first job that wants them, are unref()'d (they
// never keep a process alive) and sleep in Atomics.wait between jobs.
import type { MessagePort, Worker } from 'node:worker_threads';
import { ScratchArea, type WasmHeap } from '../wasm/heap.js';
import type { WasmKernel } from '../wasm/kernel.js';
import { CTL, CTL_WORDS, MAX_THREADS, WORKER_SOURCE, type KernelMessage, type WorkerInit } from './protocol.js';
import { nodeProcess, threadCount } from './thread-count.js';

type WorkerThreads = typeof import('node:worker_threads');

/** Polls of the done counter before the calling thread sleeps in Atomics.wait: ~20 us (an Atomics.load is ~20 ns here). */
const SPIN_BEFORE_WAIT = 1000;
type KernelFn = (...args: number[]) => void;

/** Node's worker_threads, loaded synchronously without a static import (browser bundles stay free of node: modules); undefined elsewhere. */
function workerThreads(): WorkerThreads | undefined {
  return nodeProcess()?.getBuiltinModule?.('node:worker_threads') as WorkerThreads | undefined;
}

/** Per-participant scratch areas (index 0: the calling thread), grown on demand. */
class ScratchAreas {
  private readonly areas: ScratchArea[] = [];
  constructor(private readonly heap: WasmHeap) {}

  /** The address of participant i's area, at least `bytes` long. */
  get(i: number, bytes: number): number {
    return (this.areas[i] ??= new ScratchArea(this.heap)).get(bytes);
  }
}

const scratchByHeap = new WeakMap<WasmHeap, ScratchAreas>();
function scratchAreas(heap: WasmHeap): ScratchAreas {
  let s = scratchByHeap.get(heap);
  if (!s) scratchByHeap.set(heap, (s = new ScratchAreas(heap)));
  return s;
}

/** Position of each export among the module's function exports (the workers index them the same way). */
const exportIndexCache = new WeakMap<WebAssembly.Module, Map<string, number>>();
function exportIndex(module: WebAssembly.Module, name: string): number {
  let m = exportIndexCache.get(module);
  if (!m) {
    m = new Map(WebAssembly.Module.exports(module).filter((e) => e.kind === 'function').map((e, i) => [e.name, i]));
    exportIndexCache.set(module, m);
  }
  const i = m.get(name);
  if (i === undefined) throw new Error(`runTasks: the kernel has no function export '${name}'`);
  return i;
}

class Pool {
  private readonly workers: Worker[] = [];
  private readonly ports: MessagePort[] = [];
  private readonly sent = new Map<number, WebAssembly.Module>();
  private readonly ctl: Int32Array;
  private readonly ctlAddr: number;
  /** The tasks' int args, read by the workers. */
  private readonly args: ScratchArea;

  constructor(private readonly heap: WasmHeap, private readonly wt: WorkerThreads) {
    this.ctlAddr = heap.allocBytes(CTL_WORDS * 4);
    this.ctl = new Int32Array(heap.buffer, this.ctlAddr, CTL_WORDS);
    this.ctl.fill(0);
    this.args = new ScratchArea(heap);
  }

  get size(): number {
    return this.workers.length;
  }

  /** Starts workers until there are `n` (they start asynchronously; tasks do not wait for them). */
  ensureWorkers(n: number): void {
    while (this.workers.length < n) {
      const index = this.workers.length + 1;
      const { port1, port2 } = new this.wt.MessageChannel();
      const init: WorkerInit = { memory: this.heap.memory, port: port2, ctlAddr: this.ctlAddr, index };
      const worker = new this.wt.Worker(WORKER_SOURCE, { eval: true, workerData: init, transferList: [port2] });
      worker.unref();
      port1.unref();
      this.workers.push(worker);
      this.ports.push(port1);
      for (const [id, module] of this.sent) port1.postMessage({ id, module } satisfies KernelMessage);
    }
  }

  private send(kernel: WasmKernel): void {
    if (this.sent.has(kernel.id)) return;
    this.sent.set(kernel.id, kernel.module);
    for (const p of this.ports) p.postMessage({ id: kernel.id, module: kernel.module } satisfies KernelMessage);
  }

  run(kernel: WasmKernel, name: string, tasks: readonly (readonly number[])[], scratchBytes: number, workers: number): void {
    const ctl = this.ctl, n = tasks.length, nargs = tasks[0].length;
    // Everything that can throw happens before the job is published.
    const exp = exportIndex(kernel.module, name);
    this.send(kernel);
    const scratch = scratchAreas(this.heap);
    // Allocate before publishing (allocation may grow the memory).
    const scratchPtrs = Array.from({ length: workers + 1 }, (_, i) => scratch.get(i, scratchBytes));
    const argBytes = n * nargs * 4;
    const argsPtr = this.args.get(argBytes);
    const argView = new Int32Array(this.heap.buffer, argsPtr, n * nargs);
    for (let t = 0; t < n; t++) {
      if (tasks[t].length !== nargs) throw new Error('runTasks: every task needs the same number of args');
      argView.set(tasks[t], t * nargs);
    }

    Atomics.add(ctl, CTL.SEQ, 1); // odd: writing
    if (Atomics.load(ctl, CTL.NEXT) > 1 << 30) {
      Atomics.store(ctl, CTL.NEXT, 0);
      Atomics.store(ctl, CTL.DONE, 0);
    }
    const base = Atomics.load(ctl, CTL.NEXT), end = base + n;
    Atomics.store(ctl, CTL.BASE, base);
    Atomics.store(ctl, CTL.END, end);
    Atomics.store(ctl, CTL.KERNEL, kernel.id);
    Atomics.store(ctl, CTL.EXPORT, exp);
    Atomics.store(ctl, CTL.NARGS, nargs);
    Atomics.store(ctl, CTL.ARGS, argsPtr | 0);
    Atomics.store(ctl, CTL.WORKERS, workers);
    Atomics.store(ctl, CTL.ERROR, 0);
    for (let i = 0; i <= workers; i++) Atomics.store(ctl, CTL.SCRATCH + i, scratchPtrs[i] | 0);
    Atomics.add(ctl, CTL.SEQ, 1); // even: published
    Atomics.notify(ctl, CTL.SEQ);

    // The calling thread's share: claim tasks like a worker does.
    const fn = kernel.instance.exports[name] as KernelFn;
    let error: unknown;
    for (;;) {
      const t = Atomics.load(ctl, CTL.NEXT);
      if (t >= end) break;
      if (Atomics.compareExchange(ctl, CTL.NEXT, t, t + 1) !== t) continue;
      try {
        if (error === undefined) fn(...tasks[t - base], scratchPtrs[0]);
      } catch (e) {
        error = e;
      }
      Atomics.add(ctl, CTL.DONE, 1);
    }
    // Poll a little before sleeping: the workers usually finish about when we do, and a futex sleep
    // and wake-up cost more (2 threads, best of 3000 on a busy machine: 160^3 120 -> 99 us, 32x1000x100
    // 112 -> 98; polling 20x longer measured the same).
    for (let i = 0; i < SPIN_BEFORE_WAIT && Atomics.load(ctl, CTL.DONE) < end; i++);
    for (let d = Atomics.load(ctl, CTL.DONE); d < end; d = Atomics.load(ctl, CTL.DONE)) Atomics.wait(ctl, CTL.DONE, d);
    if (error !== undefined) throw error;
    if (Atomics.load(ctl, CTL.ERROR) !== 0) throw new Error(`runTasks: export '${name}' threw in a worker thread`);
  }

  /** Makes every worker exit (their threads end; the pool is dropped). */
  async close(): Promise<void> {
    Atomics.add(this.ctl, CTL.SEQ, 1);
    Atomics.store(this.ctl, CTL.QUIT, 1);
    Atomics.add(this.ctl, CTL.SEQ, 1);
    Atomics.notify(this.ctl, CTL.SEQ);
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.heap.freeBytes(this.ctlAddr);
    this.args.trim(0);
  }
}

let pool: Pool | undefined;

/** The byte address of at least `bytes` bytes of scratch for the calling thread (what runTasks passes it), for callers that skip runTasks when there is one task. */
export function callingThreadScratch(heap: WasmHeap, bytes: number): number {
  return scratchAreas(heap).get(0, bytes);
}

/**
 * Calls export `name` of `kernel` once per task: `fn(...task, scratch)`, where scratch is the byte
 * address of `scratchBytes` bytes that only the thread making the call uses meanwhile. Tasks run on
 * the calling thread and up to threadCount() - 1 worker threads; returns when all are done, and
 * rethrows if any call threw. Every task has the same number of args.
 */
export function runTasks(kernel: WasmKernel, name: string, tasks: readonly (readonly number[])[], scratchBytes: number): void {
  if (tasks.length === 0) return;
  const workers = Math.min(threadCount(), tasks.length, MAX_THREADS) - 1;
  const wt = workers > 0 && kernel.heap.shared ? workerThreads() : undefined;
  if (!wt) {
    const fn = kernel.instance.exports[name] as KernelFn | undefined;
    if (typeof fn !== 'function') throw new Error(`runTasks: the kernel has no function export '${name}'`);
    const scratch = callingThreadScratch(kernel.heap, scratchBytes);
    for (const t of tasks) fn(...t, scratch);
    return;
  }
  if (pool === undefined) pool = new Pool(kernel.heap, wt);
  pool.ensureWorkers(workers);
  pool.run(kernel, name, tasks, scratchBytes, workers);
}

/**
 * [start, length] pieces of [0, extent) for `parts` tasks: each piece a multiple of `unit` long
 * (a register tile, say) but the last, fewer pieces when the extent is short.
 */
export function splitRange(extent: number, parts: number, unit = 1): [number, number][] {
  const chunk = Math.max(unit, Math.ceil(Math.ceil(extent / parts) / unit) * unit);
  const pieces: [number, number][] = [];
  for (let s = 0; s < extent; s += chunk) pieces.push([s, Math.min(chunk, extent - s)]);
  return pieces;
}

/** Worker threads started so far. */
export function workerCount(): number {
  return pool?.size ?? 0;
}

/** Stops every worker thread (a later job starts new ones). Resolves when they have exited. */
export async function shutdownThreads(): Promise<void> {
  const p = pool;
  pool = undefined;
  if (p) await p.close();
}
