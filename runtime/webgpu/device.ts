// The WebGPU device Kiln's GPU backend runs on: one adapter and device per process, requested once.
//
// Node: Dawn's binding (the `webgpu` npm package), imported only when a device is first requested,
// so a browser bundle never loads it; without a GPU, Dawn runs on Mesa's lavapipe (software
// Vulkan, `bash scripts/install-webgpu-driver.sh`). Browser: `navigator.gpu`.
//
// Errors the device reports later (an uncaptured validation or out-of-memory error, a lost device)
// are kept as Errors: `throwIfDeviceFailed()` throws the first one, and listeners registered with
// `onDeviceError` see each. A lost device is dropped, so the next `requestDevice()` makes a new one.

export interface KilnGPUDevice {
  adapter: GPUAdapter;
  device: GPUDevice;
  /** `describeAdapter(adapter)`: which implementation the device runs on. */
  info: string;
}

/** The limits Kiln's kernels need as high as the adapter allows (WebGPU's defaults are low: 128 MiB bindings, 16 KiB workgroup memory, 256 invocations). */
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxStorageBuffersPerShaderStage',
] as const;

const NO_ADAPTER_HELP =
  'WebGPU: no GPU adapter is available. Install a GPU driver with Vulkan, Metal or D3D12 support; ' +
  'on a machine without a GPU on Debian/Ubuntu run `bash scripts/install-webgpu-driver.sh` (it installs ' +
  "Mesa's lavapipe software Vulkan driver from bookworm-backports; Debian bookworm's own Mesa 22 is too old), " +
  'and make sure XDG_RUNTIME_DIR is set to an existing directory.';

type NodeProcess = {
  versions?: { node?: string };
  env: Record<string, string | undefined>;
  getBuiltinModule?: (id: string) => unknown;
};
const nodeProcess = (globalThis as { process?: NodeProcess }).process;
const isNode = typeof nodeProcess?.versions?.node === 'string';

let pending: Promise<KilnGPUDevice> | null = null;
let current: KilnGPUDevice | null = null;
/** Node only: the object `create([])` returned. Dawn lives as long as it is referenced. */
let nodeGpu: GPU | null = null;
let failure: Error | null = null;
const listeners = new Set<(error: Error) => void>();

/** The adapter in one line: vendor, architecture, device and description from `adapter.info`. */
export function describeAdapter(adapter: GPUAdapter): string {
  const info = adapter.info as GPUAdapterInfo | undefined;
  if (!info) return 'unknown WebGPU adapter';
  const parts = [info.vendor, info.architecture, info.device].filter((s) => typeof s === 'string' && s.length > 0);
  let text = parts.join(' ') || 'unknown WebGPU adapter';
  if (info.description) text += ` (${info.description})`;
  if ((info as { isFallbackAdapter?: boolean }).isFallbackAdapter) text += ' [software fallback adapter]';
  return text;
}

/** The WebGPU device, requested on first call and cached (a lost device is replaced on the next call). */
export function requestDevice(): Promise<KilnGPUDevice> {
  if (!pending) {
    pending = acquire().catch((e: unknown) => {
      pending = null;
      throw e;
    });
  }
  return pending;
}

/** Throws (once) the first error the device reported since the last call: an uncaptured error or the device's loss. */
export function throwIfDeviceFailed(): void {
  if (failure) {
    const e = failure;
    failure = null;
    throw e;
  }
}

