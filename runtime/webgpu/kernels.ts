// WGSL kernel templates. Every kernel follows one convention so a single dispatcher runs them all:
// binding 0 is the output (read_write), binding 1 a u32 metadata array (shapes, strides, offsets:
// passed at run time, so one pipeline serves every shape), bindings 2.. the inputs (read-only). An
// input that is the output's own buffer is read through binding 0 instead (WebGPU forbids binding
// a buffer twice when one binding writes). Threads are numbered 0..threads-1 across a 2-D grid of
// workgroups (a dimension holds at most 65535).
import type { DType, Expr, Reducer } from '../../ir/index.js';
import { PRELUDE, renderWgsl, storageType } from './render-wgsl.js';

export const WORKGROUP = 256;

/** A loop over `n` dims, or nothing for 0 dims (its body would not type-check: `0u - 1u`). */
const dimLoop = (n: number, loop: string) => (n > 0 ? loop : '');

export interface KernelSpec {
  /** Identifies the WGSL source; pipelines are cached by it. */
  readonly key: string;
  readonly code: string;
}

/** The thread index, and the early exit for threads past the end. */
const HEADER = (threads: string) => `
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = (wg.y * nwg.x + wg.x) * ${WORKGROUP}u + li;
  if (i >= ${threads}) { return; }`;

export interface Operand {
  readonly dtype: DType;
  /** Bound to the output's buffer (read through binding 0). */
  readonly aliasOut: boolean;
}

function bindings(out: DType, inputs: readonly Operand[]): string {
  const lines = [`@group(0) @binding(0) var<storage, read_write> out: array<${storageType(out)}>;`, '@group(0) @binding(1) var<storage, read> md: array<u32>;'];
  inputs.forEach((x, j) => {
    if (!x.aliasOut) lines.push(`@group(0) @binding(${2 + j}) var<storage, read> in${j}: array<${storageType(x.dtype)}>;`);
  });
  return lines.join('\n');
}

/** Reads input j at offset `p` as its compute kind (bools are stored as u32). */
function load(j: number, x: Operand, p: string): string {
  const arr = x.aliasOut ? 'out' : `in${j}`;
  return x.dtype === 'bool' ? `(${arr}[${p}] != 0u)` : `${arr}[${p}]`;
}

/**
 * out[i] = expr(inputs at i) over an `ndim`-d index space. Metadata: [n, shape(ndim),
 * out strides(ndim), out offset, then per input: strides(ndim), offset].
 */
export function elementwiseKernel(expr: Expr, exprKey: string, inputs: readonly Operand[], out: DType, ndim: number): KernelSpec {
  const { body, result } = renderWgsl(expr, inputs.map((x) => x.dtype), out);
  const base = (j: number) => 1 + ndim + (ndim + 1) * (j + 1); // start of input j's strides
  const ptrs = inputs.map((_, j) => `var p${j} = md[${base(j) + ndim}];`).join('\n  ');
  const steps = inputs.map((_, j) => `p${j} += c * md[${base(j)}u + d];`).join('\n      ');
  const loads = inputs.map((x, j) => `let x${j} = ${load(j, x, `p${j}`)};`).join('\n  ');
  const code = `${bindings(out, inputs)}
${PRELUDE}
${HEADER('md[0]')}
  var rem = i;
  var po = md[${1 + 2 * ndim}];
  ${ptrs}
  ${dimLoop(ndim, `
  for (var k = 0u; k < ${ndim}u; k++) {
    let d = ${ndim - 1}u - k;
    let s = md[1u + d];
    let c = rem % s;
    rem = rem / s;
    po += c * md[${1 + ndim}u + d];
    ${steps}
  }`)}
  ${loads}
  ${body}
  out[po] = ${result};
}`;
  return { key: `ew|${exprKey}|${inputs.map((x) => `${x.dtype}${x.aliasOut ? '@' : ''}`).join(',')}>${out}|${ndim}`, code };
}

