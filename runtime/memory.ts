// Scoped memory management for devices whose memory the garbage collector does not see (WebGPU):
// kiln.tidy disposes every tensor created inside it except what it returns; kiln.memory reports
// what a device holds.
import { backendFor } from './backend.js';
import { Tensor, tidyScopes } from './tensor.js';

function collect(x: unknown, into: Set<Tensor>): void {
  if (x instanceof Tensor) into.add(x);
  else if (Array.isArray(x)) x.forEach((v) => collect(v, into));
  else if (x && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) Object.values(x).forEach((v) => collect(v, into));
}

/** Runs `fn`, then disposes the tensors it created that are not part of its result (TensorFlow.js's tf.tidy). */
export function tidy<T>(fn: () => T): T {
  tidyScopes.push([]);
  let result: T;
  try {
    result = fn();
  } finally {
    const created = tidyScopes.pop()!;
    const keep = new Set<Tensor>();
    collect(result!, keep);
    for (const t of created) {
      if (keep.has(t)) tidyScopes[tidyScopes.length - 1]?.push(t);
      else t.dispose();
    }
  }
  return result;
}

/** Bytes and buffers a device holds for live tensors (devices that count them: WebGPU). */
export function memory(device = 'webgpu'): { bytes: number; buffers: number } {
  const b = backendFor(device) as { memory?: () => { bytes: number; buffers: number } };
  if (!b.memory) throw new Error(`kiln.memory: device '${device}' does not track its memory (the CPU's is garbage collected)`);
  return b.memory();
}

/**
 * Hands long-lived tensors (parameters, buffers, optimizer state: what a compiled plan captures and
 * what an optimizer updates) to their device's `adopt`, which on the CPU moves them into the Wasm
 * heap, so Wasm kernels read and update them in place instead of copying them in at every call.
 */
export function adoptLongLived(tensors: Iterable<Tensor>): void {
  for (const t of tensors) {
    const view = t._view;
    if (view) backendFor(t.device).adopt?.(view.storage);
  }
}
