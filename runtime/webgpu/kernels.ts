// WGSL kernel templates. Every kernel follows one convention so a single dispatcher runs them all:
// binding 0 is the output (read_write), binding 1 a u32 metadata array (shapes, strides, offsets:
// passed at run time, so one pipeline serves every shape), bindings 2.. the inputs (read-only). An
// input that is the output's own buffer is read through binding 0 instead (WebGPU forbids binding
// a buffer twice when one binding writes). Threads are numbered 0..threads-1 across a 2-D grid of
// workgroups (a dimension holds at most 65535).
//
// float16 (the device's `shader-f16`) is stored as WGSL's f16; every kernel whose source names f16
// starts with `enable f16;` (withF16). Reductions, matmul, scatterAdd and fold accumulate float16
// in f32 (as PyTorch does on GPUs) and round once when they store.
import type { DType, Expr, Reducer } from '../../ir/index.js';
import { PRELUDE, renderWgsl, storageType } from './render-wgsl.js';
import { indexCheckWgsl, opCode } from './index-check.js';
import { unfoldMapWgsl } from './unfold-map.js';

/** Prepends `enable f16;` (WGSL requires it before any declaration) to a kernel that uses the f16 type. */
export function withF16(spec: KernelSpec): KernelSpec {
  return /\bf16\b/.test(spec.code) ? { key: spec.key, code: `enable f16;\n${spec.code}` } : spec;
}

/** The type a kernel adds values of `d` in: f32 for float16 (one rounding, at the store), else the storage type. */
export const accType = (d: DType) => (d === 'float16' ? 'f32' : storageType(d));
/** `code` (a value of storage type `d`) converted to accType(d). */
export const widen = (d: DType, code: string) => (d === 'float16' ? `f32(${code})` : code);
/** `code` (a value of accType(d)) converted back to the storage type. */
export const narrow = (d: DType, code: string) => (d === 'float16' ? `f16(${code})` : code);

export const WORKGROUP = 256;

/** A loop over `n` dims, or nothing for 0 dims (its body would not type-check: `0u - 1u`). */
export const dimLoop = (n: number, loop: string) => (n > 0 ? loop : '');

/**
 * WGSL that unravels the flat index in variable `rem` (consumed) over `n` dims, innermost first,
 * dim d's size at md[shapeAt + d]: for each dim, `let d` and its coordinate `let c`, then `also`
 * (statements that may read them), then each pointer moved by c times its stride along d, at
 * md[stridesAt + d]. Nothing for 0 dims.
 */
export function unravel(n: number, rem: string, shapeAt: number, pointers: readonly (readonly [name: string, stridesAt: number])[], also = ''): string {
  return dimLoop(n, `
  for (var k = 0u; k < ${n}u; k++) {
    let d = ${n - 1}u - k;
    let s = md[${shapeAt}u + d];
    let c = ${rem} % s;
    ${rem} = ${rem} / s;
    ${also}
    ${pointers.map(([p, at]) => `${p} += c * md[${at}u + d];`).join('\n    ')}
  }`);
}

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
  return withF16({ key: elementwiseKey(exprKey, inputs, out, ndim), code: elementwiseCode(expr, inputs, out, ndim) });
}

/** elementwiseKernel's key, without building its source (the backend looks its pipeline up by it first). */
export function elementwiseKey(exprKey: string, inputs: readonly Operand[], out: DType, ndim: number): string {
  let key = `ew|${exprKey}|`;
  for (let j = 0; j < inputs.length; j++) key += `${j ? ',' : ''}${inputs[j].dtype}${inputs[j].aliasOut ? '@' : ''}`;
  return `${key}>${out}|${ndim}`;
}

function elementwiseCode(expr: Expr, inputs: readonly Operand[], out: DType, ndim: number): string {
  const { body, result } = renderWgsl(expr, inputs.map((x) => x.dtype), out);
  const base = (j: number) => 1 + ndim + (ndim + 1) * (j + 1); // start of input j's strides
  const ptrs = inputs.map((_, j) => `var p${j} = md[${base(j) + ndim}];`).join('\n  ');
  const loads = inputs.map((x, j) => `let x${j} = ${load(j, x, `p${j}`)};`).join('\n  ');
  const code = `${bindings(out, inputs)}
${PRELUDE}
${HEADER('md[0]')}
  var rem = i;
  var po = md[${1 + 2 * ndim}];
  ${ptrs}
  ${unravel(ndim, 'rem', 1, [['po', 1 + ndim], ...inputs.map((_, j) => [`p${j}`, base(j)] as const)])}
  ${loads}
  ${body}
  out[po] = ${result};
}`;
  return code;
}

