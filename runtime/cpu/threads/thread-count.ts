// How many threads CPU kernels may use: KILN_THREADS, else the machine's core count; 1 = no worker
// threads. Read through globalThis so browser bundles need no `process`.

interface NodeProcessLike {
  env?: Record<string, string | undefined>;
  getBuiltinModule?: (id: string) => unknown;
}

/** Node's `process`, or undefined in a browser. */
export function nodeProcess(): NodeProcessLike | undefined {
  return (globalThis as { process?: NodeProcessLike }).process;
}

function coreCount(): number {
  const os = nodeProcess()?.getBuiltinModule?.('node:os') as typeof import('node:os') | undefined;
  if (os) return os.availableParallelism?.() ?? os.cpus().length;
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  return nav?.hardwareConcurrency ?? 1;
}

function fromEnvironment(): number {
  const env = nodeProcess()?.env?.KILN_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new Error(`KILN_THREADS must be a positive integer, got '${env}'`);
    return n;
  }
  return Math.max(1, coreCount());
}

let count: number | undefined;

/** The number of threads (the calling one included) a kernel may split its work over. */
export function threadCount(): number {
  count ??= fromEnvironment();
  return count;
}

/** Sets threadCount() from now on (tests, benchmarks); `undefined` goes back to KILN_THREADS / the core count. */
export function setThreadCount(n: number | undefined): void {
  if (n !== undefined && (!Number.isInteger(n) || n < 1)) throw new Error(`setThreadCount: expected a positive integer, got ${n}`);
  count = n;
}
