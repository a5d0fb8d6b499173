// WebGPU against the CPU reference: every primitive op of the op table (a new op without a case
// here fails the suite), the main composites, their gradients, and the edge cases of the kernels
// (bool and int32, 0-d and empty tensors, non-contiguous views, a grid of more than 65535
// workgroups, memory released by kiln.tidy). A missing adapter is a failure, never a skip: CI runs
// Mesa's lavapipe (scripts/install-webgpu-driver.sh).
//
// Criterion: max|gpu - cpu| <= tol * max|cpu| (tol 1e-5, 1e-4 where stated: long reductions and
// matmuls with K >= 256); bool and int32 results must be equal; NaNs must sit at the same places.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';
import { OPS } from '../ir/index.js';
import { bind } from '../runtime/dispatch.js';
import { unfoldRaw } from '../runtime/nn/functional/conv.js';
import { throwIfDeviceFailed } from '../runtime/webgpu/device.js';
import { mismatch } from './helpers.js';

const F = kiln.nn.functional;
const GPU = 'webgpu';

// ---- inputs (CPU tensors, drawn after a per-case seed) ----
const randn = (...shape: number[]) => kiln.randn(shape);
/** Values in [0.5, 1.5): safe for log, sqrt, division and pow bases. */
const pos = (...shape: number[]) => kiln.rand(shape).add(0.5);
/** Values in ±[0.5, 1.5): safe denominators. */
const nonzero = (...shape: number[]) => kiln.rand(shape).add(0.5).mul(kiln.randn(shape).sign().add(0.5).sign());
/** Small integers as floats: comparisons, maximum and amax meet ties. */
const small = (...shape: number[]) => kiln.randint(-2, 3, shape).float();
const ints = (lo: number, hi: number, ...shape: number[]) => kiln.randint(lo, hi, shape);
const bools = (...shape: number[]) => kiln.rand(shape).gt(0.5);

interface Case {
  name: string;
  /** The primitive ops this case exercises on WebGPU (kernels are also checked to have run there). */
  ops: string[];
  inputs: () => Tensor[];
  /** The computation; `device` is where the inputs live (for creation ops). */
  fn: (xs: Tensor[], device: string) => Tensor;
  tol?: number;
  /** Inputs (by position) whose gradients are compared: the loss is sum(out * w) for a random w. */
  grad?: number[];
  gradTol?: number;
}

async function expectSame(what: string, cpu: Tensor, gpu: Tensor, tol: number): Promise<void> {
  expect(gpu.device, what).toBe(GPU);
  expect([...gpu.shape], what).toEqual([...cpu.shape]);
  expect(gpu.dtype, what).toBe(cpu.dtype);
  const exact = cpu.dtype !== 'float32';
  expect(mismatch(cpu.dataSync(), await gpu.data(), exact ? 0 : tol), what).toBe('');
}

let ran = new Set<string>();

/** Runs one case on both devices and compares the outputs and, if asked, the input gradients. */
async function check(c: Case, seed: number): Promise<void> {
  kiln.manualSeed(seed);
  const xs = c.inputs();
  const grads = c.grad ?? [];
  const cpuIn = xs.map((x, i) => (grads.includes(i) ? x.detach().requiresGrad_() : x));
  const gpuIn = xs.map((x, i) => (grads.includes(i) ? x.to(GPU).requiresGrad_() : x.to(GPU)));
  ran = new Set();
  const cpuOut = c.fn(cpuIn, 'cpu');
  const gpuOut = c.fn(gpuIn, GPU);
  await expectSame(`${c.name}: output`, cpuOut, gpuOut, c.tol ?? 1e-5);
  if (grads.length) {
    const w = kiln.randn([...cpuOut.shape]);
    cpuOut.mul(w).sum().backward();
    gpuOut.mul(w.to(GPU)).sum().backward();
    for (const i of grads) {
      expect(gpuIn[i].grad, `${c.name}: grad of input ${i}`).toBeTruthy();
      await expectSame(`${c.name}: grad of input ${i}`, cpuIn[i].grad!, gpuIn[i].grad!, c.gradTol ?? c.tol ?? 1e-5);
    }
  }
  for (const op of c.ops) {
    expect(OPS[op], `${c.name}: '${op}' is not in the op table`).toBeDefined();
    if (OPS[op].lowering.kind !== 'view') expect(ran.has(op), `${c.name}: '${op}' never ran on WebGPU`).toBe(true);
  }
  throwIfDeviceFailed();
}