export function elementwiseMeta(n: number, shape: readonly number[], out: { strides: readonly number[]; offset: number }, inputs: readonly { strides: readonly number[]; offset: number }[]): Uint32Array {
  // Filled in place (no intermediate arrays): it runs once per eager elementwise op.
  const nd = shape.length;
  const meta = new Uint32Array(1 + nd + (nd + 1) * (inputs.length + 1));
  meta[0] = n;
  let at = 1;
  const put = (x: { strides: readonly number[]; offset: number }) => {
    for (let d = 0; d < nd; d++) meta[at++] = x.strides[d];
    meta[at++] = x.offset;
  };
  for (let d = 0; d < nd; d++) meta[at++] = shape[d];
  put(out);
  for (const x of inputs) put(x);
  return meta;
}

/**
 * One thread per output element reduces over the reduced dims (kept dims first in the metadata), or
 * with `wide` one workgroup per output element (see wideReduction).
 * Metadata: [nOut, nRed, kept shape(nk), red shape(nr), per input: kept strides(nk), red strides(nr), offset].
 * argmax/argmin return the first extreme's row-major index within the reduced dims; NaN wins.
 */
export function reduceKernel(reducer: Reducer, expr: Expr, exprKey: string, inputs: readonly Operand[], out: DType, nk: number, nr: number, accKind: 'f32' | 'i32', wide = false): KernelSpec {
  return withF16({ key: reduceKey(reducer, exprKey, inputs, out, nk, nr, accKind, wide), code: reduceCode(reducer, expr, inputs, out, nk, nr, accKind, wide) });
}

/** reduceKernel's key, without building its source. */
export function reduceKey(reducer: Reducer, exprKey: string, inputs: readonly Operand[], out: DType, nk: number, nr: number, accKind: 'f32' | 'i32', wide = false): string {
  return `red|${reducer}|${exprKey}|${inputs.map((x) => `${x.dtype}${x.aliasOut ? '@' : ''}`).join(',')}>${out}|${nk}|${nr}|${accKind}${wide ? '|wide' : ''}`;
}

/**
 * Should a reduction of `nRed` elements into each of `nOut` outputs use a workgroup per output
 * (reduceKernel's `wide`)? When few outputs each reduce many elements (a bias gradient: 10 outputs
 * of 36,864), one thread per output leaves the GPU idle and walks the elements in sequence.
 * Only sum, max and min (argmax/argmin keep the first index: one thread per output).
 */
export const wideReduction = (reducer: Reducer, nOut: number, nRed: number) =>
  nRed >= WORKGROUP && nOut <= 16384 && (reducer === 'sum' || reducer === 'max' || reducer === 'min');

function reduceCode(reducer: Reducer, expr: Expr, inputs: readonly Operand[], out: DType, nk: number, nr: number, accKind: 'f32' | 'i32', wide: boolean): string {
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
  const outValue = reducer === 'argmax' || reducer === 'argmin' ? 'best' : out === 'int32' ? 'i32(acc)' : out === 'bool' ? 'select(0u, 1u, acc != 0)' : out === 'float16' ? 'f16(acc)' : 'f32(acc)';
  // wide: workgroup i reduces output i; its threads take every WORKGROUP-th element, then add up
  // their partial results in workgroup memory (a tree). Workgroups past the end do the barriers
  // (which need uniform control flow) but no loads or store.
  const header = wide
    ? `var<workgroup> part: array<${accKind}, ${WORKGROUP}>;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let i = wg.y * nwg.x + wg.x;
  let valid = i < md[0];
  let nRed = select(0u, md[1], valid);`
    : HEADER('md[0]');
  const code = `${bindings(out, inputs)}
${PRELUDE}
${header}
  var rem = i;
  ${inputs.map((_, j) => `var b${j} = md[${stride(j) + nk + nr}];`).join('\n  ')}
  ${unravel(nk, 'rem', 2, inputs.map((_, j) => [`b${j}`, stride(j)] as const))}
  var acc: ${accKind} = ${init};
  var best: i32 = -1;
  for (var r = ${wide ? `li; r < nRed; r += ${WORKGROUP}u` : '0u; r < md[1]; r++'}) {
    var rr = r;
    ${inputs.map((_, j) => `var p${j} = b${j};`).join('\n    ')}
    ${unravel(nr, 'rr', 2 + nk, inputs.map((_, j) => [`p${j}`, stride(j) + nk] as const))}
    ${inputs.map((x, j) => `let x${j} = ${load(j, x, `p${j}`)};`).join('\n    ')}
    ${body}
    let v = ${result};
    ${combine}
  }
  ${wide ? `part[li] = acc;
  workgroupBarrier();
  for (var half = ${WORKGROUP / 2}u; half > 0u; half = half / 2u) {
    if (li < half) {
      let v = part[li + half];
      ${reducer === 'sum' ? 'part[li] = part[li] + v;' : `if (v ${better} part[li] || !(v == v)) { part[li] = v; }`}
    }
    workgroupBarrier();
  }
  if (li == 0u && valid) {
    let acc = part[0];
    out[i] = ${outValue};
  }` : `out[i] = ${outValue};`}
}`;
  return code;
}

