// jax-js's side of the peer bench (run by run.mjs).
//   node bench/peers/jax.mjs --data DIR [--only w1,w2] [--scale F]
// Device 'wasm' (jax-js's default; single-threaded in Node, which has no global Worker for its thread
// pool). Every step is one jit-compiled function: the training steps are jit(valueAndGrad + the SGD
// update), returning the loss and the new parameters, as in JAX. jax-js counts references: a function
// consumes its array arguments, so arrays used again are passed as `.ref` (tree.ref for a pytree).
import { jit, lax, nn, numpy as np, tree, valueAndGrad } from '@jax-js/jax';
import { loadData, median, parseArgs, report, REPS, scaled, transpose2d, workload } from './data.mjs';

const args = parseArgs();
const peer = 'jax-js';
const D = loadData(args.data);

const T = (name) => {
  const d = D[name];
  return np.array(d.data, { shape: d.shape, dtype: d.dtype === 'int32' ? np.int32 : np.float32 });
};
/** A Linear weight [out, in] as [in, out] (so the forward is x @ w + b). */
const kernel = (name) => {
  const [o, i] = D[name].shape;
  return np.array(transpose2d(D[name].data, o, i), { shape: [i, o] });
};
/** Reads a scalar (forcing the computation) and drops the array. */
const read = (a) => {
  const v = a.item();
  if (a.refCount > 0) a.dispose();
  return v;
};
const timeIt = (fn) => {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
};

/** jit(step) where step(p, ...inputs) = [loss, p - lr * grad]. */
const sgdStep = (lossFn, lr) =>
  jit((p, ...inputs) => {
    const [loss, g] = valueAndGrad(lossFn)(tree.ref(p), ...inputs);
    return [loss, tree.map((w, dw) => w.sub(dw.mul(lr)), p, g)];
  });

// TwoLayerNet: relu(x @ w1 + b1) @ w2 + b2
const mlpParams = () => ({ w1: kernel('mlp.linear1.weight'), b1: T('mlp.linear1.bias'), w2: kernel('mlp.linear2.weight'), b2: T('mlp.linear2.bias') });
const mlp = (p, x) => np.matmul(nn.relu(np.matmul(x, p.w1).add(p.b1)), p.w2).add(p.b2);

await workload(args, peer, 'mlp-train', () => {
  const { steps, warmup } = REPS['mlp-train'];
  const x = T('mlp.x'), y = T('mlp.y');
  const init = mlpParams();
  const step = sgdStep((p, x, y) => {
    const d = mlp(p, x).sub(y);
    return np.sum(d.ref.mul(d));
  }, 1e-4);
  let p = tree.ref(init);
  for (let i = 0; i < warmup; i++) {
    const [loss, next] = step(p, x.ref, y.ref);
    read(loss);
    p = next;
  }
  tree.dispose(p);
  p = tree.ref(init);
  const losses = [];
  const t0 = performance.now();
  for (let t = 0; t < steps; t++) {
    const [loss, next] = step(p, x.ref, y.ref);
    losses.push(read(loss));
    p = next;
  }
  const ms = performance.now() - t0;
  report({ peer, workload: 'mlp-train', ms: ms / steps, totalMs: ms, firstLoss: losses[0], lastLoss: losses[steps - 1] });
});

