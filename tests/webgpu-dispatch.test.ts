// How the WebGPU backend records work: a compiled plan's dispatches share one compute pass and are
// replayed from the second call (recorded pipelines and bind groups); buffers reused from the pool
// are zero-filled at their first use unless a kernel overwrites them whole. Behaviour and counters
// only, never timings.
import { beforeAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { nn, optim, type Tensor } from 'kiln';
import { TwoLayerNet } from '../models/two-layer-net.js';
import type { View } from '../runtime/backend.js';
import { expectCloseAsync } from './helpers.js';

let gpu: kiln.WebGPUBackend;
beforeAll(async () => {
  gpu = await kiln.initWebGPU();
});

const quiet = { log: () => {} };

describe('WebGPU recording', () => {
  it('a compiled training step is one compute pass, replayed once its plan has run, and trains as on the CPU', async () => {
    kiln.manualSeed(5);
    const cpuModel = new TwoLayerNet(50, 20, 5);
    const gpuModel = new TwoLayerNet(50, 20, 5);
    gpuModel.loadStateDict(cpuModel.stateDict());
    gpuModel.to('webgpu');
    const mse = () => new nn.MSELoss({ reduction: 'sum' });
    const cpuStep = kiln.compileTrainStep(cpuModel, mse(), new optim.SGD(cpuModel.parameters(), { lr: 1e-3, momentum: 0.9 }), quiet);
    const gpuStep = kiln.compileTrainStep(gpuModel, mse(), new optim.SGD(gpuModel.parameters(), { lr: 1e-3, momentum: 0.9 }), quiet);
    const batches = [0, 1].map(() => [kiln.randn(16, 50), kiln.randn(16, 5)]);
    const gpuBatches = batches.map(([x, y]) => [x.to('webgpu'), y.to('webgpu')]);
    const cpuLosses: number[] = [];
    const gpuLosses: number[] = [];
    // Call 0 traces the step, call 1 runs the plan first; then the same batch again, the other
    // batch (the plan's input views are rebound), that one again, and back.
    const order = [0, 0, 0, 1, 1, 0];
    for (let t = 0; t < order.length; t++) {
      const k = order[t];
      cpuLosses.push(await cpuStep(batches[k][0], batches[k][1]).item());
      const kernels = t > 0 ? gpuStep.stats(gpuBatches[k][0], gpuBatches[k][1]).kernels : 0;
      const before = { ...gpu.counters };
      const loss = gpuStep(gpuBatches[k][0], gpuBatches[k][1]);
      if (t > 0) {
        // (The first call traces the step.)
        expect(gpu.counters.passes - before.passes).toBe(1);
        expect(gpu.counters.submits - before.submits).toBe(1);
      }
      // The same inputs as the last run: every kernel is replayed. New inputs: those reading them run afresh.
      const replays = gpu.counters.replays - before.replays;
      if (t === 1) expect(replays).toBe(0);
      else if (t > 1 && order[t] === order[t - 1]) expect(replays).toBe(kernels);
      else if (t > 1) expect(replays).toBeGreaterThan(0);
      gpuLosses.push(await loss.item());
    }
    for (let t = 0; t < cpuLosses.length; t++) expect(Math.abs(gpuLosses[t] - cpuLosses[t])).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(cpuLosses[t])));
    for (const [name, p] of Object.entries(gpuModel.stateDict())) await expectCloseAsync(name, p, cpuModel.stateDict()[name], 1e-5, { floor: 1 });
  });

  it('a replayed plan of dependent kernels reads its inputs as they are at each call', async () => {
    const f = (x: Tensor, w: Tensor) => x.mm(w).add(1).relu().mul(x.sum(1, true)).exp().mean(0);
    const compiled = kiln.compile(f, quiet);
    kiln.manualSeed(6);
    const xs = [kiln.randn(8, 12).mul(0.1), kiln.randn(8, 12).mul(0.1)];
    const w = kiln.randn(12, 6).mul(0.1);
    const gx = xs.map((x) => x.to('webgpu'));
    const gw = w.to('webgpu');
    for (const k of [0, 0, 1, 0]) await expectCloseAsync(`call with x${k}`, compiled(gx[k], gw), f(xs[k], w), 1e-5, { floor: 1 });
    // Written in place between calls: same buffer, new values.
    gx[0].mul_(2);
    xs[0].mul_(2);
    await expectCloseAsync('after mul_', compiled(gx[0], gw), f(xs[0], w), 1e-5, { floor: 1 });
  });

  it('a buffer taken again from the pool reads as zeros where nothing wrote it', async () => {
    const n = 96;
    const ones = kiln.ones([n], { device: 'webgpu' });
    await ones.data();
    ones.dispose();
    const before = gpu.memory().pooledBuffers;
    const storage = gpu.alloc('float32', n);
    expect(gpu.memory().pooledBuffers).toBe(before - 1);
    const whole: View = { storage, shape: [n], strides: [1], offset: 0, dtype: 'float32' };
    expect(Array.from(await gpu.read(whole))).toEqual(new Array(n).fill(0));
    // A part written by a kernel: the rest still reads as zeros.
    const src = kiln.full([8], 3, { device: 'webgpu' });
    const again = gpu.alloc('float32', n);
    gpu.copy(src._view!, { storage: again, shape: [8], strides: [1], offset: 40, dtype: 'float32' });
    const got = Array.from(await gpu.read({ ...whole, storage: again }));
    expect(got).toEqual(Array.from({ length: n }, (_, i) => (i >= 40 && i < 48 ? 3 : 0)));
    gpu.free(storage);
    gpu.free(again);
  });
});
