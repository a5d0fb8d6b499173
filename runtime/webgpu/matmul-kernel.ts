// The matmul kernels: C[batch] = A[batch] @ B[batch] (+ a fused epilogue), through workgroup memory.
//
// Two tile shapes share one prologue (batch offsets), one set of operand loaders and one store (the
// epilogue):
// - 'small': a 16x16 block of C per workgroup, one output per thread (small or odd products);
// - 'reg': a 64x64 block per workgroup of 16x16 threads, each a 4x4 register tile, the K loop in
//   steps of 16: a thread does 16 multiply-adds per pair of workgroup loads instead of one.
// Each operand is loaded one of three ways:
// - 'scalar': one element at a time, any strides;
// - 'vec4': four consecutive elements along the contiguous dim (A along K, B along N), bound as
//   array<vec4<T>>: needs that stride to be 1 and every offset, row stride and the loaded extent
//   to be multiples of 4 (chooseLoads checks); float32 and int32 only;
// - unfold: the operand is a view of an unfold's columns that were never materialised (implicit
//   GEMM for conv); its elements are computed from the unfold's input through unfold-map.ts.
//
// Metadata: [M, N, K, batches, batch shape(nb), a batch strides(nb), b batch strides(nb), a row and
// col strides, b row and col strides, a offset, b offset, per epilogue extra: row, col, batch
// strides(nb), offset; then the unfold map of A, then of B, for unfold-loaded operands].
import type { DType, Expr } from '../../ir/index.js';
import { accType, narrow, unravel, widen, withF16, type KernelSpec, type Operand } from './kernels.js';
import { PRELUDE, renderWgsl, storageType } from './render-wgsl.js';
import { unfoldMapWgsl, unfoldMapWords } from './unfold-map.js';

export type MatmulLoad = 'scalar' | 'vec4' | { readonly unfoldDims: number };
export type MatmulTile = 'small' | 'reg';

export interface MatmulVariant {
  readonly tile: MatmulTile;
  readonly a: MatmulLoad;
  readonly b: MatmulLoad;
}

/** Output block edge per workgroup for each tile shape. */
export const BLOCK: Record<MatmulTile, number> = { small: 16, reg: 64 };

const loadKey = (l: MatmulLoad) => (typeof l === 'string' ? l : `unfold${l.unfoldDims}`);

/** The words of the metadata before the unfold maps. */
const matmulHeadWords = (nb: number, extras: number) => 4 + 3 * nb + 6 + extras * (nb + 3);

