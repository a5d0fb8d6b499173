// Times the CPU matmul kernels (the WebAssembly SIMD one on 1 and 2 threads, with operands copied
// in or already in the Wasm heap, and the plain-JS one it falls back to) against the plain triple
// loop at the sizes Kiln cares about.
//   npx tsx bench/matmul.ts [name]     (or: npm run bench; with a name, only the cases whose name contains it)
// Prints a markdown table; bench/RESULTS.md records a run.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { matmulNaive, type MatOperand } from '../runtime/cpu/matmul.js';
import { matmulF32Simd, matmulSimdAvailable, relaxedSimdAvailable } from '../runtime/cpu/wasm/matmul-simd.js';
import { wasmHeap } from '../runtime/cpu/wasm/heap.js';
import { setThreadCount } from '../runtime/cpu/threads/thread-count.js';

type Fn = (M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: Float32Array, outOffset: number) => void;

// The JS kernel: a second instance of matmul.ts (the query string makes it a separate module),
// loaded with KILN_WASM=0 so that float32 stays on the JS kernel.
const previous = process.env.KILN_WASM;
process.env.KILN_WASM = '0';
const jsModule = '../runtime/cpu/matmul.js?kiln-js';
const { matmul: matmulJs } = (await import(jsModule)) as typeof import('../runtime/cpu/matmul.js');
if (previous === undefined) delete process.env.KILN_WASM;
else process.env.KILN_WASM = previous;
if (!matmulSimdAvailable()) throw new Error('this engine has no WebAssembly SIMD');

interface Case {
  name: string;
  M: number;
  N: number;
  K: number;
  a: MatOperand;
  b: MatOperand;
  /** The same operands copied into the Wasm heap (used in place there). */
  aHeap: MatOperand;
  bHeap: MatOperand;
  /** The naive loop at 1024^3 takes seconds a run, so it gets fewer. */
  naiveRuns: number;
}

function random(n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.random() * 2 - 1;
  return x;
}

const contiguous = (data: Float32Array, cols: number): MatOperand => ({ data, offset: 0, rowStride: cols, colStride: 1 });

const heapOwners: object[] = [];
/** x's data copied into the Wasm heap, same offset and strides. */
function inHeap(x: MatOperand): MatOperand {
  const owner = {};
  heapOwners.push(owner);
  const data = wasmHeap()?.allocArray('float32', x.data.length, owner) as Float32Array | undefined;
  if (!data) throw new Error('the Wasm heap cannot hold arrays here (no SharedArrayBuffer)');
  data.set(x.data);
  return { ...x, data };
}

function makeCase(name: string, M: number, N: number, K: number, a: MatOperand, b: MatOperand, naiveRuns: number): Case {
  return { name, M, N, K, a, b, aHeap: inHeap(a), bHeap: inHeap(b), naiveRuns };
}

// The seed model's first layer: x [64, 1000], w1 [1000, 100], and the gradient g [64, 100] of its output.
const x = random(64 * 1000), w1 = random(1000 * 100), g = random(64 * 100);
const x4096 = random(4096 * 1000);
const big1 = random(1024 * 1024), big2 = random(1024 * 1024);
// The seed ConvNet's weight gradients, dW = dY @ colsᵀ, with colsᵀ a transposed view (B(k, j) = cols[j * K + k]):
// the dot-product GEMM's shapes (runtime/cpu/wasm/gemm-dot.ts).
const dy1 = random(10 * 36864), cols1 = random(25 * 36864), dy2 = random(20 * 4096), cols2 = random(250 * 4096);
const transposed = (data: Float32Array, rows: number): MatOperand => ({ data, offset: 0, rowStride: 1, colStride: rows });

const allCases: Case[] = [
  makeCase('x.mm(w1)', 64, 100, 1000, contiguous(x, 1000), contiguous(w1, 100), 15),
  // x^T @ g, the weight gradient, with x^T a strided view of x (no copy): A(i, k) = x[k * 1000 + i].
  makeCase('x^T @ g (x^T strided)', 1000, 100, 64, { data: x, offset: 0, rowStride: 1, colStride: 1000 }, contiguous(g, 100), 15),
  // The first layer at inference batch 4096.
  makeCase('x4096.mm(w1)', 4096, 100, 1000, contiguous(x4096, 1000), contiguous(w1, 100), 2),
  makeCase('1024^3', 1024, 1024, 1024, contiguous(big1, 1024), contiguous(big2, 1024), 2),
  // x @ w1ᵀ with w1 stored [100, 1000] (a Linear layer's weight).
  makeCase('x @ w1^T (w1^T transposed)', 64, 100, 1000, contiguous(x, 1000), transposed(w1, 1000), 15),
  makeCase('conv1 dW = dy @ cols^T', 10, 25, 36864, contiguous(dy1, 36864), transposed(cols1, 36864), 3),
  makeCase('conv2 dW = dy @ cols^T', 20, 250, 4096, contiguous(dy2, 4096), transposed(cols2, 4096), 3),
];
const filter = process.argv[2];
const cases = filter ? allCases.filter((c) => c.name.includes(filter)) : allCases;

/** The Wasm GEMM's variants: thread count, and whether operands and out lie in the heap. */
const wasmVariants = [
  { name: '1T', threads: 1, heap: false },
  { name: '2T', threads: 2, heap: false },
  { name: '1T heap', threads: 1, heap: true },
  { name: '2T heap', threads: 2, heap: true },
] as const;

