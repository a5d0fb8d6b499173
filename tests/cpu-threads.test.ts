// The worker-thread pool (runtime/cpu/threads/): tasks run exactly once, on the calling thread and
// the workers, each participant with its own scratch; errors come back; the thread count is
// configurable; and a process that used the pool still exits on its own.
import { afterAll, describe, expect, it, vi } from 'vitest';
import { FuncBuilder, I32 } from '../runtime/cpu/wasm/emit.js';
import { compileKernel, type WasmKernel } from '../runtime/cpu/wasm/kernel.js';
import { wasmHeap } from '../runtime/cpu/wasm/heap.js';
import { runTasks, shutdownThreads, workerCount } from '../runtime/cpu/threads/pool.js';
import { setThreadCount, threadCount } from '../runtime/cpu/threads/thread-count.js';
import { modulePath, runTsChild } from './helpers.js';

/**
 * Test exports:
 * - tag(dst, spins, scratch): counts down `spins` (busy work, so a job lasts long enough for a
 *   worker to join in), then stores the scratch address at dst and adds 1 to the i32 at scratch.
 * - trap(addr, scratch): loads from addr (out of bounds for a huge address: a trap).
 */
function testKernel(): WasmKernel {
  const tag = new FuncBuilder('tag', [I32, I32, I32]);
  const n = tag.local(I32);
  tag.get(1).set(n);
  tag.get(n).i32Eqz().i32Eqz().if();
  tag.loop().get(n).i32Const(1).i32Sub().tee(n).brIf(0).end();
  tag.end();
  tag.get(0).get(2).i32Store();
  tag.get(2).get(2).i32Load().i32Const(1).i32Add().i32Store();
  const trap = new FuncBuilder('trap', [I32, I32]);
  trap.get(0).i32Load().i32Eqz().if().end();
  return compileKernel([tag, trap]);
}

const heap = wasmHeap()!;
const canThread = heap.shared && typeof process.getBuiltinModule === 'function';

describe('thread pool', () => {
  afterAll(async () => {
    setThreadCount(undefined);
    await shutdownThreads();
  });

  const kernel = testKernel();
  const SCRATCH = 64;

  /** Runs `tasks` tag tasks writing into a fresh heap array; returns the scratch address each task saw. */
  function tagJob(tasks: number, spins: number): Int32Array {
    const owner = {};
    const dst = heap.allocArray('int32', tasks, owner) as Int32Array;
    const at = heap.addressOf(dst);
    runTasks(kernel, 'tag', Array.from({ length: tasks }, (_, t) => [at + 4 * t, spins]), SCRATCH);
    const seen = new Int32Array(heap.buffer, at, tasks).slice();
    heap.release(owner, dst);
    return seen;
  }

  /** Runs jobs of busy tasks until the worker (started asynchronously by the first) has taken some; returns the scratch addresses seen. */
  function untilWorkerJoins(): Set<number> {
    const participants = new Set<number>();
    const deadline = Date.now() + 20_000;
    while (participants.size < 2 && Date.now() < deadline) {
      const seen = tagJob(16, 200_000);
      expect(seen.every((s) => s > 0)).toBe(true);
      for (const s of seen) participants.add(s);
    }
    return participants;
  }

  it('runs every task exactly once on one thread, with one scratch area', () => {
    setThreadCount(1);
    const seen = tagJob(9, 0);
    expect(new Set(seen).size).toBe(1);
    expect(seen[0]).toBeGreaterThan(0);
  });

  it.runIf(canThread)('shares tasks with worker threads, each participant with its own scratch', () => {
    setThreadCount(2);
    const participants = untilWorkerJoins();
    expect(workerCount()).toBe(1);
    expect(participants.size).toBe(2);
    // Each participant counted its own tasks in its own scratch; together they ran each task once.
    const view = new Int32Array(heap.buffer);
    const before = [...participants].map((p) => view[p / 4]);
    const seen = tagJob(50, 1000);
    const after = [...participants].map((p) => view[p / 4]);
    expect(after.reduce((s, x) => s + x, 0) - before.reduce((s, x) => s + x, 0)).toBe(50);
    expect(seen.every((s) => participants.has(s))).toBe(true);
  });

  it.runIf(canThread)('runs many small jobs in a row without losing or repeating a task', () => {
    setThreadCount(2);
    for (let j = 0; j < 500; j++) {
      const seen = tagJob(1 + (j % 5), j % 3 === 0 ? 3000 : 0);
      expect(seen.every((s) => s > 0)).toBe(true);
    }
  });

  it('reports a call that traps, on either thread, and stays usable', () => {
    for (const threads of [1, 2]) {
      setThreadCount(threads);
      expect(() => runTasks(kernel, 'trap', [[-8], [-8], [-8], [-8]], SCRATCH)).toThrow();
      expect(tagJob(4, 0).every((s) => s > 0)).toBe(true);
    }
  });

  it('rejects unknown exports and mismatched args', () => {
    setThreadCount(1);
    expect(() => runTasks(kernel, 'nope', [[1]], SCRATCH)).toThrow(/no function export 'nope'/);
    if (canThread) {
      setThreadCount(2);
      expect(() => runTasks(kernel, 'nope', [[1], [2]], SCRATCH)).toThrow(/no function export 'nope'/);
      expect(() => runTasks(kernel, 'tag', [[1, 2], [3]], SCRATCH)).toThrow(/same number of args/);
      // The pool still shares work after refusing a job.
      expect(untilWorkerJoins().size).toBe(2);
    }
  });

  it('takes the count from setThreadCount, else KILN_THREADS, else the cores', () => {
    setThreadCount(3);
    expect(threadCount()).toBe(3);
    expect(() => setThreadCount(0)).toThrow(/positive integer/);
    vi.stubEnv('KILN_THREADS', '5');
    try {
      setThreadCount(undefined);
      expect(threadCount()).toBe(5);
      vi.stubEnv('KILN_THREADS', 'many');
      setThreadCount(undefined);
      expect(() => threadCount()).toThrow(/KILN_THREADS/);
      vi.stubEnv('KILN_THREADS', '');
      setThreadCount(undefined);
      expect(threadCount()).toBeGreaterThanOrEqual(1);
    } finally {
      vi.unstubAllEnvs();
      setThreadCount(undefined);
    }
  });

  it.runIf(canThread)('does not keep a process alive after a threaded matmul', () => {
    const r = runTsChild(
      `import { matmulF32Simd } from ${modulePath('runtime/cpu/wasm/matmul-simd.ts')};\n` +
        `const a = new Float32Array(512 * 512).fill(1);\n` +
        `const out = new Float32Array(512 * 512);\n` +
        `const op = { data: a, offset: 0, rowStride: 512, colStride: 1 };\n` +
        `matmulF32Simd(512, 512, 512, op, op, out, 0);\n` +
        `console.log('sum', out[0], out[512 * 512 - 1]);\n`,
      { KILN_THREADS: '2' },
    );
    expect(r.stdout).toContain('sum 512 512');
    expect(r.status).toBe(0);
  });
});