await workload(args, peer, 'convnet-train', () => {
  const { warmup, runs } = { warmup: 2, runs: 5 }; // ~0.6 s a step: fewer than REPS asks
  const img = T('conv.img');
  const onehot = nn.oneHot(T('conv.labels'), 10);
  let p = {
    c1: T('conv.conv1.weight'), c1b: T('conv.conv1.bias').reshape([1, 10, 1, 1]),
    c2: T('conv.conv2.weight'), c2b: T('conv.conv2.bias').reshape([1, 20, 1, 1]),
    f1: kernel('conv.fc1.weight'), f1b: T('conv.fc1.bias'),
    f2: kernel('conv.fc2.weight'), f2b: T('conv.fc2.bias'),
  };
  // max-pool 2x2, stride 2, NCHW: split each spatial axis into (n/2, 2) and take the max of the pairs.
  const pool = (x) => {
    const [n, c, h, w] = x.shape;
    return np.max(x.reshape([n, c, h / 2, 2, w / 2, 2]), [3, 5]);
  };
  const forward = (p, x) => {
    let h = pool(nn.relu(lax.conv(x, p.c1, [1, 1], 'VALID').add(p.c1b)));
    h = pool(nn.relu(lax.conv(h, p.c2, [1, 1], 'VALID').add(p.c2b)));
    h = h.reshape([64, 320]);
    h = nn.relu(np.matmul(h, p.f1).add(p.f1b));
    return nn.relu(np.matmul(h, p.f2).add(p.f2b));
  };
  // PyTorch's cross-entropy: mean over the batch of -log_softmax(logits)[label].
  const step = sgdStep((p, x, t) => np.mean(np.sum(nn.logSoftmax(forward(p, x), 1).mul(t), 1)).mul(-1), 0.01);
  const once = () => {
    const [loss, next] = step(p, img.ref, onehot.ref);
    p = next;
    return read(loss);
  };
  let firstLoss = NaN;
  for (let i = 0; i < warmup; i++) {
    const l = once();
    if (i === 0) firstLoss = l;
  }
  const times = [];
  for (let i = 0; i < scaled(runs, args.scale); i++) times.push(timeIt(once));
  report({ peer, workload: 'convnet-train', ms: median(times), best: Math.min(...times), firstLoss });
});

await workload(args, peer, 'matmul', () => {
  const { warmup, runs } = REPS.matmul;
  const a = T('mm.a'), b = T('mm.b');
  let check = NaN;
  const run = () => {
    check = np.matmul(a.ref, b.ref).dataSync()[0]; // forces the (lazy) product and reads it back
  };
  for (let i = 0; i < warmup; i++) run();
  const times = [];
  for (let i = 0; i < scaled(runs, args.scale); i++) times.push(timeIt(run));
  const ms = median(times);
  report({ peer, workload: 'matmul', ms, best: Math.min(...times), gflops: (2 * 1024 ** 3) / (ms * 1e6), check });
});

for (const batch of [64, 4096]) {
  const name = `mlp-infer-${batch}`;
  await workload(args, peer, name, () => {
    const { warmup, runs } = REPS[name];
    const p = mlpParams();
    const x = T(batch === 64 ? 'mlp.x' : 'mlp.x4096');
    const fwd = jit(mlp);
    let check = NaN;
    const run = () => {
      check = fwd(tree.ref(p), x.ref).dataSync()[0];
    };
    for (let i = 0; i < warmup; i++) run();
    const times = [];
    for (let i = 0; i < scaled(runs, args.scale); i++) times.push(timeIt(run));
    report({ peer, workload: name, ms: median(times), best: Math.min(...times), check });
  });
}

await workload(args, peer, 'rnn-train', () => {
  const { warmup, runs } = REPS['rnn-train'];
  const batch = T('rnn.batch'), h0 = np.zeros([10, 20]), target = np.zeros([10, 10]);
  let p = { i2h: kernel('rnn.i2h.weight'), i2hb: T('rnn.i2h.bias'), h2o: kernel('rnn.h2o.weight'), h2ob: T('rnn.h2o.bias') };
  const step = sgdStep((p, b, h, t) => {
    let hidden = h;
    let loss = null;
    for (let k = 0; k < 5; k++) {
      hidden = np.matmul(np.concatenate([b.ref, hidden], 1), p.i2h.ref).add(p.i2hb.ref);
      const d = np.matmul(hidden.ref, p.h2o.ref).add(p.h2ob.ref).sub(t.ref);
      const l = np.mean(d.ref.mul(d));
      loss = loss === null ? l : loss.add(l);
    }
    hidden.dispose();
    tree.dispose([p, b, t]);
    return loss;
  }, 0.01);
  const once = () => {
    const [loss, next] = step(p, batch.ref, h0.ref, target.ref);
    p = next;
    return read(loss);
  };
  let firstLoss = NaN;
  for (let i = 0; i < warmup; i++) {
    const l = once();
    if (i === 0) firstLoss = l;
  }
  const times = [];
  for (let i = 0; i < scaled(runs, args.scale); i++) times.push(timeIt(once));
  report({ peer, workload: 'rnn-train', ms: median(times), best: Math.min(...times), firstLoss });
});
