// The WebGPU matmul kernels (runtime/webgpu/matmul-kernel.ts) against the CPU, on shapes chosen to
// take each path: the 64x64 register tile with vec4 loads of A and/or B (aligned operands), with
// scalar loads (odd sizes, transposed views, offsets that are not multiples of 4), the 16x16 tile
// (small products, and small outputs with a long K, which the 64x64 tile would give too few
// workgroups), batched and broadcast products, int32, and fused epilogues (compiled). Each
// case also checks which kernel ran (the backend counts dispatches by variant).
//
// Criterion: max|gpu - cpu| <= 1e-5 * max|cpu| (1e-4 for K >= 256); int32 exactly.
import { beforeAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';
import { expectCloseAsync } from './helpers.js';

const GPU = 'webgpu';
let gpu: kiln.WebGPUBackend;

beforeAll(async () => {
  gpu = await kiln.initWebGPU();
});

/** Runs `fn` and returns the matmul variants it dispatched (name -> count). */
async function variantsOf(fn: () => Promise<void>): Promise<Record<string, number>> {
  const before = new Map(gpu.matmulVariants);
  await fn();
  const ran: Record<string, number> = {};
  for (const [k, v] of gpu.matmulVariants) if (v !== (before.get(k) ?? 0)) ran[k] = v - (before.get(k) ?? 0);
  return ran;
}

interface Case {
  name: string;
  inputs: () => Tensor[];
  fn: (xs: Tensor[]) => Tensor;
  /** The matmul variant that must have run (matmul-kernel.ts variantName). */
  variant: string;
  tol?: number;
}

const randn = (...shape: number[]) => kiln.randn(shape);
const CASES: Case[] = [
  { name: 'aligned 128x64x128: vec4 loads of A and B', inputs: () => [randn(128, 64), randn(64, 128)], fn: ([a, b]) => a.mm(b), variant: 'reg vec4 x vec4' },
  { name: 'aligned, several blocks and a ragged edge of blocks (132x96x200)', inputs: () => [randn(132, 96), randn(96, 200)], fn: ([a, b]) => a.mm(b), variant: 'reg vec4 x vec4' },
  { name: 'K = 300 aligned (tol 1e-4)', inputs: () => [randn(68, 300), randn(300, 72)], fn: ([a, b]) => a.mm(b), variant: 'reg vec4 x vec4', tol: 1e-4 },
  { name: 'odd sizes (101x37x70): scalar loads in the register tile', inputs: () => [randn(101, 37), randn(37, 70)], fn: ([a, b]) => a.mm(b), variant: 'reg scalar x scalar' },
  { name: 'K odd, N aligned: scalar A, vec4 B', inputs: () => [randn(80, 33), randn(33, 96)], fn: ([a, b]) => a.mm(b), variant: 'reg scalar x vec4' },
  { name: 'N odd: vec4 A, scalar B', inputs: () => [randn(96, 64), randn(64, 75)], fn: ([a, b]) => a.mm(b), variant: 'reg vec4 x scalar' },
  { name: 'transposed operands (A^T and B^T views): scalar loads', inputs: () => [randn(64, 96), randn(128, 64)], fn: ([a, b]) => a.t().mm(b.t()), variant: 'reg scalar x scalar' },
  { name: 'an offset that is not a multiple of 4 (a narrowed view): scalar A', inputs: () => [randn(130, 65), randn(64, 128)], fn: ([a, b]) => a.narrow(1, 1, 64).mm(b), variant: 'reg scalar x vec4' },
  { name: 'a row stride not a multiple of 4 with K a multiple of 4: scalar A', inputs: () => [randn(128, 66), randn(64, 128)], fn: ([a, b]) => a.narrow(1, 0, 64).mm(b), variant: 'reg scalar x vec4' },
  { name: 'batched (4 x 64x48x64)', inputs: () => [randn(4, 64, 48), randn(4, 48, 64)], fn: ([a, b]) => a.matmul(b), variant: 'reg vec4 x vec4' },
  { name: 'broadcast batch ([2,1,64,32] @ [3,32,68])', inputs: () => [randn(2, 1, 64, 32), randn(3, 32, 68)], fn: ([a, b]) => a.matmul(b), variant: 'reg vec4 x vec4' },
  { name: 'broadcast of a matrix over a batch ([4,40,64] @ [64,36])', inputs: () => [randn(4, 40, 64), randn(64, 36)], fn: ([a, b]) => a.matmul(b), variant: 'reg vec4 x vec4' },
  { name: 'small product (7x33x9): the 16x16 tile', inputs: () => [randn(7, 33), randn(33, 9)], fn: ([a, b]) => a.mm(b), variant: 'small scalar x scalar' },
  { name: 'small output, long K (12x2048x20): the 16x16 tile, for more workgroups (tol 1e-4)', inputs: () => [randn(12, 2048), randn(2048, 20)], fn: ([a, b]) => a.mm(b), variant: 'small scalar x scalar', tol: 1e-4 },
  { name: 'int32, aligned', inputs: () => [kiln.randint(-5, 6, [128, 64]), kiln.randint(-5, 6, [64, 128])], fn: ([a, b]) => a.matmul(b), variant: 'reg vec4 x vec4' },
];

describe('webgpu matmul kernels against the cpu', () => {
  CASES.forEach((c, k) => {
    it(c.name, async () => {
      kiln.manualSeed(500 + k);
      const xs = c.inputs();
      const cpu = c.fn(xs);
      let out: Tensor | undefined;
      const ran = await variantsOf(async () => {
        out = c.fn(xs.map((x) => x.to(GPU)));
      });
      expect(ran).toEqual({ [c.variant]: 1 });
      await expectCloseAsync(c.name, out!, cpu, c.tol ?? 1e-5, { exactInts: true });
    });
  });

  it('fused epilogues (bias + relu, a residual) in a compiled function, on the vec4 and the scalar paths', async () => {
    kiln.manualSeed(77);
    const f = kiln.compile((a: Tensor, b: Tensor, bias: Tensor, r: Tensor) => a.mm(b).add(bias).relu().add(a.mm(b).mul(r)), { log: () => {} });
    for (const [m, k, n, variant] of [[128, 64, 128, 'reg vec4 x vec4'], [67, 30, 65, 'reg scalar x scalar']] as const) {
      const xs = [randn(m, k), randn(k, n), randn(n), randn(m, n)];
      const cpu = f(...(xs as [Tensor, Tensor, Tensor, Tensor]));
      let out: Tensor | undefined;
      const ran = await variantsOf(async () => {
        out = f(...(xs.map((x) => x.to(GPU)) as [Tensor, Tensor, Tensor, Tensor]));
      });
      expect(Object.keys(ran), `${m}x${k}x${n}`).toEqual([variant]);
      await expectCloseAsync(`epilogue ${m}x${k}x${n}`, out!, cpu, 1e-5, { exactInts: true });
    }
  });

  it('gradients of an aligned and of an odd product (the backward takes transposed operands)', async () => {
    for (const [m, k, n] of [[64, 64, 64], [45, 37, 70]]) {
      kiln.manualSeed(m);
      const a = randn(m, k).requiresGrad_();
      const b = randn(k, n).requiresGrad_();
      const w = randn(m, n);
      a.mm(b).mul(w).sum().backward();
      const ag = a.detach().to(GPU).requiresGrad_();
      const bg = b.detach().to(GPU).requiresGrad_();
      ag.mm(bg).mul(w.to(GPU)).sum().backward();
      await expectCloseAsync(`dA ${m}x${k}x${n}`, ag.grad!, a.grad!, 1e-5, { exactInts: true });
      await expectCloseAsync(`dB ${m}x${k}x${n}`, bg.grad!, b.grad!, 1e-5, { exactInts: true });
    }
  });
});
