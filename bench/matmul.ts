// Times the CPU matmul kernels (the WebAssembly SIMD one, and the plain-JS one it falls back to)
// against the plain triple loop at the sizes Kiln cares about.
//   npx tsx bench/matmul.ts        (or: npm run bench)
// Prints a markdown table; bench/RESULTS.md records a run.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { matmulNaive, type MatOperand } from '../runtime/cpu/matmul.js';
import { matmulF32Simd, matmulSimdAvailable, relaxedSimdAvailable } from '../runtime/cpu/wasm/matmul-simd.js';

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
  /** The naive loop at 1024^3 takes seconds a run, so it gets fewer. */
  naiveRuns: number;
}

function random(n: number): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = Math.random() * 2 - 1;
  return x;
}

const contiguous = (data: Float32Array, cols: number): MatOperand => ({ data, offset: 0, rowStride: cols, colStride: 1 });

// The seed model's first layer: x [64, 1000], w1 [1000, 100], and the gradient g [64, 100] of its output.
const x = random(64 * 1000), w1 = random(1000 * 100), g = random(64 * 100);
const big1 = random(1024 * 1024), big2 = random(1024 * 1024);

const cases: Case[] = [
  { name: 'x.mm(w1)', M: 64, N: 100, K: 1000, a: contiguous(x, 1000), b: contiguous(w1, 100), naiveRuns: 15 },
  // x^T @ g, the weight gradient, with x^T a strided view of x (no copy): A(i, k) = x[k * 1000 + i].
  { name: 'x^T @ g (x^T strided)', M: 1000, N: 100, K: 64, a: { data: x, offset: 0, rowStride: 1, colStride: 1000 }, b: contiguous(g, 100), naiveRuns: 15 },
  { name: '1024^3', M: 1024, N: 1024, K: 1024, a: contiguous(big1, 1024), b: contiguous(big2, 1024), naiveRuns: 2 },
];

/**
 * Milliseconds of each timed run of the Wasm kernel, the JS kernel and naive on c, after warm-up
 * runs (so the JIT has optimized all three). The runs alternate (one naive, then kilnPerNaive of
 * each kernel), so a busy spell on a shared machine hits every column rather than skewing ratios.
 */
function timeAll(c: Case, kilnPerNaive: number): { wasm: number[]; js: number[]; naive: number[] } {
  const out = new Float32Array(c.M * c.N);
  const run = (fn: Fn): number => {
    const t0 = performance.now();
    fn(c.M, c.N, c.K, c.a, c.b, out, 0);
    return performance.now() - t0;
  };
  for (let i = 0; i < 5; i++) run(matmulF32Simd);
  for (let i = 0; i < 5; i++) run(matmulJs);
  // At 1024^3 the earlier cases have already warmed the naive loop up.
  if (c.naiveRuns > 2) for (let i = 0; i < 3; i++) run(matmulNaive);
  const wasm: number[] = [], js: number[] = [], naive: number[] = [];
  for (let r = 0; r < c.naiveRuns; r++) {
    naive.push(run(matmulNaive));
    for (let i = 0; i < kilnPerNaive; i++) js.push(run(matmulJs));
    // The Wasm kernel is fast enough to afford four times the runs.
    for (let i = 0; i < 4 * kilnPerNaive; i++) wasm.push(run(matmulF32Simd));
  }
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
  `# matmul: ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${cpuModel()} (${cpus().length} cores; single-threaded, float32 operands; ` +
    `relaxed SIMD ${relaxedSimdAvailable() ? 'available (f32x4.relaxed_madd)' : 'not available (f32x4.mul + f32x4.add)'})\n`,
);
console.log('| case | M x K @ K x N | wasm ms | wasm GFLOP/s (best) | js ms | js GFLOP/s (best) | naive ms | naive GFLOP/s (best) | wasm / js | wasm / naive | max rel. diff wasm | max rel. diff js |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const c of cases) {
  const t = timeAll(c, c.naiveRuns > 2 ? 2 : 4);
  const wasmMs = median(t.wasm), jsMs = median(t.js), naiveMs = median(t.naive);
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
  console.log(
    `| ${c.name} | ${c.M} x ${c.K} @ ${c.K} x ${c.N} | ${wasmMs.toFixed(2)} | ${gflops(c, wasmMs).toFixed(2)} (${best(t.wasm)}) | ` +
      `${jsMs.toFixed(2)} | ${gflops(c, jsMs).toFixed(2)} (${best(t.js)}) | ` +
      `${naiveMs.toFixed(1)} | ${gflops(c, naiveMs).toFixed(2)} (${best(t.naive)}) | ${(jsMs / wasmMs).toFixed(1)}x | ${(naiveMs / wasmMs).toFixed(1)}x | ` +
      `${relDiff(matmulF32Simd)} | ${relDiff(matmulJs)} |`,
  );
}
console.log('\nms and GFLOP/s are medians (best run in parentheses) of 120 wasm, 30 js and 15 naive runs (32, 8 and 2 at 1024^3), after warm-up.');
