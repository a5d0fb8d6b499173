// The runtime of a `kiln compile` bundle (compiler/bundle.ts generates the code that calls it): a
// compiled plan, carried as JSON, bound to its weights (safetensors) and run by the executor on the
// CPU backend, or on WebGPU when the bundle's entry initialised it first. Nothing here imports the
// compiler: a bundle is this file, the executor, the backend, Tensor and the ops they need.
//
// A plan's inputs are the call's arguments, then its captures (parameters, buffers, optimizer
// state), which are looked up by name in the weights. A training step's plan writes the parameters
// and the optimizer state in place, so its weights are the model's live state (`.weights`).
import type { DType } from '../../ir/index.js';
import { registerBackend } from '../backend.js';
import { cpu } from '../cpu/backend.js';
import { constant } from '../dispatch.js';
import '../eager.js';
import { Executable, type Plan } from '../executor.js';
import { toHostArray } from '../host.js';
import { parseSafetensors, serializeSafetensors } from '../io/safetensors.js';
import { Tensor } from '../tensor.js';
import { decodeNumbers, encodeNumbers } from '../../ir/json-numbers.js';

registerBackend(cpu);

export interface BundleInput {
  readonly name: string;
  readonly kind: 'arg' | 'capture';
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** For integer arguments (class targets, token ids): values lie in [0, high) (the smoke run draws them so). */
  readonly high?: number;
}

/** How a forward's outputs nest (the compiler's Template). */
export type OutputTemplate = { t: 'tensor'; index: number } | { t: 'array'; items: OutputTemplate[] } | { t: 'other'; value: unknown };

/** Everything a bundle knows about its model, besides the weights. */
export interface BundleProgram {
  readonly kind: 'forward' | 'train';
  readonly name: string;
  readonly plan: Plan;
  /** The plan's inputs, arguments first, then captures. */
  readonly inputs: readonly BundleInput[];
  readonly template?: OutputTemplate;
}

/** A tensor argument: a Tensor (of this bundle, or anything with `shape` and `dataSync()`), a typed array or numbers (laid out row-major). */
export type InputValue = Tensor | { readonly shape: readonly number[]; dataSync(): ArrayLike<number> } | Float32Array | Float64Array | Int32Array | Uint8Array | readonly number[];

/** The weights: safetensors bytes, or tensors by name. */
export type WeightsSource = Uint8Array | Record<string, Tensor>;

export interface BundleForward {
  (...inputs: InputValue[]): any;
  readonly program: BundleProgram;
  /** The captured tensors by name (parameters and buffers). */
  readonly weights: Record<string, Tensor>;
}

export interface BundleTrainStep {
  /** One step (forward, loss, backward, optimizer update) on these inputs and target; returns the loss. */
  (...inputsAndTarget: InputValue[]): Tensor;
  readonly program: BundleProgram;
  /** The parameters and optimizer state by name (`optim.<param>.<key>`), updated in place by every step. */
  readonly weights: Record<string, Tensor>;
  /** The current weights as safetensors bytes. */
  saveWeights(): Uint8Array;
}

// ---- the program as JSON ----

/** JSON text of a program; infinities, NaN and -0 (which JSON cannot hold) are written as `{ "$num": "-Infinity" }`, typed arrays as arrays. */
export function encodeProgram(program: BundleProgram): string {
  return JSON.stringify(encodeNumbers(program));
}

export function decodeProgram(json: string | object): BundleProgram {
  return decodeNumbers(typeof json === 'string' ? JSON.parse(json) : json) as BundleProgram;
}

// ---- weights ----

