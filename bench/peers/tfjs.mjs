// TensorFlow.js's side of the peer bench (run by run.mjs).
//   node bench/peers/tfjs.mjs --backend cpu|wasm --data DIR [--only w1,w2] [--scale F]
// The wasm backend runs single-threaded here (Node has no crossOriginIsolated pthreads for it) with SIMD;
// the cpu backend is plain JavaScript. Training uses optimizer.minimize (tf.variableGrads + SGD); layouts
// are TF's own (dense kernels [in, out], NHWC images, HWIO filters), transposed from the shared weights,
// and fc1's rows are permuted so that flattening NHWC feeds the same weights as PyTorch's NCHW flatten.
import * as tf from '@tensorflow/tfjs';
import { loadData, median, nchwToNhwc, oihwToHwio, parseArgs, report, REPS, scaled, transpose2d, workload } from './data.mjs';

const args = parseArgs();
const backend = process.argv.includes('--backend') ? process.argv[process.argv.indexOf('--backend') + 1] : 'wasm';
if (backend === 'wasm') {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  wasm.setThreadsCount?.(1);
}
await tf.setBackend(backend);
await tf.ready();
tf.enableProdMode();
const peer = `tfjs-${backend}`;
const D = loadData(args.data);

const T = (name) => tf.tensor(D[name].data, D[name].shape, D[name].dtype);
/** A Linear weight [out, in] as a dense kernel [in, out]. */
const kernel = (name) => {
  const [o, i] = D[name].shape;
  return tf.tensor(transpose2d(D[name].data, o, i), [i, o]);
};
const timeIt = (fn) => {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
};

// TwoLayerNet: relu(x @ w1 + b1) @ w2 + b2  (clamp(min=0) == relu)
const mlpParams = () => ({
  w1: tf.variable(kernel('mlp.linear1.weight')), b1: tf.variable(T('mlp.linear1.bias')),
  w2: tf.variable(kernel('mlp.linear2.weight')), b2: tf.variable(T('mlp.linear2.bias')),
});
const mlp = (p, x) => tf.add(tf.matMul(tf.relu(tf.add(tf.matMul(x, p.w1), p.b1)), p.w2), p.b2);

await workload(args, peer, 'mlp-train', () => {
  const { steps, warmup } = REPS['mlp-train'];
  const x = T('mlp.x'), y = T('mlp.y');
  const p = mlpParams();
  const init = Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v.clone()]));
  const opt = tf.train.sgd(1e-4);
  const step = () => {
    const loss = opt.minimize(() => tf.sum(tf.square(tf.sub(mlp(p, x), y))), true);
    const v = loss.dataSync()[0];
    loss.dispose();
    return v;
  };
  for (let i = 0; i < warmup; i++) step();
  for (const k of Object.keys(p)) p[k].assign(init[k]);
  const losses = [];
  const t0 = performance.now();
  for (let t = 0; t < steps; t++) losses.push(step());
  const ms = performance.now() - t0;
  report({ peer, workload: 'mlp-train', ms: ms / steps, totalMs: ms, firstLoss: losses[0], lastLoss: losses[steps - 1] });
});

// The wasm backend has no Conv2DBackpropFilter kernel (tfjs-backend-wasm 4.22), so it cannot train the
// ConvNet: it reports that error, and the cpu backend runs this workload (fewer steps, it is slow).
await workload(args, peer, 'convnet-train', () => {
  const { warmup, runs } = backend === 'cpu' ? { warmup: 1, runs: 2 } : REPS['convnet-train'];
  const img = tf.tensor(nchwToNhwc(D['conv.img'].data, [64, 1, 28, 28]), [64, 28, 28, 1]);
  const labels = tf.oneHot(T('conv.labels'), 10);
  const filt = (name) => tf.variable(tf.tensor(oihwToHwio(D[name].data, D[name].shape), [5, 5, D[name].shape[1], D[name].shape[0]]));
  // fc1: PyTorch flattens [20, 4, 4] (c, h, w); NHWC flattens (h, w, c): permute fc1's input rows to match.
  const fc1 = new Float32Array(320 * 50);
  const w = D['conv.fc1.weight'].data; // [50, 320]
  for (let o = 0; o < 50; o++) for (let c = 0; c < 20; c++) for (let h = 0; h < 4; h++) for (let x = 0; x < 4; x++)
    fc1[((h * 4 + x) * 20 + c) * 50 + o] = w[o * 320 + c * 16 + h * 4 + x];
  const p = {
    c1: filt('conv.conv1.weight'), c1b: tf.variable(T('conv.conv1.bias')),
    c2: filt('conv.conv2.weight'), c2b: tf.variable(T('conv.conv2.bias')),
    f1: tf.variable(tf.tensor(fc1, [320, 50])), f1b: tf.variable(T('conv.fc1.bias')),
    f2: tf.variable(kernel('conv.fc2.weight')), f2b: tf.variable(T('conv.fc2.bias')),
  };
  const forward = (x) => {
    let h = tf.maxPool(tf.relu(tf.add(tf.conv2d(x, p.c1, 1, 'valid'), p.c1b)), 2, 2, 'valid');
    h = tf.maxPool(tf.relu(tf.add(tf.conv2d(h, p.c2, 1, 'valid'), p.c2b)), 2, 2, 'valid');
    h = tf.reshape(h, [64, 320]);
    h = tf.relu(tf.add(tf.matMul(h, p.f1), p.f1b));
    return tf.relu(tf.add(tf.matMul(h, p.f2), p.f2b));
  };
  // Cross-entropy as PyTorch's: mean over the batch of -log_softmax(logits)[label].
  const opt = tf.train.sgd(0.01);
  const step = () => {
    const loss = opt.minimize(() => tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.logSoftmax(forward(img))), 1))), true);
    const v = loss.dataSync()[0];
    loss.dispose();
    return v;
  };
  let firstLoss = NaN;
  for (let i = 0; i < warmup; i++) {
    const l = step();
    if (i === 0) firstLoss = l;
  }
  const times = [];
  for (let i = 0; i < scaled(runs, args.scale); i++) times.push(timeIt(step));
  report({ peer, workload: 'convnet-train', ms: median(times), best: Math.min(...times), firstLoss });
});

