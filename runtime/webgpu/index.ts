// `await kiln.initWebGPU()`: acquires the device and registers the 'webgpu' backend, after which
// tensors and modules take `{ device: 'webgpu' }` / `.to('webgpu')` like any other device.
import { registerBackend } from '../backend.js';
import { WebGPUBackend } from './backend.js';
import { requestDevice } from './device.js';

let backend: WebGPUBackend | undefined;

export async function initWebGPU(): Promise<WebGPUBackend> {
  if (backend) return backend;
  const { device } = await requestDevice();
  backend = new WebGPUBackend(device);
  registerBackend(backend);
  return backend;
}

export { WebGPUBackend };
