// The CPU's WebAssembly heap (runtime/cpu/wasm/heap.ts): its allocator, and the compiled plans'
// use of it: plan arenas are allocated there, and the tensors a compiled step captures
// (parameters, optimizer state) are moved there with their values and identity kept.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { nn, optim } from 'kiln';
import { WasmHeap, wasmHeap } from '../runtime/cpu/wasm/heap.js';
import { CpuStorage } from '../runtime/cpu/backend.js';
import { TwoLayerNet } from '../models/two-layer-net.js';
import { expectClose } from './helpers.js';

const heapOf = (t: kiln.Tensor) => wasmHeap()!.addressOf((t._view!.storage as CpuStorage).data);

describe('WasmHeap allocator', () => {
  const fresh = () => new WasmHeap(new WebAssembly.Memory({ initial: 1, maximum: 64, shared: true } as WebAssembly.MemoryDescriptor), true);

  it('hands out aligned, disjoint blocks and reuses freed ones after coalescing', () => {
    const h = fresh();
    const a = h.allocBytes(100), b = h.allocBytes(1), c = h.allocBytes(1000);
    for (const p of [a, b, c]) expect(p % 64).toBe(0);
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThanOrEqual(a + 128);
    expect(c).toBeGreaterThanOrEqual(b + 64);
    h.freeBytes(b);
    h.freeBytes(a);
    // a and b coalesced into one 192-byte range at a's address.
    expect(h.allocBytes(192)).toBe(a);
    expect(h.stats().blocks).toBe(2);
    h.freeBytes(12345); // not a block: ignored
    expect(h.stats().blocks).toBe(2);
  });

  it('grows the memory for a block bigger than what is free, and old views stay valid', () => {
    const h = fresh();
    const owner = {};
    const small = h.allocArray('float32', 10, owner)!;
    small.fill(7);
    const big = h.allocArray('float64', 300_000, {})!; // 2.4 MB > the 64 KiB the heap started with
    big.fill(1.5);
    expect(h.stats().bytesReserved).toBeGreaterThanOrEqual(2_400_000);
    expect([...small]).toEqual(new Array(10).fill(7));
    expect(h.addressOf(small)).toBeGreaterThan(0);
    expect(h.addressOf(big)).toBeGreaterThan(h.addressOf(small));
    expect(h.addressOf(new Float32Array(4))).toBe(-1);
    h.release(owner, small);
    expect(h.stats().blocks).toBe(1);
  });

  it('refuses a block beyond the memory maximum with a RangeError', () => {
    expect(() => fresh().allocBytes(65 * 65536)).toThrow(RangeError);
  });
});

describe('compiled plans use the heap', () => {
  it('a compiled training step moves its parameters and optimizer state into the heap, values and views kept', () => {
    kiln.manualSeed(3);
    const model = new TwoLayerNet(20, 16, 4);
    const w = model.linear1.weight;
    const before = Array.from(w.dataSync());
    const first = w.detach().select(0, 0).select(0, 0); // a view sharing w's storage, made before the move
    expect(heapOf(w)).toBe(-1);
    // The optimizer moves its parameters (see the next test); the compiled step moves its state.
    const opt = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
    const step = kiln.compileTrainStep(model, (out, y) => nn.functional.mseLoss(out, y), opt, { log: () => {} });
    const x = kiln.randn(8, 20), y = kiln.randn(8, 4);
    step(x, y); // eager first call (creates the momentum buffers)
    expect(Array.from(w.dataSync())).not.toEqual(before);
    const afterFirst = Array.from(w.dataSync());
    step(x, y); // compiles, adopts, runs
    expect(heapOf(w)).toBeGreaterThan(0);
    for (const s of opt.state.values()) for (const v of Object.values(s)) if (v instanceof kiln.Tensor && v.numel() >= 64) expect(heapOf(v)).toBeGreaterThan(0);
    // The step updated the moved parameter, and the old view sees the update.
    const now = Array.from(w.dataSync());
    expect(now).not.toEqual(afterFirst);
    expect(first.dataSync()[0]).toBe(now[0]);
  });

  it("an eager optimizer's parameters move into the heap when it is made, values and views kept, and train there", () => {
    kiln.manualSeed(6);
    const model = new TwoLayerNet(30, 8, 3);
    const w = model.linear1.weight, b = model.linear2.bias!;
    const first = w.detach().select(0, 0); // a view sharing w's storage, made before the move
    const before = Array.from(w.dataSync());
    expect(heapOf(w)).toBe(-1);
    const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
    expect(heapOf(w)).toBeGreaterThan(0);
    expect(heapOf(b)).toBeGreaterThan(0); // 3 elements: every parameter goes
    expect(Array.from(w.dataSync())).toEqual(before);
    const x = kiln.randn(5, 30), y = kiln.randn(5, 3);
    for (let i = 0; i < 3; i++) {
      opt.zeroGrad();
      nn.functional.mseLoss(model.forward(x), y).backward();
      opt.step();
    }
    expect(Array.from(w.dataSync())).not.toEqual(before);
    expect(first.dataSync()[0]).toBe(w.dataSync()[0]);
    expect(heapOf(w)).toBeGreaterThan(0);
  });

  it('an input passed to a compiled function twice in a row moves into the heap (values kept); fresh inputs stay put', () => {
    kiln.manualSeed(4);
    const model = new TwoLayerNet(30, 8, 3);
    const f = kiln.compile(model);
    const x = kiln.randn(5, 30);
    const values = Array.from(x.dataSync());
    const want = Array.from(model.forward(x).dataSync());
    f(x);
    expect(heapOf(x)).toBe(-1);
    const again = Array.from((f(x) as kiln.Tensor).dataSync());
    expect(heapOf(x)).toBeGreaterThan(0);
    expect(Array.from(x.dataSync())).toEqual(values);
    // The compiled product runs the Wasm GEMM (operands in the heap), eager the JS kernel: equal to float32 rounding.
    expectClose(again, want, 1e-6);
    // A new batch every call is never moved.
    for (let i = 0; i < 3; i++) {
      const batch = kiln.randn(5, 30);
      f(batch);
      expect(heapOf(batch)).toBe(-1);
    }
  });
});
