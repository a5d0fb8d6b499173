// Reductions with few outputs and a long reduced extent (a bias gradient: 10 outputs of 36,864
// elements) run one workgroup per output (kernels.ts wideReduction). Against the CPU: sum, max, min,
// mean, over float32, int32 and bools, contiguous and strided inputs, with NaN, and a prologue.
import { beforeAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';

beforeAll(async () => {
  await kiln.initWebGPU();
});

async function expectClose(gpu: Tensor, cpu: Tensor, tol: number): Promise<void> {
  const g = Array.from(await gpu.data());
  const c = Array.from(cpu.dataSync());
  expect(g.length).toBe(c.length);
  const scale = Math.max(1, ...c.filter(Number.isFinite).map(Math.abs));
  for (let i = 0; i < c.length; i++) {
    if (Number.isNaN(c[i])) expect(g[i], `element ${i}`).toBeNaN();
    else expect(Math.abs(g[i] - c[i]), `element ${i}: gpu ${g[i]}, cpu ${c[i]}`).toBeLessThanOrEqual(tol * scale);
  }
}

describe('long reductions on WebGPU (a workgroup per output)', () => {
  const cases: { name: string; x: () => Tensor; fn: (x: Tensor) => Tensor; tol: number }[] = [
    { name: 'sum of [64, 10, 24, 24] over dims 0, 2, 3 (conv bias gradient)', x: () => kiln.randn([64, 10, 24, 24]), fn: (x) => x.sum([0, 2, 3]), tol: 1e-4 },
    { name: 'sum over a permuted (strided) input', x: () => kiln.randn([300, 7]), fn: (x) => x.permute(1, 0).sum(1), tol: 1e-4 },
    { name: 'max and min over 5000 elements', x: () => kiln.randn([3, 5000]), fn: (x) => x.amax(1).add(x.amin(1)), tol: 0 },
    { name: 'mean of squares (a prologue) over 4096', x: () => kiln.randn([20, 4096]), fn: (x) => x.mul(x).mean(1), tol: 1e-4 },
    { name: 'sum of all 100,000 elements (one output)', x: () => kiln.rand([100000]), fn: (x) => x.sum(), tol: 1e-4 },
    { name: 'many outputs, 256 each', x: () => kiln.randn([2000, 256]), fn: (x) => x.sum(1), tol: 1e-4 },
  ];
  for (const c of cases) {
    it(c.name, async () => {
      kiln.manualSeed(11);
      const x = c.x();
      await expectClose(c.fn(x.to('webgpu')), c.fn(x), c.tol);
    });
  }

  it('a NaN anywhere in a row makes its max, min and sum NaN', async () => {
    const data = Array.from({ length: 4 * 1000 }, (_, i) => (i === 1777 ? NaN : Math.sin(i)));
    const x = kiln.tensor(data).reshape(4, 1000);
    const g = x.to('webgpu');
    for (const f of [(t: Tensor) => t.amax(1), (t: Tensor) => t.amin(1), (t: Tensor) => t.sum(1)]) await expectClose(f(g), f(x), 1e-5);
  });

  it('int32 and bool sums stay exact', async () => {
    const ints = kiln.tensor(Array.from({ length: 3 * 3000 }, (_, i) => ((i * 7919) % 2001) - 1000), { dtype: 'int32' }).reshape(3, 3000);
    const gi = ints.to('webgpu');
    expect(Array.from(await gi.sum(1).data())).toEqual(Array.from(ints.sum(1).dataSync()));
    expect(Array.from(await gi.amax(1).data())).toEqual(Array.from(ints.amax(1).dataSync()));
    const bools = ints.gt(0);
    expect(Array.from(await bools.to('webgpu').sum(1).data())).toEqual(Array.from(bools.sum(1).dataSync()));
  });
});
