// Shared test helpers: PyTorch fixtures, the project's closeness criterion (sync and async),
// array comparisons, Wasm-heap arrays and child processes.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'vitest';
import * as kiln from 'kiln';
import type { DType, Tensor } from 'kiln';
import { wasmHeap } from '../runtime/cpu/wasm/heap.js';

export interface FixtureTensor {
  shape: number[];
  dtype: 'float32' | 'float64' | 'int64';
  data: number[];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function loadFixture(name: string): any {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}.json`, import.meta.url), 'utf8'));
}

/** A fixture tensor as a Kiln tensor (int64 becomes int32; floats float32 unless asked). */
export function fromFixture(t: FixtureTensor, opts: { dtype?: DType; requiresGrad?: boolean } = {}): Tensor {
  const dtype = opts.dtype ?? (t.dtype === 'int64' ? 'int32' : 'float32');
  return kiln.tensor(t.data, { dtype }).reshape(t.shape).requiresGrad_(opts.requiresGrad ?? false);
}

type Values = Tensor | FixtureTensor | number[] | number;

function flat(x: Values): number[] {
  if (typeof x === 'number') return [x];
  if (Array.isArray(x)) return x;
  if ('data' in x && Array.isArray(x.data)) return x.data;
  return Array.from((x as Tensor).double().dataSync());
}

/** The values of x, read with `await data()` (WebGPU refuses dataSync). */
async function flatAsync(x: Values): Promise<number[]> {
  if (typeof x === 'number' || Array.isArray(x) || ('data' in x && Array.isArray(x.data))) return flat(x);
  return Array.from(await (x as Tensor).data());
}

function expectSameShape(what: string | undefined, got: Values, ref: Values): void {
  if (typeof got === 'object' && !Array.isArray(got) && typeof ref === 'object' && !Array.isArray(ref) && 'shape' in ref) {
    expect([...got.shape], what).toEqual([...ref.shape]);
  }
}

/**
 * The criterion: max|got - ref| <= tol * max(max|ref|, floor) (floor: the smallest scale, the
 * least positive number unless given). A NaN anywhere fails it.
 */
function assertClose(what: string | undefined, g: number[], r: number[], tol: number, floor = Number.MIN_VALUE): void {
  expect(g.length, what).toBe(r.length);
  let maxRef = 0;
  let maxErr = 0;
  for (let i = 0; i < g.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(r[i]));
    maxErr = Math.max(maxErr, Math.abs(g[i] - r[i]));
  }
  if (!(maxErr <= tol * Math.max(maxRef, floor))) {
    throw new Error(`${what ? `${what}: ` : ''}not close: max|got-ref| = ${maxErr}, tol*max|ref| = ${tol * maxRef}${floor === Number.MIN_VALUE ? '' : ` (scale at least ${floor})`}`);
  }
}

/** The fixtures' criterion: max|got - ref| <= tol * max|ref| (shapes must match too). */
export function expectClose(got: Tensor | number[] | number, ref: FixtureTensor | Tensor | number[] | number, tol = 1e-5): void {
  expectSameShape(undefined, got, ref);
  assertClose(undefined, flat(got), flat(ref), tol);
}

/**
 * expectClose's criterion on values read with `await data()` (for WebGPU tensors): shapes must
 * match, and max|got - ref| <= tol * max(max|ref|, floor). exactInts: an int32 ref must be matched
 * exactly (tolerance 0).
 */
export async function expectCloseAsync(
  what: string,
  got: Tensor | number[] | number,
  ref: Values,
  tol = 1e-5,
  opts: { exactInts?: boolean; floor?: number } = {},
): Promise<void> {
  expectSameShape(what, got, ref);
  const exact = opts.exactInts && typeof ref === 'object' && !Array.isArray(ref) && ref.dtype === 'int32';
  assertClose(what, await flatAsync(got), await flatAsync(ref), exact ? 0 : tol, opts.floor);
}

/**
 * A normwise comparison that knows NaN and infinities: NaN must meet NaN and an infinity the same
 * infinity; the finite rest must satisfy max|got - ref| <= tol * max|ref|. Returns a message, or ''
 * when the values agree.
 */
export function mismatch(ref: ArrayLike<number>, got: ArrayLike<number>, tol: number): string {
  if (ref.length !== got.length) return `length ${got.length} != ${ref.length}`;
  let maxRef = 0;
  let maxErr = 0;
  let at = -1;
  for (let i = 0; i < ref.length; i++) {
    const r = ref[i];
    const g = got[i];
    if (Number.isNaN(r) || Number.isNaN(g)) {
      if (Number.isNaN(r) !== Number.isNaN(g)) return `element ${i}: got ${g}, ref ${r}`;
      continue;
    }
    if (!Number.isFinite(r) || !Number.isFinite(g)) {
      if (r !== g) return `element ${i}: got ${g}, ref ${r}`;
      continue;
    }
    maxRef = Math.max(maxRef, Math.abs(r));
    const e = Math.abs(g - r);
    if (e > maxErr) { maxErr = e; at = i; }
  }
  if (maxErr > tol * maxRef) return `max|got-ref| = ${maxErr} at element ${at} (got ${got[at]}, ref ${ref[at]}) > ${tol} * max|ref| = ${tol * maxRef}`;
  return '';
}

/**
 * The first index where x and y differ, or -1; arrays of different lengths differ at 0. Compared
 * with Object.is, element by element (toEqual on views of the large heap buffer is very slow): NaN
 * equals NaN, and -0 differs from 0 (equal means bitwise equal, for floats of one width).
 */
export function firstDifference(x: ArrayLike<number>, y: ArrayLike<number>): number {
  if (x.length !== y.length) return 0;
  for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return i;
  return -1;
}

/** max|x_i| (0 for no elements; NaN if any element is NaN). */
export function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}

/** Arrays allocated in the Wasm heap by heapArray stay alive (and allocated) while this module holds their owner. */
const heapOwner = {};

interface HeapArrays { float32: Float32Array; float64: Float64Array; int32: Int32Array; bool: Uint8Array }

/** A fresh array of n elements of dtype in the shared Wasm heap, kept alive for the rest of the test file. */
export function heapArray<D extends DType>(dtype: D, n: number): HeapArrays[D & keyof HeapArrays] {
  const arr = wasmHeap()!.allocArray(dtype, n, heapOwner);
  if (!arr) throw new Error('the Wasm heap cannot hold storages here (no shared memory)');
  return arr as HeapArrays[D & keyof HeapArrays];
}

/** heapArray('float32', n). */
export const heapFloats = (n: number): Float32Array => heapArray('float32', n);

/**
 * Runs `source` as a TypeScript module (a temporary .mts file) in a child `node --import tsx`, with
 * `env` added to this process's environment. Returns its stdout, stderr and exit status; the
 * spawn itself must have worked.
 */
export function runTsChild(source: string, env: Record<string, string> = {}): { stdout: string; stderr: string; status: number | null } {
  const script = join(mkdtempSync(join(tmpdir(), 'kiln-child-')), 'child.mts');
  writeFileSync(script, source);
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 50_000 });
  expect(r.error, String(r.error)).toBeUndefined();
  return { stdout: r.stdout, stderr: r.stderr, status: r.status };
}

/** A module specifier (quoted) for `path` relative to the repository root, to import in runTsChild's source. */
export const modulePath = (path: string): string => JSON.stringify(resolve(path));

/** A seeded generator of uniform numbers in [0, 1) (random-graphs.ts's mulberry32), so random test cases repeat exactly. */
export { mulberry32 as rng, randInt } from './random-graphs.js';