const EW_UNARY: [string, (x: Tensor) => Tensor, () => Tensor][] = [
  ['neg', (x) => x.neg(), () => randn(4, 3).t()],
  ['exp', (x) => x.exp(), () => randn(5, 7)],
  ['log', (x) => x.log(), () => pos(6, 5)],
  ['sqrt', (x) => x.sqrt(), () => pos(2, 3, 4).permute(2, 0, 1)],
  ['abs', (x) => x.abs(), () => randn(33)],
  ['sign', (x) => x.sign(), () => randn(3, 8)],
  ['relu', (x) => x.relu(), () => randn(6, 4).t()],
  ['sigmoid', (x) => x.sigmoid(), () => randn(5, 5).mul(3)],
  ['tanh', (x) => x.tanh(), () => randn(7, 3).mul(3)],
  ['sin', (x) => x.sin(), () => randn(4, 9)],
  ['cos', (x) => x.cos(), () => randn(9, 4).slice(0, 1, null, 2)],
  ['floor', (x) => x.floor(), () => randn(5, 6).mul(3)],
  ['ceil', (x) => x.ceil(), () => randn(6, 5).mul(3)],
];

const CASES: Case[] = [
  // -- elementwise, unary (with gradients) --
  ...EW_UNARY.map(([op, f, make]): Case => ({ name: op, ops: [op], inputs: () => [make()], fn: ([x]) => f(x), grad: [0] })),
  { name: 'logicalNot of bools', ops: ['logicalNot'], inputs: () => [bools(4, 5).t()], fn: ([x]) => x.logicalNot() },
  { name: 'isnan of log(randn)', ops: ['isnan', 'log'], inputs: () => [randn(5, 6)], fn: ([x]) => x.log().isnan() },
  { name: 'copy: contiguous of a permuted view', ops: ['copy', 'permute'], inputs: () => [randn(2, 3, 4)], fn: ([x]) => x.permute(2, 0, 1).contiguous(), grad: [0] },
  { name: 'cast float32 -> float32 (the differentiable cast)', ops: ['cast'], inputs: () => [randn(3, 4)], fn: ([x]) => bind(OPS.cast, [x.t()], { dtype: 'float32' }), grad: [0] },
  {
    name: 'casts between float32, int32 and bool', ops: ['cast', 'add'], inputs: () => [randn(4, 5).mul(4), ints(-3, 4, 4, 5), bools(4, 5)],
    fn: ([f, i, b]) => kiln.stack([f.int(), i.bool().int(), b.int(), f.bool().int(), b.float().int()]).float().add(i.float()),
  },

  // -- elementwise, binary --
  { name: 'add (broadcast)', ops: ['add'], inputs: () => [randn(4, 1, 5), randn(3, 5)], fn: ([a, b]) => a.add(b), grad: [0, 1] },
  { name: 'sub (alpha, transposed)', ops: ['sub', 'mul'], inputs: () => [randn(5, 3), randn(3, 5)], fn: ([a, b]) => a.t().sub(b, { alpha: 2 }), grad: [0, 1] },
  { name: 'mul (expanded operand)', ops: ['mul', 'expand'], inputs: () => [randn(3, 4), randn(4)], fn: ([a, b]) => a.mul(b.expand(3, 4)), grad: [0, 1] },
  { name: 'div', ops: ['div'], inputs: () => [randn(4, 6), nonzero(4, 6)], fn: ([a, b]) => a.div(b), grad: [0, 1] },
  { name: 'pow (positive base)', ops: ['pow'], inputs: () => [pos(4, 5), randn(4, 5)], fn: ([a, b]) => a.pow(b), grad: [0, 1] },
  { name: 'pow (negative base, integer exponents)', ops: ['pow'], inputs: () => [randn(30), ints(-3, 4, 30)], fn: ([a, b]) => a.pow(b.float()) },
  { name: 'maximum (ties split the gradient)', ops: ['maximum'], inputs: () => [small(5, 6), small(5, 6)], fn: ([a, b]) => a.maximum(b), grad: [0, 1] },
  { name: 'minimum (ties split the gradient)', ops: ['minimum'], inputs: () => [small(5, 6), small(6).reshape(1, 6)], fn: ([a, b]) => a.minimum(b), grad: [0, 1] },
  {
    name: 'comparisons (with ties)', ops: ['lt', 'le', 'gt', 'ge', 'eq', 'ne', 'cat', 'reshape'], inputs: () => [small(4, 5), small(5, 4)],
    fn: ([a, b]) => kiln.stack([a.lt(b.t()), a.le(b.t()), a.gt(b.t()), a.ge(b.t()), a.eq(b.t()), a.ne(b.t())]),
  },
  { name: 'logicalAnd / logicalOr', ops: ['logicalAnd', 'logicalOr'], inputs: () => [bools(3, 7), bools(7)], fn: ([a, b]) => kiln.stack([a.logicalAnd(b), a.logicalOr(b).t().t()]) },
  { name: 'where (bool condition, broadcast)', ops: ['where'], inputs: () => [bools(4, 1), randn(4, 5), randn(5)], fn: ([c, a, b]) => kiln.where(c, a, b), grad: [1, 2] },
  { name: 'where (float condition read as truthy, int32 values)', ops: ['where'], inputs: () => [small(6), ints(-5, 5, 6), ints(-5, 5, 6)], fn: ([c, a, b]) => kiln.where(c, a, b) },

  // -- reductions --
  { name: 'sum over dims 0 and 2 (keepdim, permuted input)', ops: ['sum', 'permute'], inputs: () => [randn(3, 4, 5)], fn: ([x]) => x.permute(1, 2, 0).sum([0, 2], true), grad: [0] },
  { name: 'sum of all elements', ops: ['sum'], inputs: () => [randn(6, 7)], fn: ([x]) => x.sum(), grad: [0] },
  { name: 'sum over 8192 elements (tol 1e-4)', ops: ['sum'], inputs: () => [randn(3, 8192)], fn: ([x]) => x.sum(1), tol: 1e-4, grad: [0] },
  { name: 'sum of int32 and of bools', ops: ['sum', 'add'], inputs: () => [ints(-9, 9, 4, 6), bools(4, 6)], fn: ([i, b]) => i.sum(1).add(b.sum(0).sum()) },
  { name: 'amax with ties', ops: ['max'], inputs: () => [small(4, 6)], fn: ([x]) => x.amax(1), grad: [0] },
  { name: 'amin with ties (dims 0 and 1 of a 3-d tensor)', ops: ['min'], inputs: () => [small(3, 4, 2)], fn: ([x]) => x.amin([0, 1], true), grad: [0] },
  { name: 'amax / amin of int32', ops: ['max', 'min'], inputs: () => [ints(-50, 50, 5, 7)], fn: ([x]) => x.amax(0).sub(x.amin(0)) },
  { name: 'argmax / argmin', ops: ['argmax', 'argmin'], inputs: () => [randn(5, 8)], fn: ([x]) => kiln.stack([x.argmax(1), x.t().argmin(0), x.argmax(0, true).reshape(8).slice(0, 0, 5)]) },
  { name: 'mean and var', ops: ['sum', 'mul', 'sub'], inputs: () => [randn(4, 9)], fn: ([x]) => x.mean(1).add(x.var(1)).add(x.var(0, { unbiased: false }).mean()), grad: [0] },

  // -- matmul --
  { name: 'mm', ops: ['matmul'], inputs: () => [randn(7, 33), randn(33, 9)], fn: ([a, b]) => a.mm(b), grad: [0, 1] },
  { name: 'batched matmul', ops: ['matmul'], inputs: () => [randn(3, 5, 6), randn(3, 6, 4)], fn: ([a, b]) => a.matmul(b), grad: [0, 1] },
  { name: 'broadcast batched matmul', ops: ['matmul'], inputs: () => [randn(2, 1, 5, 6), randn(3, 6, 4)], fn: ([a, b]) => a.matmul(b), grad: [0, 1] },
  { name: 'matmul of transposed operands', ops: ['matmul'], inputs: () => [randn(19, 17), randn(23, 19)], fn: ([a, b]) => a.t().matmul(b.t()), grad: [0, 1] },
  { name: 'matmul with K = 300 (tol 1e-4)', ops: ['matmul'], inputs: () => [randn(20, 300), randn(300, 18)], fn: ([a, b]) => a.mm(b), tol: 1e-4, grad: [0, 1] },
  { name: 'int32 matmul', ops: ['matmul'], inputs: () => [ints(-4, 5, 3, 6), ints(-4, 5, 6, 2)], fn: ([a, b]) => a.matmul(b) },
  { name: 'mv and dot', ops: ['matmul'], inputs: () => [randn(5, 4), randn(4)], fn: ([a, v]) => a.mv(v).add(v.dot(v)), grad: [0, 1] },

  // -- views then elementwise, movement routines --
  {
    name: 'permute / slice / expand views then an elementwise op', ops: ['permute', 'slice', 'expand', 'mul', 'reshape'],
    inputs: () => [randn(4, 5, 6), randn(6, 1)], fn: ([x, y]) => x.permute(2, 0, 1).slice(1, 1, null, 2).mul(y.reshape(6, 1, 1).expand(6, 2, 5)), grad: [0, 1],
  },
  { name: 'reshape of a transposed tensor (copies)', ops: ['reshape', 'copy'], inputs: () => [randn(4, 6)], fn: ([x]) => x.t().reshape(3, 8).exp(), grad: [0] },
  { name: 'strided slice (its gradient pads with interior padding)', ops: ['slice', 'pad'], inputs: () => [randn(7, 8)], fn: ([x]) => x.slice(0, 1, 6, 2).slice(1, 0, null, 3), grad: [0] },
  { name: 'pad with a value', ops: ['pad'], inputs: () => [randn(3, 4)], fn: ([x]) => kiln.pad(x.t(), [1, 2, 0, 1], 0.5), grad: [0] },
  { name: 'pad of int32', ops: ['pad'], inputs: () => [ints(-9, 9, 2, 3)], fn: ([x]) => kiln.pad(x, [2, 1], -7) },
  { name: 'cat and stack', ops: ['cat', 'slice'], inputs: () => [randn(2, 3), randn(4, 3), randn(3, 2)], fn: ([a, b, c]) => kiln.stack([kiln.cat([a, b], 0), kiln.cat([b, c.t()], 0)], 1), grad: [0, 1, 2] },
  {
    name: 'random (uniform, normal, integer): the same draws of the seeded generator on every device',
    ops: ['random', 'add'],
    inputs: () => [],
    fn: (_, device) => {
      kiln.manualSeed(7);
      return kiln.rand([3, 40], { device }).add(kiln.randn([40], { device })).add(kiln.randint(0, 5, [3, 1], { device }));
    },
  },
  { name: 'full (float, int32, bool)', ops: ['full', 'add'], inputs: () => [], fn: (_, device) => kiln.full([3, 4], 2.5, { device }).add(kiln.full([4], 3, { dtype: 'int32', device })).add(kiln.full([3, 1], true, { device })) },

  // -- indexing --
  { name: 'gather along dim 1 (negative indices, transposed input)', ops: ['gather', 'scatterAdd'], inputs: () => [randn(6, 4), ints(-6, 6, 4, 5)], fn: ([x, i]) => x.t().gather(1, i), grad: [0] },
  { name: 'gather along dim 0 of a 3-d tensor, smaller index', ops: ['gather'], inputs: () => [randn(5, 4, 3), ints(0, 5, 7, 2, 3)], fn: ([x, i]) => x.gather(0, i), grad: [0] },
  { name: 'gather of int32 and bools', ops: ['gather', 'cast'], inputs: () => [ints(-99, 99, 3, 8), bools(3, 8), ints(0, 8, 3, 5)], fn: ([x, b, i]) => x.gather(1, i).add(b.gather(1, i).int()) },
  { name: 'scatterAdd with duplicate and negative indices', ops: ['scatterAdd'], inputs: () => [randn(4, 5), ints(-4, 4, 9, 3), randn(9, 3)], fn: ([x, i, s]) => x.scatterAdd(0, i, s), grad: [0, 2] },
  // No gradient for src here: its VJP (gather of the gradient) has the index's shape, not src's, on every device.
  { name: 'scatterAdd with src larger than index', ops: ['scatterAdd'], inputs: () => [randn(4, 5), ints(0, 4, 9, 3), randn(10, 6)], fn: ([x, i, s]) => x.scatterAdd(0, i, s), grad: [0] },
  { name: 'scatterAdd along dim 2 of a 3-d permuted base', ops: ['scatterAdd', 'permute'], inputs: () => [randn(4, 2, 3), ints(0, 4, 2, 3, 6), randn(2, 3, 6)], fn: ([x, i, s]) => x.permute(1, 2, 0).scatterAdd(2, i, s), grad: [0, 2] },
  { name: 'scatterAdd of int32', ops: ['scatterAdd'], inputs: () => [ints(-9, 9, 3, 4), ints(0, 4, 3, 7), ints(-9, 9, 3, 7)], fn: ([x, i, s]) => x.scatterAdd(1, i, s) },
  { name: 'indexSelect', ops: ['gather', 'expand'], inputs: () => [randn(6, 5), ints(0, 5, 8)], fn: ([x, i]) => x.indexSelect(1, i), grad: [0] },
  { name: 'maskedFill', ops: ['where'], inputs: () => [randn(4, 6), bools(6)], fn: ([x, m]) => x.maskedFill(m, -1.5), grad: [0] },
  { name: 'embedding', ops: ['gather'], inputs: () => [ints(0, 10, 3, 4), randn(10, 6)], fn: ([i, w]) => F.embedding(i, w), grad: [1] },

  // -- sliding windows --
  {
    name: 'unfold 2-d (stride, padding, dilation, strided input)', ops: ['unfold', 'fold'], inputs: () => [randn(2, 3, 6, 7)],
    fn: ([x]) => F.unfold(x.transpose(2, 3), [2, 3], { stride: [2, 1], padding: [1, 2], dilation: [2, 1] }), grad: [0],
  },
  {
    name: 'fold 2-d (stride, padding, dilation, transposed columns)', ops: ['fold', 'unfold'], inputs: () => [randn(2, 15, 8)],
    fn: ([c]) => F.fold(c.transpose(1, 2), [5, 6], [2, 2], { stride: [1, 2], padding: [1, 0], dilation: [2, 1] }), grad: [0],
  },
  { name: 'unfold 1-d and fold 3-d', ops: ['unfold', 'fold', 'cat'], inputs: () => [randn(2, 3, 9), randn(1, 16, 8)], fn: ([x, c]) => kiln.cat([F.unfold(x, [3], { stride: 2, padding: 1 }).flatten(), F.fold(c, [3, 3, 3], [2, 2, 2]).flatten()]), grad: [0, 1] },
  { name: 'unfold of int32 with a -Infinity pad value (0, as the CPU stores it)', ops: ['unfold'], inputs: () => [ints(-9, 9, 1, 2, 4, 4)], fn: ([x]) => unfoldRaw(x, { kernel: [3, 3], stride: [1, 1], padding: [1, 1], dilation: [1, 1], padValue: -Infinity }) },
  {
    name: 'conv2d with stride, padding, groups and bias', ops: ['unfold', 'matmul'], inputs: () => [randn(2, 4, 7, 6), randn(6, 2, 3, 3), randn(6)],
    fn: ([x, w, b]) => F.conv2d(x, w, b, { stride: 2, padding: 1, groups: 2 }), grad: [0, 1, 2],
  },
  { name: 'conv1d', ops: ['unfold', 'matmul'], inputs: () => [randn(2, 3, 10), randn(4, 3, 3)], fn: ([x, w]) => F.conv1d(x, w, null, { padding: 2, dilation: 2 }), grad: [0, 1] },
  { name: 'maxPool2d (padding reads -Infinity)', ops: ['unfold', 'where', 'gather'], inputs: () => [randn(2, 3, 7, 7)], fn: ([x]) => F.maxPool2d(x, 3, { stride: 2, padding: 1 }), grad: [0] },
  { name: 'avgPool2d', ops: ['unfold', 'sum'], inputs: () => [randn(2, 3, 6, 8)], fn: ([x]) => F.avgPool2d(x, [2, 3], { stride: [2, 2], padding: [1, 1] }), grad: [0] },

  // -- composites --
  { name: 'clamp', ops: ['where'], inputs: () => [randn(5, 6)], fn: ([x]) => x.clamp(-0.5, 0.7), grad: [0] },
  { name: 'softmax and logSoftmax', ops: ['exp', 'max', 'sum'], inputs: () => [randn(4, 7).mul(3)], fn: ([x]) => F.softmax(x, 1).add(F.logSoftmax(x.t(), 0).t()), grad: [0] },
  { name: 'crossEntropy', ops: ['gather'], inputs: () => [randn(6, 5), ints(0, 5, 6)], fn: ([x, t]) => F.crossEntropy(x, t), grad: [0] },
  { name: 'batchNorm (training, batch statistics)', ops: ['sum', 'sqrt'], inputs: () => [randn(4, 3, 5, 5), randn(3), randn(3)], fn: ([x, w, b]) => F.batchNorm(x, null, null, w, b, { training: true }), grad: [0, 1, 2] },
  { name: 'layerNorm', ops: ['sum'], inputs: () => [randn(3, 4, 8), randn(8), randn(8)], fn: ([x, w, b]) => F.layerNorm(x, 8, w, b), grad: [0, 1, 2] },
  { name: 'linear + gelu + mseLoss', ops: ['matmul'], inputs: () => [randn(5, 12), randn(7, 12), randn(7), randn(5, 7)], fn: ([x, w, b, y]) => F.mseLoss(F.gelu(F.linear(x, w, b)), y), grad: [0, 1, 2] },

  // -- dtypes and shapes at the edges --
  {
    name: 'int32 arithmetic', ops: ['add', 'sub', 'mul', 'neg', 'abs', 'sign', 'relu', 'div', 'pow', 'maximum', 'minimum', 'floor'],
    inputs: () => [ints(-20, 20, 4, 5), ints(1, 6, 4, 5)],
    fn: ([a, b]) => kiln.stack([a.add(b), a.sub(b).mul(b), a.neg().abs(), a.sign(), a.relu(), a.pow(b.slice(1, 0, 1).expand(4, 5).minimum(3)), a.maximum(b).minimum(7), a.floor()]).float().add(a.div(b)),
  },
  { name: 'bool logic and where over bools', ops: ['logicalAnd', 'logicalNot', 'where', 'eq'], inputs: () => [bools(5, 4), bools(5, 4)], fn: ([a, b]) => kiln.where(a.logicalAnd(b.logicalNot()), a, b.eq(a)) },
  { name: '0-d tensors', ops: ['add', 'mul', 'exp', 'sum'], inputs: () => [randn(), randn(3), randn()], fn: ([s, v, t]) => v.mul(s).add(t.exp()).sum().add(s.sum()), grad: [0, 1, 2] },
  { name: '0-d int32 and bool', ops: ['add', 'cast'], inputs: () => [ints(-5, 5), bools()], fn: ([i, b]) => i.add(b.int()) },
  {
    name: 'empty tensors (a dimension of size 0)', ops: ['add', 'sum', 'matmul', 'cat', 'gather'], inputs: () => [randn(0, 3), randn(2, 0), randn(0, 4), randn(2, 3), ints(0, 3, 2, 0)],
    fn: ([e, a, b, x, i]) => kiln.cat([e.add(1), x.add(e.sum(0)), a.mm(b).slice(1, 0, 3), x.gather(1, i).sum(1, true).expand(2, 3)], 0),
  },
];

