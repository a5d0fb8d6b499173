// Eager vs compiled (kiln.compile / kiln.compileTrainStep), side by side in one process, on the
// seed models: time per step, kernel launches per step and memory.
//   npx tsx --conditions=kiln-source bench/compile.ts          (about 15 s on a 2-core VM)
//   npx tsx --conditions=kiln-source bench/compile.ts --quick  (a few runs each, to try it out)
// Prints a markdown table; bench/RESULTS.md records a run.
//
// Each workload is built twice from the same weights (one model for eager, one for compiled), both
// are warmed up, then timed steps alternate between the two (eager first on even rounds, compiled
// first on odd ones, so a busy spell or a garbage collection hits both columns); the table shows
// medians. The two copies take the same steps in lockstep, so their losses are compared every
// round as a sanity check (warning above 1e-4 of the largest eager loss, as the tests measure).
//
// Counting: the CPU backend object is patched for the length of one measured step (and restored):
//   - kernels: calls of `cpu.run` (one primitive or fused kernel each). `cpu.copy` calls (eager
//     in-place updates, `cat`, the plan copying its outputs out and its updates back) are counted
//     apart, as "copies".
//   - memory: `cpu.alloc` (and `cpu.upload`) calls, summing the bytes of each storage created.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import * as kiln from 'kiln';
import { nn, optim, type Tensor } from 'kiln';
import { cpu, CpuStorage } from '../runtime/cpu/backend.js';
import { threadCount } from '../runtime/cpu/threads/thread-count.js';
import type { Storage } from '../runtime/backend.js';
import { MNISTConvNet } from '../models/mnist-convnet.js';
import { RNN, unrolledLoss } from '../models/rnn.js';
import { TwoLayerNet } from '../models/two-layer-net.js';
import { makeSequential } from '../examples/nn-sequential.js';

const QUICK = process.argv.includes('--quick');
const quiet = { log: () => {} };

interface Workload {
  name: string;
  /** One eager step; returns the loss (training) or the output (inference). */
  eager: () => Tensor;
  /** The same step, compiled. */
  compiled: () => Tensor;
  /** `.stats()` of the compiled step (after warm-up): kernels (forward + backward) and the plan's peakBytes. */
  stats: () => { kernels: number; peakBytes: number; detail: string };
  warmup: number;
  runs: number;
}

interface Counts {
  runs: number;
  copies: number;
  allocs: number;
  allocBytes: number;
  uploadBytes: number;
}

const bytesOf = (s: Storage) => (s instanceof CpuStorage ? s.data.byteLength : s.length * 4);

/** Runs `fn` once with the CPU backend's run/copy/alloc/upload wrapped by counters; restores them after. */
function count<T>(fn: () => T): { result: T; counts: Counts } {
  const c: Counts = { runs: 0, copies: 0, allocs: 0, allocBytes: 0, uploadBytes: 0 };
  const { run, copy, alloc, upload } = cpu;
  cpu.run = (op, inputs, attrs, out) => {
    c.runs++;
    return run.call(cpu, op, inputs, attrs, out);
  };
  cpu.copy = (src, dst) => {
    c.copies++;
    return copy.call(cpu, src, dst);
  };
  cpu.alloc = (dtype, length) => {
    const s = alloc.call(cpu, dtype, length);
    c.allocs++;
    c.allocBytes += bytesOf(s);
    return s;
  };
  cpu.upload = (values, dtype) => {
    const s = upload.call(cpu, values, dtype);
    c.uploadBytes += bytesOf(s);
    return s;
  };
  try {
    return { result: fn(), counts: c };
  } finally {
    Object.assign(cpu, { run, copy, alloc, upload });
  }
}

function twins<M extends nn.Module>(make: () => M): [M, M] {
  const a = make();
  const b = make();
  b.loadStateDict(a.stateDict());
  return [a, b];
}

