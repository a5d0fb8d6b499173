// The seed TwoLayerNet (64 x 1000 -> 100 -> 10), trained 500 steps with a compiled training step
// (forward, loss, backward and the SGD update in one plan), timed; on the CPU by default.
//   npm run example -- examples/compiled-training.ts                   # CPU
//   npm run example -- examples/compiled-training.ts --device webgpu   # WebGPU (a GPU, or lavapipe)
//   npm run example -- examples/compiled-training.ts --eager           # the same loop op by op
import * as kiln from 'kiln';
import { nn, optim } from 'kiln';
import { TwoLayerNet } from '../models/two-layer-net.js';
import { isMain } from './is-main.js';

export async function trainCompiled(opts: { device?: string; eager?: boolean; steps?: number; log?: (line: string) => void } = {}) {
  const { device = 'cpu', eager = false, steps = 500, log = console.log } = opts;
  if (device === 'webgpu') await kiln.initWebGPU();
  const [N, D_in, H, D_out] = [64, 1000, 100, 10];
  kiln.manualSeed(0);
  const x = kiln.randn(N, D_in).to(device);
  const y = kiln.randn(N, D_out).to(device);
  const model = new TwoLayerNet(D_in, H, D_out).to(device);
  const lossFn = new nn.MSELoss({ reduction: 'sum' });
  const optimizer = new optim.SGD(model.parameters(), { lr: 1e-4 });
  const step = eager
    ? (a: kiln.Tensor, b: kiln.Tensor) => { optimizer.zeroGrad(); const l = lossFn(model(a), b); l.backward(); optimizer.step(); return l; }
    : kiln.compileTrainStep(model, lossFn, optimizer);
  const start = performance.now();
  let last = NaN;
  for (let t = 0; t < steps; t++) {
    const loss = step(x, y);
    if (t % 100 === 99 || t === 0) {
      last = await loss.item();
      log(`${t} ${last}`);
    }
  }
  const seconds = (performance.now() - start) / 1000;
  log(`${steps} ${eager ? 'eager' : 'compiled'} steps on ${device} in ${seconds.toFixed(2)} s (${((seconds / steps) * 1000).toFixed(2)} ms/step)`);
  return { loss: last, seconds };
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--device');
  await trainCompiled({ device: at >= 0 ? args[at + 1] : 'cpu', eager: args.includes('--eager') });
}
