// float16 on WebGPU, where the device has `shader-f16` (Mesa's lavapipe offers it). A missing
// adapter is a failure, never a skip (beforeAll throws); an adapter without shader-f16 makes every
// case assert the clear error instead of running it.
//
// Reference: the same computation in float32 on the GPU, on the same (half-representable) inputs,
// so the comparison measures the float16 kernels' own rounding. Criterion, as in webgpu-ops:
// max|f16 - f32| <= tol * max|f32|, NaNs at the same places, infinities equal. Half precision has
// 11 significant bits: one rounding to float16 costs at most u = 2^-11 ≈ 4.9e-4 of the value.
// - elementwise: 4u ≈ 2e-3. The result is rounded once (add/sub/mul/min/max are correctly rounded
//   in f16; div, pow and the transcendental functions compute in f32 and round once), so u would
//   do; the margin covers the device's f32 functions' own error. Measured on lavapipe: <= 0.8u.
// - reductions, softmax, matmul with K up to 256: 8u ≈ 3.9e-3. They accumulate in f32 and round
//   once at the store (u); the f32 accumulation error is at most K·2^-24·Σ|terms|, a few 1e-5 of
//   max|ref| at these sizes; composites (mean, var, softmax: amax, sub, exp, sum, div) round at
//   each of their 2 to 5 steps. Measured: <= 1.3u. Accumulating in f16 instead would cost about
//   √K·u = 16u for K = 256 and fail (the sum of 4096 ones below catches it exactly).
// - TwoLayerNet (K = 1000 and 100) against its float32 twin with unrounded weights and inputs:
//   10u ≈ 4.9e-3. Rounding the weights and inputs gives each product a relative error up to 2u,
//   with random signs, and the hidden layer adds one rounding: a few u (measured: about 1u);
//   f16 accumulation over K = 1000 would cost about √1000·u ≈ 32u.
import { beforeAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';
import { TwoLayerNet } from '../models/two-layer-net.js';
import { E } from '../ir/index.js';
import type { GpuStorage } from '../runtime/webgpu/backend.js';
import { elementwiseKernel } from '../runtime/webgpu/kernels.js';
import { renderWgsl } from '../runtime/webgpu/render-wgsl.js';
import { throwIfDeviceFailed } from '../runtime/webgpu/device.js';
import { mismatch } from './helpers.js';

const F = kiln.nn.functional;
const GPU = 'webgpu';
const U = 2 ** -11;
/** Tolerances relative to max|ref|, in units of u (see the header). */
const TOL_EW = 4 * U; // ≈ 2e-3
const TOL_RED = 8 * U; // ≈ 3.9e-3
const TOL_MODEL = 10 * U; // ≈ 4.9e-3

let gpu: kiln.WebGPUBackend;
let hasF16 = false;
// No adapter: every case fails with initWebGPU's error (an error thrown by beforeAll itself would
// leave the cases reported as skipped).
let initError: unknown;
beforeAll(async () => {
  try {
    gpu = await kiln.initWebGPU();
    hasF16 = gpu.gpu.features.has('shader-f16');
  } catch (e) {
    initError = e;
  }
});
const requireGpu = () => {
  if (initError) throw initError;
};

/** Without shader-f16, float16 on WebGPU must be refused with the clear error. */
function expectRefused(): void {
  expect(gpu.supports('float16')).toBe(false);
  expect(() => kiln.zeros([2], { dtype: 'float16', device: GPU })).toThrow(/device 'webgpu' does not support dtype float16/);
  expect(() => kiln.ones([2], { device: GPU }).half()).toThrow("cast: device 'webgpu' does not support dtype float16");
}

/** A float16 case: runs where the device has shader-f16, asserts the refusal where it has not. */
function f16it(name: string, fn: () => Promise<void>): void {
  it(name, async () => {
    requireGpu();
    if (!hasF16) return expectRefused();
    await fn();
    throwIfDeviceFailed();
  });
}

async function expectClose(what: string, half: Tensor, ref: Tensor, tol: number, dtype = 'float16'): Promise<void> {
  expect(half.device, what).toBe(GPU);
  expect(half.dtype, what).toBe(dtype);
  expect([...half.shape], what).toEqual([...ref.shape]);
  expect(mismatch(await ref.data(), await half.data(), tol), what).toBe('');
}

/** Random inputs on the GPU, in float32: a case rounds them with .half(), and x.half().float() holds exactly the same values. */
const gpuRandn = (...shape: number[]) => kiln.randn(shape).to(GPU);
const gpuPos = (...shape: number[]) => kiln.rand(shape).add(0.5).to(GPU);

describe('float16 on WebGPU', () => {
  it('is supported exactly when the device has shader-f16; the CPU refuses it with the clear error', () => {
    requireGpu();
    expect(gpu.supports('float16')).toBe(gpu.gpu.features.has('shader-f16'));
    const deviceWith = (features: string[]) => new kiln.WebGPUBackend({ features: new Set(features) } as unknown as GPUDevice);
    expect(deviceWith(['shader-f16']).supports('float16')).toBe(true);
    expect(deviceWith([]).supports('float16')).toBe(false);
    expect(deviceWith([]).supports('float32')).toBe(true);
    expect(() => kiln.zeros([2], { dtype: 'float16' })).toThrow(/device 'cpu' does not support dtype float16/);
    expect(() => kiln.ones([2]).half()).toThrow("cast: device 'cpu' does not support dtype float16");
    expect(() => kiln.ones([2]).to('float16')).toThrow("cast: device 'cpu' does not support dtype float16");
    if (!hasF16) expectRefused();
  });

  // [float32 input, the half it rounds to (ties to even), the other neighbour when it rounds at all]
  const ROUND_TRIP: [number, number, number?][] = [
    [0, 0], [-0, -0], [1, 1], [-2.5, -2.5], [0.1, 0.0999755859375, 0.10009765625],
    [65504, 65504], [-65504, -65504], [65512, 65504, Infinity], [65519, 65504, Infinity], [65520, Infinity, 65504], [1e6, Infinity], [-1e6, -Infinity],
    [Infinity, Infinity], [-Infinity, -Infinity], [NaN, NaN],
    [2 ** -14, 2 ** -14], [2 ** -24, 2 ** -24], [1023 * 2 ** -24, 1023 * 2 ** -24], [-5 * 2 ** -24, -5 * 2 ** -24],
    [2.6 * 2 ** -24, 3 * 2 ** -24, 2 * 2 ** -24],
    [2 ** -25, 0, 2 ** -24], [3 * 2 ** -25, 2 ** -23, 2 ** -24], [2 ** -26, 0, 2 ** -24], [-(2 ** -26), -0, -(2 ** -24)],
    [2 ** -14 - 2 ** -25, 2 ** -14, 1023 * 2 ** -24], // a tie between the largest subnormal and the smallest normal
    [1 + 2 ** -11, 1, 1 + 2 ** -10], [1 + 3 * 2 ** -11, 1 + 2 ** -9, 1 + 2 ** -10], [1 + 2 ** -11 + 2 ** -20, 1 + 2 ** -10, 1],
    [2049, 2048, 2050], [2051, 2052, 2050], [-2051, -2052, -2050],
  ];
  const inputs = ROUND_TRIP.map(([v]) => v);
  const expected = ROUND_TRIP.map(([, h]) => h);

  f16it('round trip through upload and read: nearest half, ties to even, subnormals, ±inf, NaN, -0; 2 bytes an element', async () => {
    expect(new Float32Array(inputs)).toEqual(Float32Array.from(inputs)); // every input is a float32
    const h = kiln.tensor(inputs, { dtype: 'float16', device: GPU });
    expect(h.dtype).toBe('float16');
    const got = await h.data();
    expect(got).toBeInstanceOf(Float32Array);
    // toEqual compares with Object.is: -0 and NaN are checked too.
    expect(Array.from(got)).toEqual(expected);
    // Two bytes an element, rounded up to a multiple of four: 31 halves in 64 bytes.
    expect(inputs.length).toBe(31);
    expect((h.eagerView('test').storage as GpuStorage).buffer.size).toBe(64);
    // The GPU reads the stored bits as the same halves (f16 -> f32 in a kernel is exact).
    expect(Array.from(await h.float().data())).toEqual(expected);
    // A number stored through a kernel (full) and a strided, offset view read back.
    expect(Array.from(await kiln.full([3], 0.1, { dtype: 'float16', device: GPU }).data())).toEqual([0.0999755859375, 0.0999755859375, 0.0999755859375]);
    expect(Array.from(await kiln.full([2], 1e9, { dtype: 'float16', device: GPU }).data())).toEqual([Infinity, Infinity]);
    const m = kiln.tensor([[1, 2, 3], [4, 5, 6]], { dtype: 'float16', device: GPU });
    expect(await m.t().tolist()).toEqual([[1, 4], [2, 5], [3, 6]]);
    expect(Array.from(await m.slice(1, 1, null).data())).toEqual([2, 3, 5, 6]);
    expect(await kiln.tensor([1.5], { dtype: 'float16', device: GPU }).item()).toBe(1.5);
  });

  f16it('casts on the GPU: float32 -> float16 gives the nearest half (either neighbour allowed for the rounding mode), float16 -> int32/bool', async () => {
    const h = kiln.tensor(inputs, { device: GPU }).half();
    expect(h.dtype).toBe('float16');
    const got = Array.from(await h.data());
    ROUND_TRIP.forEach(([v, near, other], i) => {
      if (other === undefined) expect(got[i], `cast of ${v}`).toEqual(near);
      else expect([near, other], `cast of ${v}: got ${got[i]}`).toContainEqual(got[i]);
    });
    const x = kiln.tensor([-2.75, -0.5, 0, 0.5, 3.25], { dtype: 'float16', device: GPU });
    expect(Array.from(await x.int().data())).toEqual([-2, 0, 0, 0, 3]);
    expect(Array.from(await x.bool().data())).toEqual([1, 1, 0, 1, 1]);
    expect(Array.from(await kiln.tensor([3, -7], { dtype: 'int32', device: GPU }).half().data())).toEqual([3, -7]);
    expect(Array.from(await x.bool().half().data())).toEqual([1, 1, 0, 1, 1]);
    expect(Array.from(await x.to('float32').to('float16').data())).toEqual([-2.75, -0.5, 0, 0.5, 3.25]);
  });

  const UNARY: [string, (x: Tensor) => Tensor, () => Tensor][] = [
    ['neg', (x) => x.neg(), () => gpuRandn(4, 5)],
    ['abs', (x) => x.abs(), () => gpuRandn(4, 5)],
    ['exp', (x) => x.exp(), () => gpuRandn(6, 7)],
    ['log', (x) => x.log(), () => gpuPos(6, 7)],
    ['sqrt', (x) => x.sqrt(), () => gpuPos(3, 9)],
    ['tanh', (x) => x.tanh(), () => gpuRandn(5, 5).mul(3)],
    ['sigmoid', (x) => x.sigmoid(), () => gpuRandn(5, 5).mul(3)],
    ['relu', (x) => x.relu(), () => gpuRandn(8, 3).t()],
    ['sin', (x) => x.sin(), () => gpuRandn(40)],
    ['sign', (x) => x.sign(), () => gpuRandn(40)],
    ['floor', (x) => x.floor(), () => gpuRandn(40).mul(4)],
    ['scalar arithmetic (f16 literals)', (x) => x.mul(1.5).add(0.25).div(3).sub(0.1), () => gpuRandn(30)],
    ['scalars beyond half range (promoted to f32 inside the kernel)', (x) => x.clamp(-1e5, 1e5).add(1e-6), () => gpuRandn(30)],
    ['clamp', (x) => x.clamp(-0.5, 0.75), () => gpuRandn(30)],
    ['pow (scalar exponent)', (x) => x.pow(2.5), () => gpuPos(30)],
  ];
  for (const [name, f, make] of UNARY) {
    f16it(`elementwise ${name} in float16 matches float32 within ${TOL_EW} of max|ref|`, async () => {
      kiln.manualSeed(1);
      const x = make().half();
      await expectClose(name, f(x), f(x.float()), TOL_EW);
    });
  }

  const BINARY: [string, (a: Tensor, b: Tensor) => Tensor, () => Tensor, () => Tensor][] = [
    ['add (broadcast)', (a, b) => a.add(b), () => gpuRandn(4, 1, 5), () => gpuRandn(3, 5)],
    ['sub (transposed)', (a, b) => a.t().sub(b), () => gpuRandn(5, 3), () => gpuRandn(3, 5)],
    ['mul', (a, b) => a.mul(b), () => gpuRandn(6, 6), () => gpuRandn(6, 6)],
    ['div', (a, b) => a.div(b), () => gpuRandn(6, 6), () => gpuPos(6, 6)],
    ['pow', (a, b) => a.pow(b), () => gpuPos(6, 6), () => gpuRandn(6, 6)],
    ['maximum', (a, b) => a.maximum(b), () => gpuRandn(6, 6), () => gpuRandn(6, 6)],
    ['where', (a, b) => kiln.where(a.gt(b), a, b.mul(2)), () => gpuRandn(6, 6), () => gpuRandn(6, 6)],
    ['maskedFill with -inf and -60000', (a, b) => a.maskedFill(b.gt(0.5), -Infinity).maskedFill(b.lt(-0.5), -60000), () => gpuRandn(6, 6), () => gpuRandn(6, 6)],
  ];
  for (const [name, f, ma, mb] of BINARY) {
    f16it(`elementwise ${name} in float16 matches float32 within ${TOL_EW} of max|ref|`, async () => {
      kiln.manualSeed(2);
      const [a, b] = [ma().half(), mb().half()];
      await expectClose(name, f(a, b), f(a.float(), b.float()), TOL_EW);
    });
  }

  f16it('the WGSL: f16 literals next to halves, f32 for numbers a half cannot hold, `enable f16;` first', async () => {
    const x = E.input(0);
    expect(renderWgsl(E.add(E.mul(x, E.const(1.5)), E.const(-0.1)), ['float16'], 'float16').body).toContain('(t0 + -0.0999755859375h)');
    expect(renderWgsl(E.mul(x, E.const(1.5)), ['float16'], 'float16').body).toBe('let t0: f16 = (x0 * 1.5h);');
    // 1e5 overflows a half and 1e-6 is subnormal: the operation runs in f32, its result is rounded once.
    expect(renderWgsl(E.max(x, E.const(-1e5)), ['float16'], 'float16')).toEqual({ body: 'let t0: f32 = max(f32(x0), -100000.0);', result: 'f16(t0)' });
    expect(renderWgsl(E.add(x, E.const(1e-6)), ['float16'], 'float16').body).toBe('let t0: f32 = (f32(x0) + f32(0.000001));');
    expect(renderWgsl(E.add(x, E.input(1)), ['float16', 'float32'], 'float32').body).toBe('let t0: f32 = (f32(x0) + x1);');
    expect(renderWgsl(E.exp(x), ['float16'], 'float16').body).toBe('let t0: f16 = f16(exp(f32(x0)));');
    const spec = elementwiseKernel(E.neg(x), 'neg', [{ dtype: 'float16', aliasOut: false }], 'float16', 1);
    expect(spec.code.startsWith('enable f16;\n')).toBe(true);
    expect(elementwiseKernel(E.neg(x), 'neg', [{ dtype: 'float32', aliasOut: false }], 'float32', 1).code).not.toContain('enable f16');
    // A cast to float16 inside an expression needs the extension even with no f16 buffer.
    expect(elementwiseKernel(E.cast('float32', E.cast('float16', x)), 'c', [{ dtype: 'float32', aliasOut: false }], 'float32', 1).code.startsWith('enable f16;')).toBe(true);
  });

  f16it('comparisons of float16 values agree exactly with float32 ones', async () => {
    kiln.manualSeed(3);
    const a = kiln.randint(-3, 4, [50]).float().mul(0.5).to(GPU).half();
    const b = kiln.randint(-3, 4, [50]).float().mul(0.5).to(GPU).half();
    for (const op of ['lt', 'le', 'gt', 'ge', 'eq', 'ne'] as const) {
      const got = a[op](b);
      expect(got.dtype).toBe('bool');
      expect(Array.from(await got.data()), op).toEqual(Array.from(await a.float()[op](b.float()).data()));
    }
    expect(Array.from(await kiln.tensor([NaN, 1], { dtype: 'float16', device: GPU }).isnan().data())).toEqual([1, 0]);
  });

  f16it(`reductions (sum, mean, amax, argmax over up to 256 elements) accumulate in f32 and match float32 within ${TOL_RED}`, async () => {
    kiln.manualSeed(4);
    const x = gpuRandn(8, 256).half();
    const xf = x.float();
    await expectClose('sum(1)', x.sum(1), xf.sum(1), TOL_RED);
    await expectClose('sum()', x.sum(), xf.sum(), TOL_RED);
    await expectClose('mean(0)', x.mean(0), xf.mean(0), TOL_RED);
    await expectClose('amax(1)', x.amax(1), xf.amax(1), 0);
    expect(Array.from(await x.argmax(1).data())).toEqual(Array.from(await xf.argmax(1).data()));
    await expectClose('var(1)', x.var(1), xf.var(1), TOL_RED);
    // f32 accumulation: in f16, 2048 + 1 rounds back to 2048, so a sum of 4096 ones would stop there.
    expect(await kiln.ones([4096], { dtype: 'float16', device: GPU }).sum().item()).toBe(4096);
    expect(await kiln.ones([1, 4096], { dtype: 'float16', device: GPU }).mm(kiln.ones([4096, 1], { dtype: 'float16', device: GPU })).item()).toBe(4096);
    // A sum beyond the largest half overflows to infinity when stored, as in PyTorch.
    expect(await kiln.full([3], 30000, { dtype: 'float16', device: GPU }).sum().item()).toBe(Infinity);
  });

  f16it(`softmax and logSoftmax in float16 match float32 within ${TOL_RED}`, async () => {
    kiln.manualSeed(5);
    const x = gpuRandn(6, 100).half();
    await expectClose('softmax', F.softmax(x, 1), F.softmax(x.float(), 1), TOL_RED);
    await expectClose('logSoftmax', F.logSoftmax(x, 1), F.logSoftmax(x.float(), 1), TOL_RED);
  });

  f16it(`matmul of float16 operands (K up to 256, batched, transposed; the 16x16 and the 64x64 register tile) accumulates in f32, stores f16, within ${TOL_RED}`, async () => {
    kiln.manualSeed(6);
    for (const [m, k, n] of [[5, 7, 3], [33, 256, 17], [16, 16, 16], [130, 64, 140]]) {
      const a = gpuRandn(m, k).half();
      const b = gpuRandn(k, n).half();
      await expectClose(`mm ${m}x${k}x${n}`, a.mm(b), a.float().mm(b.float()), TOL_RED);
    }
    const a = gpuRandn(3, 20, 40).half();
    const b = gpuRandn(30, 40).half();
    await expectClose('batched matmul with a transposed operand', a.matmul(b.t()), a.float().matmul(b.float().t()), TOL_RED);
    const w = gpuRandn(10, 40).half();
    const bias = gpuRandn(10).half();
    await expectClose('linear', F.linear(a, w, bias), F.linear(a.float(), w.float(), bias.float()), TOL_RED);
    expect(() => a.matmul(b.float().t())).toThrow('matmul: expected both operands to have the same dtype, got float16 and float32');
  });

  f16it('conv2d, maxPool2d (padding with -inf), cat, indexSelect and the gradients (fold, scatter-add) run in float16', async () => {
    kiln.manualSeed(7);
    const x = gpuRandn(2, 3, 8, 8).half();
    const w = gpuRandn(4, 3, 3, 3).half();
    const run = (xx: Tensor, ww: Tensor) => F.maxPool2d(F.conv2d(xx, ww, null, { padding: 1 }), 3, { stride: 2, padding: 1 });
    await expectClose('conv2d + maxPool2d', run(x, w), run(x.float(), w.float()), TOL_RED);
    const xs = x.detach().requiresGrad_();
    const xf = x.float().detach().requiresGrad_();
    run(xs, w).sum().backward();
    run(xf, w.float()).sum().backward();
    await expectClose('conv2d + maxPool2d: grad', xs.grad!, xf.grad!, TOL_RED);
    const e = gpuRandn(10, 4).half();
    const idx = kiln.tensor([3, 1, 3, 9], { dtype: 'int32', device: GPU });
    await expectClose('indexSelect', e.indexSelect(0, idx), e.float().indexSelect(0, idx), 0);
    // Its gradient sums rows with repeated indices (a scatter-add, accumulated in f32).
    const el = e.detach().requiresGrad_();
    const ef = e.float().detach().requiresGrad_();
    const gw = gpuRandn(4, 4);
    el.indexSelect(0, idx).mul(gw).sum().backward();
    ef.indexSelect(0, idx).mul(gw).sum().backward();
    expect(el.grad!.dtype).toBe('float16');
    await expectClose('indexSelect: grad', el.grad!, ef.grad!, TOL_EW);
    await expectClose('cat', kiln.cat([e, e.mul(2)], 1), kiln.cat([e.float(), e.float().mul(2)], 1), 0);
  });

  f16it('mixed float16 and float32 arithmetic promotes to float32 (float16 + int32 and float16 * number stay float16)', async () => {
    kiln.manualSeed(8);
    const h = gpuRandn(4, 5).half();
    const f = gpuRandn(4, 5);
    const i = kiln.randint(-3, 4, [4, 5]).to(GPU);
    for (const [name, got, ref] of [
      ['f16 + f32', h.add(f), h.float().add(f)],
      ['f32 * f16', f.mul(h), f.mul(h.float())],
      ['f16 / f32', h.div(f), h.float().div(f)],
      ['maximum(f16, f32)', h.maximum(f), h.float().maximum(f)],
    ] as [string, Tensor, Tensor][]) {
      expect(got.dtype, name).toBe('float32');
      // The half converts to float32 exactly, then the float32 operation is the same one.
      expect(Array.from(await got.data()), name).toEqual(Array.from(await ref.data()));
    }
    expect(h.add(i).dtype).toBe('float16');
    await expectClose('f16 + i32', h.add(i), h.float().add(i.float()), TOL_EW);
    // A value a half cannot hold becomes infinity (PyTorch refuses it in masked_fill; a kernel cannot raise).
    expect(Array.from(await h.maskedFill(kiln.ones([4, 5], { device: GPU }).gt(0), -1e9).data())).toEqual(new Array(20).fill(-Infinity));
    expect(h.mul(2.5).dtype).toBe('float16');
    expect(h.add(kiln.tensor(1, { device: GPU })).dtype).toBe('float32');
  });

  f16it(`a TwoLayerNet moved with .to('webgpu').half() runs forward close to float32 (within ${TOL_MODEL})`, async () => {
    kiln.manualSeed(9);
    const m32 = new TwoLayerNet(1000, 100, 10);
    const m16 = new TwoLayerNet(1000, 100, 10);
    m16.loadStateDict(m32.stateDict());
    m32.to(GPU);
    m16.to(GPU).half();
    for (const p of m16.parameters()) {
      expect(p.dtype).toBe('float16');
      expect(p.device).toBe(GPU);
      expect(p.requiresGrad).toBe(true);
    }
    const x = gpuRandn(64, 1000);
    const y16 = m16(x.half());
    await expectClose('TwoLayerNet', y16, m32(x), TOL_MODEL);
    // Backward through the half model: every parameter's gradient is float16 and close to float32's.
    y16.float().pow(2).sum().backward();
    m32(x).pow(2).sum().backward();
    const g32 = m32.parameters();
    for (const [j, p] of m16.parameters().entries()) {
      expect(p.grad!.dtype).toBe('float16');
      await expectClose(`TwoLayerNet grad ${j}`, p.grad!, g32[j].grad!, TOL_MODEL);
    }
  });

  f16it('autograd on float16 leaves: gradients are float16 and close to float32', async () => {
    kiln.manualSeed(10);
    const w0 = gpuRandn(6, 4).half();
    const x = gpuRandn(5, 6).half();
    const w = w0.detach().requiresGrad_();
    const wf = w0.float().detach().requiresGrad_();
    const loss = (xx: Tensor, ww: Tensor) => xx.mm(ww).tanh().mul(ww.sum(0)).sigmoid().sum();
    const l16 = loss(x, w);
    expect(l16.dtype).toBe('float16');
    l16.backward();
    loss(x.float(), wf).backward();
    expect(w.grad!.dtype).toBe('float16');
    await expectClose('grad', w.grad!, wf.grad!, TOL_RED);
    // A float16 leaf used in a float32 computation: its gradient comes back as float16.
    const v = gpuRandn(7).half().requiresGrad_();
    const c = gpuRandn(7);
    v.mul(c).exp().sum().backward();
    expect(v.grad!.dtype).toBe('float16');
    const vf = v.detach().float().requiresGrad_();
    vf.mul(c).exp().sum().backward();
    await expectClose('grad through a float32 computation', v.grad!, vf.grad!, TOL_EW);
  });
});
