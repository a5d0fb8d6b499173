// Out-of-range indices on WebGPU: the kernels clamp them and record the first, and the next read
// throws the CPU's error (runtime/webgpu/index-check.ts); the backend stays usable afterwards.
import { beforeAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { nn } from 'kiln';

const GPU = 'webgpu';
const int = (values: number[][]) => kiln.tensor(values, { dtype: 'int32', device: GPU });

/** The CPU backend's message for the same call: the GPU must say the same. */
function cpuMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('the CPU raised no error');
}

describe('webgpu: out-of-range indices are errors at the next read', () => {
  beforeAll(async () => {
    await kiln.initWebGPU();
  });

  it('gather with index 10 on a dim of size 5: await t.data() rejects with the CPU message; later reads work', async () => {
    kiln.manualSeed(3);
    const xc = kiln.randn([3, 5]);
    const x = xc.to(GPU);
    const bad = [[0, 10], [1, 2], [4, 0]];
    const expected = cpuMessage(() => xc.gather(1, kiln.tensor(bad, { dtype: 'int32' })));
    expect(expected).toBe('gather: index 10 is out of bounds for dimension 1 with size 5');
    await expect(x.gather(1, int(bad)).data()).rejects.toThrow(expected);
    // The error was reported once: the same backend computes the next gather correctly.
    const ok = [[0, 4], [1, 2], [-1, -5]];
    expect(Array.from(await x.gather(1, int(ok)).data())).toEqual(Array.from(xc.gather(1, kiln.tensor(ok, { dtype: 'int32' })).dataSync()));
  });

  it('a negative index below -size is out of range too (gather along dim 0)', async () => {
    const x = kiln.randn([4, 2]).to(GPU);
    await expect(x.gather(0, int([[0, -5]])).data()).rejects.toThrow('gather: index -5 is out of bounds for dimension 0 with size 4');
  });

  it('scatterAdd with an index out of range rejects with the CPU message; the in-range additions are unaffected afterwards', async () => {
    const bad = [[0, -7], [1, 2]];
    const expected = cpuMessage(() => kiln.zeros([2, 5]).scatterAdd(1, kiln.tensor(bad, { dtype: 'int32' }), kiln.ones([2, 2])));
    const base = kiln.zeros([2, 5], { device: GPU });
    await expect(base.scatterAdd(1, int(bad), kiln.ones([2, 2], { device: GPU })).data()).rejects.toThrow(expected);
    const ok = base.scatterAdd(1, int([[0, 0], [1, 4]]), kiln.ones([2, 2], { device: GPU }));
    expect(Array.from(await ok.data())).toEqual([2, 0, 0, 0, 0, 0, 1, 0, 0, 1]);
  });

  it('the error surfaces at the next read of any tensor (the GPU cannot throw when the kernel runs)', async () => {
    const x = kiln.randn([2, 3]).to(GPU);
    const g = x.gather(1, int([[3, 0], [0, 0]]));
    const other = x.add(1);
    await expect(other.data()).rejects.toThrow('gather: index 3 is out of bounds for dimension 1 with size 3');
    // Nothing is left recorded: reading the gather now gives its (clamped) values.
    expect((await g.data()).length).toBe(4);
  });

  it('an Embedding lookup past the table (a gather) and a compiled step that reads it', async () => {
    const emb = new nn.Embedding(6, 3).to(GPU);
    const idx = kiln.tensor([1, 6], { dtype: 'int32', device: GPU });
    await expect(emb(idx).data()).rejects.toThrow('gather: index 6 is out of bounds for dimension 0 with size 6');
    const f = kiln.compile((i: kiln.Tensor) => emb(i).sum(), { log: () => {} });
    await expect(f(kiln.tensor([9, 0], { dtype: 'int32', device: GPU })).item()).rejects.toThrow('gather: index 9 is out of bounds for dimension 0 with size 6');
    expect(Number.isFinite(await f(kiln.tensor([5, 0], { dtype: 'int32', device: GPU })).item())).toBe(true);
  });
});
