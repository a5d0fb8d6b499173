// Convolution on WebGPU as implicit GEMM (runtime/webgpu/deferred-unfold.ts, matmul-kernel.ts): the
// backend defers each unfold and the matmul reading its columns reads them through unfold's index
// map. Checked against the CPU: random conv shapes forward and backward, compiled convs with fused
// epilogues, the seed ConvNet's compiled training step; the deferral's edge cases (the input
// overwritten or freed before the product, the columns read back directly); and the implicit path
// against the materialised one (the same sums in the same order: equal to the bit).
//
// Criterion: max|gpu - cpu| <= 1e-5 * max|cpu| (1e-4 for the training step's parameters).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { nn, optim, type Tensor } from 'kiln';
import { MNISTConvNet } from '../models/mnist-convnet.js';
import { OPS } from '../ir/index.js';
import { expectCloseAsync } from './helpers.js';

const F = nn.functional;
const GPU = 'webgpu';
let gpu: kiln.WebGPUBackend;

// Implicit GEMM is opt-in (backend.implicitGemm); these tests turn it on, and off where they compare.
beforeAll(async () => {
  gpu = await kiln.initWebGPU();
  gpu.implicitGemm = true;
});
afterAll(() => {
  gpu.implicitGemm = false;
});

/** How many matmuls read an operand through an unfold's index map while `fn` runs. */
async function implicitProducts(fn: () => Promise<void>): Promise<number> {
  const count = () => [...gpu.matmulVariants].filter(([k]) => k.includes('unfold')).reduce((s, [, v]) => s + v, 0);
  const before = count();
  await fn();
  return count() - before;
}

interface ConvCase {
  nd: 1 | 2;
  n: number;
  c: number;
  o: number;
  size: number[];
  k: number[];
  stride: number;
  padding: number;
  dilation: number;
  groups: number;
  bias: boolean;
}

/** A seeded random conv shape (the kernel fits the padded input). */
function randomCase(seed: number): ConvCase {
  let s = seed * 2654435761 >>> 0;
  const pick = (lo: number, hi: number) => {
    s = (s * 1103515245 + 12345) >>> 0;
    return lo + ((s >>> 8) % (hi - lo + 1));
  };
  const nd = pick(1, 2) as 1 | 2;
  const groups = pick(1, 3);
  const dilation = pick(1, 2);
  const k = Array.from({ length: nd }, () => pick(1, 3));
  const padding = pick(0, 2);
  const size = k.map((kk) => dilation * (kk - 1) + 1 + pick(0, 7));
  return { nd, n: pick(1, 3), c: groups * pick(1, 3), o: groups * pick(1, 4), size, k, stride: pick(1, 3), padding, dilation, groups, bias: pick(0, 1) === 1 };
}

function conv(cs: ConvCase, x: Tensor, w: Tensor, b: Tensor | null): Tensor {
  const opts = { stride: cs.stride, padding: cs.padding, dilation: cs.dilation, groups: cs.groups };
  return cs.nd === 1 ? F.conv1d(x, w, b, opts) : F.conv2d(x, w, b, opts);
}

