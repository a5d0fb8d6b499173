// Dynamic models are never replayed along one traced path; bad input gets clear errors that name
// the module and the source line; fusion is real (exact kernel counts); the IR prints, verifies
// and round-trips through JSON.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { nn, optim, type Tensor } from 'kiln';
import { DynamicNet } from '../models/dynamic-net.js';
import { MNISTConvNet } from '../models/mnist-convnet.js';
import { TwoLayerNet } from '../models/two-layer-net.js';
import { trainDynamicNet } from '../examples/dynamic-net.js';
import { expectClose, type FixtureTensor, fromFixture, loadFixture } from './helpers.js';
import { firstMismatch } from '../compiler/evaluate.js';
import { buildPlan } from '../compiler/plan.js';
import { Executable } from '../runtime/executor.js';

/** Math.random replaced by a sequence that makes `Math.floor(Math.random() * 4)` give `depths`. */
function withDepths<R>(depths: number[], fn: () => Promise<R>): Promise<R> {
  const random = Math.random;
  const queue = [...depths];
  Math.random = () => {
    if (!queue.length) throw new Error('the test ran out of depths');
    return (queue.shift()! + 0.5) / 4;
  };
  return fn().finally(() => (Math.random = random));
}

describe('dynamic models', () => {
  it('compiled DynamicNet breaks the graph, says why once, and follows the fixture depth sequence', async () => {
    const fx = loadFixture('h_dynamicnet_sgd_momentum');
    const { D_in, H, D_out } = fx.config;
    const model = new DynamicNet(D_in, H, D_out);
    const camel = (k: string) => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    model.loadStateDict(Object.fromEntries(Object.entries(fx.params_init as Record<string, FixtureTensor>).map(([k, v]) => [camel(k), fromFixture(v)])));
    const messages: string[] = [];
    const fast = kiln.compile(model, { log: (m) => messages.push(m) });
    const losses: number[] = [];
    // Train through the compiled forward: the training loop of the seed, with `fast` as the model.
    await withDepths(fx.hyper.depths, async () => {
      const criterion = new nn.MSELoss({ reduction: 'sum' });
      const optimizer = new optim.SGD(model.parameters(), { lr: fx.hyper.lr, momentum: 0.9 });
      const x = fromFixture(fx.inputs.x);
      const y = fromFixture(fx.inputs.y);
      for (let t = 0; t < fx.hyper.steps; t++) {
        const loss = criterion(fast(x), y);
        optimizer.zeroGrad();
        loss.backward();
        losses.push(loss.itemSync());
        optimizer.step();
      }
    });
    expectClose(losses, fx.outputs.losses_set_to_none_true);
    for (const [k, v] of Object.entries(fx.outputs.params_after_set_to_none_true as Record<string, FixtureTensor>)) expectClose(model.stateDict()[camel(k)], v);
    expect(messages.filter((m) => m.includes('dynamic'))).toHaveLength(1);
    expect(messages[0]).toMatch(/DynamicNet\.forward is dynamic \(Math\.random\(\) called while tracing at .*models[\\/]dynamic-net\.ts:\d+:\d+\); running it eagerly and compiling the submodules it calls \(a graph break\)/);
  });

  it('the same loop run eagerly gives the same result (the compiled one is not a replay)', async () => {
    const fx = loadFixture('h_dynamicnet_sgd_momentum');
    const model = new DynamicNet(fx.config.D_in, fx.config.H, fx.config.D_out);
    const camel = (k: string) => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    model.loadStateDict(Object.fromEntries(Object.entries(fx.params_init as Record<string, FixtureTensor>).map(([k, v]) => [camel(k), fromFixture(v)])));
    const losses: number[] = [];
    await withDepths(fx.hyper.depths, () => trainDynamicNet(model, fromFixture(fx.inputs.x), fromFixture(fx.inputs.y), fx.hyper.lr, fx.hyper.steps, (_t, s) => losses.push(s.loss)));
    expectClose(losses, fx.outputs.losses_set_to_none_true);
  });

  it('fullgraph refuses a dynamic model with the reason and the line', () => {
    const fast = kiln.compile(new DynamicNet(4, 3, 2), { fullgraph: true, log: () => {} });
    expect(() => fast(kiln.randn(2, 4))).toThrow(/kiln\.compile\(fullgraph\): DynamicNet\.forward cannot be compiled to one graph: it is dynamic \(Math\.random\(\) called while tracing at .*dynamic-net\.ts:\d+:\d+\)/);
  });

  it('reading a value or branching on a tensor makes a trace dynamic', () => {
    const messages: string[] = [];
    const branchy = kiln.compile((x: Tensor) => (Number(x.sum()) > 0 ? x.mul(2) : x.mul(-1)), { log: (m) => messages.push(m) });
    expect(branchy(kiln.tensor([1, 2])).tolistSync()).toEqual([2, 4]);
    expect(branchy(kiln.tensor([-1, -2])).tolistSync()).toEqual([1, 2]);
    expect(messages[0]).toMatch(/is dynamic \(converting a tensor to a number/);
    const reads = kiln.compile((x: Tensor) => x.mul(x.sum().itemSync()), { fullgraph: true, log: () => {} });
    expect(() => reads(kiln.tensor([1, 2]))).toThrow(/reads the values of a tensor being traced at .*compile-dynamic\.test\.ts/);
    const jsRandom = kiln.compile((x: Tensor) => x.mul(Math.random()), { fullgraph: true, log: () => {} });
    expect(() => jsRandom(kiln.tensor([1, 2]))).toThrow(/Math\.random\(\) called while tracing/);
  });
});

describe("Kiln's random numbers in compiled graphs", () => {
  it('draw fresh values on every call, the same ones eager execution draws from the same seed', () => {
    const f = (x: Tensor) => x.add(kiln.randn(3)).mul(kiln.rand(3).gt(0.5));
    const fast = kiln.compile(f, { fullgraph: true, log: () => {} });
    const x = kiln.tensor([1, 2, 3]);
    kiln.manualSeed(9);
    const e1 = f(x).tolistSync();
    const e2 = f(x).tolistSync();
    kiln.manualSeed(9);
    const c1 = fast(x).tolistSync();
    const c2 = fast(x).tolistSync();
    expect(c1).toEqual(e1);
    expect(c2).toEqual(e2);
    expect(c1).not.toEqual(c2);
  });
  it('dropout in training mode compiles, and a compiled training step matches eager under the same seed', () => {
    class Net extends nn.Module {
      fc = new nn.Linear(8, 4);
      drop = new nn.Dropout(0.5);
      override forward(x: Tensor): Tensor {
        return this.drop(this.fc(x));
      }
    }
    const m1 = new Net();
    const m2 = new Net();
    m2.loadStateDict(m1.stateDict());
    const x = kiln.randn(6, 8);
    const y = kiln.randn(6, 4);
    const lossFn = new nn.MSELoss();
    const o1 = new optim.SGD(m1.parameters(), { lr: 0.1 });
    const step = kiln.compileTrainStep(m2, lossFn, new optim.SGD(m2.parameters(), { lr: 0.1 }), { fullgraph: true, log: () => {} });
    for (let t = 0; t < 5; t++) {
      kiln.manualSeed(100 + t);
      o1.zeroGrad();
      const l = lossFn(m1(x), y);
      l.backward();
      o1.step();
      kiln.manualSeed(100 + t);
      expectClose(step(x, y).itemSync(), l.itemSync());
    }
    expectClose(m2.fc.weight, m1.fc.weight);
  });
});

describe('clear errors', () => {
  it('a shape error at compile time names the module and the source line', () => {
    const fast = kiln.compile(new TwoLayerNet(50, 20, 5), { log: () => {} });
    expect(() => fast(kiln.randn(16, 40))).toThrow(/linear: input \[16, 40\] has 40 features but weight \[20, 50\] expects 50 \(in_features\) \(in TwoLayerNet > Linear\.forward at .*two-layer-net\.ts:\d+:\d+\)/);
  });
  it('a wrong dtype at call time names both dtypes and the module', () => {
    const fast = kiln.compile(new TwoLayerNet(5, 4, 3), { log: () => {} });
    fast(kiln.randn(2, 5));
    expect(() => fast(kiln.randn([2, 5], { dtype: 'float64' }))).toThrow(/linear: input dtype float64 and weight dtype float32 differ; cast one of them \(in TwoLayerNet > Linear\.forward at .*two-layer-net\.ts/);
  });
  it('a new input signature beyond the cache bound is refused; recompiles are logged with the reason', () => {
    const messages: string[] = [];
    const fast = kiln.compile(new TwoLayerNet(5, 4, 3), { cacheSize: 2, log: (m) => messages.push(m) });
    kiln.noGrad(() => {
      fast(kiln.randn(2, 5));
      fast(kiln.randn(3, 5));
      fast(kiln.randn(2, 5));
      expect(() => fast(kiln.randn(4, 5))).toThrow(/already compiled for 2 input signatures \(cacheSize 2\); refusing a new one \(float32\[4,5\]@cpu/);
    });
    expect(messages).toEqual(['kiln.compile: recompiling TwoLayerNet.forward: arg0 float32[2,5]@cpu -> float32[3,5]@cpu']);
  });
});

describe('fusion is real', () => {
  const counts = (f: { stats: (...a: any[]) => { tracedOps: number; kernels: number; backwardKernels: number } }, ...args: unknown[]) => kiln.noGrad(() => f.stats(...args));
  it('TwoLayerNet: forward 2 kernels (matmul + bias + clamp epilogue, matmul + bias) from 10 traced ops, training step 14 from 49 (ReLU\'s mask recomputed, never stored)', () => {
    const model = new TwoLayerNet(50, 20, 5);
    const x = kiln.randn(16, 50);
    const y = kiln.randn(16, 5);
    const fwd = counts(kiln.compile(model, { log: () => {} }), x);
    expect(fwd.kernels).toBe(2);
    expect(fwd.tracedOps).toBe(10);
    const step = kiln.compileTrainStep(model, new nn.MSELoss({ reduction: 'sum' }), new optim.SGD(model.parameters(), { lr: 1e-4 }), { log: () => {} });
    step(x, y);
    const s = step.stats(x, y);
    expect(s.kernels).toBe(14);
    expect(s.tracedOps).toBe(49);
    const unfused = kiln.compileTrainStep(new TwoLayerNet(50, 20, 5), new nn.MSELoss({ reduction: 'sum' }), new optim.SGD(model.parameters(), { lr: 1e-4 }), { log: () => {}, fuse: false });
    unfused(x, y);
    expect(unfused.stats(x, y).kernels).toBeGreaterThan(s.kernels);
  });
  it('a mask that two kernels read is recomputed in each, not stored (fuse.ts rule 7), with the same values', () => {
    const f = (x: Tensor) => {
      const negative = x.lt(0);
      return [kiln.where(negative, 0, x), kiln.where(negative, x, 1).sum(0)];
    };
    const fast = kiln.compile(f, { log: () => {} });
    const x = kiln.randn(30, 7);
    const g = kiln.noGrad(() => fast.graph(x)).toString();
    expect(g).not.toMatch(/= lt\(/);
    expect(g.match(/lt\(\$\d, \$\d\)/g)?.length).toBe(2);
    expect(counts(fast, x).kernels).toBe(2);
    const [a, b] = fast(x) as Tensor[];
    const [ea, eb] = f(x);
    expect(Array.from(a.dataSync())).toEqual(Array.from(ea.dataSync()));
    expect(Array.from(b.dataSync())).toEqual(Array.from(eb.dataSync()));
  });
  it('MNISTConvNet: forward 10 kernels (conv bias + ReLU fused into the matmul; per max-pool: the tap comparisons over strided views of the input, carrying the pick\'s position, in one kernel, and its value), training step 53 from 264 traced ops (the taps are views)', () => {
    const net = new MNISTConvNet();
    const x = kiln.randn(4, 1, 28, 28);
    const fwd = counts(kiln.compile(net, { log: () => {} }), x);
    expect(fwd.kernels).toBe(10);
    const step = kiln.compileTrainStep(net, new nn.CrossEntropyLoss(), new optim.SGD(net.parameters(), { lr: 0.01 }), { log: () => {} });
    const y = kiln.tensor([1, 2, 3, 4], { dtype: 'int32' });
    step(x, y);
    const s = step.stats(x, y);
    expect(s.kernels).toBe(53);
    expect(s.tracedOps).toBe(264);
  });
});

describe('the IR', () => {
  it('prints readably, verifies, and round-trips through JSON', () => {
    const fast = kiln.compile(new TwoLayerNet(4, 3, 2), { log: () => {} });
    const x = kiln.randn(2, 4);
    const g = kiln.noGrad(() => fast.graph(x));
    const text = g.toString();
    expect(text).toContain('graph(%0: float32[2, 4] arg0, %1: float32[3, 4] <linear1.weight>');
    expect(text).toMatch(/matmul\(%0, %\d+, %\d+, %\d+\) select\(lt\(add\(\$0, \$1\), \$2\), \$2, add\(\$0, \$1\)\)/);
    kiln.verifyGraph(g);
    const back = kiln.Graph.fromJSON(JSON.stringify(g));
    expect(back.toString()).toBe(text);
    kiln.verifyGraph(back);
  });
  it('the planned executor agrees with the op-by-op reference evaluator on a backward graph', () => {
    const fast = kiln.compile((a: Tensor) => { const v = a.matmul(a.t()); return kiln.cat([v, v], 0).mean(1).square().sum(); }, { log: () => {}, fuse: false });
    const a = kiln.randn([4, 2], { dtype: 'float64', requiresGrad: true });
    const bwd = fast.backwardGraph(a)!;
    const fwdOut = new Executable(buildPlan(fast.graph(a), 'cpu')).run([a.detach()]);
    expect(firstMismatch(bwd, [...fwdOut.slice(1), kiln.ones([], { dtype: 'float64' }), a.detach()])).toBeUndefined();
  });
  it('a scatterAdd into a zeros tensor nothing else reads adds in place (no copy of its base), with the same result', () => {
    const g = new kiln.Graph();
    const src = g.addInput([3, 2], 'float32', 'arg', 'src');
    const index = g.addInput([3, 2], 'int32', 'arg', 'index');
    const zeros = g.addNode('full', [], { shape: [4, 2], value: 0, dtype: 'float32', device: 'cpu' }, [4, 2], 'float32');
    const out = g.addNode('scatterAdd', [zeros.id, index.id, src.id], { dim: 0 }, [4, 2], 'float32');
    g.outputs = [out.id];
    const plan = buildPlan(g, 'cpu');
    const step = plan.steps.find((st) => st.op === 'scatterAdd')!;
    expect(plan.views[step.inputs[0]].slot).toBe(plan.views[step.out].slot);
    const [got] = new Executable(plan).run([kiln.tensor([[1, 2], [3, 4], [5, 6]]), kiln.tensor([[0, 3], [0, 1], [2, 3]], { dtype: 'int32' })]);
    expect(got.tolistSync()).toEqual([[4, 0], [0, 4], [5, 0], [0, 8]]);
    // A base that is also returned is copied, not overwritten.
    g.outputs = [out.id, zeros.id];
    const kept = buildPlan(g, 'cpu');
    const st = kept.steps.find((x) => x.op === 'scatterAdd')!;
    expect(kept.views[st.inputs[0]].slot).not.toBe(kept.views[st.out].slot);
    // So is a base that is a view of a slot another view reads too.
    const h = new kiln.Graph();
    const hs = h.addInput([3, 2], 'float32', 'arg', 'src');
    const hi = h.addInput([3, 2], 'int32', 'arg', 'index');
    const flat = h.addNode('full', [], { shape: [8], value: 0, dtype: 'float32', device: 'cpu' }, [8], 'float32');
    const asBase = h.addNode('reshape', [flat.id], { shape: [4, 2] }, [4, 2], 'float32');
    const other = h.addNode('reshape', [flat.id], { shape: [2, 4] }, [2, 4], 'float32');
    const scattered = h.addNode('scatterAdd', [asBase.id, hi.id, hs.id], { dim: 0 }, [4, 2], 'float32');
    h.outputs = [scattered.id, other.id];
    const shared = buildPlan(h, 'cpu');
    const sa = shared.steps.find((x) => x.op === 'scatterAdd')!;
    expect(shared.views[sa.inputs[0]].slot).not.toBe(shared.views[sa.out].slot);
  });
  it('the verifier catches a broken graph', () => {
    const g = new kiln.Graph();
    const a = g.addInput([2], 'float32', 'arg', 'a');
    g.addNode('add', [a.id, 99], {}, [2], 'float32');
    expect(() => kiln.verifyGraph(g)).toThrow('verify: add uses %99 before it is defined');
    const h = new kiln.Graph();
    const b = h.addInput([2], 'float32', 'arg', 'b');
    h.addNode('sum', [b.id], { dims: [0], keepdim: false }, [2], 'float32');
    expect(() => kiln.verifyGraph(h)).toThrow(/sum -> %1 is float32\[2\] but its shape rule gives float32\[\]/);
  });
});

describe('compileTrainStep and learning-rate schedules', () => {
  it('a schedule that changes lr every epoch recompiles with the new constant, past the cache bound, and matches eager', () => {
    kiln.manualSeed(2);
    const m1 = new TwoLayerNet(6, 5, 3);
    const m2 = new TwoLayerNet(6, 5, 3);
    m2.loadStateDict(m1.stateDict());
    const x = kiln.randn(4, 6);
    const y = kiln.randn(4, 3);
    const lossFn = new nn.MSELoss();
    const o1 = new optim.SGD(m1.parameters(), { lr: 0.1, momentum: 0.9 });
    const o2 = new optim.SGD(m2.parameters(), { lr: 0.1, momentum: 0.9 });
    const s1 = new optim.lrScheduler.StepLR(o1, 1, { gamma: 0.5 });
    const s2 = new optim.lrScheduler.StepLR(o2, 1, { gamma: 0.5 });
    const messages: string[] = [];
    const step = kiln.compileTrainStep(m2, lossFn, o2, { cacheSize: 2, log: (m) => messages.push(m) });
    for (let epoch = 0; epoch < 5; epoch++) {
      for (let t = 0; t < 3; t++) {
        o1.zeroGrad();
        const l = lossFn(m1(x), y);
        l.backward();
        o1.step();
        expectClose(step(x, y).itemSync(), l.itemSync());
      }
      s1.step();
      s2.step();
    }
    expect(messages.filter((m) => m.includes('recompiling')).length).toBe(4);
    // Both plans in the cache are for these argument shapes; a new shape beyond the bound is refused.
    expect(() => step(kiln.randn(5, 6), kiln.randn(5, 3))).toThrow(/already compiled for 2 signatures \(cacheSize 2\)/);
  });
});
