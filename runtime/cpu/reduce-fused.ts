// A reduction with an elementwise prologue, as one generated loop nest: the compiler fuses
// `sum((a - b)^2)` into a kernel that never writes `(a - b)^2` to memory. Float32 sums over rows
// or columns run in WebAssembly SIMD (wasm/reduce-simd.ts), on heap operands in place and on eager
// ones through a heap scratch area when big enough (wasm/copy-in.ts); this is the reference.
import type { DType, Expr, Reducer } from '../../ir/index.js';
import type { HostArray } from '../backend.js';
import { exprKey, type Operand } from './elementwise.js';
import { renderJs } from './render-js.js';
import { coalesce, kernelTag } from './strided.js';
import { runSimdSum } from './wasm/reduce-simd.js';

type Kernel = (out: HostArray, oo: number, kept: readonly number[], red: readonly number[], ...ins: unknown[]) => void;
const cache = new Map<string, Kernel>();

const INIT: Record<string, string> = { sum: '0', max: '-Infinity', min: 'Infinity', argmax: '-Infinity', argmin: 'Infinity' };
// argmax/argmin keep the row-major index (within the reduced dims) of the first extreme; NaN wins.
const COMBINE: Record<string, (acc: string, v: string) => string> = {
  sum: (acc, v) => `${acc} += ${v};`,
  max: (acc, v) => `if (${v} > ${acc} || ${v} !== ${v}) ${acc} = ${v};`,
  min: (acc, v) => `if (${v} < ${acc} || ${v} !== ${v}) ${acc} = ${v};`,
  argmax: (acc, v) => `if (best < 0 || (${acc} === ${acc} && (${v} > ${acc} || ${v} !== ${v}))) { ${acc} = ${v}; best = count; } count++;`,
  argmin: (acc, v) => `if (best < 0 || (${acc} === ${acc} && (${v} < ${acc} || ${v} !== ${v}))) { ${acc} = ${v}; best = count; } count++;`,
};
const isArg = (r: string) => r === 'argmax' || r === 'argmin';

/**
 * out (contiguous, kept dims in order) = reduce over `dims` of expr(inputs), where every input is
 * a strided view of the pre-reduction `shape`. Every reduction of the CPU backend runs here (a
 * plain one with the identity expression), as one generated loop nest.
 */
export function runFusedReduce(reducer: Reducer, expr: Expr, shape: readonly number[], dims: readonly number[], inputs: readonly Operand[], out: HostArray, outOffset: number): void {
  prepareFusedReduce(reducer, expr, shape, dims, inputs)(inputs, out, outOffset);
}

/**
 * runFusedReduce with the coalesced loops, key and JS kernel fixed once for inputs of these strides
 * and dtypes (a compiled plan's step): the returned call takes each run's operands (same strides
 * and dtypes) and output. The Wasm sum still decides per call (runSimdSum).
 */
export function prepareFusedReduce(reducer: Reducer, expr: Expr, shape: readonly number[], dims: readonly number[], like: readonly { strides: readonly number[]; dtype: DType }[]): (inputs: readonly Operand[], out: HostArray, outOffset: number) => void {
  if (!(reducer in INIT)) throw new Error(`fused reduction: ${reducer} has no fused kernel`);
  const keptDims = shape.map((_, i) => i).filter((i) => !dims.includes(i));
  const kept = coalesce(keptDims.map((d) => shape[d]), like.map((x) => keptDims.map((d) => x.strides[d])));
  const red = coalesce(dims.map((d) => shape[d]), like.map((x) => dims.map((d) => x.strides[d])));
  const sig = `${exprKey(expr)}|${like.map((x) => x.dtype).join(',')}`;
  const key = `${reducer}|${sig}|${kept.shape.length}|${red.shape.length}`;
  let kernel: Kernel | undefined;
  return (inputs, out, outOffset) => {
    // A float32 sum over rows or columns (heap operands, or big enough to copy in): the Wasm SIMD kernel, when the prologue has one.
    if (reducer === 'sum' && runSimdSum(sig, expr, kept, red, inputs, out, outOffset)) return;
    if (!kernel) {
      kernel = cache.get(key);
      if (!kernel) cache.set(key, (kernel = compile(key, reducer, expr, like.map((x) => x.dtype), kept.shape.length, red.shape.length)));
    }
    const args: unknown[] = [];
    inputs.forEach((x, j) => args.push(x.data, x.offset, kept.strides[j], red.strides[j]));
    kernel(out, outOffset, kept.shape, red.shape, ...args);
  };
}

function compile(key: string, reducer: string, expr: Expr, dtypes: readonly DType[], nk: number, nr: number): Kernel {
  const { prelude, body, result } = renderJs(expr, dtypes);
  const n = dtypes.length;
  const params = ['out', 'oo', 'kept', 'red', ...dtypes.flatMap((_, j) => [`a${j}`, `o${j}`, `sk${j}`, `sr${j}`])];
  const decl: string[] = [];
  for (let d = 0; d < nk; d++) {
    decl.push(`const nk_${d} = kept[${d}];`);
    for (let j = 0; j < n; j++) decl.push(`const sk${j}_${d} = sk${j}[${d}];`);
  }
  for (let d = 0; d < nr; d++) {
    decl.push(`const nr_${d} = red[${d}];`);
    for (let j = 0; j < n; j++) decl.push(`const sr${j}_${d} = sr${j}[${d}];`);
  }
  const loads = dtypes.map((_, j) => `const x${j} = a${j}[q${j}_${nr}];`).join('\n');
  // Reduced loops: pointers q{j}_{d}, starting at the kept position p{j}_{nk}.
  let inner = `${loads}\n${body}\n${COMBINE[reducer]('acc', result)}`;
  for (let d = nr - 1; d >= 0; d--) {
    const init = dtypes.map((_, j) => `q${j}_${d + 1} = q${j}_${d}`).join(', ');
    const step = dtypes.map((_, j) => `q${j}_${d + 1} += sr${j}_${d}`).join(', ');
    inner = `for (let r${d} = 0${init ? `, ${init}` : ''}; r${d} < nr_${d}; r${d}++${step ? `, ${step}` : ''}) {\n${inner}\n}`;
  }
  const startQ = dtypes.map((_, j) => `q${j}_0 = p${j}_${nk}`).join(', ');
  const init = isArg(reducer) ? `let acc = ${INIT[reducer]}, best = -1, count = 0;` : `let acc = ${INIT[reducer]};`;
  let outer = `${init}\n${startQ ? `let ${startQ};` : ''}\n${inner}\nout[oo++] = ${isArg(reducer) ? 'best' : 'acc'};`;
  for (let d = nk - 1; d >= 0; d--) {
    const init = dtypes.map((_, j) => `p${j}_${d + 1} = p${j}_${d}`).join(', ');
    const step = dtypes.map((_, j) => `p${j}_${d + 1} += sk${j}_${d}`).join(', ');
    outer = `for (let k${d} = 0${init ? `, ${init}` : ''}; k${d} < nk_${d}; k${d}++${step ? `, ${step}` : ''}) {\n${outer}\n}`;
  }
  const start = dtypes.map((_, j) => `p${j}_0 = o${j}`).join(', ');
  const code = `${decl.join('\n')}\n${prelude}\n${start ? `let ${start};` : ''}\n${outer}`;
  return new Function(...params, code + kernelTag('reduce', key)) as Kernel;
}
