// Every primitive op (and the composites the seeds use): forward against hand-computed values,
// broadcasting, and gradcheck of its VJP in float64.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';

const f64 = (data: Parameters<typeof kiln.tensor>[0], requiresGrad = true) => kiln.tensor(data, { dtype: 'float64', requiresGrad });
const vals = (t: Tensor) => t.tolistSync();
const close = (t: Tensor, want: unknown, digits = 5) => {
  const got = t.tolistSync();
  const flatG = [got].flat(Infinity as 1) as number[];
  const flatW = [want].flat(Infinity as 1) as number[];
  expect(flatG.length).toBe(flatW.length);
  flatG.forEach((g, i) => expect(g).toBeCloseTo(flatW[i], digits));
};
/** Random float64 input in [lo, hi), away from kinks. */
const rnd = (shape: number[], lo = -2, hi = 2) => kiln.rand(shape, { dtype: 'float64' }).mul(hi - lo).add(lo).detach().requiresGrad_();
const check = (fn: (...xs: Tensor[]) => Tensor, ...inputs: Tensor[]) => expect(kiln.autograd.gradcheck(fn, inputs)).toBe(true);

describe('elementwise forward', () => {
  const a = kiln.tensor([[1, -2, 3], [-4, 5, -6]]);
  it('arithmetic with broadcasting and scalars', () => {
    expect(vals(a.add(kiln.tensor([10, 20, 30])))).toEqual([[11, 18, 33], [6, 25, 24]]);
    expect(vals(a.sub(1))).toEqual([[0, -3, 2], [-5, 4, -7]]);
    expect(vals(a.mul(kiln.tensor([[2], [3]])))).toEqual([[2, -4, 6], [-12, 15, -18]]);
    expect(vals(a.div(2))).toEqual([[0.5, -1, 1.5], [-2, 2.5, -3]]);
    expect(vals(a.add(kiln.tensor([1, 1, 1]), { alpha: 2 }))).toEqual([[3, 0, 5], [-2, 7, -4]]);
    expect(vals(kiln.tensor([1, 2, 3]).pow(2))).toEqual([1, 4, 9]);
    expect(vals(kiln.tensor([2, 3]).pow(kiln.tensor([3, 2])))).toEqual([8, 9]);
    expect(vals(a.neg())).toEqual([[-1, 2, -3], [4, -5, 6]]);
  });
  it('unary maths', () => {
    close(kiln.tensor([0, 1]).exp(), [1, Math.E]);
    close(kiln.tensor([1, Math.E]).log(), [0, 1]);
    close(kiln.tensor([4, 9]).sqrt(), [2, 3]);
    expect(vals(a.abs())).toEqual([[1, 2, 3], [4, 5, 6]]);
    expect(vals(a.relu())).toEqual([[1, 0, 3], [0, 5, 0]]);
    close(kiln.tensor([0]).sigmoid(), [0.5]);
    close(kiln.tensor([0, 100]).tanh(), [0, 1]);
    expect(vals(a.sign())).toEqual([[1, -1, 1], [-1, 1, -1]]);
    expect(vals(a.clamp({ min: 0 }))).toEqual([[1, 0, 3], [0, 5, 0]]);
    expect(vals(a.clamp(-1, 2))).toEqual([[1, -1, 2], [-1, 2, -1]]);
    expect(vals(a.maximum(kiln.tensor(0)))).toEqual([[1, 0, 3], [0, 5, 0]]);
    expect(vals(a.minimum(kiln.tensor([0, 0, 0])))).toEqual([[0, -2, 0], [-4, 0, -6]]);
  });
  it('comparisons, logic and where', () => {
    expect(vals(a.lt(0))).toEqual([[false, true, false], [true, false, true]]);
    expect(vals(a.ge(3))).toEqual([[false, false, true], [false, true, false]]);
    expect(vals(a.eq(kiln.tensor([1, 5, 3])))).toEqual([[true, false, true], [false, true, false]]);
    expect(a.gt(0).dtype).toBe('bool');
    expect(vals(a.gt(0).logicalAnd(a.lt(4)))).toEqual([[true, false, true], [false, false, false]]);
    expect(vals(a.gt(0).logicalNot())).toEqual([[false, true, false], [true, false, true]]);
    expect(vals(kiln.where(a.gt(0), a, kiln.tensor(0)))).toEqual([[1, 0, 3], [0, 5, 0]]);
    expect(vals(a.maskedFill(a.lt(0), 9))).toEqual([[1, 9, 3], [9, 5, 9]]);
  });
  it('dtype promotion follows PyTorch', () => {
    const i = kiln.tensor([1, 2], { dtype: 'int32' });
    expect(i.add(1).dtype).toBe('int32');
    expect(i.add(1.5).dtype).toBe('float32');
    expect(i.div(2).dtype).toBe('float32');
    expect(vals(i.div(2))).toEqual([0.5, 1]);
    expect(kiln.tensor([1]).add(kiln.tensor([1], { dtype: 'float64' })).dtype).toBe('float64');
    expect(kiln.tensor([1]).mul(2.5).dtype).toBe('float32');
    expect(vals(kiln.tensor([2.7, -2.7]).int())).toEqual([2, -2]);
    expect(vals(kiln.tensor([0, 3]).bool())).toEqual([false, true]);
  });
  it('works on strided views without copying', () => {
    const m = kiln.arange(6, { dtype: 'float32' }).reshape(2, 3);
    const mt = m.t();
    expect(mt.isContiguous()).toBe(false);
    expect(mt._view!.storage).toBe(m._view!.storage);
    expect(vals(mt.add(1))).toEqual([[1, 4], [2, 5], [3, 6]]);
    expect(vals(m.slice(1, 0, 3, 2).mul(10))).toEqual([[0, 20], [30, 50]]);
  });
});

