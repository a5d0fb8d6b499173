// Where a compiled training step's time goes: ms per step, then microseconds per kernel per step
// (each `cpu.run` call timed, grouped by op and shapes, largest first).
//   npx tsx --conditions=kiln-source bench/kernels.ts [convnet|mlp|rnn] [--kernels] [--eager]
// convnet: the seed MNISTConvNet at batch 64, SGD momentum 0.9; mlp: the seed TwoLayerNet
// (64x1000 -> 100 -> 10), SGD lr 1e-4; rnn: the seed RNN (50 -> 20 hidden -> 10, batch 10)
// unrolled over 5 steps, MSE, SGD lr 0.01. --eager times the same step run eagerly (zeroGrad,
// forward, backward, step), every op a kernel call. KILN_THREADS and KILN_WASM apply as usual.
import * as kiln from 'kiln';
import { nn, optim, type Tensor } from 'kiln';
import { cpu } from '../runtime/cpu/backend.js';
import { MNISTConvNet } from '../models/mnist-convnet.js';
import { TwoLayerNet } from '../models/two-layer-net.js';
import { RNN, unrolledLoss } from '../models/rnn.js';

const which = process.argv[2] ?? 'convnet';
if (which !== 'convnet' && which !== 'mlp' && which !== 'rnn') throw new Error(`bench/kernels.ts: expected convnet, mlp or rnn, got ${which}`);
kiln.manualSeed(0);
const quiet = { log: () => {} };
const eager = process.argv.includes('--eager');

/** The compiled step, or (--eager) the same step run op by op: `lossOf` then backward and the optimizer. */
function trainStep(compiled: () => (...args: Tensor[]) => Tensor, lossOf: (...args: Tensor[]) => Tensor, opt: optim.Optimizer<any>): (...args: Tensor[]) => Tensor {
  if (!eager) return compiled();
  return (...args) => {
    opt.zeroGrad();
    const loss = lossOf(...args);
    loss.backward();
    opt.step();
    return loss;
  };
}

function makeStep(): () => Tensor {
  if (which === 'convnet') {
    const m = new MNISTConvNet();
    const opt = new optim.SGD(m.parameters(), { lr: 0.01, momentum: 0.9 });
    const x = kiln.randn([64, 1, 28, 28]), y = kiln.randint(0, 10, [64]);
    const loss = (out: Tensor, t: Tensor) => nn.functional.crossEntropy(out, t);
    const s = trainStep(() => kiln.compileTrainStep(m, loss, opt, quiet), (x, y) => loss(m.forward(x), y), opt);
    return () => s(x, y);
  }
  if (which === 'rnn') {
    const rnn = new RNN(50, 20, 10);
    const opt = new optim.SGD(rnn.parameters(), { lr: 0.01 }), lossOf = unrolledLoss(rnn, 5);
    const s = trainStep(() => kiln.compileTrainStep(lossOf, opt, quiet), (b, h, t) => lossOf(b, h, t), opt);
    const b = kiln.randn([10, 50]), h0 = kiln.zeros(10, 20), t = kiln.zeros(10, 10);
    return () => s(b, h0, t);
  }
  const m = new TwoLayerNet(1000, 100, 10);
  const opt = new optim.SGD(m.parameters(), { lr: 1e-4 });
  const x = kiln.randn([64, 1000]), y = kiln.randn([64, 10]);
  const loss = (out: Tensor, t: Tensor) => nn.functional.mseLoss(out, t, { reduction: 'sum' });
  const s = trainStep(() => kiln.compileTrainStep(m, loss, opt, quiet), (x, y) => loss(m.forward(x), y), opt);
  return () => s(x, y);
}

const step = makeStep();
const N = which === 'convnet' ? 100 : which === 'rnn' ? 5000 : 1000;
for (let i = 0; i < 20; i++) step().itemSync();
const t0 = performance.now();
for (let i = 0; i < N; i++) step().itemSync();
console.log(`${which}${eager ? ' (eager)' : ''}: ${((performance.now() - t0) / N).toFixed(3)} ms/step (${N} steps, loss read each step)`);

if (process.argv.includes('--kernels')) {
  // Every kernel call timed: cpu.run, and the runners the plan made with cpu.prepareStep (a fresh
  // step function, so that its plan prepares its steps again, through the wrapper).
  const byKernel = new Map<string, number>();
  const keyOf = (op: { name: string }, inputs: readonly { shape: readonly number[] }[], out: { shape: readonly number[] }) => `${op.name} ${inputs.map((v) => v.shape.join('x')).join(',')} -> ${out.shape.join('x')}`;
  const time = (key: string, f: () => void) => {
    const start = performance.now();
    f();
    byKernel.set(key, (byKernel.get(key) ?? 0) + performance.now() - start);
  };
  const run = cpu.run, prepareStep = cpu.prepareStep;
  cpu.run = (op, inputs, attrs, out) => time(keyOf(op, inputs, out), () => run.call(cpu, op, inputs, attrs, out));
  cpu.prepareStep = (op, inputs, attrs, out) => {
    const runner = prepareStep?.call(cpu, op, inputs, attrs, out);
    const key = keyOf(op, inputs, out);
    return runner && (() => time(key, runner));
  };
  const timed = makeStep();
  try {
    for (let i = 0; i < 20; i++) timed().itemSync();
    byKernel.clear();
    for (let i = 0; i < N; i++) timed().itemSync();
  } finally {
    cpu.run = run;
    cpu.prepareStep = prepareStep;
  }
  for (const [k, ms] of [...byKernel].sort((a, b) => b[1] - a[1])) console.log(`${((ms / N) * 1000).toFixed(1).padStart(8)} us  ${k}`);
}
