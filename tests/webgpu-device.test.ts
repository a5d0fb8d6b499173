// The WebGPU device: acquiring it must work on every machine that runs the suite (CI has no GPU and
// runs Mesa's lavapipe, installed by scripts/install-webgpu-driver.sh), so a missing adapter is a
// failure, never a skip. Then one tiny compute kernel end to end: upload, dispatch, read back.
import { afterAll, describe, expect, it } from 'vitest';
import { describeAdapter, releaseDevice, requestDevice, throwIfDeviceFailed } from '../runtime/webgpu/device.js';

describe('webgpu device', () => {
  afterAll(async () => {
    await releaseDevice();
  });

  it('acquires an adapter and a device, and describes the adapter', async () => {
    const { adapter, device, info } = await requestDevice();
    expect(device).toBeTruthy();
    expect(info).toBe(describeAdapter(adapter));
    // Software Vulkan (lavapipe reports itself as llvmpipe) or a real GPU's vendor.
    const a = adapter.info;
    const real = /nvidia|amd|ati|intel|apple|qualcomm|arm|mali|adreno|broadcom|imagination|microsoft|radeon|geforce/i;
    expect(info).toMatch(/llvmpipe|lavapipe/i.test(info) ? /llvmpipe|lavapipe/i : real);
    expect(`${a.vendor}${a.architecture}${a.device}${a.description}`.length).toBeGreaterThan(0);
    // The same device on every call.
    expect((await requestDevice()).device).toBe(device);
    // The limits Kiln asked for are the adapter's.
    expect(device.limits.maxStorageBufferBindingSize).toBe(adapter.limits.maxStorageBufferBindingSize);
    expect(device.limits.maxComputeInvocationsPerWorkgroup).toBe(adapter.limits.maxComputeInvocationsPerWorkgroup);
    expect(device.features.has('shader-f16')).toBe(adapter.features.has('shader-f16'));
  });

  it('runs a compute shader that doubles a buffer and reads it back', async () => {
    const { device } = await requestDevice();
    const n = 1000;
    const input = new Float32Array(n);
    for (let i = 0; i < n; i++) input[i] = i * 0.5 - 100;

    const data = device.createBuffer({
      size: input.byteLength,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
    device.queue.writeBuffer(data, 0, input);
    const readback = device.createBuffer({ size: input.byteLength, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });

    const module = device.createShaderModule({
      code: /* wgsl */ `
        @group(0) @binding(0) var<storage, read_write> x: array<f32>;
        @compute @workgroup_size(64)
        fn main(@builtin(global_invocation_id) id: vec3u) {
          if (id.x < arrayLength(&x)) { x[id.x] = 2.0 * x[id.x]; }
        }`,
    });
    device.pushErrorScope('validation');
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const bind = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: data } }] });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(Math.ceil(n / 64));
    pass.end();
    enc.copyBufferToBuffer(data, 0, readback, 0, input.byteLength);
    device.queue.submit([enc.finish()]);
    expect(await device.popErrorScope()).toBeNull();

    await readback.mapAsync(GPUMapMode.READ);
    const out = new Float32Array(readback.getMappedRange().slice(0));
    readback.unmap();
    data.destroy();
    readback.destroy();

    const expected = input.map((v) => 2 * v);
    expect(Array.from(out)).toEqual(Array.from(expected));
    throwIfDeviceFailed();
  });

  it('surfaces an uncaptured error as an Error', async () => {
    const { device } = await requestDevice();
    // A buffer may not be mappable for both reading and writing: a validation error nobody captures.
    device.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.MAP_WRITE });
    await device.queue.onSubmittedWorkDone();
    await new Promise((r) => setTimeout(r, 0));
    expect(() => throwIfDeviceFailed()).toThrow(/WebGPU .*Error/);
    expect(() => throwIfDeviceFailed()).not.toThrow();
  });
});
