// The autograd engine: accumulation, retainGraph, hooks, autograd.grad, custom Functions, noGrad,
// detach, and the version counter that guards saved tensors against in-place changes.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';
import { cpu } from '../runtime/cpu/backend.js';
import { wasmHeap } from '../runtime/cpu/wasm/heap.js';
import { MNISTConvNet } from '../models/mnist-convnet.js';

const leaf = (data: number[]) => kiln.tensor(data, { dtype: 'float64', requiresGrad: true });

describe('backward', () => {
  it('accumulates gradients across calls, as PyTorch does', () => {
    const x = leaf([1, 2, 3]);
    x.mul(x).sum().backward();
    expect(x.grad!.tolistSync()).toEqual([2, 4, 6]);
    x.mul(3).sum().backward();
    expect(x.grad!.tolistSync()).toEqual([5, 7, 9]);
  });
  it('sums the gradients of a tensor used twice', () => {
    const x = leaf([2]);
    const y = x.mul(x).add(x);
    y.backward();
    expect(x.grad!.itemSync()).toBe(5);
  });
  it('frees saved tensors unless retainGraph, and says so', () => {
    const x = leaf([1, 2]);
    const y = x.exp().sum();
    y.backward(undefined, { retainGraph: true });
    y.backward();
    expect(x.grad!.tolistSync()).toEqual([2 * Math.exp(1), 2 * Math.exp(2)]);
    expect(() => y.backward()).toThrow(/backward through the graph a second time.*retainGraph/);
  });
  it('takes an explicit gradient for non-scalar outputs', () => {
    const x = leaf([1, 2]);
    x.mul(2).backward(kiln.tensor([1, 10], { dtype: 'float64' }));
    expect(x.grad!.tolistSync()).toEqual([2, 20]);
  });
  it('gradients of non-leaves are not kept unless retainGrad()', () => {
    const x = leaf([1, 2]);
    const h = x.mul(2);
    const k = x.mul(3).retainGrad();
    h.add(k).sum().backward();
    expect(h.grad).toBeNull();
    expect(k.grad!.tolistSync()).toEqual([1, 1]);
    expect(x.isLeaf).toBe(true);
    expect(h.isLeaf).toBe(false);
    expect(h.gradFn!.name).toBe('MulBackward');
  });
});

describe('noGrad, detach, requiresGrad', () => {
  it('noGrad records nothing and returns the body value', () => {
    const x = leaf([1]);
    const y = kiln.noGrad(() => x.mul(2));
    expect(y.requiresGrad).toBe(false);
    expect(y.gradFn).toBeNull();
    expect(kiln.isGradEnabled()).toBe(true);
  });
  it('detach shares values but not history', () => {
    const x = leaf([1, 2]);
    const d = x.mul(2).detach();
    expect(d.requiresGrad).toBe(false);
    expect(d.tolistSync()).toEqual([2, 4]);
  });
  it('only floating tensors can require grad', () => {
    expect(() => kiln.tensor([1], { dtype: 'int32', requiresGrad: true })).toThrow(/only floating point/);
  });
  it('comparisons produce tensors that do not require grad', () => {
    expect(leaf([1]).gt(0).requiresGrad).toBe(false);
    expect(leaf([1]).int().requiresGrad).toBe(false);
  });
});

describe('hooks', () => {
  it('a hook sees the gradient and may replace it; its handle removes it', () => {
    const x = leaf([1, 2]);
    const seen: number[][] = [];
    const h = x.mul(3);
    const handle = h.registerHook((g) => { seen.push(g.tolistSync() as number[]); return g.mul(10); });
    h.sum().backward();
    expect(seen).toEqual([[1, 1]]);
    expect(x.grad!.tolistSync()).toEqual([30, 30]);
    handle.remove();
    x.grad = null;
    x.mul(3).sum().backward();
    expect(x.grad!.tolistSync()).toEqual([3, 3]);
  });
  it('a hook on a leaf runs before accumulation', () => {
    const x = leaf([1]);
    x.registerHook((g) => g.mul(2));
    x.mul(5).sum().backward();
    expect(x.grad!.itemSync()).toBe(10);
  });
});