export function matmulKernel(dtype: DType, nb: number, epilogue: Expr | undefined, exprKey: string, extras: readonly Operand[], v: MatmulVariant): KernelSpec {
  const t = storageType(dtype);
  // float16 operands are widened as they enter workgroup memory and the product accumulates in f32;
  // the epilogue sees that f32 product (x0) and the result is rounded to f16 once, at the store.
  const ct = accType(dtype);
  // Extra j's words start where the head would end with j extras.
  const extraBase = (j: number) => matmulHeadWords(nb, j);
  const mapA = matmulHeadWords(nb, extras.length);
  const mapB = mapA + (typeof v.a === 'object' ? unfoldMapWords(v.a.unfoldDims) : 0);
  const binding = (name: string, at: number, load: MatmulLoad) =>
    `@group(0) @binding(${at}) var<storage, read> ${name}: array<${load === 'vec4' ? `vec4<${t}>` : t}>;`;
  // Operand X's element (r, c): scalar and unfold loads as the accumulator type; vec4 loads as vec4 of it.
  const loader = (x: 'A' | 'B', load: MatmulLoad, mapBase: number) => {
    const p = `${x === 'A' ? 'ao' : 'bo'} + r * ${x === 'A' ? 'ars' : 'brs'} + c * ${x === 'A' ? 'acs' : 'bcs'}`;
    if (load === 'vec4') return `fn load${x}4(r: u32, c: u32) -> vec4<${ct}> { return ${x}[(${p}) / 4u]; }`;
    if (load === 'scalar') return `fn load${x}(r: u32, c: u32) -> ${ct} { return ${widen(dtype, `${x}[${p}]`)}; }`;
    return `${unfoldMapWgsl(`kiln_unfold_${x}`, x, dtype, load.unfoldDims, mapBase)}
fn load${x}(r: u32, c: u32) -> ${ct} { return ${widen(dtype, `kiln_unfold_${x}(${p})`)}; }`;
  };
  const rendered = epilogue ? renderWgsl(epilogue, [dtype === 'float16' ? 'float32' : dtype, ...extras.map((x) => x.dtype)], dtype) : undefined;
  const extraAt = (j: number) => `eo${j} + row * md[${extraBase(j)}] + col * md[${extraBase(j) + 1}]`;
  const code = `@group(0) @binding(0) var<storage, read_write> out: array<${t}>;
@group(0) @binding(1) var<storage, read> md: array<u32>;
${binding('A', 2, v.a)}
${binding('B', 3, v.b)}
${extras.map((x, j) => `@group(0) @binding(${4 + j}) var<storage, read> e${j}: array<${storageType(x.dtype)}>;`).join('\n')}
${PRELUDE}
var<private> M: u32;
var<private> N: u32;
var<private> ao: u32;
var<private> bo: u32;
var<private> ob: u32;
var<private> ars: u32;
var<private> acs: u32;
var<private> brs: u32;
var<private> bcs: u32;
${extras.map((_, j) => `var<private> eo${j}: u32;`).join('\n')}
var<workgroup> kShared: u32;

/** The offsets of batch z's operands and output. */
fn setup(z: u32) {
  M = md[0]; N = md[1];
  ob = z * M * N;
  var rem = z;
  ao = md[${4 + 3 * nb + 4}];
  bo = md[${4 + 3 * nb + 5}];
  ${extras.map((_, j) => `eo${j} = md[${extraBase(j) + 2 + nb}];`).join('\n  ')}
  ${unravel(nb, 'rem', 4, [['ao', 4 + nb], ['bo', 4 + 2 * nb], ...extras.map((_, j) => [`eo${j}`, extraBase(j) + 2] as const)])}
  ars = md[${4 + 3 * nb}]; acs = md[${4 + 3 * nb + 1}];
  brs = md[${4 + 3 * nb + 2}]; bcs = md[${4 + 3 * nb + 3}];
}

${loader('A', v.a, mapA)}
${loader('B', v.b, mapB)}

/** C[row, col] = the epilogue of the product \`acc\`, when inside C. */
fn store(row: u32, col: u32, acc: ${ct}) {
  if (row >= M || col >= N) { return; }
  let x0 = acc;
  ${extras.map((x, j) => `let x${j + 1} = ${x.dtype === 'bool' ? `(e${j}[${extraAt(j)}] != 0u)` : `e${j}[${extraAt(j)}]`};`).join('\n  ')}
  ${rendered ? rendered.body : ''}
  out[ob + row * N + col] = ${rendered ? rendered.result : narrow(dtype, 'acc')};
}

${v.tile === 'small' ? smallMain(ct) : regMain(ct, v)}`;
  return withF16({ key: matmulKey(dtype, nb, exprKey, extras, v), code });
}

/** matmulKernel's key, without building its source. */
export const matmulKey = (dtype: DType, nb: number, exprKey: string, extras: readonly Operand[], v: MatmulVariant): string =>
  `mm|${dtype}|${nb}|${exprKey}|${extras.map((x) => x.dtype).join(',')}|${v.tile}|${loadKey(v.a)}|${loadKey(v.b)}`;

/** The prologue shared by both mains: batch offsets, and K read uniformly (the tile loop holds barriers, so its bound must be uniform). */
const PROLOGUE = `
  setup(wg.z);
  if (li == 0u) { kShared = md[2]; }
  let K = workgroupUniformLoad(&kShared);`;

