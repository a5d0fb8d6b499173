// Wasm SIMD sums (runtime/cpu/wasm/reduce-simd.ts) against the JS reduction kernels (the
// reference): row sums (contiguous reduced elements) and column sums (a strided reduced dim over a
// contiguous kept one), with elementwise prologues, broadcast operands, offsets, odd sizes and
// NaN/inf. Column sums add in the JS order (float64), so they are exact; row sums add four
// interleaved float64 partial sums, so they may differ in a float32 rounding tie: 1e-6 relative.
import { describe, expect, it } from 'vitest';
import { contiguousStrides, E, exprToString, type DType, type Expr } from '../ir/index.js';
import type { Operand } from '../runtime/cpu/elementwise.js';
import { runFusedReduce } from '../runtime/cpu/reduce-fused.js';
import { coalesce } from '../runtime/cpu/strided.js';
import { MIN_SUM_ELEMENTS, runSimdSum } from '../runtime/cpu/wasm/reduce-simd.js';
import { wasmHeap } from '../runtime/cpu/wasm/heap.js';
import { setMinCopyElements } from '../runtime/cpu/wasm/copy-in.js';
import { newHostArray } from '../runtime/host.js';
import type { HostArray } from '../runtime/backend.js';
import { heapArray, rng } from './helpers.js';

const heap = wasmHeap()!;

interface Input { dtype: DType; strides: number[]; offset: number; len: number }

/** Runs the reduction on plain arrays (JS) and on heap arrays; returns [wasm, js, |terms| sum, whether Wasm ran]. */
/** KILN_WASM=0 (a whole run on the JS kernels) keeps every sum on JS. */
const WASM = process.env.KILN_WASM !== '0';

function both(expr: Expr, shape: number[], dims: number[], ins: Input[], r: () => number, specials = false) {
  const plain = ins.map((x) => {
    const a = newHostArray(x.dtype, x.len);
    for (let i = 0; i < x.len; i++) {
      a[i] = x.dtype === 'bool' ? (r() < 0.5 ? 1 : 0) : specials && r() < 0.02 ? [NaN, Infinity, -Infinity][Math.floor(r() * 3)] : Math.fround((r() - 0.5) * 8);
    }
    return a;
  });
  const inHeap = plain.map((a, j) => { const h = heapArray(ins[j].dtype, a.length); h.set(a); return h; });
  const ops = (arrs: HostArray[]): Operand[] => ins.map((x, j) => ({ data: arrs[j], offset: x.offset, strides: x.strides, dtype: x.dtype }));
  const outLen = shape.reduce((p, d, i) => (dims.includes(i) ? p : p * d), 1);
  const pad = 2;
  const js = new Float32Array(outLen);
  const absSum = new Float32Array(outLen);
  // The reference runs on JS: operands outside the heap would otherwise take the Wasm copy-in path.
  const threshold = setMinCopyElements(Infinity);
  try {
    runFusedReduce('sum', expr, shape, dims, ops(plain), js, 0);
    runFusedReduce('sum', E.abs(expr), shape, dims, ops(plain), absSum, 0);
  } finally {
    setMinCopyElements(threshold);
  }
  const out = heapArray('float32', outLen + pad);
  // Did the Wasm path take it? (the same decision runFusedReduce makes)
  const keptDims = shape.map((_, i) => i).filter((i) => !dims.includes(i));
  const kept = coalesce(keptDims.map((d) => shape[d]), ins.map((x) => keptDims.map((d) => x.strides[d])));
  const red = coalesce(dims.map((d) => shape[d]), ins.map((x) => dims.map((d) => x.strides[d])));
  const sig = `test|${exprToString(expr)}|${ins.map((x) => x.dtype)}`;
  const ran = runSimdSum(sig, expr, kept, red, ops(inHeap), out, pad);
  const wasm = out.subarray(pad);
  if (!ran) runFusedReduce('sum', expr, shape, dims, ops(inHeap), wasm, 0);
  return { wasm, js, absSum, ran };
}

function close(a: Float32Array, b: Float32Array, absSum: Float32Array, tol: number): string | null {
  for (let i = 0; i < a.length; i++) {
    if (Object.is(a[i], b[i]) || (a[i] !== a[i] && b[i] !== b[i])) continue;
    if (Math.abs(a[i] - b[i]) <= tol * absSum[i]) continue;
    return `at ${i}: wasm ${a[i]} js ${b[i]} (|terms| ${absSum[i]})`;
  }
  return null;
}

const contiguous = (shape: number[], extra = 0): Input => ({ dtype: 'float32', strides: contiguousStrides(shape), offset: extra, len: shape.reduce((p, d) => p * d, 1) + extra });