describe('autograd.grad', () => {
  it('returns gradients without touching .grad', () => {
    const x = leaf([1, 2]);
    const w = leaf([3, 4]);
    const [gx, gw] = kiln.autograd.grad(x.mul(w).sum(), [x, w]);
    expect(gx!.tolistSync()).toEqual([3, 4]);
    expect(gw!.tolistSync()).toEqual([1, 2]);
    expect(x.grad).toBeNull();
  });
  it('reports unused inputs unless allowUnused', () => {
    const x = leaf([1]);
    const z = leaf([1]);
    expect(() => kiln.autograd.grad(x.mul(2).sum(), [z])).toThrow(/not used/);
    expect(kiln.autograd.grad(x.mul(2).sum(), [x, z], { allowUnused: true })[1]).toBeNull();
  });
  it('createGraph gives second derivatives', () => {
    const x = leaf([3]);
    const [g] = kiln.autograd.grad(x.pow(3).sum(), [x], { createGraph: true });
    expect(g!.itemSync()).toBe(27);
    const [g2] = kiln.autograd.grad(g!.sum(), [x]);
    expect(g2!.itemSync()).toBe(18);
  });
});

class Cube extends kiln.autograd.Function {
  static override forward(ctx: kiln.autograd.Context, x: Tensor): Tensor {
    ctx.saveForBackward(x);
    return x.pow(3);
  }
  static override backward(ctx: kiln.autograd.Context, g: Tensor): Tensor {
    const [x] = ctx.savedTensors;
    return g.mul(x.pow(2)).mul(3);
  }
}

describe('custom autograd.Function', () => {
  it('runs forward without recording and backward through apply', () => {
    const x = leaf([1, 2]);
    const y = Cube.apply(x);
    expect(y.gradFn!.name).toBe('CubeBackward');
    y.sum().backward();
    expect(x.grad!.tolistSync()).toEqual([3, 12]);
  });
  it('passes gradcheck', () => {
    expect(kiln.autograd.gradcheck((x) => Cube.apply(x), [leaf([0.5, -1.5])])).toBe(true);
  });
  it('gradcheck catches a wrong backward', () => {
    class Wrong extends Cube {
      static override backward(ctx: kiln.autograd.Context, g: Tensor): Tensor {
        return g.mul(ctx.savedTensors[0]);
      }
    }
    expect(() => kiln.autograd.gradcheck((x) => Wrong.apply(x), [leaf([0.5, 2])])).toThrow(/Jacobian mismatch/);
    expect(kiln.autograd.gradcheck((x) => Wrong.apply(x), [leaf([0.5, 2])], { raiseException: false })).toBe(false);
  });
});