/** One output per thread, 16x16 tiles of A and B in workgroup memory (scalar or unfold loads). */
function smallMain(ct: string): string {
  return `var<workgroup> As: array<${ct}, 256>;
var<workgroup> Bs: array<${ct}, 256>;
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {${PROLOGUE}
  let row = wg.y * 16u + lid.y;
  let col = wg.x * 16u + lid.x;
  var acc: ${ct} = ${ct}(0);
  for (var k0 = 0u; k0 < K; k0 += 16u) {
    let ak = k0 + lid.x;
    let bk = k0 + lid.y;
    var a = ${ct}(0);
    if (row < M && ak < K) { a = loadA(row, ak); }
    var b = ${ct}(0);
    if (bk < K && col < N) { b = loadB(bk, col); }
    As[lid.y * 16u + lid.x] = a;
    Bs[lid.y * 16u + lid.x] = b;
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      acc = acc + As[lid.y * 16u + kk] * Bs[kk * 16u + lid.x];
    }
    workgroupBarrier();
  }
  store(row, col, acc);
}`;
}

/**
 * A 4x4 register tile per thread over a 64x64 block: As holds the 64x16 slice of A as 16 rows of
 * k of 16 vec4 (4 consecutive rows of C each), Bs the 16x64 slice of B as 16 rows of 16 vec4.
 */
function regMain(ct: string, v: MatmulVariant): string {
  const v4 = `vec4<${ct}>`;
  const loadA = v.a === 'vec4'
    ? `{
      let r = li / 4u;
      let kc = (li % 4u) * 4u;
      var a = ${v4}(${ct}(0));
      if (m0 + r < M && k0 + kc < K) { a = loadA4(m0 + r, k0 + kc); }
      for (var j = 0u; j < 4u; j++) { As[(kc + j) * 16u + r / 4u][r % 4u] = a[j]; }
    }`
    : `for (var i = 0u; i < 4u; i++) {
      let e = li + i * 256u;
      let r = e % 64u;
      let kk = e / 64u;
      var a = ${ct}(0);
      if (m0 + r < M && k0 + kk < K) { a = loadA(m0 + r, k0 + kk); }
      As[kk * 16u + r / 4u][r % 4u] = a;
    }`;
  const loadB = v.b === 'vec4'
    ? `{
      let kk = li / 16u;
      let c4 = li % 16u;
      var b = ${v4}(${ct}(0));
      if (k0 + kk < K && n0 + c4 * 4u < N) { b = loadB4(k0 + kk, n0 + c4 * 4u); }
      Bs[kk * 16u + c4] = b;
    }`
    : `for (var i = 0u; i < 4u; i++) {
      let e = li + i * 256u;
      let c = e % 64u;
      let kk = e / 64u;
      var b = ${ct}(0);
      if (k0 + kk < K && n0 + c < N) { b = loadB(k0 + kk, n0 + c); }
      Bs[kk * 16u + c / 4u][c % 4u] = b;
    }`;
  return `var<workgroup> As: array<${v4}, 256>;
var<workgroup> Bs: array<${v4}, 256>;
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {${PROLOGUE}
  let m0 = wg.y * 64u;
  let n0 = wg.x * 64u;
  var c0 = ${v4}(${ct}(0));
  var c1 = ${v4}(${ct}(0));
  var c2 = ${v4}(${ct}(0));
  var c3 = ${v4}(${ct}(0));
  for (var k0 = 0u; k0 < K; k0 += 16u) {
    ${loadA}
    ${loadB}
    workgroupBarrier();
    for (var kk = 0u; kk < 16u; kk++) {
      let a = As[kk * 16u + lid.y];
      let b = Bs[kk * 16u + lid.x];
      c0 += a.x * b;
      c1 += a.y * b;
      c2 += a.z * b;
      c3 += a.w * b;
    }
    workgroupBarrier();
  }
  let r = m0 + lid.y * 4u;
  let c = n0 + lid.x * 4u;
  for (var j = 0u; j < 4u; j++) {
    store(r, c + j, c0[j]);
    store(r + 1u, c + j, c1[j]);
    store(r + 2u, c + j, c2[j]);
    store(r + 3u, c + j, c3[j]);
  }
}`;
}

