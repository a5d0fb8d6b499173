// WebGPU kernels, timed through the public API: square float32 matmuls and the seed MNISTConvNet
// (batch 64, compiled training step and compiled forward).
//   npx tsx --conditions=kiln-source bench/webgpu.ts [--quick] [--no-implicit]
// --no-implicit materialises conv columns (unfold) instead of reading them in place (implicit GEMM).
// Each figure is the median of timed runs, each ending in a read (so the GPU work is included).
// Only the public API is used, so the same file times an older checkout (git worktree) for a
// before/after comparison. On lavapipe (Mesa's software Vulkan) these time a CPU emulation, not a GPU.
import * as kiln from 'kiln';
import { nn, optim, type Tensor } from 'kiln';
import { MNISTConvNet } from '../models/mnist-convnet.js';

const QUICK = process.argv.includes('--quick');
const GPU = 'webgpu';

/**
 * Medians of wall time and of this process's CPU time (user + system, all threads: lavapipe runs
 * the shaders on this process's threads), in ms. On a shared machine the CPU time is the steadier
 * figure: other processes stretch the wall time, not the work done.
 */
async function median(runs: number, fn: () => Promise<unknown>): Promise<[number, number]> {
  await fn(); // warm-up: pipelines compiled, pool filled
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await fn();
    const c = process.cpuUsage(c0);
    wall.push(performance.now() - t0);
    cpu.push((c.user + c.system) / 1000);
  }
  const mid = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return [mid(wall), mid(cpu)];
}

const backend = await kiln.initWebGPU();
if (process.argv.includes('--no-implicit')) (backend as { implicitGemm?: boolean }).implicitGemm = false;
const { info } = await (await import('../runtime/webgpu/device.js')).requestDevice();
console.log(`adapter: ${info}`);
const rows: string[] = ['| workload | wall ms (median) | CPU ms (median) | GFLOP/s (wall) |', '| --- | ---: | ---: | ---: |'];

for (const [n, runs] of [[256, QUICK ? 3 : 9], [512, QUICK ? 2 : 5], [255, QUICK ? 3 : 9]] as const) {
  kiln.manualSeed(1);
  const a = kiln.randn([n, n], { device: GPU });
  const b = kiln.randn([n, n], { device: GPU });
  const [ms, cpu] = await median(runs, async () => {
    const c = a.mm(b);
    await c.data();
    c.dispose();
  });
  rows.push(`| matmul ${n}x${n}x${n}${n % 4 ? ' (odd: no vec4 loads)' : ''} | ${ms.toFixed(1)} | ${cpu.toFixed(1)} | ${((2 * n ** 3) / ms / 1e6).toFixed(2)} |`);
}

{
  kiln.manualSeed(2);
  const model = new MNISTConvNet().to(GPU);
  const step = kiln.compileTrainStep(model, new nn.CrossEntropyLoss(), new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 }), { log: () => {} });
  const x = kiln.randn([64, 1, 28, 28], { device: GPU });
  const y = kiln.randint(0, 10, [64], { device: GPU });
  const [ms, cpu] = await median(QUICK ? 3 : 7, async () => (step(x, y) as Tensor).item());
  rows.push(`| MNISTConvNet compiled training step, batch 64 | ${ms.toFixed(1)} | ${cpu.toFixed(1)} | |`);
  const forward = kiln.compile(model, { log: () => {} });
  const [fms, fcpu] = await median(QUICK ? 3 : 7, async () => kiln.noGrad(() => forward(x)).data());
  rows.push(`| MNISTConvNet compiled forward, batch 64 | ${fms.toFixed(1)} | ${fcpu.toFixed(1)} | |`);
}

console.log(rows.join('\n'));
const variants = (backend as { matmulVariants?: Map<string, number> }).matmulVariants;
if (variants) console.log('matmul kernels run:', Object.fromEntries(variants));
process.exit(0);
