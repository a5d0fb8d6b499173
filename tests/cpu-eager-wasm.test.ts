// The copy-in path (runtime/cpu/wasm/copy-in.ts): float32 elementwise kernels and sums whose
// operands or output lie outside the Wasm heap (eager tensors) run the Wasm kernel on copies in a
// reusable heap scratch area once the work is big enough. Checked against the JS kernels (the
// reference: the same call with the copy-in path off) and against the same Wasm kernel on operands
// that all lie in the heap (bit for bit), on random sizes around the threshold, operands partly in
// and partly out of the heap, sliced (row-strided), broadcast and scalar operands, offsets, an
// output aliasing an input, and KILN_WASM=0.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { E, exprToString, type Expr } from '../ir/index.js';
import { runElementwise, type Operand } from '../runtime/cpu/elementwise.js';
import { runFusedReduce } from '../runtime/cpu/reduce-fused.js';
import { copyInThreshold, copyMisalignment, scratchBytes, scratchUses, setMinCopyElements, stage } from '../runtime/cpu/wasm/copy-in.js';
import { runSimdElementwise } from '../runtime/cpu/wasm/elementwise-simd.js';
import { wasmHeap } from '../runtime/cpu/wasm/heap.js';
import { heapArray, rng } from './helpers.js';

const heap = wasmHeap()!;
const WASM = process.env.KILN_WASM !== '0';
const T = 4096; // the threshold these tests run at (the default, set explicitly)
let saved = 0;
beforeAll(() => { saved = setMinCopyElements(T); });
afterAll(() => { setMinCopyElements(saved); });

const SPECIALS = [NaN, Infinity, -Infinity, -0, 0, 1e30, -1e30];
const value = (r: () => number) => (r() < 0.02 ? SPECIALS[Math.floor(r() * SPECIALS.length)] : Math.fround((r() - 0.5) * 8));
const same = (a: number, b: number) => Object.is(a, b) || (a !== a && b !== b);

/** The JS kernels: the same call with the copy-in path off and every array outside the heap. */
function withoutCopyIn<R>(f: () => R): R {
  const prev = setMinCopyElements(Infinity);
  try {
    return f();
  } finally {
    setMinCopyElements(prev);
  }
}

/** A float32 array of `len`, outside the heap (a plain typed array) or in it. */
function array(len: number, inHeap: boolean): Float32Array {
  return inHeap ? heapArray('float32', len) : new Float32Array(len);
}

/** How an operand of a [rows, cols] loop is laid out. */
type Layout = 'contig' | 'sliced' | 'rowBcast' | 'colBcast' | 'scalar';

interface Spec { strides: number[]; offset: number; len: number }
function spec(layout: Layout, rows: number, cols: number, r: () => number): Spec {
  const offset = Math.floor(r() * 5);
  switch (layout) {
    case 'contig': return { strides: [cols, 1], offset, len: offset + rows * cols };
    case 'sliced': { const ld = cols + 1 + Math.floor(r() * 9); return { strides: [ld, 1], offset, len: offset + (rows - 1) * ld + cols }; }
    case 'rowBcast': return { strides: [0, 1], offset, len: offset + cols }; // one row for all rows (a bias)
    case 'colBcast': return { strides: [1, 0], offset, len: offset + rows }; // one value per row
    case 'scalar': return { strides: [0, 0], offset, len: offset + 1 };
  }
}

// Expressions the Wasm kernels compute exactly as JS (one rounding op at most), and two that differ in the last ulps (exp, sigmoid).
const $0 = E.input(0), $1 = E.input(1), $2 = E.input(2);
const EXACT: Expr[][] = [
  [E.add($0, $1)], [E.mul($0, $1)], [E.sub($0, $1)], [E.relu($0)], [E.neg($0)], [E.max($0, $1)],
  [E.select(E.gt($0, $1), $2, E.neg($0))], [E.mul(E.relu($0), $1)],
];
const INEXACT: Expr[] = [E.exp($0), E.sigmoid($0)];
const arity = (e: Expr): number => (exprToString(e).includes('$2') ? 3 : exprToString(e).includes('$1') ? 2 : 1);