/** Ops with a VJP: each must appear in at least one case that compares gradients. */
const isDifferentiable = (name: string) => OPS[name].vjp !== undefined;

describe('webgpu ops against the cpu', () => {
  beforeAll(async () => {
    const backend = await kiln.initWebGPU();
    const run = backend.run.bind(backend);
    backend.run = (op, inputs, attrs, out) => {
      ran.add(op.name);
      run(op, inputs, attrs, out);
    };
  });
  afterEach(() => throwIfDeviceFailed());

  it('covers every primitive op of the op table, and the gradient of every differentiable one', () => {
    const covered = new Set(CASES.flatMap((c) => c.ops));
    const gradCovered = new Set(CASES.filter((c) => c.grad?.length).flatMap((c) => c.ops));
    expect(Object.keys(OPS).filter((op) => !covered.has(op)), 'ops without a WebGPU case').toEqual([]);
    expect(Object.keys(OPS).filter((op) => isDifferentiable(op) && !gradCovered.has(op)), 'differentiable ops without a gradient case').toEqual([]);
  });

  CASES.forEach((c, k) => {
    it(c.name, async () => {
      await check(c, 1000 + k);
    });
  });

  it(`an elementwise op over more than 65535 workgroups of 256 threads (the 2-D grid)`, async () => {
    const n = 65535 * 256 + 1000;
    const a = new Float32Array(n);
    const b = new Float32Array(n);
    for (let i = 0; i < n; i++) { a[i] = i % 1021; b[i] = (i % 997) * 0.5; }
    const x = kiln.tensor(a, { device: GPU });
    const y = kiln.tensor(b, { device: GPU });
    const z = x.add(y);
    const got = (await z.data()) as Float32Array;
    let bad = -1;
    for (let i = 0; i < n && bad < 0; i++) if (got[i] !== Math.fround(a[i] + b[i])) bad = i;
    expect(bad, bad >= 0 ? `element ${bad}: ${got[bad]} != ${a[bad] + b[bad]}` : '').toBe(-1);
    [x, y, z].forEach((t) => t.dispose());
  });

  it('kiln.memory returns to its starting buffer count after kiln.tidy', () => {
    kiln.manualSeed(7);
    const x = kiln.randn([8, 8]).to(GPU);
    const w = kiln.randn([8, 4]).to(GPU);
    const before = kiln.memory().buffers;
    kiln.tidy(() => {
      const h = x.mm(w).relu().add(1);
      const g = F.unfold(x.reshape(1, 1, 8, 8), 3).sum(1).gather(1, kiln.zeros([1, 2], { dtype: 'int32', device: GPU }));
      h.sum().add(g.sum());
    });
    expect(kiln.memory().buffers).toBe(before);
    // What the block returns survives it; everything is counted synchronously (no finalizer runs in between).
    const kept = kiln.tidy(() => x.exp().mul(2));
    expect(kiln.memory().buffers).toBe(before + 1);
    kept.dispose();
    expect(kiln.memory().buffers).toBe(before);
    [x, w].forEach((t) => t.dispose());
    expect(kiln.memory().buffers).toBe(before - 2);
  });
});

describe('webgpu regressions', () => {
  it('int32 reductions stay exact beyond 2^24 (they accumulate in i32)', async () => {
    await kiln.initWebGPU();
    const t = kiln.tensor([16777217, 3, -5], { dtype: 'int32' }).to('webgpu');
    expect(await t.amax().item()).toBe(16777217);
    expect(await t.sum().item()).toBe(16777215);
  });
});