// ---- Indexing and sliding-window routines (gather, scatterAdd, unfold, fold) ----
// These move values without arithmetic on them (scatterAdd and fold add), so inputs are read in
// their storage type: bools stay u32 words. WGSL has no float atomics, so the two scattering
// routines are written as gathers: each output element sums, in the CPU's order, every source
// element that lands on it. An out-of-range index is clamped (gather) or matches nothing
// (scatterAdd), and recorded in the error buffer bound after the inputs (index-check.ts), which
// the backend turns into the CPU's error at the next read.

/** Reads operand j (binding 2 + j, or the output's binding when aliased) at `p` in its storage type. */
const raw = (j: number, x: Operand, p: string) => `${x.aliasOut ? 'out' : `in${j}`}[${p}]`;

/**
 * out[c] = x[c with c[dim] = index[c]] over the index's `nd`-d shape. Metadata: [n, size of x
 * along dim, x's stride along dim, shape(nd), out strides(nd), out offset, x strides(nd) with dim's
 * zeroed, x offset, index strides(nd), index offset, dim]. Negative indices count from the end.
 */
export function gatherKernel(x: Operand, index: Operand, nd: number): KernelSpec {
  const os = 3 + nd, xs = 3 + 2 * nd + 1, is = 3 + 3 * nd + 2;
  const code = `${bindings(x.dtype, [x, index])}
${indexCheckWgsl(4)}
${HEADER('md[0]')}
  var rem = i;
  var po = md[${os + nd}];
  var px = md[${xs + nd}];
  var pi = md[${is + nd}];
  ${unravel(nd, 'rem', 3, [['po', os], ['px', xs], ['pi', is]])}
  let size = i32(md[1]);
  var q = ${raw(1, index, 'pi')};
  if (q < 0) { q += size; }
  if (q < 0 || q >= size) {
    kiln_bad_index(${opCode('gather')}u, ${raw(1, index, 'pi')}, md[1], md[${is + nd + 1}]);
    q = 0;
  }
  out[po] = ${raw(0, x, 'px + u32(q) * md[2]')};
}`;
  return withF16({ key: `gather|${x.dtype}${x.aliasOut ? '@' : ''}|${index.aliasOut ? '@' : ''}|${nd}`, code });
}

export function gatherMeta(n: number, shape: readonly number[], out: StridedOperand, x: StridedOperand, index: StridedOperand, dim: number, size: number): Uint32Array {
  return Uint32Array.from([n, size, x.strides[dim], ...shape, ...out.strides, out.offset, ...x.strides.map((s, d) => (d === dim ? 0 : s)), x.offset, ...index.strides, index.offset, dim]);
}

/** A view's placement in its buffer, as the metadata builders read it. */
export interface StridedOperand {
  readonly strides: readonly number[];
  readonly offset: number;
}

/**
 * out[c] = base[c] + sum over p < index.shape[dim] (ascending, the CPU's order) of src[c'] where
 * c' = c with c'[dim] = p lies inside the index's shape and index[c'] (negative counts from the
 * end) equals c[dim]. One thread per output element, no atomics. Metadata: [n, size of out along
 * dim, index extent along dim, index stride along dim, src stride along dim, out shape(nd), out
 * strides(nd), out offset, base strides(nd), base offset, index shape(nd) with dim's = 0xffffffff,
 * index strides(nd) with dim's zeroed, index offset, src strides(nd) with dim's zeroed, src offset].
 */