describe('eager elementwise kernels through the copy-in path', () => {
  it('equal the JS kernels and the all-in-heap Wasm kernel, around the threshold, operands partly in and out of the heap', () => {
    const r = rng(7);
    const layouts: Layout[] = ['contig', 'contig', 'sliced', 'rowBcast', 'colBcast', 'scalar'];
    let copied = 0, cases = 0;
    for (let t = 0; t < 160; t++) {
      const exact = t % 5 !== 4;
      const expr = exact ? EXACT[t % EXACT.length][0] : INEXACT[t % 2];
      const k = arity(expr);
      // Sizes around the threshold: a flat vector or rows x cols.
      const total = Math.floor(T * (0.5 + 1.5 * r()));
      const cols = r() < 0.3 ? total : 4 + Math.floor(r() * 300);
      const rows = Math.max(1, Math.floor(total / cols));
      const shape = [rows, cols];
      const inSpecs = Array.from({ length: k }, (_, j) => spec(j === 0 && r() < 0.5 ? 'contig' : layouts[Math.floor(r() * layouts.length)], rows, cols, r));
      const inHeap = inSpecs.map(() => r() < 0.3);
      const outSpec = spec(r() < 0.8 ? 'contig' : 'sliced', rows, cols, r);
      const outInHeap = r() < 0.3;
      const values = inSpecs.map((s) => Float32Array.from({ length: s.len }, () => value(r)));
      const sentinel = Float32Array.from({ length: outSpec.len }, () => 12345);
      const ops = (place: (j: number) => boolean): Operand[] => inSpecs.map((s, j) => {
        const data = array(s.len, place(j));
        data.set(values[j]);
        return { data, offset: s.offset, strides: s.strides, dtype: 'float32' };
      });
      const outOp = (inH: boolean): Operand & { data: Float32Array } => {
        const data = array(outSpec.len, inH);
        data.set(sentinel);
        return { data, offset: outSpec.offset, strides: outSpec.strides, dtype: 'float32' };
      };
      // The reference (JS) and the in-heap Wasm kernel.
      const js = outOp(false);
      withoutCopyIn(() => runElementwise(expr, shape, js, ops(() => false)));
      const wasmRef = outOp(true);
      runElementwise(expr, shape, wasmRef, ops(() => true));
      // The case: each operand in or out of the heap as drawn.
      const out = outOp(outInHeap);
      const before = scratchUses();
      runElementwise(expr, shape, out, ops((j) => inHeap[j]));
      const usedCopy = scratchUses() > before;
      cases++;
      if (usedCopy) copied++;
      const label = `${exprToString(expr)} ${rows}x${cols} in ${inSpecs.map((s, j) => `${s.strides}${inHeap[j] ? 'H' : ''}`)} out ${outSpec.strides}${outInHeap ? 'H' : ''}`;
      // Only operands outside the heap use scratch; below the threshold a big outside one keeps JS.
      if (!WASM) expect(usedCopy, label).toBe(false);
      // The copy-in path runs the very kernel the in-heap operands run: bit for bit. Exact
      // families equal JS; exp and sigmoid within a few ulps. (One expect per case: per element is slow.)
      let bad: string | null = null;
      for (let i = 0; i < outSpec.len && !bad; i++) {
        const a = out.data[i], w = wasmRef.data[i], b = js.data[i];
        if (usedCopy ? !same(a, w) : !same(a, w) && !same(a, b)) bad = `at ${i}: ${a} vs in-heap Wasm ${w}`;
        else if (exact ? !same(a, b) : !same(a, b) && !(Math.abs(a - b) <= 4e-7 * Math.abs(b))) bad = `at ${i}: ${a} vs JS ${b}`;
      }
      expect(bad, label).toBeNull();
    }
    if (WASM) expect(copied).toBeGreaterThan(cases / 4);
  });

  it('copies each operand to the same 8-byte alignment as its source (V8 copies misaligned ones byte by byte), and back', () => {
    const src = Float32Array.from({ length: 301 }, (_, i) => i + 0.5);
    const out = new Float32Array(301);
    for (const [lo, hi] of [[0, 100], [1, 100], [3, 301], [2, 3]] as const) {
      out.fill(-1);
      const staged = stage(heap, [
        { data: src, lo, hi, read: true, write: false },
        { data: new Int32Array(7), lo: 1, hi: 6, read: true, write: false },
        { data: out, lo, hi, read: false, write: true },
      ]);
      // Where each copy starts: its element 0's address (staged.at) plus its first element's offset.
      expect((staged.at[0] + lo * 4) % 8, `source at ${lo}`).toBe(copyMisalignment(src, lo));
      expect((staged.at[1] + 4) % 8).toBe(copyMisalignment(new Int32Array(7), 1));
      expect((staged.at[2] + lo * 4) % 8).toBe(copyMisalignment(out, lo));
      // The copy holds the source's values; what the kernel would write goes back to out's span only.
      const copied = new Float32Array(heap.buffer, staged.at[0] + lo * 4, hi - lo);
      expect(Array.from(copied)).toEqual(Array.from(src.subarray(lo, hi)));
      new Float32Array(heap.buffer, staged.at[2] + lo * 4, hi - lo).set(copied);
      staged.done();
      out.forEach((v, i) => expect(v, `out[${i}]`).toBe(i >= lo && i < hi ? src[i] : -1));
    }
  });

  it('copies in a strided view spanning up to 8x its elements (a 2x2 max-pool tap), equal to JS', () => {
    // A [4, 8, 24, 24] tensor's tap (1, 1) of 2x2 windows: [4, 8, 12, 12] at offset 25, strides (4608, 576, 48, 2): a ~4x span.
    const r = rng(12);
    const x = Float32Array.from({ length: 4 * 8 * 24 * 24 }, () => value(r));
    const tap: Operand = { data: x, offset: 25, strides: [576, 48, 2], dtype: 'float32' };
    const other: Operand = { data: Float32Array.from({ length: 32 * 144 }, () => value(r)), offset: 0, strides: [144, 12, 1], dtype: 'float32' };
    const shape = [32, 12, 12];
    const expr = E.select(E.gt($0, $1), $0, $1);
    const js = new Float32Array(32 * 144), out = new Float32Array(32 * 144);
    const outOp = (data: Float32Array): Operand => ({ data, offset: 0, strides: [144, 12, 1], dtype: 'float32' });
    withoutCopyIn(() => runElementwise(expr, shape, outOp(js), [tap, other]));
    const before = scratchUses();
    runElementwise(expr, shape, outOp(out), [tap, other]);
    if (WASM) expect(scratchUses()).toBeGreaterThan(before);
    let bad = -1;
    for (let i = 0; i < out.length && bad < 0; i++) if (!same(out[i], js[i])) bad = i;
    expect(bad).toBe(-1);
  });

  it('takes the copy-in path for big plain operands and output, and JS below the threshold', () => {
    const expr = E.add($0, $1);
    for (const n of [T - 1, T, 3 * T + 5]) {
      const a = Float32Array.from({ length: n }, (_, i) => i * 0.5), b = Float32Array.from({ length: n }, (_, i) => -i);
      const out = new Float32Array(n);
      const flat = (data: Float32Array): Operand => ({ data, offset: 0, strides: [1], dtype: 'float32' });
      const merged = { shape: [n], strides: [[1], [1], [1]] };
      const ran = runSimdElementwise(`eager-test|${n}`, expr, merged, flat(out), [flat(a), flat(b)]);
      expect(ran).toBe(WASM && n >= T);
      if (ran) for (let i = 0; i < n; i++) expect(out[i]).toBe(Math.fround(i * 0.5 - i));
    }
  });

  it('an output that is also an input outside the heap (an in-place update) is read before it is written', () => {
    const r = rng(11);
    const n = 2 * T + 3;
    const a0 = Float32Array.from({ length: n }, () => value(r)), b = Float32Array.from({ length: n }, () => value(r));
    const a = a0.slice();
    const op = (data: Float32Array): Operand => ({ data, offset: 0, strides: [1], dtype: 'float32' });
    const expr = E.sub($0, E.mul($1, E.const(0.5)));
    runElementwise(expr, [n], op(a), [op(a), op(b)]);
    const ref = new Float32Array(n);
    withoutCopyIn(() => runElementwise(expr, [n], op(ref), [op(a0), op(b)]));
    for (let i = 0; i < n; i++) expect(same(a[i], ref[i]), `at ${i}`).toBe(true);
  });

  it('reuses one scratch area (no block per call) and frees a large one after the call', () => {
    const n = 5 * T;
    const a = new Float32Array(n).fill(1), out = new Float32Array(n);
    const op = (data: Float32Array): Operand => ({ data, offset: 0, strides: [1], dtype: 'float32' });
    runElementwise(E.exp($0), [n], op(out), [op(a)]);
    const blocks = heap.stats().blocks;
    for (let i = 0; i < 50; i++) runElementwise(E.exp($0), [n], op(out), [op(a)]);
    expect(heap.stats().blocks).toBe(blocks);
    if (WASM) expect(scratchBytes(wasmHeap()!)).toBeGreaterThanOrEqual(2 * n * 4);
    // 2 x 24 MiB: past the bound kept between calls.
    const big = 6 << 20;
    const x = new Float32Array(big), y = new Float32Array(big);
    runElementwise(E.relu($0), [big], op(y), [op(x)]);
    expect(scratchBytes(wasmHeap()!)).toBeLessThanOrEqual(16 << 20);
    expect(heap.stats().blocks).toBeLessThanOrEqual(blocks);
  });
});