/** An eager training step written as the seeds write it, and compileTrainStep on a twin. */
function trainPair<M extends nn.Module>(
  name: string, make: () => M, lossFn: (out: any, target: any) => Tensor, makeOpt: (p: nn.Parameter[]) => optim.Optimizer<any>,
  x: Tensor, y: Tensor, warmup: number, runs: number,
): Workload {
  const [m1, m2] = twins(make);
  const o1 = makeOpt(m1.parameters());
  const forward = m1 as unknown as (input: Tensor) => Tensor;
  const step = kiln.compileTrainStep(m2, lossFn, makeOpt(m2.parameters()), quiet);
  return {
    name, warmup, runs,
    eager: () => {
      o1.zeroGrad();
      const loss = lossFn(forward(x), y);
      loss.backward();
      o1.step();
      return loss;
    },
    compiled: () => step(x, y),
    stats: () => {
      const s = step.stats(x, y);
      return { kernels: s.kernels, peakBytes: s.peakBytes, detail: `${s.tracedOps} traced ops` };
    },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((p, q) => p - q);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** The p-th quantile (nearest rank) of xs. */
function quantile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.round(p * (s.length - 1))))];
}

const spread = (xs: number[]) => `${fmtMs(quantile(xs, 0.25))}-${fmtMs(quantile(xs, 0.75))} (min ${fmtMs(Math.min(...xs))})`;

/** max |a - b| and max |b| over the elements (the loss for training steps, the output for inference). */
function absDiff(a: Tensor, b: Tensor): { diff: number; ref: number } {
  const x = a.detach().dataSync() as ArrayLike<number>, y = b.detach().dataSync() as ArrayLike<number>;
  let diff = 0, ref = 0;
  for (let i = 0; i < y.length; i++) {
    const d = Math.abs(x[i] - y[i]);
    diff = Number.isNaN(d) || Number.isNaN(diff) ? NaN : Math.max(diff, d);
    ref = Math.max(ref, Math.abs(y[i]));
  }
  return { diff, ref };
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1];
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? 'unknown';
}

function fmtBytes(b: number): string {
  if (b >= 1 << 20) return `${(b / (1 << 20)).toFixed(2)} MiB`;
  if (b >= 1 << 10) return `${(b / (1 << 10)).toFixed(1)} KiB`;
  return `${b} B`;
}

const fmtMs = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

// ---- the workloads -------------------------------------------------------------------------------

const [N, D_in, H, D_out] = [64, 1000, 100, 10];
const scale = (n: number) => (QUICK ? Math.max(2, Math.ceil(n / 8)) : n);
kiln.manualSeed(0);
const x = kiln.randn(N, D_in);
const y = kiln.randn(N, D_out);
const mseSum = new nn.MSELoss({ reduction: 'sum' });

const workloads: (() => Workload)[] = [
  () => trainPair('TwoLayerNet train, SGD lr 1e-4', () => new TwoLayerNet(D_in, H, D_out), mseSum, (p) => new optim.SGD(p, { lr: 1e-4 }), x, y, scale(30), scale(300)),
  () => trainPair('TwoLayerNet train, Adam lr 1e-4', () => new TwoLayerNet(D_in, H, D_out), mseSum, (p) => new optim.Adam(p, { lr: 1e-4 }), x, y, scale(30), scale(300)),
  () => trainPair('Sequential MLP train, Adam lr 1e-4', () => makeSequential(D_in, H, D_out), mseSum, (p) => new optim.Adam(p, { lr: 1e-4 }), x, y, scale(30), scale(300)),
  () => {
    kiln.manualSeed(1);
    const img = kiln.randn(64, 1, 28, 28);
    const labels = kiln.randint(0, 10, [64]);
    return trainPair('MNISTConvNet train (batch 64), SGD lr 0.01 m 0.9', () => new MNISTConvNet(), new nn.CrossEntropyLoss(), (p) => new optim.SGD(p, { lr: 0.01, momentum: 0.9 }), img, labels, scale(8), scale(100));
  },
  () => {
    // The RNN seed (j): 5 timesteps of the same batch, the MSE losses summed, one SGD step.
    kiln.manualSeed(2);
    const TIMESTEPS = 5;
    const batch = kiln.randn(10, 50);
    const h0 = kiln.zeros(10, 20);
    const target = kiln.zeros(10, 10);
    const [r1, r2] = twins(() => new RNN(50, 20, 10));
    const unroll = (rnn: RNN) => unrolledLoss(rnn, TIMESTEPS);
    const o1 = new optim.SGD(r1.parameters(), { lr: 0.01 });
    const eagerLoss = unroll(r1);
    const step = kiln.compileTrainStep(unroll(r2), new optim.SGD(r2.parameters(), { lr: 0.01 }), quiet);
    return {
      name: 'RNN loop train (5 steps, batch 10), SGD lr 0.01', warmup: scale(100), runs: scale(1000),
      eager: () => {
        o1.zeroGrad();
        const loss = eagerLoss(batch, h0, target);
        loss.backward();
        o1.step();
        return loss;
      },
      compiled: () => step(batch, h0, target),
      stats: () => {
        const s = step.stats(batch, h0, target);
        return { kernels: s.kernels, peakBytes: s.peakBytes, detail: `${s.tracedOps} traced ops` };
      },
    };
  },
  ...[64, 4096].map((batch) => (): Workload => {
    kiln.manualSeed(3);
    const [m1, m2] = twins(() => new TwoLayerNet(D_in, H, D_out));
    const input = kiln.randn(batch, D_in);
    const fast = kiln.compile(m2, quiet);
    const big = batch > 1000;
    return {
      name: `TwoLayerNet inference (noGrad, batch ${batch})`, warmup: scale(big ? 4 : 30), runs: scale(big ? 60 : 500),
      eager: () => kiln.noGrad(() => m1(input)),
      compiled: () => kiln.noGrad(() => fast(input)),
      stats: () => {
        const s = kiln.noGrad(() => fast.stats(input));
        return { kernels: s.kernels + s.backwardKernels, peakBytes: s.peakBytes, detail: `${s.tracedOps} traced ops` };
      },
    };
  }),
];