export function scatterAddKernel(base: Operand, index: Operand, src: Operand, nd: number): KernelSpec {
  const acc = accType(base.dtype);
  const sh = 5, os = sh + nd, bs = os + nd + 1, ish = bs + nd + 1, is = ish + nd, ss = is + nd + 1;
  const code = `${bindings(base.dtype, [base, index, src])}
${indexCheckWgsl(5)}
${HEADER('md[0]')}
  var rem = i;
  var po = md[${os + nd}];
  var pb = md[${bs + nd}];
  var pi = md[${is + nd}];
  var ps = md[${ss + nd}];
  var j = 0u;
  var inside = true;
  ${unravel(nd, 'rem', sh, [['po', os], ['pb', bs], ['pi', is], ['ps', ss]], `if (d == md[${ss + nd + 1}]) { j = c; }
    inside = inside && c < md[${ish}u + d];`)}
  var acc: ${acc} = ${widen(base.dtype, raw(0, base, 'pb'))};
  if (inside) {
    let size = i32(md[1]);
    for (var p = 0u; p < md[2]; p++) {
      var q = ${raw(1, index, 'pi + p * md[3]')};
      if (q < 0) { q += size; }
      // Out of range: matches nothing here, and is recorded (every thread meets it; one records).
      if (q < 0 || q >= size) { kiln_bad_index(${opCode('scatterAdd')}u, ${raw(1, index, 'pi + p * md[3]')}, md[1], md[${ss + nd + 1}]); }
      if (q == i32(j)) { acc = acc + ${widen(src.dtype, raw(2, src, 'ps + p * md[4]'))}; }
    }
  }
  out[po] = ${narrow(base.dtype, 'acc')};
}`;
  return withF16({ key: `scatterAdd|${base.dtype}|${[base, index, src].map((x) => (x.aliasOut ? '@' : '')).join(',')}|${nd}`, code });
}

export function scatterAddMeta(n: number, shape: readonly number[], out: StridedOperand, base: StridedOperand, index: StridedOperand & { shape: readonly number[] }, src: StridedOperand, dim: number): Uint32Array {
  const zeroDim = (v: readonly number[]) => v.map((s, d) => (d === dim ? 0 : s));
  return Uint32Array.from([
    n, shape[dim], index.shape[dim], index.strides[dim], src.strides[dim],
    ...shape, ...out.strides, out.offset, ...base.strides, base.offset,
    ...index.shape.map((s, d) => (d === dim ? 0xffffffff : s)), ...zeroDim(index.strides), index.offset,
    ...zeroDim(src.strides), src.offset, dim,
  ]);
}

/** Per spatial dim, the window geometry the fold kernel reads: size, kernel, stride, padding, dilation, count. */
const WINDOW_FIELDS = 6;

/**
 * im2col: out[offset + i] = element i of the unfold (unfold-map.ts, the one definition of the
 * mapping). Metadata: [n, out offset, the unfold map (unfoldMapMeta)].
 */
export function unfoldKernel(x: Operand, ns: number): KernelSpec {
  const code = `${bindings(x.dtype, [x])}
${unfoldMapWgsl('kiln_unfold', x.aliasOut ? 'out' : 'in0', x.dtype, ns, 2)}
${HEADER('md[0]')}
  out[md[1] + i] = kiln_unfold(i);
}`;
  return withF16({ key: `unfold|${x.dtype}${x.aliasOut ? '@' : ''}|${ns}`, code });
}

/**
 * col2im: out[b, c, position] = sum over taps t (ascending, the CPU's order) of cols[b, c*K + t, l]
 * for the window l whose tap t lands on the position. Metadata: [n, C, K, L, plane (prod of
 * output size), out offset, cols strides (3), cols offset, per spatial dim: output size, kernel,
 * stride, padding, dilation, count].
 */
export function foldKernel(cols: Operand, ns: number): KernelSpec {
  const g = 10;
  const acc = accType(cols.dtype);
  const code = `${bindings(cols.dtype, [cols])}
${HEADER('md[0]')}
  let plane = md[4];
  let c = (i / plane) % md[1];
  let b = i / (plane * md[1]);
  let rowBase = md[9] + b * md[6] + c * md[2] * md[7];
  var acc: ${acc} = ${acc}(0);
  for (var t = 0u; t < md[2]; t++) {
    var tt = t;
    var pp = i % plane;
    var l = 0u;
    var lstride = 1u;
    var hit = true;
    ${dimLoop(ns, `
    for (var e = 0u; e < ${ns}u; e++) {
      let f = ${g}u + (${ns - 1}u - e) * ${WINDOW_FIELDS}u;
      let kd = tt % md[f + 1u];
      tt = tt / md[f + 1u];
      let pd = pp % md[f];
      pp = pp / md[f];
      let o = i32(pd + md[f + 3u]) - i32(kd * md[f + 4u]);
      let st = i32(md[f + 2u]);
      if (o < 0 || o % st != 0 || o / st >= i32(md[f + 5u])) { hit = false; }
      l += u32(max(o, 0) / st) * lstride;
      lstride *= md[f + 5u];
    }`)}
    if (hit) { acc = acc + ${widen(cols.dtype, raw(0, cols, 'rowBase + t * md[7] + l * md[8]'))}; }
  }
  out[md[5] + i] = ${narrow(cols.dtype, 'acc')};
}`;
  return withF16({ key: `fold|${cols.dtype}${cols.aliasOut ? '@' : ''}|${ns}`, code });
}
