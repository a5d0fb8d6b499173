// Kiln side by side with its peers, in one command:
//   cd bench/peers && npm install && npm run bench            (~4-5 min on a 2-core VM)
//   npm run bench -- --rounds 2                                (fewer rounds)
//   npm run bench -- --quick                                   (1 round, fewer timed steps: a try-out)
//   npm run bench -- --peers kiln-compiled,pytorch --only matmul,mlp-train
//   node run.mjs --smoke       (Kiln only, a few steps each, no result file; exits 1 on any failure:
//                               the test suite runs this so the bench cannot rot)
//
// Each peer is a script run as a child process (kiln.ts through tsx on the repository's sources;
// tfjs.mjs, jax.mjs, ort.mjs with node; torch_peer.py with /usr/bin/python3) that runs every workload
// it supports and prints one `RESULT {json}` line per workload. Processes run one at a time, the peers
// in a rotated order each round (so a busy spell on a shared machine lands on different peers), and
// the table shows, per workload and peer, the median over rounds of each process's figure (itself a
// median of timed steps after warm-up; for the 500-step TwoLayerNet loop, its mean step).
// Slow peers run fewer rounds (TF.js cpu: one). Every peer starts from the same inputs and weights
// (data.mjs writes them to .data/ first), so the losses are compared as a sanity check.
//
// PyTorch runs with one thread (torch.set_num_threads(1), OMP_NUM_THREADS=1) on Debian's OpenBLAS
// (openmp flavour, LD_LIBRARY_PATH set to its folder), with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
// removed from its environment. onnxruntime runs the models PyTorch exports (torch.onnx.export).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeData, median } from './data.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const DATA = join(HERE, '.data');
const argv = process.argv.slice(2);
const opt = (k, d) => (argv.includes(k) ? argv[argv.indexOf(k) + 1] : d);
const SMOKE = argv.includes('--smoke');
const QUICK = SMOKE || argv.includes('--quick');
const ROUNDS = Number(opt('--rounds', QUICK ? 1 : 5));
const ONLY = opt('--only', '');
const PEER_FILTER = SMOKE ? ['kiln-compiled', 'kiln-eager'] : opt('--peers', '').split(',').filter(Boolean);
const SCALE = SMOKE ? '0.01' : QUICK ? '0.3' : '1';
const TIMEOUT_MS = 240_000;
// The threaded Kiln column's thread count: every core by default; `--threads 2` under `taskset` on a bigger machine.
const THREADS = Number(opt('--threads', cpus().length));

const WORKLOADS = [
  ['mlp-train', 'TwoLayerNet train loop, 500 steps (ms/step)'],
  ['convnet-train', 'MNISTConvNet train step, batch 64 (ms)'],
  ['matmul', 'matmul 1024^3 float32, GFLOP/s (ms)'],
  ['mlp-infer-64', 'TwoLayerNet inference, batch 64 (ms)'],
  ['mlp-infer-4096', 'TwoLayerNet inference, batch 4096 (ms)'],
  ['rnn-train', 'RNN loop train step, 5 timesteps, batch 10 (ms)'],
];

// ---- the environment ---------------------------------------------------------------------------

function cpuModel() {
  try {
    const m = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1];
  } catch {}
  return cpus()[0]?.model ?? 'unknown';
}

