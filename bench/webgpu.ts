// WebGPU kernels, timed through the public API: square float32 matmuls and the seed MNISTConvNet
// (batch 64, compiled training step and compiled forward).
//   npx tsx --conditions=kiln-source bench/webgpu.ts [--quick]
// Each figure is the median of timed runs, each ending in a read (so the GPU work is included).
// Only the public API is used, so the same file times an older checkout (git worktree) for a
// before/after comparison. On lavapipe (Mesa's software Vulkan) these time a CPU emulation, not a GPU.
import * as kiln from 'kiln';
import { nn, optim, type Tensor } from 'kiln';
import { MNISTConvNet } from '../models/mnist-convnet.js';

const QUICK = process.argv.includes('--quick');
const GPU = 'webgpu';

async function median(runs: number, fn: () => Promise<unknown>): Promise<number> {
  await fn(); // warm-up: pipelines compiled, pool filled
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)];
}

const backend = await kiln.initWebGPU();
const { info } = await (await import('../runtime/webgpu/device.js')).requestDevice();
console.log(`adapter: ${info}`);
const rows: string[] = ['| workload | ms (median) | GFLOP/s |', '| --- | ---: | ---: |'];

for (const [n, runs] of [[256, QUICK ? 3 : 9], [512, QUICK ? 2 : 5], [255, QUICK ? 3 : 9]] as const) {
  kiln.manualSeed(1);
  const a = kiln.randn([n, n], { device: GPU });
  const b = kiln.randn([n, n], { device: GPU });
  const ms = await median(runs, async () => {
    const c = a.mm(b);
    await c.sum().item();
    c.dispose();
  });
  rows.push(`| matmul ${n}x${n}x${n}${n % 4 ? ' (odd: no vec4 loads)' : ''} | ${ms.toFixed(1)} | ${((2 * n ** 3) / ms / 1e6).toFixed(2)} |`);
}

{
  kiln.manualSeed(2);
  const model = new MNISTConvNet().to(GPU);
  const step = kiln.compileTrainStep(model, new nn.CrossEntropyLoss(), new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 }), { log: () => {} });
  const x = kiln.randn([64, 1, 28, 28], { device: GPU });
  const y = kiln.randint(0, 10, [64], { device: GPU });
  const ms = await median(QUICK ? 3 : 7, async () => (step(x, y) as Tensor).item());
  rows.push(`| MNISTConvNet compiled training step, batch 64 | ${ms.toFixed(1)} | |`);
  const forward = kiln.compile(model, { log: () => {} });
  const fms = await median(QUICK ? 3 : 7, async () => kiln.noGrad(() => forward(x)).sum().item());
  rows.push(`| MNISTConvNet compiled forward, batch 64 | ${fms.toFixed(1)} | |`);
}

console.log(rows.join('\n'));
const variants = (backend as { matmulVariants?: Map<string, number> }).matmulVariants;
if (variants) console.log('matmul kernels run:', Object.fromEntries(variants));
process.exit(0);