describe('elementwise gradients (gradcheck, float64)', () => {
  const unaries: [string, (x: Tensor) => Tensor, number, number][] = [
    ['neg', (x) => x.neg(), -2, 2], ['exp', (x) => x.exp(), -2, 2], ['log', (x) => x.log(), 0.5, 3],
    ['sqrt', (x) => x.sqrt(), 0.5, 3], ['abs', (x) => x.abs(), 0.2, 2], ['relu', (x) => x.relu(), 0.1, 2],
    ['sigmoid', (x) => x.sigmoid(), -3, 3], ['tanh', (x) => x.tanh(), -2, 2], ['sin', (x) => x.sin(), -2, 2],
    ['cos', (x) => x.cos(), -2, 2], ['clamp', (x) => x.clamp(-0.5, 0.5), -2, 2], ['square', (x) => x.square(), -2, 2],
    ['reciprocal', (x) => x.reciprocal(), 0.5, 2], ['pow scalar', (x) => x.pow(3), -2, 2],
  ];
  for (const [name, fn, lo, hi] of unaries) it(name, () => check(fn, rnd([3, 4], lo, hi)));
  const binaries: [string, (a: Tensor, b: Tensor) => Tensor][] = [
    ['add', (a, b) => a.add(b)], ['sub', (a, b) => a.sub(b)], ['mul', (a, b) => a.mul(b)], ['div', (a, b) => a.div(b)],
    ['maximum', (a, b) => a.maximum(b)], ['minimum', (a, b) => a.minimum(b)],
  ];
  for (const [name, fn] of binaries) {
    it(`${name} with broadcasting`, () => check(fn, rnd([3, 4], 0.5, 2), rnd([4], 0.5, 2)));
  }
  it('pow with tensor exponent', () => check((a, b) => a.pow(b), rnd([2, 3], 0.5, 2), rnd([2, 3], -1, 2)));
  it('where', () => {
    const cond = kiln.tensor([[true, false, true], [false, true, false]]);
    check((a, b) => kiln.where(cond, a, b), rnd([2, 3]), rnd([3]));
  });
  it('casts pass the gradient back in the input dtype', () => {
    const x = f64([1, 2]);
    x.float().mul(3).sum().backward();
    expect(x.grad!.dtype).toBe('float64');
    expect(vals(x.grad!)).toEqual([3, 3]);
  });
  it('maximum splits the gradient at ties', () => {
    const a = f64([1, 2]);
    const b = f64([1, 3]);
    a.maximum(b).sum().backward();
    expect(vals(a.grad!)).toEqual([0.5, 0]);
    expect(vals(b.grad!)).toEqual([0.5, 1]);
  });
});

