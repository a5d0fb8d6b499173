// The training loop behind `kiln train`: builds a model, its loss and its optimizer from a model
// spec (runtime/model-spec.ts), trains it with a compiled training step (or eagerly), reports
// progress, evaluates held-out accuracy for classifiers after each epoch, and writes the weights
// (safetensors) and a loss curve (a self-contained HTML page with an inline SVG).
//
// The caller must have loaded Kiln's public entry (`import ... from 'kiln'`, which registers the CPU
// backend); a model file does so when it is imported.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { noGrad } from '../../runtime/autograd/grad-mode.js';
import type { LossSpec, ModelSpec, OptimSpec } from '../../runtime/model-spec.js';
import { saveAsync } from '../../runtime/io/save-load.js';
import type { Module } from '../../runtime/nn/module.js';
import { CrossEntropyLoss, MSELoss } from '../../runtime/nn/layers/loss.js';
import { stack } from '../../runtime/ops/index.js';
import { Adam, AdamW, lrScheduler, SGD, type Optimizer } from '../../runtime/optim/index.js';
import { manualSeed } from '../../runtime/random.js';
import type { Tensor } from '../../runtime/tensor.js';
import { initWebGPU } from '../../runtime/webgpu/index.js';
import { compile } from '../compile.js';
import { compileTrainStep } from '../train-step.js';
import { batchCount, batches, loadMnist, randomData, type Dataset } from './data.js';

export interface TrainOptions {
  /** The data set; default the spec's `data`, else 'random'. */
  data?: 'mnist' | 'random';
  /** Passes over the training set; default 1 for MNIST, 10 for random data. */
  epochs?: number;
  /** Batch size; default the batch dimension of the spec's first input. */
  batch?: number;
  /** Default 'cpu'. 'webgpu' initialises WebGPU first. */
  device?: 'cpu' | 'webgpu';
  /** Run each step op by op instead of as one compiled plan. */
  eager?: boolean;
  /** Overrides the learning rate of the spec's optimizer. */
  lr?: number;
  /** 'cosine': anneal the learning rate to 0 over the epochs (once per epoch); default constant. */
  schedule?: 'constant' | 'cosine';
  /**
   * Sample counts. MNIST: training images (default 8,000) and test images (default: the rest of
   * the package's 10,000). Random data: `train` samples (default 10 batches); no test set.
   */
  limit?: { train?: number; test?: number };
  /** Directory for the weights and the loss curve (created if needed); default the current directory. */
  out?: string;
  /** Where lines go (default console.log). When given, progress is plain periodic lines, never a bar. */
  log?: (line: string) => void;
  /** Step progress (a bar on a TTY, periodic lines otherwise); default true. Epoch summaries are always logged. */
  progress?: boolean;
  /** Seeds the model's initialisation, the data split and the shuffling; default 0. */
  seed?: number;
}

export interface TrainResult {
  /** The loss of every training step, in order. */
  losses: number[];
  /** Held-out accuracy after the last epoch (classifiers with a test set). */
  accuracy?: number;
  /** Held-out accuracy after each epoch. */
  accuracies: number[];
  /** Wall time of the whole call (data loading, training, evaluation, writing files). */
  seconds: number;
  /** Wall time of the training steps alone. */
  trainSeconds: number;
  steps: number;
  /** Training samples per second (steps x batch / trainSeconds). */
  samplesPerSecond: number;
  /** Files written: the weights, then the loss curve. */
  files: string[];
  /** The trained model (on `device`). */
  model: Module;
}

type LossFn = (output: any, target: any) => Tensor;

/** The loss a spec names (default: cross-entropy for an int32 target, MSE otherwise). */
export function lossFromSpec(spec: ModelSpec): LossFn {
  const loss: LossSpec = spec.loss ?? (spec.target?.dtype === 'int32' ? 'cross-entropy' : 'mse');
  if (typeof loss === 'function') return loss;
  switch (loss) {
    case 'mse': return new MSELoss();
    case 'mse-sum': return new MSELoss({ reduction: 'sum' });
    case 'cross-entropy': return new CrossEntropyLoss();
    default: throw new Error(`kiln train: model spec '${spec.name}' names an unknown loss '${String(loss)}' (expected 'mse', 'mse-sum', 'cross-entropy' or a function)`);
  }
}