describe('webgpu conv as implicit GEMM against the cpu', () => {
  // Ten random shapes (the 16x16 tile), and one large enough for the 64x64 register tile.
  const large: ConvCase = { nd: 2, n: 2, c: 6, o: 64, size: [17, 15], k: [3, 3], stride: 1, padding: 1, dilation: 1, groups: 1, bias: true };
  for (let seed = 1; seed <= 11; seed++) {
    const cs = seed <= 10 ? randomCase(seed) : large;
    const label = `conv${cs.nd}d x[${cs.n},${cs.c},${cs.size}] w[${cs.o},${cs.c / cs.groups},${cs.k}] stride ${cs.stride} padding ${cs.padding} dilation ${cs.dilation} groups ${cs.groups}${cs.bias ? ' bias' : ''}`;
    it(`${label}: forward and gradients`, async () => {
      kiln.manualSeed(seed);
      const x = kiln.randn([cs.n, cs.c, ...cs.size]).requiresGrad_();
      const w = kiln.randn([cs.o, cs.c / cs.groups, ...cs.k]).requiresGrad_();
      const b = cs.bias ? kiln.randn([cs.o]).requiresGrad_() : null;
      const y = conv(cs, x, w, b);
      const wy = kiln.randn(y.shape);
      y.mul(wy).sum().backward();

      const [xg, wg] = [x, w].map((t) => t.detach().to(GPU).requiresGrad_());
      const bg = b ? b.detach().to(GPU).requiresGrad_() : null;
      let yg: Tensor | undefined;
      const implicit = await implicitProducts(async () => {
        yg = conv(cs, xg, wg, bg);
        yg.mul(wy.to(GPU)).sum().backward();
        await xg.grad!.data();
      });
      // The forward product reads the columns in place; the weight gradient reads them transposed
      // (dY @ colsᵀ, contracted over every output position), which is materialised first: on a
      // real GPU that was 3-6x faster (bench/RESULTS.md).
      expect(implicit).toBe(1);
      await expectCloseAsync('output', yg!, y);
      await expectCloseAsync('grad x', xg.grad!, x.grad!);
      await expectCloseAsync('grad w', wg.grad!, w.grad!);
      if (b) await expectCloseAsync('grad bias', bg!.grad!, b.grad!);
    });
  }

  it('a compiled conv2d + bias + relu (the epilogue fused into the implicit product, 64x64 register tile) and its gradients', async () => {
    kiln.manualSeed(31);
    const make = () => new nn.Sequential(new nn.Conv2d(8, 32, 3, { padding: 1 }), new nn.ReLU());
    const model = make();
    const modelG = make().to(GPU);
    modelG.loadStateDict(model.stateDict());
    const f = kiln.compile(model, { log: () => {} });
    const fg = kiln.compile(modelG, { log: () => {} });
    const x = kiln.randn([4, 8, 16, 16]);
    const y = f(x);
    y.sum().backward();
    let yg: Tensor | undefined;
    const before = gpu.matmulVariants.get('reg vec4 x unfold3') ?? 0;
    const implicit = await implicitProducts(async () => {
      const out = fg(x.to(GPU));
      out.sum().backward();
      await out.data();
      yg = out;
    });
    // The forward plan returns the columns as a residual for the backward plan (a copy, which
    // materialises them), so only the forward product reads them in place here.
    expect(implicit).toBeGreaterThanOrEqual(1);
    // The forward product: the weight (K = 72, vec4 loads) times the columns read in place.
    expect((gpu.matmulVariants.get('reg vec4 x unfold3') ?? 0) - before).toBeGreaterThanOrEqual(1);
    await expectCloseAsync('compiled conv + relu', yg!, y);
    const grads = Object.fromEntries(modelG.namedParameters());
    for (const [name, p] of model.namedParameters()) await expectCloseAsync(`grad ${name}`, grads[name].grad!, p.grad!);
  });

  it('the seed MNISTConvNet: three compiled SGD steps on WebGPU match the CPU, with both convs\' forward products implicit', async () => {
    kiln.manualSeed(5);
    const cpuModel = new MNISTConvNet();
    const gpuModel = new MNISTConvNet().to(GPU);
    gpuModel.loadStateDict(cpuModel.stateDict());
    const make = (m: MNISTConvNet) => kiln.compileTrainStep(m, new nn.CrossEntropyLoss(), new optim.SGD(m.parameters(), { lr: 0.05, momentum: 0.9 }), { log: () => {} });
    const cpuStep = make(cpuModel);
    const gpuStep = make(gpuModel);
    const x = kiln.randn([8, 1, 28, 28]);
    const y = kiln.randint(0, 10, [8]);
    const xg = x.to(GPU);
    const yg = y.to(GPU);
    for (let i = 0; i < 3; i++) {
      const lc = cpuStep(x, y).itemSync();
      let lg = 0;
      const implicit = await implicitProducts(async () => {
        lg = await gpuStep(xg, yg).item();
      });
      // From the second (compiled) step: both convs' forward products.
      if (i > 0) expect(implicit).toBe(2);
      expect(Math.abs(lg - lc), `step ${i} loss gpu ${lg} cpu ${lc}`).toBeLessThanOrEqual(1e-5 * Math.abs(lc));
    }
    const gpuParams = Object.fromEntries(gpuModel.namedParameters());
    for (const [name, p] of cpuModel.namedParameters()) await expectCloseAsync(name, gpuParams[name], p, 1e-4);
  });
});