export function elementwiseMeta(n: number, shape: readonly number[], out: { strides: readonly number[]; offset: number }, inputs: readonly { strides: readonly number[]; offset: number }[]): Uint32Array {
  return Uint32Array.from([n, ...shape, ...out.strides, out.offset, ...inputs.flatMap((x) => [...x.strides, x.offset])]);
}

/**
 * One thread per output element reduces over the reduced dims (kept dims first in the metadata).
 * Metadata: [nOut, nRed, kept shape(nk), red shape(nr), per input: kept strides(nk), red strides(nr), offset].
 * argmax/argmin return the first extreme's row-major index within the reduced dims; NaN wins.
 */
export function reduceKernel(reducer: Reducer, expr: Expr, exprKey: string, inputs: readonly Operand[], out: DType, nk: number, nr: number, accKind: 'f32' | 'i32'): KernelSpec {
  const { body, result } = renderWgsl(expr, inputs.map((x) => x.dtype), accKind === 'i32' ? 'int32' : 'float32');
  const stride = (j: number) => 2 + nk + nr + j * (nk + nr + 1);
  const zero = accKind === 'i32' ? '0i' : '0.0';
  const init = reducer === 'sum' ? zero : reducer === 'max' || reducer === 'argmax' ? (accKind === 'i32' ? '-2147483647i' : 'bitcast<f32>(kiln_ninf_bits)') : accKind === 'i32' ? '2147483647i' : 'bitcast<f32>(kiln_inf_bits)';
  const better = reducer === 'max' || reducer === 'argmax' ? '>' : '<';
  const combine = reducer === 'sum'
    ? 'acc = acc + v;'
    : reducer === 'max' || reducer === 'min'
      ? `if (v ${better} acc || !(v == v)) { acc = v; }`
      : `if (best < 0 || ((acc == acc) && (v ${better} acc || !(v == v)))) { acc = v; best = i32(r); }`;
  const outValue = reducer === 'argmax' || reducer === 'argmin' ? 'best' : out === 'int32' ? 'i32(acc)' : out === 'bool' ? 'select(0u, 1u, acc != 0)' : 'f32(acc)';
  const code = `${bindings(out, inputs)}
${PRELUDE}
${HEADER('md[0]')}
  var rem = i;
  ${inputs.map((_, j) => `var b${j} = md[${stride(j) + nk + nr}];`).join('\n  ')}
  ${dimLoop(nk, `
  for (var k = 0u; k < ${nk}u; k++) {
    let d = ${nk - 1}u - k;
    let s = md[2u + d];
    let c = rem % s;
    rem = rem / s;
    ${inputs.map((_, j) => `b${j} += c * md[${stride(j)}u + d];`).join('\n    ')}
  }`)}
  var acc: ${accKind} = ${init};
  var best: i32 = -1;
  for (var r = 0u; r < md[1]; r++) {
    var rr = r;
    ${inputs.map((_, j) => `var p${j} = b${j};`).join('\n    ')}
    ${dimLoop(nr, `
    for (var k = 0u; k < ${nr}u; k++) {
      let d = ${nr - 1}u - k;
      let s = md[${2 + nk}u + d];
      let c = rr % s;
      rr = rr / s;
      ${inputs.map((_, j) => `p${j} += c * md[${stride(j) + nk}u + d];`).join('\n      ')}
    }`)}
    ${inputs.map((x, j) => `let x${j} = ${load(j, x, `p${j}`)};`).join('\n    ')}
    ${body}
    let v = ${result};
    ${combine}
  }
  out[i] = ${outValue};
}`;
  return { key: `red|${reducer}|${exprKey}|${inputs.map((x) => x.dtype).join(',')}>${out}|${nk}|${nr}|${accKind}`, code };
}

export const TILE = 16;

/**
 * Tiled matmul: each workgroup computes a TILE x TILE block of C through workgroup memory, over a
 * batch in the z... (flattened into the thread index). Metadata: [M, N, K, batches, per batch
 * offsets are computed from: batch shape(nb), a batch strides(nb), b batch strides(nb),
 * a row/col stride, b row/col stride, a offset, b offset, epilogue extras' (row, col, batch strides(nb), offset)].
 */
