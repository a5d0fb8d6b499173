// The browser smoke run's page script (bundled by examples/browser/build.mjs into dist/page.js):
// the seed TwoLayerNet on the CPU and a copy on 'webgpu' (navigator.gpu), one forward and 20
// compiled training steps each on the same seeded data, compared. The only change from Node is
// the device: the page imports nothing but 'kiln', the model file and the adapter's description.
//
// The result is a JSON object written into <pre id="result">, logged with console.log, and
// POSTed to /result (which examples/browser/smoke.mjs's server listens for; elsewhere it's a no-op).
import * as kiln from 'kiln';
import { nn, optim } from 'kiln';
import { TwoLayerNet } from '../../models/two-layer-net.js';

const STEPS = 20;
const TOLERANCE = 1e-4;
const [N, D_in, H, D_out] = [64, 1000, 100, 10];

interface SmokeResult {
  ok: boolean;
  error?: string;
  userAgent: string;
  navigatorGpu: boolean;
  adapter?: string;
  adapterInfo?: Record<string, unknown>;
  shaderF16?: boolean;
  tolerance: number;
  steps: number;
  /** max |gpu - cpu| / max |cpu| over the forward's 64 x 10 outputs, before and after training. */
  outputRelDiff?: number;
  outputRelDiffAfterTraining?: number;
  /** max over the steps of |gpu - cpu| / |cpu| of the loss. */
  lossRelDiff?: number;
  /** max |gpu - cpu| / max |cpu| over every parameter after training. */
  paramRelDiff?: number;
  lossesCpu?: number[];
  lossesWebgpu?: number[];
  timingsMs?: Record<string, number>;
}

const now = () => performance.now();
const round = (ms: number) => Math.round(ms * 100) / 100;

/** Normwise relative difference: max |a - b| / max |b| (b is the CPU's). */
function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

async function forward(model: TwoLayerNet, x: kiln.Tensor): Promise<Float32Array> {
  const out = kiln.noGrad(() => model(x));
  if (out.device !== x.device) throw new Error(`the forward on ${x.device} returned a tensor on ${out.device}`);
  return Float32Array.from(await out.data());
}

async function train(model: TwoLayerNet, x: kiln.Tensor, y: kiln.Tensor, timings: Record<string, number>, tag: string) {
  const lossFn = new nn.MSELoss({ reduction: 'sum' });
  const optimizer = new optim.SGD(model.parameters(), { lr: 1e-4 });
  const step = kiln.compileTrainStep(model, lossFn, optimizer);
  const losses: number[] = [];
  let t0 = now();
  const first = step(x, y);
  if (first.device !== x.device) throw new Error(`the training step on ${x.device} returned a loss on ${first.device}`);
  losses.push(await first.item()); // the first call traces, optimises and plans
  timings[`${tag}FirstStep`] = round(now() - t0);
  t0 = now();
  for (let t = 1; t < STEPS; t++) losses.push(await step(x, y).item());
  timings[`${tag}StepAvg`] = round((now() - t0) / (STEPS - 1));
  return losses;
}

async function run(): Promise<SmokeResult> {
  const result: SmokeResult = {
    ok: false,
    userAgent: navigator.userAgent,
    navigatorGpu: 'gpu' in navigator,
    tolerance: TOLERANCE,
    steps: STEPS,
  };
  const timings: Record<string, number> = {};
  result.timingsMs = timings;
  try {
    let t0 = now();
    await kiln.initWebGPU();
    timings.initWebGPU = round(now() - t0);
    const { adapter, info } = await kiln.webgpuDevice();
    result.adapter = kiln.describeAdapter(adapter);
    if (result.adapter !== info) result.adapter += ` / ${info}`;
    const ai = adapter.info as unknown as Record<string, unknown> | undefined;
    if (ai) result.adapterInfo = Object.fromEntries(['vendor', 'architecture', 'device', 'description', 'isFallbackAdapter'].map((k) => [k, ai[k]]));
    result.shaderF16 = adapter.features.has('shader-f16');

    kiln.manualSeed(0);
    const x = kiln.randn(N, D_in);
    const y = kiln.randn(N, D_out);
    const cpuModel = new TwoLayerNet(D_in, H, D_out);
    const gpuModel = new TwoLayerNet(D_in, H, D_out);
    gpuModel.loadStateDict(cpuModel.stateDict());
    gpuModel.to('webgpu');
    const xg = x.to('webgpu');
    const yg = y.to('webgpu');
    const devices = new Set([...gpuModel.parameters()].map((p) => p.device));
    if (devices.size !== 1 || !devices.has('webgpu') || xg.device !== 'webgpu') {
      throw new Error(`the copy is not on webgpu: parameters on ${[...devices].join(', ')}, input on ${xg.device}`);
    }

    t0 = now();
    const outCpu = await forward(cpuModel, x);
    timings.forwardCpu = round(now() - t0);
    t0 = now();
    const outGpu = await forward(gpuModel, xg);
    timings.forwardWebgpu = round(now() - t0);
    result.outputRelDiff = relDiff(outGpu, outCpu);

    result.lossesCpu = await train(cpuModel, x, y, timings, 'cpu');
    result.lossesWebgpu = await train(gpuModel, xg, yg, timings, 'webgpu');
    result.lossRelDiff = Math.max(...result.lossesCpu.map((l, i) => {
      const d = Math.abs(result.lossesWebgpu![i] - l) / Math.abs(l);
      return Number.isNaN(d) ? Infinity : d;
    }));

    result.outputRelDiffAfterTraining = relDiff(await forward(gpuModel, xg), await forward(cpuModel, x));
    const cpuParams = cpuModel.stateDict();
    const gpuParams = gpuModel.stateDict();
    let paramRel = 0;
    for (const [name, p] of Object.entries(cpuParams)) {
      paramRel = Math.max(paramRel, relDiff(await gpuParams[name].data(), await p.data()));
    }
    result.paramRelDiff = paramRel;

    const worst = Math.max(result.outputRelDiff, result.outputRelDiffAfterTraining, result.lossRelDiff, result.paramRelDiff);
    result.ok = worst <= TOLERANCE;
    if (!result.ok) result.error = `WebGPU disagrees with the CPU: worst relative difference ${worst} > ${TOLERANCE}`;
  } catch (e) {
    result.error = e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e);
  }
  return result;
}

const result = await run();
const text = JSON.stringify(result, null, 2);
document.getElementById('result')!.textContent = text;
document.getElementById('status')!.textContent = result.ok ? 'done: agree' : 'done: FAILED';
document.title = `kiln smoke: ${result.ok ? 'ok' : 'failed'}`;
console.log(`kiln-smoke-result ${JSON.stringify(result)}`);
try {
  await fetch('/result', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(result) });
} catch {
  // opened from another server: the page is the report
}