await workload(args, peer, 'matmul', () => {
  const { warmup, runs } = REPS.matmul;
  const a = T('mm.a'), b = T('mm.b');
  let check = NaN;
  const run = () => {
    const c = tf.matMul(a, b);
    const d = c.dataSync(); // forces the result and reads it back (4 MiB)
    check = d[0];
    c.dispose();
  };
  const n = backend === 'cpu' ? 1 : warmup;
  for (let i = 0; i < n; i++) run();
  const times = [];
  for (let i = 0; i < scaled(backend === 'cpu' ? 2 : runs, args.scale); i++) times.push(timeIt(run));
  const ms = median(times);
  report({ peer, workload: 'matmul', ms, best: Math.min(...times), gflops: (2 * 1024 ** 3) / (ms * 1e6), check });
});

for (const batch of [64, 4096]) {
  const name = `mlp-infer-${batch}`;
  await workload(args, peer, name, () => {
    if (backend === 'cpu') return;
    const { warmup, runs } = REPS[name];
    const p = mlpParams();
    const x = T(batch === 64 ? 'mlp.x' : 'mlp.x4096');
    let check = NaN;
    const run = () => {
      const y = tf.tidy(() => mlp(p, x));
      check = y.dataSync()[0];
      y.dispose();
    };
    for (let i = 0; i < warmup; i++) run();
    const times = [];
    for (let i = 0; i < scaled(runs, args.scale); i++) times.push(timeIt(run));
    report({ peer, workload: name, ms: median(times), best: Math.min(...times), check });
  });
}

await workload(args, peer, 'rnn-train', () => {
  if (backend === 'cpu') return;
  const { warmup, runs } = REPS['rnn-train'];
  const batch = T('rnn.batch'), h0 = tf.zeros([10, 20]), target = tf.zeros([10, 10]);
  const p = {
    i2h: tf.variable(kernel('rnn.i2h.weight')), i2hb: tf.variable(T('rnn.i2h.bias')),
    h2o: tf.variable(kernel('rnn.h2o.weight')), h2ob: tf.variable(T('rnn.h2o.bias')),
  };
  const opt = tf.train.sgd(0.01);
  const lossFn = () => {
    let hidden = h0;
    let loss = tf.scalar(0);
    for (let k = 0; k < 5; k++) {
      hidden = tf.add(tf.matMul(tf.concat([batch, hidden], 1), p.i2h), p.i2hb);
      const out = tf.add(tf.matMul(hidden, p.h2o), p.h2ob);
      loss = tf.add(loss, tf.mean(tf.square(tf.sub(out, target))));
    }
    return loss;
  };
  const step = () => {
    const loss = opt.minimize(lossFn, true);
    const v = loss.dataSync()[0];
    loss.dispose();
    return v;
  };
  let firstLoss = NaN;
  for (let i = 0; i < warmup; i++) {
    const l = step();
    if (i === 0) firstLoss = l;
  }
  const times = [];
  for (let i = 0; i < scaled(runs, args.scale); i++) times.push(timeIt(step));
  report({ peer, workload: 'rnn-train', ms: median(times), best: Math.min(...times), firstLoss });
});