export function matmulKernel(dtype: DType, nb: number, epilogue: Expr | undefined, exprKey: string, extras: readonly Operand[]): KernelSpec {
  const t = storageType(dtype);
  const extrasBind = extras.map((x, j) => `@group(0) @binding(${4 + j}) var<storage, read> e${j}: array<${storageType(x.dtype)}>;`).join('\n');
  const rendered = epilogue ? renderWgsl(epilogue, [dtype, ...extras.map((x) => x.dtype)], dtype) : undefined;
  const extraBase = (j: number) => 4 + 3 * nb + 6 + j * (nb + 3);
  const code = `@group(0) @binding(0) var<storage, read_write> out: array<${t}>;
@group(0) @binding(1) var<storage, read> md: array<u32>;
@group(0) @binding(2) var<storage, read> A: array<${t}>;
@group(0) @binding(3) var<storage, read> B: array<${t}>;
${extrasBind}
${PRELUDE}
var<workgroup> As: array<${t}, ${TILE * TILE}>;
var<workgroup> Bs: array<${t}, ${TILE * TILE}>;
var<workgroup> kShared: u32;
@compute @workgroup_size(${TILE}, ${TILE})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let M = md[0]; let N = md[1];
  // The tile loop holds barriers, so its bound must be uniform: read K through workgroup memory.
  if (lid.x == 0u && lid.y == 0u) { kShared = md[2]; }
  let K = workgroupUniformLoad(&kShared);
  let row = wg.y * ${TILE}u + lid.y;
  let col = wg.x * ${TILE}u + lid.x;
  var rem = wg.z;
  var ao = md[${4 + 3 * nb + 4}];
  var bo = md[${4 + 3 * nb + 5}];
  ${extras.map((_, j) => `var eo${j} = md[${extraBase(j) + 2 + nb}];`).join('\n  ')}
  ${dimLoop(nb, `
  for (var k = 0u; k < ${nb}u; k++) {
    let d = ${nb - 1}u - k;
    let s = md[4u + d];
    let c = rem % s;
    rem = rem / s;
    ao += c * md[${4 + nb}u + d];
    bo += c * md[${4 + 2 * nb}u + d];
    ${extras.map((_, j) => `eo${j} += c * md[${extraBase(j) + 2}u + d];`).join('\n    ')}
  }`)}
  let ars = md[${4 + 3 * nb}]; let acs = md[${4 + 3 * nb + 1}];
  let brs = md[${4 + 3 * nb + 2}]; let bcs = md[${4 + 3 * nb + 3}];
  var acc: ${t} = ${t}(0);
  for (var k0 = 0u; k0 < K; k0 += ${TILE}u) {
    let ak = k0 + lid.x;
    let bk = k0 + lid.y;
    As[lid.y * ${TILE}u + lid.x] = select(${t}(0), A[ao + row * ars + ak * acs], row < M && ak < K);
    Bs[lid.y * ${TILE}u + lid.x] = select(${t}(0), B[bo + bk * brs + col * bcs], bk < K && col < N);
    workgroupBarrier();
    for (var kk = 0u; kk < ${TILE}u; kk++) {
      acc = acc + As[lid.y * ${TILE}u + kk] * Bs[kk * ${TILE}u + lid.x];
    }
    workgroupBarrier();
  }
  if (row < M && col < N) {
    let x0 = acc;
    ${extras.map((x, j) => `let x${j + 1} = ${x.dtype === 'bool' ? `(e${j}[eo${j} + row * md[${extraBase(j)}] + col * md[${extraBase(j) + 1}]] != 0u)` : `e${j}[eo${j} + row * md[${extraBase(j)}] + col * md[${extraBase(j) + 1}]]`};`).join('\n    ')}
    ${rendered ? rendered.body : ''}
    out[wg.z * M * N + row * N + col] = ${rendered ? rendered.result : 'acc'};
  }
}`;
  return { key: `mm|${dtype}|${nb}|${exprKey}|${extras.map((x) => x.dtype).join(',')}`, code };
}