/**
 * Milliseconds of each timed run of every Wasm variant, the JS kernel and naive on c, after warm-up
 * runs (so the JIT has optimized all of them). The runs alternate (one naive, then kilnPerNaive of
 * the JS kernel and 4 * kilnPerNaive of each Wasm variant, round-robin), so a busy spell on a shared
 * machine hits every column rather than skewing ratios.
 */
function timeAll(c: Case, kilnPerNaive: number): { wasm: number[][]; js: number[]; naive: number[] } {
  const out = new Float32Array(c.M * c.N);
  const outHeap = inHeap(contiguous(out, c.N)).data as Float32Array;
  const run = (fn: Fn, a = c.a, b = c.b, o: Float32Array = out): number => {
    const t0 = performance.now();
    fn(c.M, c.N, c.K, a, b, o, 0);
    return performance.now() - t0;
  };
  const runWasm = (v: (typeof wasmVariants)[number]): number => {
    setThreadCount(v.threads);
    return v.heap ? run(matmulF32Simd, c.aHeap, c.bHeap, outHeap) : run(matmulF32Simd);
  };
  for (const v of wasmVariants) for (let i = 0; i < 5; i++) runWasm(v);
  for (let i = 0; i < 5; i++) run(matmulJs);
  // For the big cases the earlier ones have already warmed the naive loop up.
  if (c.naiveRuns > 2) for (let i = 0; i < 3; i++) run(matmulNaive);
  const wasm: number[][] = wasmVariants.map(() => []), js: number[] = [], naive: number[] = [];
  for (let r = 0; r < c.naiveRuns; r++) {
    naive.push(run(matmulNaive));
    for (let i = 0; i < kilnPerNaive; i++) js.push(run(matmulJs));
    // The Wasm kernel is fast enough to afford four times the runs.
    for (let i = 0; i < 4 * kilnPerNaive; i++) wasmVariants.forEach((v, j) => wasm[j].push(runWasm(v)));
  }
  setThreadCount(undefined);
  return { wasm, js, naive };
}

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

const gflops = (c: Case, ms: number) => (2 * c.M * c.N * c.K) / (ms * 1e6);

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1];
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? 'unknown';
}

console.log(
  `# matmul: ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${cpuModel()} (${cpus().length} cores; float32 operands; ` +
    `relaxed SIMD ${relaxedSimdAvailable() ? 'available (f32x4.relaxed_madd)' : 'not available (f32x4.mul + f32x4.add)'})\n`,
);
const wasmHeads = wasmVariants.map((v) => `wasm ${v.name} ms | GFLOP/s (best)`).join(' | ');
console.log(`| case | M x K @ K x N | ${wasmHeads} | js ms | js GFLOP/s (best) | naive ms | naive GFLOP/s (best) | 2T / 1T | wasm 1T / js | max rel. diff wasm | max rel. diff js |`);
console.log(`|---|---|${'---:|---:|'.repeat(wasmVariants.length)}---:|---:|---:|---:|---:|---:|---:|---:|`);
for (const c of cases) {
  const t = timeAll(c, c.naiveRuns > 2 ? 2 : 4);
  const wasmMs = t.wasm.map(median), jsMs = median(t.js), naiveMs = median(t.naive);
  const best = (ms: number[]) => gflops(c, Math.min(...ms)).toFixed(2);

  // Sanity check: the kernels agree with naive (float32 rounding differs only in the order of the sums).
  const ref = new Float32Array(c.M * c.N);
  matmulNaive(c.M, c.N, c.K, c.a, c.b, ref, 0);
  const relDiff = (fn: Fn): string => {
    const out = new Float32Array(c.M * c.N);
    fn(c.M, c.N, c.K, c.a, c.b, out, 0);
    let diff = 0, scale = 0;
    for (let i = 0; i < out.length; i++) {
      diff = Math.max(diff, Math.abs(out[i] - ref[i]));
      scale = Math.max(scale, Math.abs(ref[i]));
    }
    return (diff / scale).toExponential(1);
  };
  const wasmCells = wasmMs.map((ms, j) => `${ms.toFixed(2)} | ${gflops(c, ms).toFixed(2)} (${best(t.wasm[j])})`).join(' | ');
  console.log(
    `| ${c.name} | ${c.M} x ${c.K} @ ${c.K} x ${c.N} | ${wasmCells} | ` +
      `${jsMs.toFixed(2)} | ${gflops(c, jsMs).toFixed(2)} (${best(t.js)}) | ` +
      `${naiveMs.toFixed(1)} | ${gflops(c, naiveMs).toFixed(2)} (${best(t.naive)}) | ${(wasmMs[0] / wasmMs[1]).toFixed(2)}x | ${(jsMs / wasmMs[0]).toFixed(1)}x | ` +
      `${relDiff(matmulF32Simd)} | ${relDiff(matmulJs)} |`,
  );
}
console.log(
  '\nms and GFLOP/s are medians (best run in parentheses) of 120 runs of each wasm variant, 30 js and 15 naive runs (32, 8 and 2 for the big cases), after warm-up.\n' +
    '"1T"/"2T": threads (setThreadCount); "heap": A, B and out lie in the shared Wasm heap and are used in place (no copy in or out).',
);