// ---- run -----------------------------------------------------------------------------------------

interface Row {
  name: string;
  eagerMs: number;
  compiledMs: number;
  eagerBest: number;
  compiledBest: number;
  spread: string;
  eager: Counts;
  compiled: Counts;
  stats: { kernels: number; peakBytes: number; detail: string };
  maxRel: number;
  error?: string;
}

const rows: Row[] = [];
const warnings: string[] = [];
const started = performance.now();

for (const make of workloads) {
  const w = make();
  process.stderr.write(`${w.name} ... `);
  try {
    // Agreement, as the tests measure it: max |compiled - eager| over all rounds / max |eager| over all rounds.
    // (Per round the relative difference of the loss grows as the loss converges towards 0 and float32
    // cancellation dominates it: that figure is printed in the notes, not checked.)
    let maxDiff = 0, maxRef = 0, maxRoundRel = 0;
    const check = (eagerOut: Tensor, compiledOut: Tensor) => {
      const { diff, ref } = absDiff(compiledOut, eagerOut);
      maxDiff = Number.isNaN(diff) || Number.isNaN(maxDiff) ? NaN : Math.max(maxDiff, diff);
      maxRef = Math.max(maxRef, ref);
      maxRoundRel = Math.max(maxRoundRel, ref > 0 ? diff / ref : diff);
    };
    // Warm-up (the compiled train step's first call runs eagerly; its second traces and plans).
    for (let i = 0; i < w.warmup; i++) check(w.eager(), w.compiled());
    const stats = w.stats();
    // One counted step each (they stay in lockstep).
    const e = count(w.eager);
    const c = count(w.compiled);
    check(e.result, c.result);
    const eagerMs: number[] = [], compiledMs: number[] = [];
    const time = (fn: () => Tensor, into: number[]) => {
      const t0 = performance.now();
      const r = fn();
      into.push(performance.now() - t0);
      return r;
    };
    for (let r = 0; r < w.runs; r++) {
      if (r % 2 === 0) {
        const a = time(w.eager, eagerMs);
        check(a, time(w.compiled, compiledMs));
      } else {
        const b = time(w.compiled, compiledMs);
        check(time(w.eager, eagerMs), b);
      }
    }
    const maxRel = maxRef > 0 ? maxDiff / maxRef : maxDiff;
    if (!(maxRel <= 1e-4)) warnings.push(`WARNING: ${w.name}: compiled and eager disagree, max |compiled - eager| / max |eager| = ${maxRel.toExponential(2)} (> 1e-4)`);
    rows.push({ name: w.name, eagerMs: median(eagerMs), compiledMs: median(compiledMs), eagerBest: Math.min(...eagerMs), compiledBest: Math.min(...compiledMs), spread: `${w.warmup + 1 + w.runs} rounds (per-round max rel. diff ${maxRoundRel.toExponential(1)}); ms p25-p75 eager ${spread(eagerMs)}, compiled ${spread(compiledMs)}`, eager: e.counts, compiled: c.counts, stats, maxRel });
    process.stderr.write(`${((performance.now() - started) / 1000).toFixed(0)} s\n`);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    warnings.push(`ERROR: ${w.name}: ${msg}`);
    process.stderr.write(`failed: ${msg}\n`);
  }
}

