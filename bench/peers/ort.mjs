// onnxruntime-node's side of the peer bench (inference only; run by run.mjs).
//   node bench/peers/ort.mjs --data DIR [--only w1,w2] [--scale F]
// The models are DIR/mlp.onnx (TwoLayerNet with the shared weights, batch axis dynamic) and DIR/mm.onnx
// (one MatMul of two inputs), written by `torch_peer.py --export-onnx` (torch.onnx.export, opset 13) at
// the start of each bench run. CPU execution provider, one intra-op and one inter-op thread, all graph
// optimisations on.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadData, median, parseArgs, report, REPS, scaled, workload } from './data.mjs';

const args = parseArgs();
const peer = 'onnxruntime';
const D = loadData(args.data);
const opts = { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' };
const T = (name) => new ort.Tensor('float32', D[name].data, D[name].shape);

async function timeRuns(session, feeds, out, warmup, runs) {
  let check = NaN;
  const once = async () => {
    const t0 = performance.now();
    const r = await session.run(feeds);
    const ms = performance.now() - t0;
    check = r[out].data[0];
    return ms;
  };
  for (let i = 0; i < warmup; i++) await once();
  const times = [];
  for (let i = 0; i < runs; i++) times.push(await once());
  return { ms: median(times), best: Math.min(...times), check };
}

for (const batch of [64, 4096]) {
  const name = `mlp-infer-${batch}`;
  await workload(args, peer, name, async () => {
    const file = join(args.data, 'mlp.onnx');
    if (!existsSync(file)) throw new Error(`${file} missing (torch.onnx.export failed?)`);
    const session = await ort.InferenceSession.create(file, opts);
    const { warmup, runs } = REPS[name];
    const r = await timeRuns(session, { x: T(batch === 64 ? 'mlp.x' : 'mlp.x4096') }, 'y', warmup, scaled(runs, args.scale));
    report({ peer, workload: name, ...r });
  });
}

await workload(args, peer, 'matmul', async () => {
  const file = join(args.data, 'mm.onnx');
  if (!existsSync(file)) throw new Error(`${file} missing (torch.onnx.export failed?)`);
  const session = await ort.InferenceSession.create(file, opts);
  const { warmup, runs } = REPS.matmul;
  const r = await timeRuns(session, { a: T('mm.a'), b: T('mm.b') }, 'c', warmup, scaled(runs, args.scale));
  report({ peer, workload: 'matmul', ...r, gflops: (2 * 1024 ** 3) / (r.ms * 1e6) });
});
