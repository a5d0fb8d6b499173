// The inputs and initial weights every peer starts from, generated once per bench run from a fixed
// seed and written as raw little-endian files (float32, or int32 for labels) plus manifest.json, so
// that Kiln, TF.js, jax-js, onnxruntime and PyTorch train the very same networks and their losses can
// be compared. Weights are in PyTorch's layout (Linear: [out, in]; Conv2d: [out, in, kh, kw]); a peer
// with another layout (TF.js: [in, out], NHWC) transposes them when it loads them.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** mulberry32: a small, seedable uniform generator in [0, 1). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const SPECS = {
  // TwoLayerNet (models/two-layer-net.ts): 64x1000 -> Linear(1000,100) -> clamp(0) -> Linear(100,10)
  'mlp.x': { shape: [64, 1000], init: 'normal' },
  'mlp.y': { shape: [64, 10], init: 'normal' },
  'mlp.linear1.weight': { shape: [100, 1000], init: 'uniform', fanIn: 1000 },
  'mlp.linear1.bias': { shape: [100], init: 'uniform', fanIn: 1000 },
  'mlp.linear2.weight': { shape: [10, 100], init: 'uniform', fanIn: 100 },
  'mlp.linear2.bias': { shape: [10], init: 'uniform', fanIn: 100 },
  'mlp.x4096': { shape: [4096, 1000], init: 'normal' },
  // MNISTConvNet (models/mnist-convnet.ts), batch 64
  'conv.img': { shape: [64, 1, 28, 28], init: 'normal' },
  'conv.labels': { shape: [64], init: 'labels', high: 10 },
  'conv.conv1.weight': { shape: [10, 1, 5, 5], init: 'uniform', fanIn: 25 },
  'conv.conv1.bias': { shape: [10], init: 'uniform', fanIn: 25 },
  'conv.conv2.weight': { shape: [20, 10, 5, 5], init: 'uniform', fanIn: 250 },
  'conv.conv2.bias': { shape: [20], init: 'uniform', fanIn: 250 },
  'conv.fc1.weight': { shape: [50, 320], init: 'uniform', fanIn: 320 },
  'conv.fc1.bias': { shape: [50], init: 'uniform', fanIn: 320 },
  'conv.fc2.weight': { shape: [10, 50], init: 'uniform', fanIn: 50 },
  'conv.fc2.bias': { shape: [10], init: 'uniform', fanIn: 50 },
  // The RNN seed (models/rnn.ts): i2h Linear(70,20), h2o Linear(20,10); batch 10 of 50 features
  'rnn.batch': { shape: [10, 50], init: 'normal' },
  'rnn.i2h.weight': { shape: [20, 70], init: 'uniform', fanIn: 70 },
  'rnn.i2h.bias': { shape: [20], init: 'uniform', fanIn: 70 },
  'rnn.h2o.weight': { shape: [10, 20], init: 'uniform', fanIn: 20 },
  'rnn.h2o.bias': { shape: [10], init: 'uniform', fanIn: 20 },
  // matmul 1024^3
  'mm.a': { shape: [1024, 1024], init: 'normal' },
  'mm.b': { shape: [1024, 1024], init: 'normal' },
};

const size = (shape) => shape.reduce((a, b) => a * b, 1);