describe('in-place ops and the version counter', () => {
  it('in-place ops write through views and bump the version', () => {
    const x = kiln.zeros(2, 3);
    const v = x._view!.storage.version;
    x.select(0, 1).fill_(7);
    expect(x.tolistSync()).toEqual([[0, 0, 0], [7, 7, 7]]);
    x.t().add_(1);
    expect(x.tolistSync()).toEqual([[1, 1, 1], [8, 8, 8]]);
    expect(x._view!.storage.version).toBe(v + 2);
    x.copy_(kiln.tensor([1, 2, 3]));
    expect(x.tolistSync()).toEqual([[1, 2, 3], [1, 2, 3]]);
    x.maskedFill_(x.gt(2), -1).zero_();
    expect(x.sum().itemSync()).toBe(0);
  });
  it('modifying a tensor saved for backward raises PyTorch\'s error at backward', () => {
    const a = leaf([1, 2]);
    const b = a.mul(2);
    const c = b.mul(b); // saves b
    b.add_(1);
    expect(() => c.sum().backward()).toThrow(/modified by an in-place operation.*version 1; expected version 0/);
  });
  it('in-place on a non-leaf keeps the gradient right', () => {
    const a = leaf([1, 2]);
    const b = a.mul(2);
    b.add_(1).mul_(3); // b = 3 * (2a + 1)
    b.sum().backward();
    expect(a.grad!.tolistSync()).toEqual([6, 6]);
  });
  it('in-place on a leaf that requires grad is refused outside noGrad', () => {
    const a = leaf([1]);
    expect(() => a.sub_(1)).toThrow(/leaf tensor that requires grad.*noGrad/);
    // Refused before anything is computed (not a broadcast error of the operands), as PyTorch does.
    const w = leaf([1, 2, 3]);
    expect(() => w.addcmul_(kiln.ones(3), kiln.ones(4))).toThrow(/leaf tensor that requires grad/);
    // A view of a tensor that requires grad is refused too, on either path, whatever made the view.
    for (const view of [() => kiln.noGrad(() => w.reshape([3])), () => w.detach(), () => w.narrow(0, 1, 2)]) {
      for (const op of [(t: Tensor) => t.mul_(2), (t: Tensor) => t.add_(1), (t: Tensor) => t.pow_(2)]) {
        expect(() => op(view())).toThrow(/view of a tensor that requires grad/);
      }
    }
    expect(w.tolistSync()).toEqual([1, 2, 3]);
    kiln.noGrad(() => a.sub_(1));
    expect(a.itemSync()).toBe(0);
  });
  it('add_, sub_, mul_, div_, addcmul_ and addcdiv_ write their last op straight into the tensor where that is safe, with out-of-place values', () => {
    const r = () => kiln.randn([3, 4]);
    const ops: [string, (t: Tensor, o: Tensor, o2: Tensor) => Tensor, (t: Tensor, o: Tensor, o2: Tensor) => Tensor][] = [
      ['add_ alpha', (t, o) => t.add_(o, { alpha: -0.5 }), (t, o) => t.add(o.mul(-0.5))],
      ['sub_ row', (t, o) => t.sub_(o.select(0, 0)), (t, o) => t.sub(o.select(0, 0))],
      ['mul_ scalar', (t) => t.mul_(0.9), (t) => t.mul(0.9)],
      ['div_', (t, o) => t.div_(o.abs().add(1)), (t, o) => t.div(o.abs().add(1))],
      ['addcmul_', (t, o, o2) => t.addcmul_(o, o2, { value: 0.1 }), (t, o, o2) => t.add(o.mul(o2).mul(0.1))],
      ['addcdiv_', (t, o, o2) => t.addcdiv_(o, o2.abs().add(1), { value: -2 }), (t, o, o2) => t.add(o.div(o2.abs().add(1)).mul(-2))],
      ['add_ itself', (t) => t.add_(t), (t) => t.add(t)],
    ];
    // What runs: the direct write copies nothing (the out-of-place path computes, then copies into the tensor).
    const ran: string[] = [];
    const run = cpu.run, copy = cpu.copy;
    cpu.run = (op, inputs, attrs, out) => { ran.push(op.name); return run.call(cpu, op, inputs, attrs, out); };
    cpu.copy = (src, dst) => { ran.push('copy'); return copy.call(cpu, src, dst); };
    try {
      for (const [name, inPlace, outOfPlace] of ops) {
        const t = r(), o = r(), o2 = r();
        const want = outOfPlace(t, o, o2).tolistSync();
        const storage = t._view!.storage, version = storage.version;
        ran.length = 0;
        expect(inPlace(t, o, o2), name).toBe(t);
        expect(ran, name).not.toContain('copy');
        expect(t._view!.storage, name).toBe(storage);
        expect(storage.version, name).toBe(version + 1);
        expect(t.tolistSync(), name).toEqual(want);
      }
      // Not written directly (computed, then copied in, as before): another view of the same storage
      // as an operand, an expanded target, a view that starts inside its storage, and under
      // autograd; each still gives the out-of-place values.
      const x = kiln.arange(6, { dtype: 'float32' }).reshape([2, 3]);
      ran.length = 0;
      x.add_(x.select(0, 0)); // row 0 broadcast: written directly, row 1 would read the new row 0
      expect(x.tolistSync()).toEqual([[0, 2, 4], [3, 5, 7]]);
      expect(ran).toContain('copy');
      const row = kiln.tensor([1, 2, 3]);
      ran.length = 0;
      row.expand([2, 3]).mul_(1);
      expect(ran).toContain('copy');
      const y = kiln.ones(2, 3);
      ran.length = 0;
      y.select(0, 1).add_(1);
      expect(y.tolistSync()).toEqual([[1, 1, 1], [2, 2, 2]]);
      expect(ran).toContain('copy');
      const a = leaf([1, 2]);
      const b = a.mul(2);
      ran.length = 0;
      b.add_(1);
      expect(ran).toContain('copy');
    } finally {
      cpu.run = run;
      cpu.copy = copy;
    }
  });
});