describe('reductions', () => {
  const x = kiln.tensor([[1, 5, 3], [4, 2, 6]]);
  it('forward', () => {
    expect(x.sum().itemSync()).toBe(21);
    expect(vals(x.sum(0))).toEqual([5, 7, 9]);
    expect(vals(x.sum(1, true))).toEqual([[9], [12]]);
    expect(vals(x.sum([0, 1]))).toEqual(21);
    close(x.mean(1), [3, 4]);
    expect(vals(x.amax(1))).toEqual([5, 6]);
    expect(vals(x.amin(0))).toEqual([1, 2, 3]);
    const [values, indices] = x.max(1);
    expect(vals(values)).toEqual([5, 6]);
    expect(vals(indices)).toEqual([1, 2]);
    expect(vals(x.min(0).indices)).toEqual([0, 1, 0]);
    expect(x.argmax().itemSync()).toBe(5);
    expect(vals(x.argmin(1, true))).toEqual([[0], [1]]);
    close(x.var(1), [4, 4]);
    close(kiln.tensor([3, 4]).norm(), [5]);
    expect(kiln.tensor([true, true, false]).sum().itemSync()).toBe(2);
  });
  it('reduces strided views', () => {
    expect(vals(x.t().sum(1))).toEqual([5, 7, 9]);
    expect(vals(x.t().amax(0))).toEqual([5, 6]);
  });
  it('gradients', () => {
    check((a) => a.sum(1), rnd([3, 4]));
    check((a) => a.sum([0, 2], true), rnd([2, 3, 4]));
    check((a) => a.mean(), rnd([3, 4]));
    check((a) => a.amax(1), rnd([3, 4]));
    check((a) => a.amin(0, true), rnd([3, 4]));
    check((a) => a.var(1), rnd([3, 4]));
    check((a) => a.norm(), rnd([3, 4]));
  });
  it('max shares the gradient among ties', () => {
    const a = f64([2, 2, 1]);
    a.amax().backward();
    expect(vals(a.grad!)).toEqual([0.5, 0.5, 0]);
  });
});

describe('matmul', () => {
  it('mm, bmm, matmul with broadcasting and 1-D operands', () => {
    const a = kiln.tensor([[1, 2], [3, 4]]);
    const b = kiln.tensor([[5, 6], [7, 8]]);
    expect(vals(a.mm(b))).toEqual([[19, 22], [43, 50]]);
    expect(vals(a.t().mm(b))).toEqual([[26, 30], [38, 44]]);
    expect(vals(kiln.stack([a, b]).bmm(kiln.stack([b, a])))).toEqual([[[19, 22], [43, 50]], [[23, 34], [31, 46]]]);
    expect(vals(kiln.stack([a, b]).matmul(a))).toEqual([[[7, 10], [15, 22]], [[23, 34], [31, 46]]]);
    expect(vals(a.matmul(kiln.tensor([1, 1])))).toEqual([3, 7]);
    expect(vals(kiln.tensor([1, 1]).matmul(a))).toEqual([4, 6]);
    expect(kiln.tensor([1, 2]).dot(kiln.tensor([3, 4])).itemSync()).toBe(11);
    expect(vals(kiln.tensor([[1, 2]], { dtype: 'int32' }).mm(kiln.tensor([[3], [4]], { dtype: 'int32' })))).toEqual([[11]]);
  });
  it('gradients', () => {
    check((a, b) => a.mm(b), rnd([3, 4]), rnd([4, 2]));
    check((a, b) => a.matmul(b), rnd([2, 3, 4]), rnd([4, 5]));
    check((a, b) => a.matmul(b), rnd([4]), rnd([2, 4, 3]));
    check((a, b) => a.bmm(b), rnd([2, 2, 3]), rnd([2, 3, 2]));
  });
});