describe('Wasm SIMD sums equal the JS reductions', () => {
  it('row sums (last dims reduced) of any length, with offsets and NaN/inf', () => {
    const r = rng(1);
    // Below MIN_SUM_ELEMENTS in all, JS runs (a Wasm call costs more than it saves).
    for (const [rows, n] of [[1, 1], [1, 3], [2, 4], [3, 5], [350, 3], [240, 5], [333, 4], [2000, 1], [10, 97], [17, 101], [7, 1000], [1, 36864]]) {
      for (const offset of [0, 1]) {
        const { wasm, js, absSum, ran } = both(E.input(0), [rows, n], [1], [contiguous([rows, n], offset)], r, true);
        expect(ran, `${rows}x${n}`).toBe(WASM && n > 1 && rows * n >= MIN_SUM_ELEMENTS);
        expect(close(wasm, js, absSum, 1e-6), `${rows}x${n}`).toBeNull();
      }
    }
  });

  it('column sums (first dim reduced over contiguous columns) are exact, the tail columns included', () => {
    const r = rng(2);
    for (const [m, n] of [[64, 100], [64, 10], [3, 4], [333, 7], [200, 13], [400, 5], [1, 9], [1, 3000]]) {
      const { wasm, js, absSum, ran } = both(E.input(0), [m, n], [0], [contiguous([m, n])], r, true);
      expect(ran, `${m}x${n}`).toBe(WASM && m > 1 && m * n >= MIN_SUM_ELEMENTS);
      expect(close(wasm, js, absSum, 0), `${m}x${n}`).toBeNull();
    }
  });

  it('sums with a prologue over broadcast operands: per row, per column, and global scalars', () => {
    const r = rng(3);
    const [A, B] = [37, 61];
    const $0 = E.input(0), $1 = E.input(1), $2 = E.input(2);
    const exprs = [E.mul($0, $1), E.select(E.gt($0, $2), E.neg($1), $2), E.add(E.mul($0, $0), $2)];
    // $1 broadcast along dim 0 (one value per column) or along dim 1 (one per row); $2 a scalar.
    for (const e of exprs) {
      for (const [b1, dims] of [[[0, 1], [1]], [[1, 0], [1]], [[0, 1], [0]], [[1, 0], [0]]] as const) {
        const ins: Input[] = [contiguous([A, B], 1), { dtype: 'float32', strides: [...b1], offset: 0, len: b1[0] ? A : B }, { dtype: 'float32', strides: [0, 0], offset: 0, len: 1 }];
        const { wasm, js, absSum, ran } = both(e, [A, B], [...dims], ins, r);
        expect(ran).toBe(WASM);
        expect(close(wasm, js, absSum, 1e-5), `${exprToString(e)} dims ${dims} $1 strides ${b1}`).toBeNull();
      }
    }
  });

  it('sums of random rank-1..4 shapes over random dims, through runFusedReduce', () => {
    const r = rng(4);
    let wasmRuns = 0;
    for (let t = 0; t < 150; t++) {
      const rank = 1 + Math.floor(r() * 4);
      const shape = Array.from({ length: rank }, () => 1 + Math.floor(r() * 13));
      const dims = shape.map((_, i) => i).filter(() => r() < 0.5);
      if (!dims.length) dims.push(rank - 1);
      // The input is contiguous or a permuted (transposed) view.
      const perm = shape.map((_, i) => i).sort(() => r() - 0.5);
      const permuted = perm.map((p) => shape[p]);
      const pstr = contiguousStrides(permuted);
      const strides = shape.map((_, i) => pstr[perm.indexOf(i)]);
      const input: Input = r() < 0.5 ? contiguous(shape) : { dtype: 'float32', strides, offset: 0, len: shape.reduce((p, d) => p * d, 1) };
      const e = r() < 0.5 ? E.input(0) : E.relu(E.sub(E.input(0), E.const(0.5)));
      const { wasm, js, absSum, ran } = both(e, shape, dims, [input], r);
      expect(close(wasm, js, absSum, 1e-6), `shape ${shape} dims ${dims}`).toBeNull();
      if (ran) wasmRuns++;
    }
    // Many of these shapes take the Wasm path (rows or columns), the rest JS.
    if (process.env.KILN_WASM !== '0') expect(wasmRuns).toBeGreaterThan(5);
  });

  it('leaves int32 results, several reduced dims, and prologues without a Wasm rendering to JS', () => {
    const r = rng(5);
    const ints: Input = { dtype: 'int32', strides: [4, 1], offset: 0, len: 12 };
    const bools: Input = { dtype: 'bool', strides: [4, 1], offset: 0, len: 12 };
    const heapOps = (xs: Input[]): Operand[] => xs.map((x) => ({ data: heapArray(x.dtype, x.len), offset: 0, strides: x.strides, dtype: x.dtype }));
    const loops = (shape: number[], x: Input) => ({ kept: coalesce([shape[0]], [[x.strides[0]]]), red: coalesce([shape[1]], [[x.strides[1]]]) });
    const outF = heapArray('float32', 3), outI = heapArray('int32', 3);
    const l = loops([3, 4], ints);
    expect(runSimdSum('t|int', E.input(0), l.kept, l.red, heapOps([ints]), outI, 0)).toBe(false);
    expect(runSimdSum('t|bool', E.input(0), l.kept, l.red, heapOps([bools]), outI, 0)).toBe(false);
    expect(runSimdSum('t|exp', E.exp(E.input(0)), l.kept, l.red, heapOps([contiguous([3, 4])]), outF, 0)).toBe(false);
    // Several reduced dims after coalescing (a transposed view): JS.
    const { ran, wasm, js, absSum } = both(E.input(0), [3, 4, 5], [0, 2], [{ dtype: 'float32', strides: [1, 15, 3], offset: 0, len: 60 }], r);
    expect(ran).toBe(false);
    expect(close(wasm, js, absSum, 0)).toBeNull();
  });
});