describe('backward keeps its temporaries in the Wasm heap and frees them', () => {
  const heap = wasmHeap();
  /** One ConvNet forward and backward; `hook` on the loss, when given, keeps the pass off the temporary scope. */
  function gradients(hook?: (g: Tensor) => void): { grads: number[][]; heapAfter: number } {
    kiln.manualSeed(3);
    const m = new MNISTConvNet();
    const x = kiln.randn([8, 1, 28, 28]), y = kiln.randint(0, 10, [8]);
    const loss = kiln.nn.functional.crossEntropy(m.forward(x), y);
    if (hook) loss.registerHook(hook);
    const before = heap!.stats().bytesInUse;
    loss.backward();
    return { grads: m.parameters().map((p) => Array.from(p.grad!.dataSync() as Float32Array)), heapAfter: heap!.stats().bytesInUse - before };
  }

  it.runIf(heap !== null)('gives the same gradients as a pass outside the scope, and leaves no heap behind', () => {
    gradients(); // kernels' own scratch areas grow on first use and stay
    const scoped = gradients();
    const plain = gradients(() => {});
    expect(scoped.grads.length).toBe(plain.grads.length);
    scoped.grads.forEach((g, i) => expect(g, `parameter ${i}`).toEqual(plain.grads[i]));
    expect(scoped.heapAfter).toBe(0);
    // The scoped pass did put temporaries in the heap while it ran (dCols alone is 8 x 250 x 64 floats).
    let peak = 0;
    const alloc = cpu.alloc;
    cpu.alloc = (dtype, length) => { const s = alloc(dtype, length); peak = Math.max(peak, heap!.stats().bytesInUse); return s; };
    try {
      const start = heap!.stats().bytesInUse;
      gradients();
      expect(peak - start).toBeGreaterThan(8 * 250 * 64 * 4);
    } finally {
      cpu.alloc = alloc;
    }
  });

  it('leaves gradients that something outside the engine holds alone: hooks, retainGrad, createGraph, autograd.grad', () => {
    const a = leaf([1, 2, 3, 4]).reshape([2, 2]).detach().requiresGrad_(true);
    const big = kiln.randn([64, 100], { dtype: 'float64' }).requiresGrad_(true);
    let seen: Tensor | undefined;
    const h = big.mul(big);
    h.registerHook((g) => { seen = g; });
    h.sum().backward();
    expect(Array.from(seen!.dataSync() as Float64Array).every((v) => v === 1)).toBe(true);
    const r = big.mul(3);
    r.retainGrad();
    r.sum().backward();
    expect(Array.from(r.grad!.dataSync() as Float64Array).every((v) => v === 1)).toBe(true);
    const [g] = kiln.autograd.grad(big.mul(big).sum(), [big], { createGraph: true });
    expect((g!.dataSync() as Float64Array)[0]).toBe(2 * (big.dataSync() as Float64Array)[0]);
    const [g2] = kiln.autograd.grad(big.mul(5).sum(), [big]);
    expect(Array.from(g2!.dataSync() as Float64Array).every((v) => v === 5)).toBe(true);
    a.sum().backward();
    expect(a.grad!.tolistSync()).toEqual([[1, 1], [1, 1]]);
  });

  it.runIf(heap !== null)('a temporary used after its scope closed throws instead of reading freed memory', () => {
    const scope = cpu.openTemporaryScope!();
    const t = kiln.randn([100, 100]);
    const kept = scope.pause(() => kiln.randn([100, 100]));
    expect(() => cpu.openTemporaryScope!()).toThrow(/already open/);
    scope.close();
    expect(() => t.dataSync()).toThrow(/freed/);
    expect(() => t.add(1)).toThrow(/freed/);
    expect(kept.sum().itemSync()).not.toBeNaN();
  });
});
