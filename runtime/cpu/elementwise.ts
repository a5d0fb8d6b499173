// Elementwise kernels: the op's scalar expression rendered to JS (render-js.ts) inside loops
// generated for the operands' strides, compiled once per (expression, dtypes, loop shape) with
// `new Function`. Strided and broadcast (stride 0) views are read in place, never copied.
// Float32 work takes the WebAssembly SIMD kernel of the same expression instead
// (wasm/elementwise-simd.ts) where it has one: on operands in the Wasm heap in place, and on eager
// (plain typed array) operands through a reusable heap scratch area when the work is big enough
// (wasm/copy-in.ts). This JS kernel is the reference (KILN_WASM=0).
import { exprToString, type DType, type Expr } from '../../ir/index.js';
import type { HostArray } from '../backend.js';
import { renderJs } from './render-js.js';
import { coalesce, kernelTag } from './strided.js';
import { prepareSimdElementwise, runSimdElementwise } from './wasm/elementwise-simd.js';

export interface Operand {
  readonly data: HostArray;
  readonly offset: number;
  readonly strides: readonly number[];
  readonly dtype: DType;
}

type Kernel = (out: HostArray, outOff: number, outStrides: readonly number[], shape: readonly number[], ...ins: unknown[]) => void;

const cache = new Map<string, Kernel>();

// An op's expression object is built once per (op, arity, attributes) and reused, so its key string is too.
const exprKeys = new WeakMap<Expr, string>();
/** exprToString(expr), memoized by the expression object. */
export function exprKey(expr: Expr): string {
  let k = exprKeys.get(expr);
  if (k === undefined) {
    k = exprToString(expr);
    exprKeys.set(expr, k);
  }
  return k;
}

/** The loop of an elementwise kernel: the coalesced shape and strides, and what names its kernels. */
interface Loop {
  readonly merged: { readonly shape: readonly number[]; readonly strides: readonly (readonly number[])[] };
  /** The expression and dtypes (the Wasm kernel's key, with its lane modes). */
  readonly sig: string;
  /** The JS kernel's key. */
  readonly key: string;
  readonly flat: boolean;
  readonly scalars: readonly boolean[];
}

function loopOf(expr: Expr, shape: readonly number[], out: { strides: readonly number[]; dtype: DType }, inputs: readonly { strides: readonly number[]; dtype: DType }[]): Loop {
  const merged = coalesce(shape, [out.strides, ...inputs.map((x) => x.strides)]);
  const ndim = merged.shape.length;
  // One flat loop when the output is contiguous and every input is too or is a broadcast scalar
  // (stride 0: loaded once, before the loop).
  const flat = ndim === 0 || (ndim === 1 && merged.strides[0][0] === 1 && merged.strides.every((s) => s[0] === 1 || s[0] === 0));
  const scalars = flat ? inputs.map((_, j) => ndim === 0 || merged.strides[j + 1][0] === 0) : [];
  const sig = `${exprKey(expr)}|${inputs.map((x) => x.dtype).join(',')}>${out.dtype}`;
  return { merged, sig, key: `${sig}|${flat ? `flat${scalars.map(Number).join('')}` : ndim}`, flat, scalars };
}

/** The JS kernel of `loop`, compiled on first use. */
function jsKernel(loop: Loop, expr: Expr, outDtype: DType, inDtypes: readonly DType[]): Kernel {
  let kernel = cache.get(loop.key);
  if (!kernel) {
    kernel = compile(loop.key, expr, inDtypes, outDtype, loop.flat ? -1 : loop.merged.shape.length, loop.scalars);
    cache.set(loop.key, kernel);
  }
  return kernel;
}

function runJs(kernel: Kernel, merged: Loop['merged'], out: Operand, inputs: readonly Operand[]): void {
  const args: unknown[] = [];
  inputs.forEach((x, j) => args.push(x.data, x.offset, merged.strides[j + 1]));
  kernel(out.data, out.offset, merged.strides[0], merged.shape, ...args);
}