/** Where an operand's elements sit: strides of its two matrix dims, of the batch dims, and its offset. */
export interface MatmulOperandLayout {
  readonly rowStride: number;
  readonly colStride: number;
  readonly batchStrides: readonly number[];
  readonly offset: number;
}

/**
 * The 64x64 register tile is used when it still makes this many workgroups; below that the 16x16
 * tile's 16 times more workgroups spread a small product with a long K over more cores.
 */
const REG_MIN_GROUPS = 4;

/**
 * The variant for an M x K @ K x N product on `tile` (chooseTile's). vec4 loads need the contiguous
 * dim's stride 1 and every other stride, the offset and the loaded extent (K for A, N for B)
 * multiples of 4, so that each vec4 is aligned and lies wholly inside or outside the operand;
 * `unfoldA/B` (the unfold's spatial dims) marks an operand read through an unfold's index map.
 */
export function chooseMatmulVariant(dtype: DType, tile: MatmulTile, n: number, k: number, a: MatmulOperandLayout, b: MatmulOperandLayout, unfoldA?: number, unfoldB?: number): MatmulVariant {
  const vec = dtype === 'float32' || dtype === 'int32';
  const aligned = (x: MatmulOperandLayout, inner: number, outer: number, extent: number) =>
    vec && inner === 1 && extent % 4 === 0 && outer % 4 === 0 && x.offset % 4 === 0 && x.batchStrides.every((s) => s % 4 === 0);
  const la: MatmulLoad = unfoldA !== undefined ? { unfoldDims: unfoldA } : aligned(a, a.colStride, a.rowStride, k) ? 'vec4' : 'scalar';
  const lb: MatmulLoad = unfoldB !== undefined ? { unfoldDims: unfoldB } : aligned(b, b.colStride, b.rowStride, n) ? 'vec4' : 'scalar';
  // vec4 loads exist only in the register-tiled kernel.
  return tile === 'reg' ? { tile, a: la, b: lb } : { tile, a: la === 'vec4' ? 'scalar' : la, b: lb === 'vec4' ? 'scalar' : lb };
}

/** The tile shape for `batches` products of M x N. */
export function chooseTile(batches: number, m: number, n: number): MatmulTile {
  return Math.ceil(m / BLOCK.reg) * Math.ceil(n / BLOCK.reg) * batches >= REG_MIN_GROUPS ? 'reg' : 'small';
}

/**
 * How many times the kernel loads each element of an operand: once per block of output along the
 * other operand's free dim (`otherExtent`: N for A, M for B), times the batches it is broadcast over.
 */
export function loadsPerElement(tile: MatmulTile, otherExtent: number, batch: readonly number[], batchStrides: readonly number[]): number {
  const broadcast = batch.reduce((p, d, i) => (batchStrides[i] === 0 ? p * d : p), 1);
  return Math.ceil(otherExtent / BLOCK[tile]) * broadcast;
}

/**
 * An operand is read through an unfold's index map only if each element is loaded at most this many
 * times; otherwise the columns are materialised once. Measured on lavapipe (CPU time, 3x3 convs,
 * 576-long K): loaded once, implicit took 10-25% less than materialising; twice, 15-20% more; four
 * times, 28% more (its integer divisions are dear on a CPU). On an H100, columns loaded once were as
 * fast or faster materialised (bench/RESULTS.md, 'The H100 again'), so implicit GEMM is off by default.
 */
export const MAX_IMPLICIT_LOADS = 1;

/** A short name of a variant ('reg vec4 x unfold2'), for counters and tests. */
export const variantName = (v: MatmulVariant) => `${v.tile} ${loadKey(v.a)} x ${loadKey(v.b)}`;
