// The WebGPU backend's host cost per dispatch: how long the JS call that records (and submits) the
// work takes, apart from the wait for the GPU.
//   npx tsx --conditions=kiln-source bench/webgpu-dispatch.ts [--quick] [--implicit]
// (a) a compiled MNISTConvNet training step (batch 64, SGD with momentum, as bench/webgpu.ts builds
//     it): `step(x, y)` is timed without reading its loss; the read (the wait for the GPU) follows,
//     untimed, so that steps do not pile up. Dispatches and submits per step come from
//     `backend.counters`.
// (b) a chain of small eager ops (`x = x.mul(1.0001).add(1e-4)`, 64 elements): the loop is timed,
//     then the last value is read, untimed.
// Each row: the median (and range) over rounds of host µs per step (or per chain), the median
// divided by the dispatches recorded, and the same for this process's CPU time in that window (user +
// system, all threads). On a shared machine the CPU time is the steadier figure: another process
// taking the cores stretches the wall time, not the work done. The GPU is idle until the step's
// submit, its last act, so little of the emulated GPU's work (lavapipe's threads) falls in it. On
// lavapipe, expect outliers of tens of ms in both columns (an occasional slow beginComputePass in
// Dawn): compare medians over several runs, and the ranges' minimums.
// Profile: node --cpu-prof --conditions=kiln-source --import tsx bench/webgpu-dispatch.ts
import * as kiln from 'kiln';
import { nn, optim, type Tensor } from 'kiln';
import { MNISTConvNet } from '../models/mnist-convnet.js';

const QUICK = process.argv.includes('--quick');
const GPU = 'webgpu';

const backend = await kiln.initWebGPU();
if (process.argv.includes('--implicit')) backend.implicitGemm = true;
const { info } = await (await import('../runtime/webgpu/device.js')).requestDevice();
console.log(`adapter: ${info}`);
const counters = backend.counters;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows: string[] = ['| workload | dispatches | submits | host µs (median) | host µs (min-max) | host µs per dispatch (median) | CPU µs per dispatch (median) | GPU wait ms (median) |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'];
const range = (xs: number[]) => `${Math.min(...xs).toFixed(0)}-${Math.max(...xs).toFixed(0)}`;

/**
 * Times `runs` calls of `record` (which records and submits work, returning what to wait on) and
 * adds a row: dispatches and submits per call (backend counters), host and CPU time to record,
 * and the wait for the GPU.
 */
async function timeRow(name: string, runs: number, record: () => { done: Promise<unknown>; dispose?: () => void }): Promise<void> {
  const host: number[] = [];
  const cpu: number[] = [];
  const wait: number[] = [];
  const d0 = counters.dispatches;
  const s0 = counters.submits;
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = record();
    const t1 = performance.now();
    const c = process.cpuUsage(c0);
    cpu.push(c.user + c.system);
    await r.done;
    wait.push(performance.now() - t1);
    host.push((t1 - t0) * 1000);
    r.dispose?.();
  }
  const dispatches = (counters.dispatches - d0) / runs;
  const submits = (counters.submits - s0) / runs;
  const us = median(host);
  rows.push(`| ${name} | ${dispatches} | ${submits} | ${us.toFixed(0)} | ${range(host)} | ${(us / dispatches).toFixed(1)} | ${(median(cpu) / dispatches).toFixed(1)} | ${median(wait).toFixed(1)} |`);
}

{
  kiln.manualSeed(2);
  const model = new MNISTConvNet().to(GPU);
  const step = kiln.compileTrainStep(model, new nn.CrossEntropyLoss(), new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 }), { log: () => {} });
  const x = kiln.randn([64, 1, 28, 28], { device: GPU });
  const y = kiln.randint(0, 10, [64], { device: GPU });
  for (let i = 0; i < 3; i++) await (step(x, y) as Tensor).item(); // warm-up: plan built, pipelines compiled
  await timeRow('MNISTConvNet compiled training step, batch 64', QUICK ? 10 : 40, () => ({ done: (step(x, y) as Tensor).item() }));
}

{
  const len = 100;
  const start = kiln.ones([64], { device: GPU });
  const chain = () => {
    let x = start;
    for (let i = 0; i < len; i++) {
      const y = x.mul(1.0001);
      if (x !== start) x.dispose();
      x = y.add(1e-4);
      y.dispose();
    }
    return x;
  };
  for (let i = 0; i < 3; i++) {
    const r = chain();
    await r.data();
    r.dispose();
  }
  // Each chain's read adds one submit; a read of a contiguous result adds no dispatch.
  await timeRow(`eager chain: ${2 * len} ops (mul, add) on 64 elements`, QUICK ? 5 : 20, () => {
    const r = chain();
    return { done: r.data(), dispose: () => r.dispose() };
  });
}

console.log(rows.join('\n'));
process.exit(0);