/** The optimizer a spec names (default SGD, lr 0.01), with `lr` overriding its learning rate. */
export function optimizerFromSpec(spec: ModelSpec, params: Iterable<Tensor>, lr?: number): Optimizer<any> {
  const o: OptimSpec = spec.optim ?? { name: 'sgd', lr: 0.01 };
  const rate = lr ?? o.lr;
  switch (o.name) {
    case 'sgd': return new SGD(params, { lr: rate, momentum: o.momentum, weightDecay: o.weightDecay });
    case 'adam': return new Adam(params, { lr: rate, weightDecay: o.weightDecay });
    case 'adamw': return new AdamW(params, { lr: rate, weightDecay: o.weightDecay });
    default: throw new Error(`kiln train: model spec '${spec.name}' names an unknown optimizer '${String((o as { name: unknown }).name)}' (expected sgd, adam or adamw)`);
  }
}

/** A classifier: its loss is cross-entropy or its target holds class indices. */
export function isClassifier(spec: ModelSpec): boolean {
  return spec.loss === 'cross-entropy' || spec.target?.dtype === 'int32';
}

function fmtTime(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const t = Math.max(0, Math.round(s));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = String(t % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

function fmtLoss(x: number): string {
  return Math.abs(x) >= 1000 || (Math.abs(x) < 1e-3 && x !== 0) ? x.toExponential(3) : x.toFixed(4);
}

/** Trains `spec`'s model; see `TrainOptions`. */
export async function trainModel(spec: ModelSpec, opts: TrainOptions = {}): Promise<TrainResult> {
  const t0 = performance.now();
  const device = opts.device ?? 'cpu';
  const dataKind = opts.data ?? spec.data ?? 'random';
  const epochs = opts.epochs ?? (dataKind === 'mnist' ? 1 : 10);
  const batchSize = opts.batch ?? spec.inputs[0]?.shape[0];
  const seed = opts.seed ?? 0;
  const out = opts.out ?? '.';
  const log = opts.log ?? ((line: string) => console.log(line));
  const showProgress = opts.progress ?? true;
  const bar = showProgress && !opts.log && !!process.stderr.isTTY;
  if (!(Number.isInteger(batchSize) && batchSize! > 0)) throw new Error(`kiln train: no batch size (pass batch, or give the spec's first input a batch dimension)`);
  const B = batchSize!;
  if (!(Number.isInteger(epochs) && epochs > 0)) throw new RangeError(`kiln train: epochs must be a positive integer, got ${epochs}`);
  if (device === 'webgpu') await initWebGPU();

  // Data.
  let train: Dataset;
  let test: Dataset | undefined;
  if (dataKind === 'mnist') {
    const input = spec.inputs[0];
    if (input && input.shape.slice(1).join(',') !== '1,28,28') {
      throw new Error(`kiln train: model spec '${spec.name}' takes input [${input.shape.join(', ')}]; MNIST gives [B, 1, 28, 28]`);
    }
    ({ train, test } = loadMnist({ train: opts.limit?.train, test: opts.limit?.test, seed }));
  } else {
    train = randomData(spec, opts.limit?.train ?? B * 10, seed);
  }
  const stepsPerEpoch = batchCount(train, B);
  if (stepsPerEpoch === 0) throw new Error(`kiln train: ${train.count} training samples make no full batch of ${B}`);
  const classifier = isClassifier(spec) && test !== undefined && test.count > 0;

  // Model, loss, optimizer, step.
  manualSeed(seed);
  const model = spec.create().to(device);
  model.train();
  const lossFn = lossFromSpec(spec);
  const optimizer = optimizerFromSpec(spec, model.parameters(), opts.lr);
  // A schedule changes the learning rate between epochs; a compiled step recompiles for it.
  const scheduler = opts.schedule === 'cosine' ? new lrScheduler.CosineAnnealingLR(optimizer, epochs) : undefined;
  const compilerLog = (m: string) => log(m);
  const step: (x: Tensor, y: Tensor) => Tensor = opts.eager
    ? (x, y) => {
        optimizer.zeroGrad();
        const loss = lossFn(model(x), y);
        loss.backward();
        optimizer.step();
        return loss.detach();
      }
    : compileTrainStep(model, lossFn, optimizer, { log: compilerLog });
  // Evaluation: the compiled forward (its last, smaller test batch compiles a second plan; that
  // report is expected and not shown), or the model itself with --eager.
  const evalForward: (x: Tensor) => Tensor = opts.eager
    ? (x) => model(x)
    : compile<(x: Tensor) => Tensor>(model, { log: (m) => { if (!m.includes('recompiling')) log(m); } });

  const totalSteps = stepsPerEpoch * epochs;
  log(`training ${spec.name} on ${dataKind === 'mnist' ? 'MNIST' : 'random data'}: ${train.count} samples${test ? `, ${test.count} held out` : ''}, ` +
    `${epochs} epoch${epochs > 1 ? 's' : ''} of ${stepsPerEpoch} steps (batch ${B}${train.count % B ? `, the last ${train.count % B} samples of each epoch dropped` : ''}), ` +
    `${opts.eager ? 'eager' : 'compiled'}, ${device}`);

  const losses: number[] = [];
  const accuracies: number[] = [];
  let pending: Tensor[] = [];
  const flushEvery = device === 'cpu' ? 1 : 20;
  const flush = async () => {
    if (pending.length === 0) return;
    const values = pending.length === 1 ? [await pending[0].item()] : Array.from(await stack(pending).data());
    losses.push(...values);
    if (device !== 'cpu') pending.forEach((t) => t.dispose());
    pending = [];
  };
  let trainMs = 0;
  let done = 0;
  let lastDraw = 0;
  const lineEvery = Math.max(1, Math.round(stepsPerEpoch / 10));
  const recentLoss = () => {
    const tail = losses.slice(-Math.min(losses.length, lineEvery));
    return tail.reduce((a, b) => a + b, 0) / Math.max(1, tail.length);
  };
  const status = (epoch: number, k: number) => {
    const rate = (done * B) / (trainMs / 1000);
    const eta = ((totalSteps - done) * B) / rate;
    return { rate, eta, text: `step ${k}/${stepsPerEpoch} loss ${fmtLoss(recentLoss())} ${Math.round(rate)} samples/s ETA ${fmtTime(eta)}`, epoch };
  };
  const drawBar = (epoch: number, k: number) => {
    const width = 24;
    const filled = Math.round((k / stepsPerEpoch) * width);
    const s = status(epoch, k);
    const line = `epoch ${epoch}/${epochs} ${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${s.text}`;
    process.stderr.write(`\r${line}\x1b[K`);
  };

  for (let epoch = 1; epoch <= epochs; epoch++) {
    let k = 0;
    for (const { x, y } of batches(train, B, { shuffle: true, seed: seed * 1000 + epoch, device })) {
      const s = performance.now();
      pending.push(step(x, y));
      if (pending.length >= flushEvery) await flush();
      trainMs += performance.now() - s;
      if (device !== 'cpu') { x.dispose(); y.dispose(); }
      k++;
      done++;
      if (!showProgress) continue;
      if (bar) {
        const now = performance.now();
        if (now - lastDraw > 100 || k === stepsPerEpoch) { lastDraw = now; drawBar(epoch, k); }
      } else if (k % lineEvery === 0 && k < stepsPerEpoch) {
        log(`epoch ${epoch}/${epochs} ${status(epoch, k).text}`);
      }
    }
    const s = performance.now();
    await flush();
    trainMs += performance.now() - s;
    if (bar) process.stderr.write('\r\x1b[K');
    const epochLosses = losses.slice(-stepsPerEpoch);
    const meanLoss = epochLosses.reduce((a, b) => a + b, 0) / epochLosses.length;
    let line = `epoch ${epoch}/${epochs}: mean loss ${fmtLoss(meanLoss)}, ${Math.round((done * B) / (trainMs / 1000))} samples/s`;
    if (classifier) {
      const acc = await evaluateAccuracy(model, evalForward, test!, B, device);
      accuracies.push(acc);
      line += `, held-out accuracy ${(acc * 100).toFixed(2)}% (${test!.count} samples)`;
    }
    log(line);
    scheduler?.step();
  }

  // Outputs.
  mkdirSync(out, { recursive: true });
  const base = spec.name.replace(/[^A-Za-z0-9._-]+/g, '-');
  const weights = join(out, `${base}.safetensors`);
  const curve = join(out, `${base}-loss.html`);
  const accuracy = accuracies.length ? accuracies[accuracies.length - 1] : undefined;
  const meta: Record<string, string> = { model: spec.name, data: dataKind, epochs: String(epochs), batch: String(B), steps: String(done) };
  if (accuracy !== undefined) meta.accuracy = String(accuracy);
  await saveAsync(model.stateDict(), weights, meta);
  writeFileSync(curve, lossCurveHtml(losses, { title: `${spec.name}: training loss`, stepsPerEpoch, accuracies, subtitle: `${dataKind === 'mnist' ? 'MNIST' : 'random data'}, batch ${B}, ${opts.eager ? 'eager' : 'compiled'} on ${device}` }));
  const trainSeconds = trainMs / 1000;
  return {
    losses, accuracy, accuracies, steps: done, trainSeconds, samplesPerSecond: (done * B) / trainSeconds,
    seconds: (performance.now() - t0) / 1000, files: [weights, curve], model,
  };
}

/**
 * The fraction of `data` that `forward` classifies correctly (argmax of its output over dim 1), with
 * `model` in eval mode and gradients off; every sample counts (the last batch may be smaller).
 */
export async function evaluateAccuracy(model: Module, forward: (x: Tensor) => Tensor, data: Dataset, batchSize: number, device = 'cpu'): Promise<number> {
  const wasTraining = model.training;
  model.eval();
  try {
    let correct = 0;
    for (const { x, y } of batches(data, batchSize, { device, dropLast: false })) {
      const hits = noGrad(() => forward(x).argmax(1).eq(y).sum());
      correct += await hits.item();
      if (device !== 'cpu') { x.dispose(); y.dispose(); hits.dispose(); }
    }
    return correct / data.count;
  } finally {
    model.train(wasTraining);
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * A self-contained HTML page (inline SVG, no scripts or external assets) plotting `losses` per
 * step, with a moving average, epoch boundaries and the held-out accuracy of each epoch. The loss
 * axis is logarithmic when the losses are positive and span more than two decades.
 */
export function lossCurveHtml(losses: readonly number[], opts: { title?: string; subtitle?: string; stepsPerEpoch?: number; accuracies?: readonly number[] } = {}): string {
  const title = opts.title ?? 'training loss';
  const W = 860, H = 420, ml = 72, mr = 24, mt = 24, mb = 48;
  const pw = W - ml - mr, ph = H - mt - mb;
  const finite = losses.filter(Number.isFinite);
  const n = losses.length;
  let body: string;
  if (finite.length === 0) {
    body = `<text x="${W / 2}" y="${H / 2}" text-anchor="middle">no finite losses to plot</text>`;
  } else {
    const lo = Math.min(...finite), hi = Math.max(...finite);
    const logScale = lo > 0 && hi / lo > 100;
    const f = (v: number) => (logScale ? Math.log10(v) : v);
    let y0 = f(lo), y1 = f(hi);
    if (y1 - y0 < 1e-12) { y0 -= 0.5; y1 += 0.5; }
    const pad = (y1 - y0) * 0.05;
    y0 -= pad; y1 += pad;
    const X = (i: number) => ml + (n <= 1 ? pw / 2 : (i / (n - 1)) * pw);
    const Y = (v: number) => mt + ph - ((f(v) - y0) / (y1 - y0)) * ph;
    // At most ~2000 points per line: a stride over the steps.
    const stride = Math.max(1, Math.ceil(n / 2000));
    const pts = (vals: readonly number[]) => {
      const p: string[] = [];
      for (let i = 0; i < vals.length; i += stride) if (Number.isFinite(vals[i])) p.push(`${X(i).toFixed(1)},${Y(vals[i]).toFixed(1)}`);
      const last = vals.length - 1;
      if (last >= 0 && last % stride !== 0 && Number.isFinite(vals[last])) p.push(`${X(last).toFixed(1)},${Y(vals[last]).toFixed(1)}`);
      return p.join(' ');
    };
    const win = smoothingWindow(n);
    const smooth: number[] = [];
    let acc = 0, cnt = 0;
    for (let i = 0; i < n; i++) {
      if (Number.isFinite(losses[i])) { acc += losses[i]; cnt++; }
      const j = i - win;
      if (j >= 0 && Number.isFinite(losses[j])) { acc -= losses[j]; cnt--; }
      smooth.push(cnt > 0 ? acc / cnt : NaN);
    }
    const parts: string[] = [];
    // Y ticks.
    const ticks = 5;
    for (let t = 0; t <= ticks; t++) {
      const fv = y0 + ((y1 - y0) * t) / ticks;
      const v = logScale ? 10 ** fv : fv;
      const y = mt + ph - (t / ticks) * ph;
      parts.push(`<line x1="${ml}" x2="${ml + pw}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#eee"/>`);
      parts.push(`<text x="${ml - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end">${escapeHtml(fmtTick(v))}</text>`);
    }
    // X ticks.
    for (let t = 0; t <= 5; t++) {
      const i = Math.round(((n - 1) * t) / 5);
      if (t > 0 && i === Math.round(((n - 1) * (t - 1)) / 5)) continue;
      parts.push(`<text x="${X(i).toFixed(1)}" y="${mt + ph + 18}" text-anchor="middle">${i + 1}</text>`);
    }
    // Epoch boundaries and accuracies.
    const spe = opts.stepsPerEpoch;
    if (spe && spe > 0 && n > spe) {
      for (let e = 1; e * spe < n; e++) {
        const x = X(e * spe - 0.5).toFixed(1);
        parts.push(`<line x1="${x}" x2="${x}" y1="${mt}" y2="${mt + ph}" stroke="#bbb" stroke-dasharray="4 4"/>`);
      }
    }
    (opts.accuracies ?? []).forEach((a, e) => {
      const end = spe ? Math.min(n - 1, (e + 1) * spe - 1) : n - 1;
      parts.push(`<text x="${(X(end) - 4).toFixed(1)}" y="${mt + 14 + 14 * (e % 2)}" text-anchor="end" fill="#2a7">epoch ${e + 1}: ${(a * 100).toFixed(2)}%</text>`);
    });
    parts.push(`<polyline fill="none" stroke="#9cc3ea" stroke-width="1" points="${pts(losses)}"/>`);
    if (win > 1) parts.push(`<polyline fill="none" stroke="#1f5fa8" stroke-width="2" points="${pts(smooth)}"/>`);
    parts.push(`<rect x="${ml}" y="${mt}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
    parts.push(`<text x="${ml + pw / 2}" y="${H - 8}" text-anchor="middle">step</text>`);
    parts.push(`<text transform="translate(16 ${mt + ph / 2}) rotate(-90)" text-anchor="middle">loss${logScale ? ' (log scale)' : ''}</text>`);
    body = parts.join('\n');
  }
  const first = finite[0], last = finite[finite.length - 1];
  const summary = finite.length
    ? `${n} steps; loss ${fmtLoss(first)} → ${fmtLoss(last)}${smoothingWindow(n) > 1 ? ` (dark line: mean of the last ${smoothingWindow(n)} steps)` : ''}` +
      ((opts.accuracies ?? []).length ? `; held-out accuracy ${opts.accuracies!.map((a) => `${(a * 100).toFixed(2)}%`).join(', ')}` : '')
    : `${n} steps`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#222}svg text{font:12px system-ui,sans-serif}</style>
</head>
<body>
<h1 style="font-size:18px">${escapeHtml(title)}</h1>
${opts.subtitle ? `<p>${escapeHtml(opts.subtitle)}</p>\n` : ''}<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${escapeHtml(title)}">
${body}
</svg>
<p>${escapeHtml(summary)}</p>
</body>
</html>
`;}

function smoothingWindow(steps: number): number {
  return Math.max(1, Math.round(steps / 50));
}

function fmtTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(1) : Number(v.toPrecision(3)).toString();
}