function pkgVersion(name) {
  try {
    return JSON.parse(readFileSync(join(HERE, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

/** The folder of Debian's OpenBLAS (openmp flavour), from dpkg, or null. */
function openblasDir() {
  try {
    const files = execFileSync('dpkg', ['-L', 'libopenblas0-openmp'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n');
    const lib = files.find((f) => /openblas-openmp\/libblas\.so\.3$/.test(f));
    return lib ? dirname(lib) : null;
  } catch {
    return null;
  }
}

// PYTHON picks the interpreter that has torch where it is not Debian's /usr/bin/python3 (a venv, say).
const PYTHON = process.env.PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const blasDir = openblasDir();
const torchEnv = { ...process.env, OMP_NUM_THREADS: '1' };
delete torchEnv.OPENBLAS_CORETYPE;
delete torchEnv.OPENBLAS_L2_SIZE;
if (blasDir) torchEnv.LD_LIBRARY_PATH = [blasDir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':');

const TSX = join(ROOT, 'node_modules', '.bin', 'tsx');
const node = process.execPath;
const oneThread = { ...process.env, KILN_THREADS: '1' };
const notes = [];
const failures = [];

process.stderr.write('setting up: data');
makeData(DATA);

let torchInfo = null;
if (!SMOKE) {
  process.stderr.write(', pytorch');
  const r = spawnSync(PYTHON, ['torch_peer.py', '--data', DATA, '--info'], { cwd: HERE, env: torchEnv, encoding: 'utf8' });
  if (r.status === 0) {
    torchInfo = JSON.parse(r.stdout.trim().split('\n').pop());
    const libs = torchInfo.blas.libs.join(' ');
    if (!/openblas/.test(libs)) notes.push(`WARNING: PyTorch is not on OpenBLAS (loaded: ${libs || 'none'}); Debian's reference BLAS is ~15x slower`);
  } else failures.push(`pytorch: not available (${(r.stderr || r.error?.message || '').trim().split('\n').pop()})`);
}
if (torchInfo) {
  process.stderr.write(', onnx export');
  const r = spawnSync(PYTHON, ['torch_peer.py', '--data', DATA, '--export-onnx'], { cwd: HERE, env: torchEnv, encoding: 'utf8' });
  if (r.status !== 0) failures.push(`onnxruntime: torch.onnx.export failed (${r.stderr.trim().split('\n').pop()})`);
}
process.stderr.write('\n');

const versions = {
  node: process.version,
  kiln: JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version,
  '@jax-js/jax': pkgVersion('@jax-js/jax'),
  '@tensorflow/tfjs': pkgVersion('@tensorflow/tfjs'),
  '@tensorflow/tfjs-backend-wasm': pkgVersion('@tensorflow/tfjs-backend-wasm'),
  'onnxruntime-node': pkgVersion('onnxruntime-node'),
  torch: torchInfo?.torch ?? null,
};

// ---- the peers ---------------------------------------------------------------------------------

const PEERS = [
  // Kiln runs single-threaded like every peer (KILN_THREADS=1), and also with its default of one thread per core.
  { name: 'kiln-compiled', label: 'Kiln compiled', cmd: TSX, args: ['--conditions=kiln-source', 'kiln.ts', '--mode', 'compiled'], env: oneThread, ok: existsSync(TSX), why: 'tsx missing: run npm ci at the repository root' },
  { name: 'kiln-compiled-threads', label: `Kiln compiled, ${THREADS} threads`, cmd: TSX, args: ['--conditions=kiln-source', 'kiln.ts', '--mode', 'compiled'], env: { ...process.env, KILN_THREADS: String(THREADS) }, ok: existsSync(TSX) && THREADS > 1, why: 'one core' },
  // Kiln turns on relaxed SIMD (a fused multiply-add for the Wasm matmul) where the engine has it; this column shows the plain mul + add.
  { name: 'kiln-compiled-nofma', label: 'Kiln compiled, no relaxed SIMD', cmd: TSX, args: ['--conditions=kiln-source', 'kiln.ts', '--mode', 'compiled'], env: { ...oneThread, KILN_RELAXED_SIMD: '0' }, ok: existsSync(TSX), why: 'tsx missing' },
  { name: 'kiln-eager', label: 'Kiln eager', cmd: TSX, args: ['--conditions=kiln-source', 'kiln.ts', '--mode', 'eager'], env: oneThread, ok: existsSync(TSX), why: 'tsx missing' },
  { name: 'jax-js', label: 'jax-js (wasm, jit)', cmd: node, args: ['jax.mjs'], ok: !!versions['@jax-js/jax'], why: '@jax-js/jax not installed' },
  { name: 'tfjs-wasm', label: 'TF.js wasm', cmd: node, args: ['tfjs.mjs', '--backend', 'wasm'], ok: !!versions['@tensorflow/tfjs-backend-wasm'], why: '@tensorflow/tfjs-backend-wasm not installed' },
  { name: 'tfjs-cpu', label: 'TF.js cpu', cmd: node, args: ['tfjs.mjs', '--backend', 'cpu'], ok: !!versions['@tensorflow/tfjs'], why: '@tensorflow/tfjs not installed', rounds: 1 },
  { name: 'pytorch', label: 'PyTorch (1 thread)', cmd: PYTHON, args: ['torch_peer.py'], env: torchEnv, ok: !!torchInfo, why: 'torch not importable' },
  { name: 'onnxruntime', label: 'onnxruntime-node', cmd: node, args: ['ort.mjs'], ok: !!versions['onnxruntime-node'] && existsSync(join(DATA, 'mlp.onnx')), why: 'onnxruntime-node not installed or no .onnx model' },
].filter((p) => !PEER_FILTER.length || PEER_FILTER.includes(p.name));
for (const p of PEERS) if (!p.ok) failures.push(`${p.name}: skipped (${p.why})`);
const active = PEERS.filter((p) => p.ok);

function runPeer(p) {
  return new Promise((resolve) => {
    const args = [...p.args, '--data', DATA, '--scale', SCALE, ...(ONLY ? ['--only', ONLY] : [])];
    const child = spawn(p.cmd, args, { cwd: HERE, env: p.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const results = out.split('\n').filter((l) => l.startsWith('RESULT ')).map((l) => JSON.parse(l.slice(7)));
      if (code !== 0) failures.push(`${p.name}: exited ${code ?? signal}: ${err.trim().split('\n').slice(-3).join(' | ').slice(0, 300)}`);
      resolve(results);
    });
  });
}

// ---- run ---------------------------------------------------------------------------------------

const collected = {}; // peer -> workload -> [result per round]
const started = performance.now();
const load0 = loadavg()[0];
for (let round = 0; round < ROUNDS; round++) {
  const order = active.map((_, i) => active[(i + round) % active.length]).filter((p) => round < (p.rounds ?? ROUNDS));
  for (const p of order) {
    const t0 = performance.now();
    process.stderr.write(`round ${round + 1}/${ROUNDS} ${p.name} ... `);
    const results = await runPeer(p);
    for (const r of results) ((collected[p.name] ??= {})[r.workload] ??= []).push(r);
    process.stderr.write(`${((performance.now() - t0) / 1000).toFixed(1)} s (total ${((performance.now() - started) / 1000).toFixed(0)} s)\n`);
  }
}
const elapsed = (performance.now() - started) / 1000;

// ---- the table ---------------------------------------------------------------------------------

const summary = {}; // peer -> workload -> { ms, gflops?, n, error?, results }
for (const p of active) {
  for (const [w] of WORKLOADS) {
    const rs = collected[p.name]?.[w] ?? [];
    const ok = rs.filter((r) => !r.error);
    const errs = rs.filter((r) => r.error);
    if (errs.length) failures.push(`${p.name} / ${w}: ${errs[0].error}`);
    if (!ok.length) {
      if (errs.length) (summary[p.name] ??= {})[w] = { error: errs[0].error };
      continue;
    }
    const ms = median(ok.map((r) => r.ms));
    (summary[p.name] ??= {})[w] = { ms, gflops: w === 'matmul' ? (2 * 1024 ** 3) / (ms * 1e6) : undefined, n: ok.length, results: ok };
  }
}

const fmtMs = (ms) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3));
/** Kiln's figure a workload's ratios are taken against: compiled, one thread, default Node flags. */
const kilnRef = (w) => summary['kiln-compiled']?.[w]?.ms ?? summary['kiln-eager']?.[w]?.ms;
function cell(p, w) {
  const s = summary[p.name]?.[w];
  if (!s) return '–';
  if (s.error) return 'fails¹';
  const ref = kilnRef(w);
  const ratio = ref ? ` (${(s.ms / ref).toFixed(2)}x)` : '';
  const v = w === 'matmul' ? `${s.gflops.toFixed(1)} (${fmtMs(s.ms)} ms)` : fmtMs(s.ms);
  return `${v}${ratio}${ROUNDS > 1 && s.n < Math.min(ROUNDS, p.rounds ?? ROUNDS) ? ` [${s.n}]` : ''}`;
}

const date = new Date().toISOString().slice(0, 10);
const lines = [];
lines.push(`# Kiln and its peers: ${date}, ${cpuModel()} (${cpus().length} cores), node ${process.version}${QUICK ? ' [--quick]' : ''}`);
lines.push('');
lines.push(`versions: ${Object.entries(versions).map(([k, v]) => `${k} ${v ?? 'n/a'}`).join(', ')}`);
if (torchInfo) {
  const ob = torchInfo.blas.openblas;
  lines.push(`PyTorch BLAS: ${ob ? `${ob.config} (kernel ${ob.corename}, ${ob.threads} thread)` : 'not OpenBLAS'}; loaded: ${torchInfo.blas.libs.join(', ')}; torch threads ${torchInfo.threads}`);
}
lines.push(`rounds: ${ROUNDS} (TF.js cpu: 1); ${elapsed.toFixed(0)} s in all; load average ${load0.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end`);
lines.push('');
lines.push(`| workload | ${active.map((p) => p.label).join(' | ')} |`);
lines.push(`|---|${active.map(() => '---:').join('|')}|`);
for (const [w, label] of WORKLOADS) lines.push(`| ${label} | ${active.map((p) => cell(p, w)).join(' | ')} |`);
lines.push('');
lines.push('Medians over rounds. (N.NNx) = the peer\'s time / Kiln compiled\'s time (single-threaded; for matmul that is Kiln\'s GFLOP/s / the peer\'s): below 1 the peer is faster, above 1 Kiln is.');
lines.push('[n] = rounds that produced a figure, where fewer than planned. – = not run for that peer. ¹ see the failures below.');

// Sanity: every peer starts from the same weights and inputs, so the first losses (and the inference
// outputs' first element) must agree; the TwoLayerNet loop's loss after 500 steps is printed too.
lines.push('');
lines.push('Agreement (first loss / first output element; max rel. diff to Kiln compiled over every round):');
for (const [w] of WORKLOADS) {
  const key = /train/.test(w) ? 'firstLoss' : 'check';
  const refR = (summary['kiln-compiled']?.[w] ?? summary['kiln-eager']?.[w])?.results?.[0];
  if (!refR) continue;
  const ref = refR[key];
  const parts = [];
  for (const p of active) {
    const s = summary[p.name]?.[w];
    if (!s?.results) continue;
    const d = Math.max(...s.results.map((r) => Math.abs(r[key] - ref) / Math.max(Math.abs(ref), 1e-30)));
    parts.push(`${p.name} ${d.toExponential(1)}`);
  }
  let extra = '';
  if (w === 'mlp-train') extra = `; loss after 500 steps: ${active.filter((p) => summary[p.name]?.[w]?.results).map((p) => `${p.name} ${summary[p.name][w].results[0].lastLoss.toExponential(3)}`).join(', ')}`;
  lines.push(`- ${w} (${key} ${Number(ref).toPrecision(6)}): ${parts.join(', ')}${extra}`);
}
if (notes.length || failures.length) {
  lines.push('');
  lines.push('Failures and notes:');
  for (const f of [...new Set([...notes, ...failures])]) lines.push(`- ${f}`);
}
console.log(lines.join('\n'));

if (SMOKE) {
  // Every workload must have produced a figure (matmul runs in the eager column only).
  const missing = WORKLOADS.filter(([w]) => !active.some((p) => summary[p.name]?.[w]?.ms > 0)).map(([w]) => w);
  if (missing.length || failures.length) {
    console.error(`smoke run failed: ${[...missing.map((m) => `no figure for ${m}`), ...failures].join('; ')}`);
    process.exit(1);
  }
  process.exit(0);
}
mkdirSync(join(HERE, 'results'), { recursive: true });
const file = join(HERE, 'results', `peers-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ date, cpu: cpuModel(), cores: cpus().length, versions, torchInfo, rounds: ROUNDS, elapsed, collected, failures, notes }, null, 1));
process.stderr.write(`raw results: ${file}\n`);