describe('movement', () => {
  const x = kiln.arange(24, { dtype: 'float32' }).reshape(2, 3, 4);
  it('forward', () => {
    expect(x.view(6, -1).shape).toEqual([6, 4]);
    expect(x.permute(2, 0, 1).shape).toEqual([4, 2, 3]);
    expect(x.permute(2, 0, 1).contiguous().view(-1).tolistSync()).toEqual([0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23]);
    expect(x.transpose(0, 2).reshape(-1).slice(0, 0, 4).tolistSync()).toEqual([0, 12, 4, 16]);
    expect(kiln.tensor([1, 2]).reshape(2, 1).expand(2, 3).tolistSync()).toEqual([[1, 1, 1], [2, 2, 2]]);
    expect(x.unsqueeze(1).shape).toEqual([2, 1, 3, 4]);
    expect(x.unsqueeze(-1).shape).toEqual([2, 3, 4, 1]);
    expect(x.unsqueeze(1).squeeze().shape).toEqual([2, 3, 4]);
    expect(x.flatten(1).shape).toEqual([2, 12]);
    expect(x.narrow(2, 1, 2).tolistSync()).toEqual([[[1, 2], [5, 6], [9, 10]], [[13, 14], [17, 18], [21, 22]]]);
    expect(x.select(1, -1).tolistSync()).toEqual([[8, 9, 10, 11], [20, 21, 22, 23]]);
    expect(kiln.arange(10).slice(0, 1, null, 3).tolistSync()).toEqual([1, 4, 7]);
    expect(kiln.cat([kiln.tensor([[1, 2]]), kiln.tensor([[3, 4], [5, 6]])]).tolistSync()).toEqual([[1, 2], [3, 4], [5, 6]]);
    expect(kiln.cat([kiln.tensor([[1], [2]]), kiln.tensor([[3, 4], [5, 6]])], 1).tolistSync()).toEqual([[1, 3, 4], [2, 5, 6]]);
    expect(kiln.stack([kiln.tensor([1, 2]), kiln.tensor([3, 4])], 1).tolistSync()).toEqual([[1, 3], [2, 4]]);
    expect(kiln.pad(kiln.tensor([[1, 2]]), [1, 0, 0, 1]).tolistSync()).toEqual([[0, 1, 2], [0, 0, 0]]);
    expect(kiln.arange(5).split(2).map((t) => t.tolistSync())).toEqual([[0, 1], [2, 3], [4]]);
    expect(x.chunk(3, 1).length).toBe(3);
  });
  it('views share storage; reshape of a non-contiguous tensor copies; view refuses', () => {
    expect(x.reshape(6, 4)._view!.storage).toBe(x._view!.storage);
    expect(x.t === undefined).toBe(false);
    const tr = x.transpose(1, 2);
    expect(tr.reshape(-1)._view!.storage).not.toBe(x._view!.storage);
    expect(() => tr.view(-1)).toThrow(/not contiguous.*reshape/);
  });
  it('gradients', () => {
    check((a) => a.reshape(3, 4).mul(a.reshape(3, 4)), rnd([2, 6]));
    check((a) => a.permute(2, 0, 1).mul(kiln.arange(24, { dtype: 'float64' }).reshape(4, 2, 3)), rnd([2, 3, 4]));
    check((a) => a.expand(3, 2, 4).mul(kiln.arange(24, { dtype: 'float64' }).reshape(3, 2, 4)), rnd([2, 1]));
    check((a) => a.slice(1, 1, 4, 2), rnd([2, 5]));
    check((a) => a.narrow(0, 1, 2), rnd([4, 2]));
    check((a, b) => kiln.cat([a, b], 1), rnd([2, 2]), rnd([2, 3]));
    check((a, b) => kiln.stack([a, b]), rnd([2, 2]), rnd([2, 2]));
    check((a) => kiln.pad(a, [1, 2, 0, 1]), rnd([2, 3]));
    check((a) => a.t().matmul(a), rnd([3, 2]));
  });
});