/** Writes every tensor of SPECS under dir (seeded: the same bytes on every run). */
export function makeData(dir, seed = 1234) {
  mkdirSync(dir, { recursive: true });
  const manifest = {};
  const next = rng(seed);
  for (const [name, s] of Object.entries(SPECS)) {
    const n = size(s.shape);
    let arr;
    if (s.init === 'labels') {
      arr = new Int32Array(n);
      for (let i = 0; i < n; i++) arr[i] = Math.floor(next() * s.high);
    } else if (s.init === 'normal') {
      arr = new Float32Array(n);
      for (let i = 0; i < n; i += 2) {
        // Box-Muller
        const u = 1 - next(), v = next();
        const r = Math.sqrt(-2 * Math.log(u));
        arr[i] = r * Math.cos(2 * Math.PI * v);
        if (i + 1 < n) arr[i + 1] = r * Math.sin(2 * Math.PI * v);
      }
    } else {
      // PyTorch's default Linear/Conv init: U(-1/sqrt(fanIn), 1/sqrt(fanIn))
      const bound = 1 / Math.sqrt(s.fanIn);
      arr = new Float32Array(n);
      for (let i = 0; i < n; i++) arr[i] = (2 * next() - 1) * bound;
    }
    const file = `${name}.bin`;
    writeFileSync(join(dir, file), Buffer.from(arr.buffer, arr.byteOffset, arr.byteLength));
    manifest[name] = { shape: s.shape, dtype: arr instanceof Int32Array ? 'int32' : 'float32', file };
  }
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 1));
  return manifest;
}

/** Reads the tensors back: { name: { shape, dtype, data: Float32Array | Int32Array } }. */
export function loadData(dir) {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const out = {};
  for (const [name, m] of Object.entries(manifest)) {
    const buf = readFileSync(join(dir, m.file));
    const ab = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
    out[name] = { ...m, data: m.dtype === 'int32' ? new Int32Array(ab) : new Float32Array(ab) };
  }
  return out;
}

/** [rows, cols] row-major -> its transpose, [cols, rows]. */
export function transpose2d(data, rows, cols) {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = data[i * cols + j];
  return out;
}

/** [n, c, h, w] -> [n, h, w, c] (NCHW to NHWC; OIHW weights to HWIO with n=O, c=I: use oihwToHwio). */
export function nchwToNhwc(data, [n, c, h, w]) {
  const out = new Float32Array(data.length);
  for (let a = 0; a < n; a++) for (let b = 0; b < c; b++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++)
    out[((a * h + y) * w + x) * c + b] = data[((a * c + b) * h + y) * w + x];
  return out;
}

/** Conv weights [o, i, kh, kw] -> [kh, kw, i, o] (TF's HWIO). */
export function oihwToHwio(data, [o, i, kh, kw]) {
  const out = new Float32Array(data.length);
  for (let a = 0; a < o; a++) for (let b = 0; b < i; b++) for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++)
    out[((y * kw + x) * i + b) * o + a] = data[((a * i + b) * kh + y) * kw + x];
  return out;
}

// ---- shared by the JS peers --------------------------------------------------------------------

export function median(xs) {
  const s = [...xs].sort((p, q) => p - q);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/** Parses the argv every peer script gets from run.mjs: --data DIR --only a,b --scale F. */
export function parseArgs(argv = process.argv.slice(2)) {
  const get = (k, d) => {
    const i = argv.indexOf(k);
    return i >= 0 ? argv[i + 1] : d;
  };
  return { data: get('--data', null), only: get('--only', '')?.split(',').filter(Boolean) ?? [], scale: Number(get('--scale', '1')) };
}

/** Prints one result line for run.mjs. */
export function report(obj) {
  process.stdout.write(`RESULT ${JSON.stringify(obj)}\n`);
}

/** Runs `fn` (which reports) for a workload if selected, turning an exception into an error report. */
export async function workload(args, peer, name, fn) {
  if (args.only.length && !args.only.includes(name)) return;
  try {
    await fn();
  } catch (err) {
    report({ peer, workload: name, error: String(err?.message ?? err).split('\n')[0].slice(0, 200) });
  }
}

/** The workloads and their repetition counts (per process; run.mjs repeats processes in rounds). */
export const REPS = {
  'mlp-train': { steps: 500, warmup: 20 },
  'convnet-train': { warmup: 3, runs: 10 },
  matmul: { warmup: 2, runs: 6 },
  'mlp-infer-64': { warmup: 30, runs: 200 },
  'mlp-infer-4096': { warmup: 3, runs: 12 },
  'rnn-train': { warmup: 50, runs: 300 },
};

export const scaled = (n, f) => Math.max(1, Math.round(n * f));
