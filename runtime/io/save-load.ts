// kiln.save / kiln.load: a state dict to and from a .safetensors file (Node's file system; the
// format itself is in safetensors.ts, which has no Node dependency).
import type { Tensor } from '../tensor.js';

// node:fs is looked up when a file is read or written, not imported, so a browser bundle of Kiln
// (which never calls save/load) does not need it.
type Fs = typeof import('node:fs');
function fs(): Fs {
  const get = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
  if (!get) throw new Error('kiln.save/kiln.load need Node.js (20.16 or newer); in a browser use serializeSafetensors/parseSafetensors');
  return get('node:fs') as Fs;
}
const readFileSync = (path: string) => fs().readFileSync(path);
const writeFileSync = (path: string, data: Uint8Array) => fs().writeFileSync(path, data);
const readFile = (path: string) => fs().promises.readFile(path);
const writeFile = (path: string, data: Uint8Array) => fs().promises.writeFile(path, data);
import { parseSafetensors, serializeSafetensors, serializeSafetensorsAsync } from './safetensors.js';

export type TensorDict = Record<string, Tensor> | Map<string, Tensor>;

/** Writes `stateDict` to `path` as safetensors (`torch.save`; reads values synchronously, so CPU tensors). */
export function save(stateDict: TensorDict, path: string, metadata?: Record<string, string>): void {
  writeFileSync(path, serializeSafetensors(stateDict, metadata));
}

/** As `save`, reading the values asynchronously (any device, WebGPU included). */
export async function saveAsync(stateDict: TensorDict, path: string, metadata?: Record<string, string>): Promise<void> {
  await writeFile(path, await serializeSafetensorsAsync(stateDict, metadata));
}

/** Reads a .safetensors file into CPU tensors (`torch.load`). */
export function load(path: string): Record<string, Tensor> {
  return parseSafetensors(readFileSync(path));
}

export async function loadAsync(path: string): Promise<Record<string, Tensor>> {
  return parseSafetensors(await readFile(path));
}