console.log(`# eager vs compiled: ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${cpuModel()} (${cpus().length} cores; CPU kernels on ${threadCount()} thread(s), KILN_THREADS)${QUICK ? ' [--quick]' : ''}\n`);
console.log('| workload | eager ms/step (best) | compiled ms/step (best) | speedup (of best) | kernels/step eager | kernels/step compiled | eager bytes allocated/step | compiled plan peakBytes | eager alloc / compiled peak | compiled bytes allocated/step | max rel. diff |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of rows) {
  const kc = r.stats.kernels === r.compiled.runs ? `${r.stats.kernels}` : `${r.stats.kernels} (counted ${r.compiled.runs})`;
  console.log(
    `| ${r.name} | ${fmtMs(r.eagerMs)} (${fmtMs(r.eagerBest)}) | ${fmtMs(r.compiledMs)} (${fmtMs(r.compiledBest)}) | ${(r.eagerMs / r.compiledMs).toFixed(2)}x (${(r.eagerBest / r.compiledBest).toFixed(2)}x) | ${r.eager.runs} | ${kc} | ` +
      `${fmtBytes(r.eager.allocBytes)} | ${fmtBytes(r.stats.peakBytes)} | ${(r.eager.allocBytes / r.stats.peakBytes).toFixed(2)}x | ${fmtBytes(r.compiled.allocBytes)} | ${r.maxRel.toExponential(1)} |`,
  );
}
console.log(`
Times are medians (fastest step in parentheses) of the timed steps after warm-up, eager and compiled alternating;
speedup = eager / compiled, of the medians (of the fastest steps in parentheses: steadier on a busy machine).
Kernels: eager = calls of cpu.run during one step; compiled = .stats().kernels (train step: its one plan;
inference: the forward plan), checked against the cpu.run calls counted during one compiled step.
Memory is not the same quantity in the two columns:
  eager bytes allocated/step = bytes of every tensor storage cpu.alloc created during one step (outputs, intermediates,
    saved tensors, gradients, optimizer temporaries); the GC reclaims them later, so this bounds the step's peak of
    fresh memory from above, it is not a measured peak.
  compiled plan peakBytes = .stats().peakBytes: the bytes of the plan's own storage slots (slots are shared by values
    whose lifetimes do not overlap), allocated once when the plan is built and reused by every call; it excludes the
    parameters, optimizer state and inputs, and (for inference) is the forward plan's.
  compiled bytes allocated/step = the same cpu.alloc count during one compiled call: the fresh output tensors only
    (a train step copies its gradients into the same .grad tensors every call, so it allocates just its loss;
    inference allocates its output).
max rel. diff = the sanity check (warning above 1e-4): max |compiled - eager| over every warm-up, counted and timed round,
  divided by max |eager| over them, of the loss (train; the two copies step in lockstep from the same weights) or the
  output (inference), the tests' measure; the per-round relative difference is in the notes below.`);
console.log('\nPer workload: timing spread; copies (cpu.copy), storages allocated and bytes uploaded (cpu.upload) per step, eager / compiled:');
for (const r of rows) {
  console.log(`  ${r.name}: ${r.spread}; copies ${r.eager.copies} / ${r.compiled.copies}; storages allocated ${r.eager.allocs} / ${r.compiled.allocs}; uploaded ${fmtBytes(r.eager.uploadBytes)} / ${fmtBytes(r.compiled.uploadBytes)}; ${r.stats.detail}`);
}
for (const w of warnings) console.log(`\n${w}`);
console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(0)} s`);
