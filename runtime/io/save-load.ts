// kiln.save / kiln.load: a state dict to and from a .safetensors file (Node's file system; the
// format itself is in safetensors.ts, which has no Node dependency).
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import type { Tensor } from '../tensor.js';
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
