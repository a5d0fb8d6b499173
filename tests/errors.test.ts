// Bad input gets a clear error that names the problem, and changes nothing.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { cpu } from '../runtime/cpu/backend.js';

describe('clear errors that change nothing', () => {
  it('mm of [64,1000] and [100,10] names both shapes', () => {
    const a = kiln.zeros(64, 1000);
    const b = kiln.zeros(100, 10);
    expect(() => a.mm(b)).toThrow('mm: shapes [64, 1000] and [100, 10] cannot be multiplied (inner dimensions 1000 and 100 differ)');
    expect(() => a.matmul(b)).toThrow(/matmul: shapes \[64, 1000\] and \[100, 10\] cannot be multiplied/);
    expect(() => kiln.zeros(3).mm(b)).toThrow('mm: expected 2-D tensors, got [3] and [100, 10]');
  });
  it('broadcasting failures name both shapes and the dim', () => {
    expect(() => kiln.zeros(2, 3).add(kiln.zeros(4))).toThrow('add: shapes [2, 3] and [4] cannot be broadcast together (dimension -1 is 3 vs 4)');
  });
  it('backward on a non-scalar without a gradient says so', () => {
    const x = kiln.ones([3], { requiresGrad: true });
    expect(() => x.mul(2).backward()).toThrow(/grad can be implicitly created only for scalar outputs.*shape \[3\]/);
    expect(x.grad).toBeNull();
  });
  it('backward on a tensor that does not require grad says so', () => {
    expect(() => kiln.ones([1]).sum().backward()).toThrow(/does not require grad/);
  });
  it('dtype mismatches say which dtypes', () => {
    const f = kiln.zeros([2, 2]);
    const d = kiln.zeros([2, 2], { dtype: 'float64' });
    expect(() => f.mm(d)).toThrow('matmul: expected both operands to have the same dtype, got float32 and float64');
    const i = kiln.tensor([1, 2], { dtype: 'int32' });
    expect(() => i.sub_(0.5)).toThrow("sub_: result dtype float32 can't be cast to the desired output dtype int32");
    expect(i.tolistSync()).toEqual([1, 2]);
    expect(i._view!.storage.version).toBe(0);
    expect(() => kiln.zeros(2).maskedFill(kiln.ones(2), 1)).toThrow('maskedFill: mask must be a bool tensor, got float32');
    expect(() => kiln.zeros(2, { dtype: 'float16' })).toThrow("device 'cpu' does not support dtype float16");
    expect(() => kiln.zeros(2, { dtype: 'int64' as never })).toThrow(/unknown dtype "int64"/);
  });
  it('device mismatches say which devices', () => {
    kiln.registerBackend({ ...cpu, device: 'testdev' });
    const a = kiln.zeros([2]);
    const b = kiln.zeros([2], { device: 'testdev' });
    expect(b.device).toBe('testdev');
    expect(() => a.add(b)).toThrow('add: expected all tensors to be on the same device, but found at least two devices, cpu and testdev');
    expect(a.to('testdev').add(b).device).toBe('testdev');
    expect(() => kiln.zeros([2], { device: 'webgpu' })).toThrow(/unknown device 'webgpu'/);
  });
  it('in-place ops check shapes before writing', () => {
    const x = kiln.tensor([1, 2, 3]);
    expect(() => x.add_(kiln.ones(2, 3))).toThrow("add_: output with shape [3] doesn't match the broadcast shape [2, 3]");
    expect(x.tolistSync()).toEqual([1, 2, 3]);
  });
  it('shape errors in movement ops', async () => {
    expect(() => kiln.zeros(2, 3).view(4, 2)).toThrow('view: shape [4, 2] is invalid for input of shape [2, 3] (6 elements)');
    expect(() => kiln.zeros(2, 3).permute(0, 0)).toThrow(/not a permutation/);
    expect(() => kiln.zeros(2, 3).sum(2)).toThrow('sum: dimension 2 is out of range for a 2-d tensor (expected in [-2, 1])');
    expect(() => kiln.cat([kiln.zeros(2, 3), kiln.zeros(2, 4)])).toThrow(/cat: tensors must have the same shape except in dimension 0, got \[2, 3\] and \[2, 4\]/);
    await expect(kiln.zeros(3).item()).rejects.toThrow(/3 elements cannot be converted/);
  });
});
