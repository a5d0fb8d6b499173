// Prepared steps (Backend.prepareStep, runtime/cpu/backend.ts): a compiled plan's runners are made
// once and must stay right when a run binds other tensors (fresh batches outside the heap, the same
// tensor twice, which then moves into the heap) and when the whole step runs many times.
import { afterEach, describe, expect, it, vi } from 'vitest';
import * as kiln from 'kiln';
import { optim, type Tensor } from 'kiln';
import { cpu } from '../runtime/cpu/backend.js';
import { wasmHeap } from '../runtime/cpu/wasm/heap.js';
import { RNN, unrolledLoss } from '../models/rnn.js';
import { TwoLayerNet } from '../models/two-layer-net.js';
import { expectClose } from './helpers.js';

const quiet = { log: () => {} };
const heapOf = (t: Tensor) => wasmHeap()!.addressOf((t as unknown as { _view: { storage: { data: ArrayBufferView } } })._view.storage.data);

describe('CPU prepared plan steps', () => {
  afterEach(() => vi.restoreAllMocks());

  it('make one runner per elementwise, matmul and cat step, used on every run instead of cpu.run', () => {
    const prepare = vi.spyOn(cpu, 'prepareStep');
    const run = vi.spyOn(cpu, 'run');
    kiln.manualSeed(1);
    const rnn = new RNN(6, 5, 3);
    const f = kiln.compile((x: Tensor, h: Tensor) => rnn(x, h)[1].relu(), quiet);
    const x = kiln.randn(4, 6), h = kiln.randn(4, 5);
    f(x, h);
    const prepared = prepare.mock.results.filter((r) => r.value !== undefined).length;
    const ops = prepare.mock.calls.map((c) => c[0].name);
    expect(ops).toContain('matmul');
    expect(ops).toContain('cat');
    expect(prepared).toBeGreaterThan(0);
    prepare.mockClear();
    run.mockClear();
    f(x, h);
    // Later runs prepare nothing, and cpu.run serves only the steps without a runner.
    expect(prepare).not.toHaveBeenCalled();
    expect(run.mock.calls.length).toBe(ops.length - prepared);
  });

  it('give the eager results when the inputs change between runs (fresh batches, then one tensor twice, which moves into the heap)', () => {
    kiln.manualSeed(2);
    const model = new TwoLayerNet(40, 24, 6);
    const f = kiln.compile(model, quiet);
    const fixed = kiln.randn(9, 40);
    const batches = [kiln.randn(9, 40), kiln.randn(9, 40), fixed, fixed, kiln.randn(9, 40), fixed];
    for (const b of batches) {
      const want = model.forward(b);
      expectClose(kiln.noGrad(() => f(b)) as Tensor, want, 1e-5);
    }
    expect(heapOf(fixed)).toBeGreaterThan(0);
  });

  it('train the RNN as eager does, step after step', () => {
    const make = () => {
      kiln.manualSeed(3);
      const rnn = new RNN(8, 6, 4);
      const opt = new optim.SGD(rnn.parameters(), { lr: 0.05 });
      return { rnn, opt, unroll: unrolledLoss(rnn, 3) };
    };
    kiln.manualSeed(4);
    const data = Array.from({ length: 6 }, () => [kiln.randn(5, 8), kiln.randn(5, 6), kiln.randn(5, 4)] as const);
    const e = make();
    const eager = data.map(([b, h, t]) => {
      e.opt.zeroGrad();
      const loss = e.unroll(b, h, t);
      loss.backward();
      e.opt.step();
      return loss.itemSync();
    });
    const c = make();
    const step = kiln.compileTrainStep(c.unroll, c.opt, quiet);
    const compiled = data.map(([b, h, t]) => step(b, h, t).itemSync());
    expectClose(compiled, eager, 1e-4);
    expectClose(c.rnn.i2h.weight, e.rnn.i2h.weight, 1e-4);
  });
});
