// The pool's control block: Int32 words in the shared heap that the main thread and the workers
// read and write with Atomics, and the worker's source, which follows the same layout.
//
// A job is published like a seqlock: SEQ goes odd, the fields are written, SEQ goes even and every
// worker waiting on SEQ is woken. Tasks are numbered by one counter that only grows (NEXT), and a
// job owns the numbers [BASE, END); a participant claims a task with compareExchange on NEXT only
// while NEXT is inside the job it read, so a worker that wakes late can never claim a task of a
// newer job with an older job's fields. DONE counts finished tasks; the job is over at DONE = END.

export const CTL = {
  SEQ: 0,
  NEXT: 1,
  DONE: 2,
  BASE: 3,
  END: 4,
  /** WasmKernel.id of the job's kernel. */
  KERNEL: 5,
  /** Index of the export among the module's function exports (WebAssembly.Module.exports order). */
  EXPORT: 6,
  /** Int args per task. */
  NARGS: 7,
  /** Byte address of the tasks' args, NARGS Int32s per task. */
  ARGS: 8,
  /** Workers 1..WORKERS take part in the job (the main thread is participant 0). */
  WORKERS: 9,
  /** Set to 1 by a participant whose call threw. */
  ERROR: 10,
  /** Set to 1 to make the workers exit. */
  QUIT: 11,
  /** SCRATCH + i: byte address of participant i's scratch area. */
  SCRATCH: 16,
} as const;

/** Participants (main thread included) the control block has room for. */
export const MAX_THREADS = 64;
export const CTL_WORDS = CTL.SCRATCH + MAX_THREADS;

/** Data every worker starts with (structured-cloned: a shared Memory and a Module clone fine). */
export interface WorkerInit {
  memory: WebAssembly.Memory;
  /** The port kernels arrive on: { id, module } messages, read with receiveMessageOnPort. */
  port: unknown;
  ctlAddr: number;
  /** The worker's participant number, >= 1. */
  index: number;
}

/** A kernel sent to the workers. */
export interface KernelMessage {
  id: number;
  module: WebAssembly.Module;
}

/**
 * How long a worker polls the job word after a job before it sleeps (milliseconds). Long enough to
 * catch the next GEMM of a batch of panels or conv products; short, because a polling thread slows
 * the calling thread's own work on this 2-vCPU machine (a spin loop on the other vCPU made a
 * single-threaded training step 25 % slower): ConvNet step on 2 threads, 3 runs each: 0.3 ms
 * 8.4-8.7 ms/step, 2 ms 8.9-9.8.
 */
const SPIN_MS = 0.3;

/**
 * The worker's program (CommonJS, run with `new Worker(src, { eval: true })`): instantiate kernels
 * on the shared memory as they are needed (with the import object compileKernel uses), and run
 * tasks of each job until QUIT.
 */
export const WORKER_SOURCE = `'use strict';
const { workerData, receiveMessageOnPort } = require('node:worker_threads');
const { memory, port, ctlAddr, index } = workerData;
const C = ${JSON.stringify(CTL)};
const ctl = new Int32Array(memory.buffer, ctlAddr, ${CTL_WORDS});
const kernels = new Map(); // id -> the module's function exports, in order

function exportsOf(id) {
  let fns = kernels.get(id);
  while (fns === undefined) {
    const msg = receiveMessageOnPort(port);
    if (msg === undefined) throw new Error('kiln worker ' + index + ': kernel ' + id + ' was never sent');
    const { id: got, module } = msg.message;
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    kernels.set(got, WebAssembly.Module.exports(module).filter((e) => e.kind === 'function').map((e) => instance.exports[e.name]));
    fns = kernels.get(id);
  }
  return fns;
}

let seen = 0;
for (;;) {
  // Spin a while before sleeping: a training step's kernels come every few hundred microseconds,
  // and waking a sleeping thread (a futex) took longer than that to be noticed, so the calling
  // thread had already claimed every task itself.
  for (let until = performance.now() + ${SPIN_MS}; Atomics.load(ctl, C.SEQ) === seen && performance.now() < until; );
  Atomics.wait(ctl, C.SEQ, seen);
  let seq, base, end, kernel, exp, nargs, args, workers, scratch;
  for (;;) {
    seq = Atomics.load(ctl, C.SEQ);
    if (seq & 1) continue; // the main thread is writing a job
    base = Atomics.load(ctl, C.BASE);
    end = Atomics.load(ctl, C.END);
    kernel = Atomics.load(ctl, C.KERNEL);
    exp = Atomics.load(ctl, C.EXPORT);
    nargs = Atomics.load(ctl, C.NARGS);
    args = Atomics.load(ctl, C.ARGS) >>> 0;
    workers = Atomics.load(ctl, C.WORKERS);
    scratch = Atomics.load(ctl, C.SCRATCH + index);
    if (Atomics.load(ctl, C.SEQ) === seq) break;
  }
  seen = seq;
  if (Atomics.load(ctl, C.QUIT) !== 0) break;
  if (index > workers) continue;
  let fn;
  for (;;) {
    const t = Atomics.load(ctl, C.NEXT);
    if (t < base || t >= end) break;
    if (Atomics.compareExchange(ctl, C.NEXT, t, t + 1) !== t) continue;
    try {
      fn ??= exportsOf(kernel)[exp];
      fn(...new Int32Array(memory.buffer, args + (t - base) * nargs * 4, nargs), scratch);
    } catch (e) {
      Atomics.store(ctl, C.ERROR, 1);
    }
    Atomics.add(ctl, C.DONE, 1);
    Atomics.notify(ctl, C.DONE);
  }
}
port.close();
`;
