// WebGPU against the CPU backend on seeded random data, through the public API: matmuls (square,
// odd, non-multiples of 4 and 64, long K, transposed, batched, broadcast), conv2d forward and
// backward (implicit GEMM on and off), and compiled MNISTConvNet SGD steps and forward (batch 64).
//   npx tsx --conditions=kiln-source bench/webgpu-parity.ts [--large]
// --large adds 1024^3 and 2048^3 matmuls (slow on lavapipe; meant for a real GPU).
// For each case it prints max|gpu - cpu| and that over max|cpu| ("rel"); any rel above 1e-4 is a
// failure, and the process exits with code 1 after printing every case.
import * as kiln from 'kiln';
import { nn, optim, type Tensor } from 'kiln';
import { MNISTConvNet } from '../models/mnist-convnet.js';

const F = nn.functional;
const GPU = 'webgpu';
const TOL = 1e-4;
const LARGE = process.argv.includes('--large');

const backend = await kiln.initWebGPU();
const flags = backend as unknown as { implicitGemm: boolean; matmulVariants: Map<string, number> };
console.log(`adapter: ${(await kiln.webgpuDevice()).info}`);
console.log(`criterion: max|gpu-cpu| <= ${TOL} * max|cpu| per tensor`);

const rows: string[] = ['| case | max abs err | max abs cpu | rel | ok |', '| --- | ---: | ---: | ---: | --- |'];
let failures = 0;

