// Kiln's public API (`import * as kiln from 'kiln'`).
import { registerBackend } from './runtime/backend.js';
import { cpu } from './runtime/cpu/backend.js';
import './runtime/eager.js';

registerBackend(cpu);

export { Tensor, type HookHandle, type NestedNumbers } from './runtime/tensor.js';
export type { DType } from './ir/index.js';
export * from './runtime/creation.js';
export * from './runtime/ops/index.js';
export { manualSeed, Generator } from './runtime/random.js';
export { noGrad, enableGrad, isGradEnabled, setGradEnabled } from './runtime/autograd/grad-mode.js';
export * as autograd from './runtime/autograd/index.js';
export { registerBackend, type Backend, type Storage, type View, type HostArray } from './runtime/backend.js';
export * as nn from './runtime/nn/index.js';
export * as optim from './runtime/optim/index.js';
export { save, load, saveAsync, loadAsync } from './runtime/io/save-load.js';
export { serializeSafetensors, parseSafetensors } from './runtime/io/safetensors.js';
export { compile, compileTrainStep, type CompileOptions, type Compiled, type TrainStep } from './compiler/index.js';
export { Graph, printGraph, verifyGraph } from './ir/index.js';
export { initWebGPU, WebGPUBackend } from './runtime/webgpu/index.js';
export { requestDevice as webgpuDevice, describeAdapter } from './runtime/webgpu/device.js';
export { tidy, memory } from './runtime/memory.js';
export type { ModelSpec, InputSpec, LossSpec, OptimSpec } from './runtime/model-spec.js';
