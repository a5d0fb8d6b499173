// WebGPU kernels, timed through the public API: the round trip (a 1-element add and its read),
// square float32 matmuls and the seed MNISTConvNet (batch 64, compiled training step and forward).
//   npx tsx --conditions=kiln-source bench/webgpu.ts [--quick] [--implicit] [--large]
// --implicit reads conv columns in place (implicit GEMM) instead of materialising them (unfold, the default).
// --large adds 1024^3 and 2048^3 matmuls, each also timed ten per read (for a real GPU: minutes on
// lavapipe).
// Each figure is the median of timed runs, each ending in a read (so the GPU work is included).
// On a real GPU (Dawn on NVIDIA) the process spins while it waits, so CPU time ~ wall time there.
// Only the public API is used, so the same file times an older checkout (git worktree) for a
// before/after comparison. On lavapipe (Mesa's software Vulkan) these time a CPU emulation, not a GPU.
import * as kiln from 'kiln';
import { nn, optim, type Tensor } from 'kiln';
import { MNISTConvNet } from '../models/mnist-convnet.js';

const QUICK = process.argv.includes('--quick');
const LARGE = process.argv.includes('--large');
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
if (process.argv.includes('--implicit')) (backend as { implicitGemm?: boolean }).implicitGemm = true;
const { info } = await (await import('../runtime/webgpu/device.js')).requestDevice();
console.log(`adapter: ${info}`);
const rows: string[] = ['| workload | wall ms (median) | CPU ms (median) | GFLOP/s (wall) |', '| --- | ---: | ---: | ---: |'];

{
  // The floor under every row: one tiny dispatch, its submission and the read back.
  const one = kiln.ones([1], { device: GPU });
  const [ms, cpu] = await median(QUICK ? 5 : 21, async () => {
    const c = one.add(1);
    await c.data();
    c.dispose();
  });
  rows.push(`| round trip: a 1-element add and its read | ${ms.toFixed(2)} | ${cpu.toFixed(2)} | |`);
}

const sizes: [number, number][] = [[256, QUICK ? 3 : 9], [512, QUICK ? 2 : 5], [255, QUICK ? 3 : 9]];
if (LARGE) sizes.push([1024, QUICK ? 3 : 9], [2048, QUICK ? 3 : 9]);
for (const [n, runs] of sizes) {
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

// --large: also 10 products in one submission and one read of the last, so that the round trip and
// the read of the result (16 MiB at 2048) are paid once, not per product; the row gives ms per product.
for (const n of LARGE ? [1024, 2048] : []) {
  kiln.manualSeed(1);
  const a = kiln.randn([n, n], { device: GPU });
  const b = kiln.randn([n, n], { device: GPU });
  const reps = 10;
  const [ms, cpu] = await median(QUICK ? 3 : 7, async () => {
    const cs = Array.from({ length: reps }, () => a.mm(b));
    await cs[reps - 1].data();
    for (const c of cs) c.dispose();
  });
  rows.push(`| matmul ${n}x${n}x${n}, ${reps} per read (per product) | ${(ms / reps).toFixed(2)} | ${(cpu / reps).toFixed(2)} | ${((2 * n ** 3 * reps) / ms / 1e6).toFixed(2)} |`);
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