describe('deferred unfolds keep eager semantics', () => {
  const setup = () => {
    kiln.manualSeed(9);
    const x = kiln.randn([2, 3, 6, 6]);
    const w = kiln.randn([4, 27]);
    return { x, w, cols: F.unfold(x, 3, { padding: 1 }) };
  };

  it('the input overwritten in place after the unfold: the product and the columns still see the old input', async () => {
    const { x, w, cols } = setup();
    const xg = x.to(GPU);
    const colsG = F.unfold(xg, 3, { padding: 1 });
    kiln.noGrad(() => xg.mul_(2));
    await expectCloseAsync('product', w.to(GPU).matmul(colsG), w.matmul(cols));
    await expectCloseAsync('columns', colsG, cols);
    await expectCloseAsync('input', xg, x.mul(2));
  });

  it('an in-place op on the columns: out of place then written back (eager), or a kernel reading them through its output binding', async () => {
    const { x, w, cols } = setup();
    const colsG = F.unfold(x.to(GPU), 3, { padding: 1 });
    kiln.noGrad(() => colsG.add_(1));
    await expectCloseAsync('columns + 1', colsG, cols.add(1));
    await expectCloseAsync('product', w.to(GPU).matmul(colsG), w.matmul(cols.add(1)));
    // A kernel whose input is its output's buffer (as a plan's in-place update is) must see the columns.
    const colsH = F.unfold(x.to(GPU), 3, { padding: 1 });
    const v = colsH.eagerView('test');
    gpu.run(OPS.neg, [v], {}, v);
    await expectCloseAsync('-columns', colsH, cols.neg());
  });

  it('the input freed before the product reads the columns', async () => {
    const { x, w, cols } = setup();
    const xg = x.to(GPU);
    const colsG = F.unfold(xg, 3, { padding: 1 });
    xg.dispose();
    // Reuse the freed buffer for something else first.
    const other = kiln.full([2, 3, 6, 6], 7, { device: GPU });
    await expectCloseAsync('product', w.to(GPU).matmul(colsG), w.matmul(cols));
    expect(Array.from(await other.data()).every((v) => v === 7)).toBe(true);
  });

  it('columns read back directly, and a non-matmul consumer (max-pooling reads unfold columns through argmax)', async () => {
    const { x, cols } = setup();
    await expectCloseAsync('columns', F.unfold(x.to(GPU), 3, { padding: 1 }), cols);
    await expectCloseAsync('maxPool2d', F.maxPool2d(x.to(GPU), 3, { stride: 2, padding: 1 }), F.maxPool2d(x, 3, { stride: 2, padding: 1 }));
  });

  it('the implicit product equals the product of materialised columns to the bit', async () => {
    kiln.manualSeed(11);
    const x = kiln.randn([3, 5, 13, 12], { device: GPU });
    const w = kiln.randn([16, 5, 3, 3], { device: GPU });
    const b = kiln.randn([16], { device: GPU });
    const implicit = await F.conv2d(x, w, b, { stride: [2, 1], padding: 2, dilation: [1, 2] }).data();
    gpu.implicitGemm = false;
    try {
      const materialised = await F.conv2d(x, w, b, { stride: [2, 1], padding: 2, dilation: [1, 2] }).data();
      expect(Array.from(implicit)).toEqual(Array.from(materialised));
    } finally {
      gpu.implicitGemm = true;
    }
  });
});