/** Calls `listener` with each error the device reports; returns a function that unsubscribes. */
export function onDeviceError(listener: (error: Error) => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/**
 * Destroys the device and drops Kiln's reference to Dawn, so that nothing of WebGPU keeps a Node
 * process alive. The next `requestDevice()` starts again.
 */
export async function releaseDevice(): Promise<void> {
  const p = pending;
  pending = null;
  const d = current ?? (p ? await p.catch(() => null) : null);
  current = null;
  nodeGpu = null;
  failure = null;
  d?.device.destroy();
}

function report(error: Error): void {
  if (!failure) failure = error;
  for (const l of listeners) l(error);
}

async function acquire(): Promise<KilnGPUDevice> {
  const gpu = isNode ? await nodeWebGPU() : browserWebGPU();
  // Dawn ranks a software adapter (lavapipe) as a fallback; ask for one when nothing else is there.
  const adapter =
    (await gpu.requestAdapter({ powerPreference: 'high-performance' })) ??
    (await gpu.requestAdapter({ forceFallbackAdapter: true }));
  if (!adapter) throw new Error(NO_ADAPTER_HELP);

  const requiredLimits: Record<string, number> = {};
  const limits = adapter.limits as unknown as Record<string, number | undefined>;
  for (const name of WANTED_LIMITS) {
    const v = limits[name];
    if (typeof v === 'number') requiredLimits[name] = v;
  }
  const requiredFeatures: GPUFeatureName[] = adapter.features.has('shader-f16') ? ['shader-f16'] : [];
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ label: 'kiln', requiredLimits, requiredFeatures });
  } catch (e) {
    throw new Error(`WebGPU: the adapter (${describeAdapter(adapter)}) refused a device: ${(e as Error).message ?? e}`);
  }

  const result: KilnGPUDevice = { adapter, device, info: describeAdapter(adapter) };
  current = result;
  failure = null;
  device.addEventListener('uncapturederror', (ev) => {
    const err = (ev as GPUUncapturedErrorEvent).error;
    const kind = err?.constructor?.name ?? 'GPUError';
    report(new Error(`WebGPU ${kind}: ${err?.message ?? String(err)}`));
  });
  void device.lost.then((info) => {
    if (current?.device === device) {
      current = null;
      pending = null;
    }
    // destroy() is deliberate (releaseDevice); anything else is a failure to surface.
    if (info.reason !== 'destroyed') report(new Error(`WebGPU device lost (${info.reason}): ${info.message}`));
  });
  return result;
}

function browserWebGPU(): GPU {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) {
    throw new Error(
      'WebGPU: this browser does not expose navigator.gpu (WebGPU needs a recent Chrome, Edge, Safari or Firefox, and a secure context: https or localhost)',
    );
  }
  return gpu;
}

/**
 * Dawn hides `shader-f16` on NVIDIA's Vulkan driver unless this toggle is on: a guard for f16
 * conformance-test failures (crbug.com/42251215), not for a missing feature. With it on, every
 * float16 test of Kiln's (matmul, conv and max-pool forward and backward) passed on an H100
 * (bench/RESULTS.md, 2026-11-23); llama.cpp's WebGPU backend turns it on too. Without it a
 * float16 model on an NVIDIA GPU would be refused. No effect on other adapters.
 */
const DAWN_OPTIONS = ['enable-dawn-features=vulkan_enable_f16_on_nvidia'];

async function nodeWebGPU(): Promise<GPU> {
  if (nodeGpu) return nodeGpu;
  ensureXdgRuntimeDir();
  // A computed specifier: bundlers leave it alone, so browser bundles never see Dawn's .node file.
  const specifier = 'webgpu';
  let mod: { create: (options: string[]) => GPU; globals: object };
  try {
    mod = (await import(/* @vite-ignore */ specifier)) as typeof mod;
  } catch (e) {
    throw new Error(`WebGPU: cannot load the 'webgpu' package (Dawn's Node binding; run \`npm ci\`): ${(e as Error).message ?? e}`);
  }
  // GPUBufferUsage, GPUMapMode, GPUShaderStage, ...: the constants WebGPU code reads from globals.
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  nodeGpu = mod.create(DAWN_OPTIONS);
  return nodeGpu;
}

/** The Vulkan loader and Mesa want XDG_RUNTIME_DIR to be an existing directory: create it, or a private temporary one if unset. */
function ensureXdgRuntimeDir(): void {
  const env = nodeProcess?.env;
  const get = nodeProcess?.getBuiltinModule;
  if (!env || !get) return;
  const fs = get('node:fs') as typeof import('node:fs');
  const dir = env.XDG_RUNTIME_DIR;
  if (dir) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      return;
    } catch {
      // not creatable: fall through to a private temporary one
    }
  }
  const os = get('node:os') as typeof import('node:os');
  const path = get('node:path') as typeof import('node:path');
  env.XDG_RUNTIME_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-xdg-'));
  fs.chmodSync(env.XDG_RUNTIME_DIR, 0o700);
}