/** out[i] = expr(inputs[0][i], inputs[1][i], ...) over `shape`, for any strides. */
export function runElementwise(expr: Expr, shape: readonly number[], out: Operand, inputs: readonly Operand[]): void {
  const loop = loopOf(expr, shape, out, inputs);
  // Innermost dim contiguous or broadcast, operands in the Wasm heap or worth copying in: the SIMD kernel, when the expression has one.
  if (runSimdElementwise(loop.sig, expr, loop.merged, out, inputs)) return;
  runJs(jsKernel(loop, expr, out.dtype, inputs.map((x) => x.dtype)), loop.merged, out, inputs);
}

/**
 * runElementwise for one step of a compiled plan, whose shapes, strides and dtypes never change:
 * the loop and kernels are chosen once, and `operands()` gives each call's arrays and offsets
 * (output first). The Wasm kernel runs in place when every operand lies in the heap; anything
 * else takes runElementwise's general path.
 */
export function prepareElementwise(expr: Expr, shape: readonly number[], out: { strides: readonly number[]; dtype: DType }, inputs: readonly { strides: readonly number[]; dtype: DType }[], operands: () => [Operand, Operand[]]): () => void {
  const loop = loopOf(expr, shape, out, inputs);
  const inDtypes = inputs.map((x) => x.dtype);
  const simd = prepareSimdElementwise(loop.sig, expr, loop.merged, out.dtype, inDtypes);
  let js: Kernel | undefined;
  return () => {
    const [o, ins] = operands();
    // No Wasm kernel for this loop: the general path could not find one either.
    if (simd && (simd.run(o, ins) || runSimdElementwise(loop.sig, expr, loop.merged, o, ins))) return;
    runJs((js ??= jsKernel(loop, expr, out.dtype, inDtypes)), loop.merged, o, ins);
  };
}

/** ndim -1: one flat loop; `scalars[j]`: input j is a broadcast scalar, loaded before the loop. */
function compile(key: string, expr: Expr, inDtypes: readonly DType[], outDtype: DType, ndim: number, scalars: readonly boolean[]): Kernel {
  const { prelude, body, result, kind } = renderJs(expr, inDtypes);
  // A bool output stores 0/1: a 0/1 result as is, another by its truthiness (`!!`: no branch).
  const store = outDtype !== 'bool' || kind === 'b' ? result : `+!!${result}`;
  const n = inDtypes.length;
  const params = ['out', 'oo', 'os', 'shape', ...inDtypes.flatMap((_, j) => [`a${j}`, `o${j}`, `s${j}`])];
  const ptrs = ['po', ...inDtypes.map((_, j) => `p${j}`)];
  const strideOf = (p: string, d: number) => (p === 'po' ? `os_${d}` : `s${p.slice(1)}_${d}`);
  let code: string;
  if (ndim < 0) {
    const hoisted = inDtypes.map((_, j) => (scalars[j] ? `const x${j} = a${j}[o${j}];` : '')).join('\n');
    const loads = inDtypes.map((_, j) => (scalars[j] ? '' : `const x${j} = a${j}[o${j} + i];`)).join('\n');
    code = `const len = shape.length ? shape[0] : 1;\n${prelude}\n${hoisted}\nfor (let i = 0; i < len; i++) {\n${loads}\n${body}\nout[oo + i] = ${store};\n}`;
  } else {
    const decls: string[] = [];
    for (let d = 0; d < ndim; d++) {
      decls.push(`const n_${d} = shape[${d}], os_${d} = os[${d}];`);
      for (let j = 0; j < n; j++) decls.push(`const s${j}_${d} = s${j}[${d}];`);
    }
    const loads = inDtypes.map((_, j) => `const x${j} = a${j}[p${j}_${ndim}];`).join('\n');
    let inner = `${loads}\n${body}\nout[po_${ndim}] = ${store};`;
    for (let d = ndim - 1; d >= 0; d--) {
      const init = ptrs.map((p) => `${p}_${d + 1} = ${p}_${d}`).join(', ');
      const step = ptrs.map((p) => `${p}_${d + 1} += ${strideOf(p, d)}`).join(', ');
      inner = `for (let i${d} = 0, ${init}; i${d} < n_${d}; i${d}++, ${step}) {\n${inner}\n}`;
    }
    const start = `let po_0 = oo${inDtypes.map((_, j) => `, p${j}_0 = o${j}`).join('')};`;
    code = `${decls.join('\n')}\n${prelude}\n${start}\n${inner}`;
  }
  return new Function(...params, code + kernelTag('elementwise', key)) as Kernel;
}