function record(what: string, err: number, ref: number): void {
  const rel = ref > 0 ? err / ref : err;
  const ok = Number.isFinite(rel) && rel <= TOL;
  if (!ok) failures++;
  rows.push(`| ${what} | ${err.toExponential(2)} | ${ref.toExponential(2)} | ${rel.toExponential(2)} | ${ok ? 'ok' : '**FAIL**'} |`);
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}: max abs err ${err.toExponential(3)}, max|cpu| ${ref.toExponential(3)}, rel ${rel.toExponential(3)}`);
}

async function compare(what: string, cpu: Tensor, gpu: Tensor): Promise<void> {
  if (cpu.shape.join() !== gpu.shape.join()) {
    failures++;
    rows.push(`| ${what} | shape ${gpu.shape} vs ${cpu.shape} | | | **FAIL** |`);
    console.log(`FAIL ${what}: shape ${gpu.shape} vs cpu ${cpu.shape}`);
    return;
  }
  const c = cpu.dataSync();
  const g = await gpu.data();
  let err = 0;
  let ref = 0;
  let firstBad = -1;
  for (let i = 0; i < c.length; i++) {
    const d = Math.abs(c[i] - g[i]);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
    ref = Math.max(ref, Math.abs(c[i]));
    if (firstBad < 0 && !(d <= 1e-3 * (Math.abs(c[i]) + 1))) firstBad = i;
  }
  record(what, err, ref);
  if (firstBad >= 0) console.log(`     first element off by more than 1e-3: flat index ${firstBad}, gpu ${g[firstBad]}, cpu ${c[firstBad]}`);
}

// ---- matmuls: [M, K, N] -----------------------------------------------------------------------
const shapes: [number, number, number][] = [
  [64, 64, 64], [256, 256, 256], [512, 512, 512], [255, 255, 255], [257, 129, 63], [127, 300, 65],
  [1, 1000, 1], [1000, 1, 1000], [10, 36864, 25], [100, 3, 7], [513, 257, 1025],
];
if (LARGE) shapes.push([1024, 1024, 1024], [2048, 2048, 2048], [2047, 2049, 2051]);
let seed = 10;
for (const [m, k, n] of shapes) {
  kiln.manualSeed(seed++);
  const a = kiln.randn([m, k]);
  const b = kiln.randn([k, n]);
  const before = new Map(flags.matmulVariants);
  const g = a.to(GPU).mm(b.to(GPU));
  await g.data();
  const ran = [...flags.matmulVariants].filter(([v, c]) => c !== (before.get(v) ?? 0)).map(([v]) => v).join(', ');
  await compare(`matmul ${m}x${k}x${n} (${ran})`, a.mm(b), g);
}
{
  kiln.manualSeed(seed++);
  const a = kiln.randn([256, 255]);
  const b = kiln.randn([256, 129]);
  await compare('matmul a.t() @ b, 255x256x129 (strided A)', a.t().mm(b), a.to(GPU).t().mm(b.to(GPU)));
  const c = kiln.randn([300, 256]);
  await compare('matmul a @ c.t(), 256x256x300 (strided B)', a.t().mm(c.t()), a.to(GPU).t().mm(c.to(GPU).t()));
}
{
  kiln.manualSeed(seed++);
  const a = kiln.randn([8, 129, 67]);
  const b = kiln.randn([8, 67, 33]);
  await compare('bmm [8,129,67] @ [8,67,33]', a.bmm(b), a.to(GPU).bmm(b.to(GPU)));
  const x = kiln.randn([4, 1, 64, 96]);
  const y = kiln.randn([3, 96, 64]);
  await compare('broadcast matmul [4,1,64,96] @ [3,96,64]', x.matmul(y), x.to(GPU).matmul(y.to(GPU)));
}

// ---- conv2d forward and backward ---------------------------------------------------------------
interface ConvCase { x: number[]; w: number[]; stride: number; padding: number; dilation: number; groups: number }
const convs: ConvCase[] = [
  { x: [8, 16, 30, 30], w: [32, 16, 3, 3], stride: 1, padding: 1, dilation: 1, groups: 1 },
  { x: [4, 3, 33, 33], w: [64, 3, 5, 5], stride: 2, padding: 0, dilation: 1, groups: 1 },
  { x: [2, 6, 17, 17], w: [9, 2, 3, 3], stride: 1, padding: 2, dilation: 2, groups: 3 },
  { x: [16, 64, 16, 16], w: [128, 64, 3, 3], stride: 1, padding: 1, dilation: 1, groups: 1 },
  { x: [64, 1, 28, 28], w: [10, 1, 5, 5], stride: 1, padding: 0, dilation: 1, groups: 1 },
];
for (const implicit of [true, false]) {
  flags.implicitGemm = implicit;
  for (const cs of convs) {
    kiln.manualSeed(seed++);
    const opts = { stride: cs.stride, padding: cs.padding, dilation: cs.dilation, groups: cs.groups };
    const x = kiln.randn(cs.x).requiresGrad_();
    const w = kiln.randn(cs.w).requiresGrad_();
    const b = kiln.randn([cs.w[0]]).requiresGrad_();
    const y = F.conv2d(x, w, b, opts);
    const wy = kiln.randn(y.shape as number[]);
    y.mul(wy).sum().backward();
    const [xg, wg, bg] = [x, w, b].map((t) => t.detach().to(GPU).requiresGrad_());
    const yg = F.conv2d(xg, wg, bg, opts);
    yg.mul(wy.to(GPU)).sum().backward();
    const label = `conv2d x[${cs.x}] w[${cs.w}] s${cs.stride} p${cs.padding} d${cs.dilation} g${cs.groups}${implicit ? '' : ' (no implicit)'}`;
    await compare(`${label} forward`, y, yg);
    await compare(`${label} grad x`, x.grad!, xg.grad!);
    await compare(`${label} grad w`, w.grad!, wg.grad!);
    await compare(`${label} grad b`, b.grad!, bg.grad!);
  }
}

// ---- MNISTConvNet: compiled SGD steps, then the compiled forward -------------------------------
for (const implicit of [true, false]) {
  flags.implicitGemm = implicit;
  const tag = implicit ? '' : ' (no implicit)';
  kiln.manualSeed(3);
  const cpuModel = new MNISTConvNet();
  const gpuModel = new MNISTConvNet().to(GPU);
  gpuModel.loadStateDict(cpuModel.stateDict());
  const make = (m: MNISTConvNet) => kiln.compileTrainStep(m, new nn.CrossEntropyLoss(), new optim.SGD(m.parameters(), { lr: 0.05, momentum: 0.9 }), { log: () => {} });
  const cpuStep = make(cpuModel);
  const gpuStep = make(gpuModel);
  const x = kiln.randn([64, 1, 28, 28]);
  const y = kiln.randint(0, 10, [64]);
  const [xg, yg] = [x.to(GPU), y.to(GPU)];
  for (let i = 0; i < 5; i++) {
    const lc = (cpuStep(x, y) as Tensor).itemSync();
    const lg = await (gpuStep(xg, yg) as Tensor).item();
    record(`MNISTConvNet compiled step ${i} loss${tag} (gpu ${lg.toFixed(6)}, cpu ${lc.toFixed(6)})`, Math.abs(lg - lc), Math.abs(lc));
  }
  const gp = Object.fromEntries(gpuModel.namedParameters());
  for (const [name, p] of cpuModel.namedParameters()) await compare(`MNISTConvNet after 5 steps: ${name}${tag}`, p, gp[name]);
  const fc = kiln.compile(cpuModel, { log: () => {} });
  const fg = kiln.compile(gpuModel, { log: () => {} });
  await compare(`MNISTConvNet compiled forward${tag}`, kiln.noGrad(() => fc(x)) as Tensor, kiln.noGrad(() => fg(xg)) as Tensor);
}
flags.implicitGemm = false; // the backend's default again

console.log(rows.join('\n'));
console.log('matmul kernels run:', Object.fromEntries(flags.matmulVariants));
console.log(failures ? `${failures} case(s) FAILED (rel > ${TOL})` : `all cases within rel ${TOL}`);
process.exit(failures ? 1 : 0);