describe('eager sums through the copy-in path', () => {
  it('equal the JS reductions (columns of a plain input exactly, else within rounding) and the in-heap Wasm sum bit for bit', () => {
    const r = rng(3);
    let copied = 0;
    const exprs: Expr[] = [$0, E.mul($0, $1), E.relu(E.sub($0, $1))];
    for (let t = 0; t < 90; t++) {
      const expr = exprs[t % exprs.length];
      const k = arity(expr);
      const total = Math.floor(T * (0.5 + 1.5 * r()));
      const cols = 4 + Math.floor(r() * 200);
      const rows = Math.max(1, Math.floor(total / cols));
      const shape = [rows, cols];
      const dims = [r() < 0.5 ? 1 : 0];
      const layouts: Layout[] = ['contig', 'contig', 'sliced', 'rowBcast', 'colBcast'];
      const inSpecs = Array.from({ length: k }, (_, j) => spec(j === 0 ? (r() < 0.7 ? 'contig' : 'sliced') : layouts[Math.floor(r() * layouts.length)], rows, cols, r));
      const inHeap = inSpecs.map(() => r() < 0.3);
      const values = inSpecs.map((s) => Float32Array.from({ length: s.len }, () => (r() < 0.01 ? NaN : Math.fround((r() - 0.5) * 8))));
      const outLen = dims[0] === 1 ? rows : cols;
      const pad = Math.floor(r() * 3);
      const ops = (place: (j: number) => boolean): Operand[] => inSpecs.map((s, j) => {
        const data = array(s.len, place(j));
        data.set(values[j]);
        return { data, offset: s.offset, strides: s.strides, dtype: 'float32' };
      });
      const js = new Float32Array(outLen + pad), absSum = new Float32Array(outLen + pad);
      withoutCopyIn(() => {
        runFusedReduce('sum', expr, shape, dims, ops(() => false), js, pad);
        runFusedReduce('sum', E.abs(expr), shape, dims, ops(() => false), absSum, pad);
      });
      const wasmRef = array(outLen + pad, true).fill(7);
      runFusedReduce('sum', expr, shape, dims, ops(() => true), wasmRef, pad);
      const out = array(outLen + pad, r() < 0.3).fill(7);
      const before = scratchUses();
      runFusedReduce('sum', expr, shape, dims, ops((j) => inHeap[j]), out, pad);
      if (scratchUses() > before) copied++;
      const label = `${exprToString(expr)} ${rows}x${cols} dims ${dims} in ${inSpecs.map((s, j) => `${s.strides}${inHeap[j] ? 'H' : ''}`)}`;
      for (let i = 0; i < pad; i++) expect(out[i], label).toBe(7);
      const usedCopy = scratchUses() > before;
      let bad: string | null = null;
      for (let i = pad; i < outLen + pad && !bad; i++) {
        if (usedCopy ? !same(out[i], wasmRef[i]) : !same(out[i], wasmRef[i]) && !same(out[i], js[i])) bad = `at ${i}: ${out[i]} vs in-heap ${wasmRef[i]}`;
        // Column sums of a plain input are exact; a row sum adds in another order, and a prologue rounds in float32.
        const tol = dims[0] === 0 && expr === $0 ? 0 : 1e-6 * absSum[i];
        if (!bad && !same(out[i], js[i]) && !(Math.abs(out[i] - js[i]) <= tol)) bad = `at ${i}: ${out[i]} vs JS ${js[i]}`;
      }
      expect(bad, label).toBeNull();
    }
    if (WASM) expect(copied).toBeGreaterThan(20);
    else expect(copied).toBe(0);
  });
});

describe('KILN_WASM=0', () => {
  it('keeps eager kernels and sums on JS (no copy-in)', async () => {
    vi.stubEnv('KILN_WASM', '0');
    vi.resetModules();
    try {
      const ew = await import('../runtime/cpu/elementwise.js');
      const rf = await import('../runtime/cpu/reduce-fused.js');
      const ci = await import('../runtime/cpu/wasm/copy-in.js');
      ci.setMinCopyElements(1);
      const n = 4 * T;
      const a = new Float32Array(n).fill(0.25), out = new Float32Array(n), s = new Float32Array(1);
      const op = (data: Float32Array): Operand => ({ data, offset: 0, strides: [1], dtype: 'float32' });
      ew.runElementwise(E.exp($0), [n], op(out), [op(a)]);
      rf.runFusedReduce('sum', $0, [n], [0], [op(a)], s, 0);
      expect(ci.scratchUses()).toBe(0);
      expect(out[0]).toBe(Math.fround(Math.exp(0.25)));
      expect(s[0]).toBe(n * 0.25);
    } finally {
      vi.unstubAllEnvs();
      vi.resetModules();
    }
    expect(copyInThreshold()).toBe(T);
  });
});