/** Safetensors bytes from base64 (a bundle with inline weights). */
export function weightsFromBase64(b64: string): Uint8Array {
  const B = (globalThis as { Buffer?: { from(s: string, enc: string): Uint8Array } }).Buffer;
  if (B) return B.from(b64, 'base64');
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Safetensors bytes from a file, `name` relative to `base` (the bundle's own `import.meta.url`). Node only. */
export async function weightsFromFile(name: string, base: string): Promise<Uint8Array> {
  const fs = await import('node:fs');
  const url = new URL(name, base);
  try {
    return fs.readFileSync(url);
  } catch (e) {
    throw new Error(`kiln bundle: cannot read its weights ${decodeURIComponent(url.pathname)} (${(e as Error).message}); keep the .safetensors file next to the bundle`);
  }
}

// ---- running ----

export function createForward(program: BundleProgram | string, weights: WeightsSource): BundleForward {
  const p = typeof program === 'string' ? decodeProgram(program) : program;
  const b = bind(p, weights);
  const forward = ((...inputs: InputValue[]) => unflatten(p.template ?? { t: 'tensor', index: 0 }, b.run(inputs))) as BundleForward;
  return Object.assign(forward, { program: p, weights: b.weights });
}

export function createTrainStep(program: BundleProgram | string, weights: WeightsSource): BundleTrainStep {
  const p = typeof program === 'string' ? decodeProgram(program) : program;
  const b = bind(p, weights);
  const step = ((...inputs: InputValue[]) => b.run(inputs)[0]) as BundleTrainStep;
  return Object.assign(step, { program: p, weights: b.weights, saveWeights: () => serializeSafetensors(b.weights) });
}

function bind(p: BundleProgram, source: WeightsSource) {
  const device = p.plan.device;
  const given = source instanceof Uint8Array ? parseSafetensors(source) : source;
  const args = p.inputs.filter((i) => i.kind === 'arg');
  const weights: Record<string, Tensor> = {};
  const captures = p.inputs.filter((i) => i.kind === 'capture').map((i) => {
    const t = Object.hasOwn(given, i.name) ? given[i.name] : undefined;
    if (!t) throw new Error(`kiln bundle ${p.name}: the weights have no tensor "${i.name}"`);
    if (t.shape.join() !== i.shape.join() || t.dtype !== i.dtype) {
      throw new Error(`kiln bundle ${p.name}: weight "${i.name}" is ${t.dtype}[${t.shape.join(', ')}], the plan expects ${i.dtype}[${i.shape.join(', ')}]`);
    }
    const on = t.device === device ? t : t.to(device);
    weights[i.name] = on;
    return on;
  });
  const exec = new Executable(p.plan);
  const run = (inputs: InputValue[]): Tensor[] => {
    if (inputs.length !== args.length) {
      throw new Error(`kiln bundle ${p.name}: expected ${args.length} input${args.length === 1 ? '' : 's'} (${args.map(describe).join(', ')}), got ${inputs.length}`);
    }
    return exec.run([...inputs.map((x, k) => toTensor(p.name, x, args[k], device)), ...captures]);
  };
  return { run, weights };
}

const describe = (i: BundleInput) => `${i.dtype}[${i.shape.join(', ')}]`;

function toTensor(name: string, x: InputValue, spec: BundleInput, device: string): Tensor {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (x instanceof Tensor) {
    if (x.shape.join() !== spec.shape.join() || x.dtype !== spec.dtype) {
      throw new Error(`kiln bundle ${name}: input ${spec.name} is ${x.dtype}[${x.shape.join(', ')}], the bundle was compiled for ${describe(spec)}`);
    }
    return x.device === device ? x : x.to(device);
  }
  let values: ArrayLike<number>;
  if (ArrayBuffer.isView(x) || Array.isArray(x)) {
    values = x as ArrayLike<number>;
  } else {
    const t = x as { shape: readonly number[]; dataSync(): ArrayLike<number> };
    if (!t.shape || typeof t.dataSync !== 'function') throw new TypeError(`kiln bundle ${name}: input ${spec.name} must be a Tensor, a typed array or an array of numbers`);
    if (t.shape.join() !== spec.shape.join()) throw new Error(`kiln bundle ${name}: input ${spec.name} has shape [${t.shape.join(', ')}], the bundle was compiled for ${describe(spec)}`);
    values = t.dataSync();
  }
  if (values.length !== n) throw new Error(`kiln bundle ${name}: input ${spec.name} has ${values.length} values, the bundle was compiled for ${describe(spec)} (${n} values)`);
  return constant(toHostArray(values, spec.dtype), spec.shape, spec.dtype, device);
}

function unflatten(tpl: OutputTemplate, tensors: readonly Tensor[]): unknown {
  switch (tpl.t) {
    case 'tensor': return tensors[tpl.index];
    case 'array': return tpl.items.map((i) => unflatten(i, tensors));
    case 'other': return tpl.value;
  }
}

// ---- the smoke run (`node bundle.js`) ----

/** Random values for each argument of the program: normal floats, integers in [0, high). */
export function randomInputs(program: BundleProgram): Tensor[] {
  return program.inputs.filter((i) => i.kind === 'arg').map((i) => {
    const n = i.shape.reduce((a, b) => a * b, 1);
    const v = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      v[k] = i.dtype === 'int32' ? Math.floor(Math.random() * (i.high ?? 2)) : i.dtype === 'bool' ? (Math.random() < 0.5 ? 1 : 0)
        : Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
    }
    return constant(toHostArray(v, i.dtype), i.shape, i.dtype, program.plan.device);
  });
}

/** Runs the bundle `runs` times on random inputs and prints one timing line (and returns it). */
export async function smokeRun(fn: BundleForward | BundleTrainStep, runs = 10, log: (line: string) => void = console.log): Promise<string> {
  const p = fn.program;
  const inputs = randomInputs(p);
  const read = async (r: unknown): Promise<Tensor | undefined> => {
    const t = (Array.isArray(r) ? r.flat(Infinity)[0] : r) as Tensor | undefined;
    if (t instanceof Tensor) await t.data(); // waits for the device (WebGPU) to finish
    return t;
  };
  const t0 = performance.now();
  const first = await read(fn(...inputs));
  const t1 = performance.now();
  let last = first;
  for (let k = 0; k < runs; k++) last = await read(fn(...inputs));
  const t2 = performance.now();
  const what = p.kind === 'train' ? 'trainStep' : 'forward';
  const result = p.kind === 'train' && first && last
    ? `loss ${(await first.data())[0].toPrecision(5)} -> ${(await last.data())[0].toPrecision(5)}`
    : last ? `output ${last.dtype}[${last.shape.join(', ')}]` : 'no output';
  const line = `kiln bundle ${p.name}: ${what} on ${p.plan.device}, ${p.plan.steps.length} kernels: first call ${(t1 - t0).toFixed(2)} ms, then ${((t2 - t1) / runs).toFixed(3)} ms/call over ${runs} calls; ${result}`;
  log(line);
  return line;
}