describe('indexing', () => {
  const x = kiln.tensor([[1, 2, 3], [4, 5, 6]]);
  const idx = kiln.tensor([[2, 0], [1, 1]], { dtype: 'int32' });
  it('gather, scatterAdd, indexSelect', () => {
    expect(x.gather(1, idx).tolistSync()).toEqual([[3, 1], [5, 5]]);
    expect(kiln.zeros(2, 3).scatterAdd(1, idx, kiln.ones(2, 2)).tolistSync()).toEqual([[1, 0, 1], [0, 2, 0]]);
    expect(x.indexSelect(1, kiln.tensor([2, 0], { dtype: 'int32' })).tolistSync()).toEqual([[3, 1], [6, 4]]);
    expect(x.indexSelect(0, kiln.tensor([1, 1, 0], { dtype: 'int32' })).tolistSync()).toEqual([[4, 5, 6], [4, 5, 6], [1, 2, 3]]);
  });
  it('refuses out-of-range indices', () => {
    expect(() => x.gather(1, kiln.tensor([[3]], { dtype: 'int32' }))).toThrow(/index 3 is out of bounds for dimension 1 with size 3/);
    expect(() => x.gather(1, kiln.tensor([[1]]))).toThrow(/index must be int32/);
  });
  it('gradients', () => {
    check((a) => a.gather(1, idx), rnd([2, 3]));
    check((a, s) => a.scatterAdd(1, idx, s), rnd([2, 3]), rnd([2, 2]));
    check((a) => a.indexSelect(0, kiln.tensor([1, 1, 0], { dtype: 'int32' })), rnd([2, 3]));
  });
});

describe('creation', () => {
  it('fills, ranges and identity', () => {
    expect(kiln.zeros(2, 2).tolistSync()).toEqual([[0, 0], [0, 0]]);
    expect(kiln.ones([2]).dtype).toBe('float32');
    expect(kiln.full([2], 7, { dtype: 'int32' }).tolistSync()).toEqual([7, 7]);
    expect(kiln.arange(3).dtype).toBe('int32');
    expect(kiln.arange(1, 2, 0.5).tolistSync()).toEqual([1, 1.5]);
    expect(kiln.eye(2, 3).tolistSync()).toEqual([[1, 0, 0], [0, 1, 0]]);
    expect(kiln.zerosLike(kiln.ones(2, { dtype: 'float64' })).dtype).toBe('float64');
    expect(kiln.tensor(3).shape).toEqual([]);
    expect(kiln.tensor(new Float64Array([1, 2])).dtype).toBe('float64');
    expect(() => kiln.tensor([[1, 2], [3]])).toThrow(/ragged/);
  });
  it('seeded random numbers are reproducible and well distributed', () => {
    kiln.manualSeed(42);
    const a = kiln.randn(10000);
    kiln.manualSeed(42);
    const b = kiln.randn(10000);
    expect(a.tolistSync()).toEqual(b.tolistSync());
    expect(Math.abs(a.mean().itemSync())).toBeLessThan(0.05);
    expect(Math.abs(a.std().itemSync() - 1)).toBeLessThan(0.05);
    const u = kiln.rand(10000);
    expect(u.amin().itemSync()).toBeGreaterThanOrEqual(0);
    expect(u.amax().itemSync()).toBeLessThan(1);
    const r = kiln.randint(3, 7, [1000]);
    expect(r.dtype).toBe('int32');
    expect(r.amin().itemSync()).toBe(3);
    expect(r.amax().itemSync()).toBe(6);
  });
});

describe('scatterAdd with src larger than index', () => {
  it('gives the unscattered part of src a zero gradient (gradcheck)', () => {
    const idx = kiln.tensor([[0], [2]], { dtype: 'int32' });
    check((a, s) => a.scatterAdd(1, idx, s), rnd([2, 3]), rnd([2, 2]));
  });
});
