// Kiln's side of the peer bench (run by run.mjs through tsx with --conditions=kiln-source, so it
// runs the repository's TypeScript sources).
//   tsx --conditions=kiln-source bench/peers/kiln.ts --mode compiled|eager --data DIR [--only w1,w2] [--scale F]
// compiled = kiln.compileTrainStep / kiln.compile; eager = the seeds' eager loops. Prints RESULT lines.
import * as kiln from '../../index.js';
import { nn, optim, type Tensor } from '../../index.js';
import { MNISTConvNet } from '../../models/mnist-convnet.js';
import { RNN, unrolledLoss } from '../../models/rnn.js';
import { TwoLayerNet } from '../../models/two-layer-net.js';
import { loadData, median, parseArgs, report, REPS, scaled, workload } from './data.mjs';

const args = parseArgs();
const mode = process.argv.includes('--mode') ? process.argv[process.argv.indexOf('--mode') + 1] : 'compiled';
if (mode !== 'compiled' && mode !== 'eager') throw new Error(`--mode compiled|eager, got ${mode}`);
const peer = `kiln-${mode}`;
const D = loadData(args.data);
const T = (name: string): Tensor => {
  const d = D[name];
  return kiln.tensor(d.data, { dtype: d.dtype }).reshape(d.shape);
};
const stateOf = (prefix: string) =>
  Object.fromEntries(Object.keys(D).filter((k) => k.startsWith(prefix) && /weight|bias/.test(k)).map((k) => [k.slice(prefix.length), T(k)]));
const quiet = { log: () => {} };
const compiled = mode === 'compiled';

/** A training step of `model` as the seeds write it (eager), or compileTrainStep's. */
function trainStep(model: nn.Module, lossFn: (o: any, t: any) => Tensor, opt: optim.Optimizer<any>): (x: Tensor, y: Tensor) => Tensor {
  if (compiled) return kiln.compileTrainStep(model, lossFn, opt, quiet);
  const fwd = model as unknown as (x: Tensor) => Tensor;
  return (x, y) => {
    opt.zeroGrad();
    const loss = lossFn(fwd(x), y);
    loss.backward();
    opt.step();
    return loss;
  };
}

/** Copies the initial weights back into the parameters, in place (the compiled plan keeps its bindings). */
function reset(model: nn.Module, state: Record<string, Tensor>) {
  kiln.noGrad(() => {
    for (const [n, p] of model.namedParameters()) p.copy_(state[n]);
  });
}

const timeIt = (fn: () => unknown) => {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
};

await workload(args, peer, 'mlp-train', () => {
  const { steps, warmup } = REPS['mlp-train'];
  const x = T('mlp.x'), y = T('mlp.y');
  const init = stateOf('mlp.');
  const model = new TwoLayerNet(1000, 100, 10);
  model.loadStateDict(init);
  const step = trainStep(model, new nn.MSELoss({ reduction: 'sum' }), new optim.SGD(model.parameters(), { lr: 1e-4 }));
  for (let i = 0; i < warmup; i++) step(x, y).itemSync();
  reset(model, init);
  const losses: number[] = [];
  const t0 = performance.now();
  for (let t = 0; t < steps; t++) losses.push(step(x, y).itemSync());
  const ms = performance.now() - t0;
  report({ peer, workload: 'mlp-train', ms: ms / steps, totalMs: ms, firstLoss: losses[0], lastLoss: losses[steps - 1] });
});

await workload(args, peer, 'convnet-train', () => {
  const { warmup, runs } = REPS['convnet-train'];
  const img = T('conv.img'), labels = T('conv.labels');
  const model = new MNISTConvNet();
  model.loadStateDict(stateOf('conv.'));
  const step = trainStep(model, new nn.CrossEntropyLoss(), new optim.SGD(model.parameters(), { lr: 0.01 }));
  let firstLoss = NaN;
  for (let i = 0; i < warmup; i++) {
    const l = step(img, labels).itemSync();
    if (i === 0) firstLoss = l;
  }
  const times: number[] = [];
  for (let i = 0; i < scaled(runs, args.scale); i++) times.push(timeIt(() => step(img, labels).itemSync()));
  report({ peer, workload: 'convnet-train', ms: median(times), best: Math.min(...times), firstLoss });
});

await workload(args, peer, 'matmul', () => {
  // One op: nothing to compile, the same kernel in both modes (run in both so every Kiln column has it).
  const { warmup, runs } = REPS.matmul;
  const a = T('mm.a'), b = T('mm.b');
  for (let i = 0; i < warmup; i++) a.mm(b);
  const times: number[] = [];
  let c: Tensor | undefined;
  for (let i = 0; i < scaled(runs, args.scale); i++) times.push(timeIt(() => (c = a.mm(b))));
  const ms = median(times);
  report({ peer, workload: 'matmul', ms, best: Math.min(...times), gflops: (2 * 1024 ** 3) / (ms * 1e6), check: (c!.dataSync() as Float32Array)[0] });
});

for (const batch of [64, 4096]) {
  const name = `mlp-infer-${batch}`;
  await workload(args, peer, name, () => {
    const { warmup, runs } = REPS[name as 'mlp-infer-64'];
    const model = new TwoLayerNet(1000, 100, 10);
    model.loadStateDict(stateOf('mlp.'));
    const x = T(batch === 64 ? 'mlp.x' : 'mlp.x4096');
    const fwd = compiled ? kiln.compile(model, quiet) : (model as unknown as (x: Tensor) => Tensor);
    const run = () => kiln.noGrad(() => fwd(x));
    for (let i = 0; i < warmup; i++) run();
    const times: number[] = [];
    let out: Tensor | undefined;
    for (let i = 0; i < scaled(runs, args.scale); i++) times.push(timeIt(() => (out = run()).dataSync()));
    report({ peer, workload: name, ms: median(times), best: Math.min(...times), check: (out!.dataSync() as Float32Array)[0] });
  });
}

await workload(args, peer, 'rnn-train', () => {
  const { warmup, runs } = REPS['rnn-train'];
  const TIMESTEPS = 5;
  const batch = T('rnn.batch'), h0 = kiln.zeros(10, 20), target = kiln.zeros(10, 10);
  const rnn = new RNN(50, 20, 10);
  rnn.loadStateDict(stateOf('rnn.'));
  const unroll = unrolledLoss(rnn, TIMESTEPS);
  const opt = new optim.SGD(rnn.parameters(), { lr: 0.01 });
  const step = compiled
    ? kiln.compileTrainStep(unroll, opt, quiet)
    : (b: Tensor, h: Tensor, t: Tensor) => {
        opt.zeroGrad();
        const loss = unroll(b, h, t);
        loss.backward();
        opt.step();
        return loss;
      };
  let firstLoss = NaN;
  for (let i = 0; i < warmup; i++) {
    const l = step(batch, h0, target).itemSync();
    if (i === 0) firstLoss = l;
  }
  const times: number[] = [];
  for (let i = 0; i < scaled(runs, args.scale); i++) times.push(timeIt(() => step(batch, h0, target).itemSync()));
  report({ peer, workload: 'rnn-train', ms: median(times), best: Math.min(...times), firstLoss });
});
