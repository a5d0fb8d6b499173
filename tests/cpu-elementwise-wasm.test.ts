// Wasm SIMD elementwise kernels (runtime/cpu/wasm/elementwise-simd.ts) against the JS kernels
// (the reference) on random expressions built from ir/expr.ts nodes, random sizes (1, primes,
// non-multiples of 4), broadcast scalars, offsets, and NaN/inf/-0 inputs.
//
// JS computes a fused expression's intermediates in float64 and rounds once at the store; Wasm
// rounds every float op to float32. So the bit-exact families keep at most one rounding op on any
// path, with only rounding-transparent ops (neg, abs, relu, max, min, select) above it; a last
// family checks deep arithmetic within float32 tolerance on positive values.
import { describe, expect, it, vi } from 'vitest';
import { contiguousStrides, E, exprToString, type DType, type Expr } from '../ir/index.js';
import { runElementwise, type Operand } from '../runtime/cpu/elementwise.js';
import { compileSimdElementwise, MIN_WASM_ELEMENTS, runSimdElementwise } from '../runtime/cpu/wasm/elementwise-simd.js';
import type { LaneMode } from '../runtime/cpu/wasm/simd-lanes.js';
import { wasmHeap } from '../runtime/cpu/wasm/heap.js';
import { newHostArray } from '../runtime/host.js';
import { coalesce } from '../runtime/cpu/strided.js';
import type { HostArray } from '../runtime/backend.js';
import { heapArray, rng } from './helpers.js';

const heap = wasmHeap()!;

const SIZES = [1, 2, 3, 4, 5, 7, 8, 13, 31, 64, 97, 257];
const FLOAT_SPECIALS = [NaN, Infinity, -Infinity, -0, 0, 2 ** 31, -(2 ** 31), 4.5e9, -3e9, 1e20, 0.5, -0.5, 2.5, -1.5];

interface Leaf { dtype: DType; scalar: boolean }

function value(r: () => number, d: DType, bigInts: boolean): number {
  if (d === 'bool') return r() < 0.5 ? 1 : 0;
  if (d === 'int32') {
    if (bigInts) return r() < 0.2 ? [0, 2147483647, -2147483647, 65536, -65535][Math.floor(r() * 5)] : Math.floor((r() - 0.5) * 2 ** 31);
    return Math.floor((r() - 0.5) * 4096);
  }
  if (r() < 0.25) return FLOAT_SPECIALS[Math.floor(r() * FLOAT_SPECIALS.length)];
  return Math.fround(r() < 0.3 ? Math.round((r() - 0.5) * 16) : (r() - 0.5) * 16);
}

/** Float constants exact in float32, so JS and Wasm see the same value (integers are int constants in both). */
const CONSTS = [0.5, 3.25, -0.75, -2.5];

/** Operands: plain arrays for the JS reference, heap arrays (offset by `pad` elements) for Wasm. */
function operands(r: () => number, leaves: Leaf[], n: number, bigInts: boolean, pad: number) {
  return leaves.map((l) => {
    const len = l.scalar ? 1 : n;
    const plain = newHostArray(l.dtype, len);
    for (let i = 0; i < len; i++) plain[i] = value(r, l.dtype, bigInts);
    const inHeap = heapArray(l.dtype, len + pad);
    inHeap.set(plain, pad);
    return { plain, inHeap };
  });
}

function same(a: number, b: number): boolean {
  return Object.is(a, b) || (a !== a && b !== b);
}

/** Runs `expr` both ways and returns the first mismatch, or null. */
function compare(expr: Expr, leaves: Leaf[], outDtype: DType, n: number, r: () => number, opts: { bigInts?: boolean; tol?: number } = {}): string | null {
  const pad = Math.floor(r() * 3); // element offsets 0..2: unaligned addresses
  const ops = operands(r, leaves, n, opts.bigInts ?? false, pad);
  const shape = [n];
  const view = (data: HostArray, dtype: DType, scalar: boolean, offset: number): Operand => ({ data, offset, strides: scalar ? [0] : contiguousStrides(shape), dtype });
  const ref = newHostArray(outDtype, n);
  runElementwise(expr, shape, view(ref, outDtype, false, 0), ops.map((o, j) => view(o.plain, leaves[j].dtype, leaves[j].scalar, 0)));
  const out = heapArray(outDtype, n + pad);
  const modes = leaves.map((l): LaneMode => (l.scalar ? 'c' : 'v'));
  const key = `test|${exprToString(expr)}|${leaves.map((l) => l.dtype)}>${outDtype}|${modes.join('')}`;
  const kernel = compileSimdElementwise(key, expr, leaves.map((l) => l.dtype), outDtype, modes);
  if (!kernel) return `no Wasm kernel for ${key}`;
  // One row of n: (n, rows, planes, out, out row and plane strides, then a value or an address, row and plane strides per input).
  const args = ops.flatMap((o, j) => (leaves[j].scalar ? [o.inHeap[pad]] : [heap.addressOf(o.inHeap) + pad * o.inHeap.BYTES_PER_ELEMENT, 0, 0]));
  kernel(n, 1, 1, heap.addressOf(out) + pad * out.BYTES_PER_ELEMENT, 0, 0, ...args);
  for (let i = 0; i < n; i++) {
    const a = out[pad + i], b = ref[i];
    const ok = opts.tol === undefined ? same(a, b) : same(a, b) || Math.abs(a - b) <= opts.tol * Math.abs(b);
    if (!ok) {
      const ins = ops.map((o, j) => o.plain[leaves[j].scalar ? 0 : i]);
      return `${key} n=${n} at ${i}: wasm ${a} js ${b}; inputs ${ins.join(', ')}`;
    }
  }
  // The tail must not write past the output.
  return null;
}

/**
 * Random expressions whose every node is exact in both (no float rounding below the root):
 * comparisons, logic, casts, floor/ceil, neg/abs/relu, max/min, select, small-int arithmetic.
 */
class Gen {
  leaves: Leaf[] = [];
  constructor(private readonly r: () => number) {}
  pick<T>(xs: readonly T[]): T { return xs[Math.floor(this.r() * xs.length)]; }
  input(dtype: DType): Expr {
    this.leaves.push({ dtype, scalar: this.r() < 0.25 });
    return E.input(this.leaves.length - 1);
  }
  /** An exact expression of the given lane kind ('f' float32 values, 'i' small ints, 'b' 0/1). */
  exact(kind: 'f' | 'i' | 'b', depth: number): Expr {
    const r = this.r;
    if (depth <= 0 || r() < 0.2) {
      if (kind === 'f') return r() < 0.15 ? E.const(this.pick(CONSTS)) : this.input('float32');
      if (kind === 'i') return r() < 0.15 ? E.const(this.pick([0, 1, -3, 100])) : this.input('int32');
      return this.input('bool');
    }
    const d = depth - 1;
    const any = (): 'f' | 'i' | 'b' => this.pick(['f', 'i', 'b'] as const);
    if (kind === 'b') {
      switch (this.pick(['cmp', 'logic', 'not', 'isnan', 'castb', 'selb'])) {
        case 'cmp': {
          const k = any();
          return E[this.pick(['lt', 'le', 'gt', 'ge', 'eq', 'ne'] as const)](this.exact(k, d), this.exact(r() < 0.7 ? k : any(), d));
        }
        case 'logic': return E[this.pick(['and', 'or'] as const)](this.exact(r() < 0.7 ? 'b' : any(), d), this.exact(r() < 0.7 ? 'b' : any(), d));
        case 'not': return E.not(this.exact(r() < 0.6 ? 'b' : any(), d));
        case 'isnan': return E.isnan(this.exact(r() < 0.6 ? 'f' : any(), d));
        case 'castb': return E.cast('bool', this.exact(any(), d));
        default: return E.select(this.exact(r() < 0.8 ? 'b' : any(), d), this.exact('b', d), this.exact('b', d));
      }
    }
    if (kind === 'i') {
      switch (this.pick(['arith', 'un', 'minmax', 'casti', 'sel'])) {
        // Products of leaves only, so ints stay below 2^24 (exact in float32 when they meet floats).
        case 'arith': return this.pick([E.add, E.sub])(this.exact('i', 0), r() < 0.5 ? E.mul(this.exact('i', 0), this.exact(r() < 0.5 ? 'b' : 'i', 0)) : this.exact('i', 0));
        case 'un': return E[this.pick(['neg', 'abs', 'relu', 'floor', 'ceil'] as const)](this.exact(r() < 0.8 ? 'i' : 'b', d));
        case 'minmax': return E[this.pick(['max', 'min'] as const)](this.exact('i', d), this.exact(r() < 0.8 ? 'i' : 'b', d));
        case 'casti': return E.cast('int32', this.exact(r() < 0.5 ? 'b' : 'i', d));
        default: return E.select(this.exact(r() < 0.8 ? 'b' : any(), d), this.exact('i', d), this.exact(r() < 0.8 ? 'i' : 'b', d));
      }
    }
    switch (this.pick(['un', 'minmax', 'castf', 'sel'])) {
      case 'un': return E[this.pick(['neg', 'abs', 'relu', 'floor', 'ceil'] as const)](this.exact('f', d));
      case 'minmax': return E[this.pick(['max', 'min'] as const)](this.exact('f', d), this.exact(r() < 0.8 ? 'f' : 'i', d));
      case 'castf': return E.cast('float32', this.exact(any(), d));
      default: return E.select(this.exact(r() < 0.8 ? 'b' : any(), d), this.exact('f', d), this.exact(r() < 0.8 ? 'f' : 'b', d));
    }
  }
  /** One rounding float op over exact operands, under rounding-transparent ops only. */
  rounded(depth: number): Expr {
    const r = this.r;
    if (depth <= 0) {
      if (r() < 0.2) return E.sqrt(this.exact('f', 1));
      const k = r() < 0.8 ? 'f' : 'i';
      return E[this.pick(['add', 'sub', 'mul', 'div'] as const)](this.exact('f', 1), this.exact(k, 1));
    }
    const inner = this.rounded(depth - 1);
    switch (this.pick(['neg', 'abs', 'relu', 'max', 'min', 'select'])) {
      case 'neg': return E.neg(inner);
      case 'abs': return E.abs(inner);
      case 'relu': return E.relu(inner);
      case 'max': return E.max(inner, this.exact('f', 1));
      case 'min': return E.min(this.exact('f', 1), inner);
      default: return r() < 0.5 ? E.select(this.exact('b', 1), inner, this.exact('f', 1)) : E.select(this.exact('b', 1), this.exact('f', 1), inner);
    }
  }
}

describe('Wasm SIMD elementwise kernels equal the JS kernels', () => {
  it('on random exact expressions of every node kind, into float32, int32 and bool', () => {
    const r = rng(1);
    let checked = 0;
    for (let t = 0; t < 400; t++) {
      const g = new Gen(r);
      const kind = g.pick(['f', 'i', 'b'] as const);
      const expr = g.exact(kind, 1 + Math.floor(r() * 3));
      const out = g.pick(['float32', 'int32', 'bool'] as const);
      for (const n of [g.pick(SIZES), g.pick(SIZES)]) {
        expect(compare(expr, g.leaves, out, n, r)).toBeNull();
        checked++;
      }
    }
    expect(checked).toBe(800);
  });

  it('on random expressions with one float rounding op (add, sub, mul, div, sqrt), into float32 and bool', () => {
    const r = rng(2);
    for (let t = 0; t < 300; t++) {
      const g = new Gen(r);
      const expr = g.rounded(Math.floor(r() * 3));
      const out = r() < 0.8 ? 'float32' : 'bool';
      expect(compare(expr, g.leaves, out, g.pick(SIZES), r)).toBeNull();
    }
  });

  it('on int32 arithmetic that wraps, and float -> int32 casts (ToInt32: truncation, wrap, NaN/inf to 0)', () => {
    const r = rng(3);
    const $0 = E.input(0), $1 = E.input(1);
    const ints: Leaf[] = [{ dtype: 'int32', scalar: false }, { dtype: 'int32', scalar: false }];
    for (const e of [E.add($0, $1), E.sub($0, $1), E.mul($0, $1), E.neg($0), E.max($0, $1), E.min($0, $1), E.relu($0), E.lt($0, $1)]) {
      for (const n of [1, 5, 64, 97]) expect(compare(e, ints, e.k === 'binary' && e.fn === 'lt' ? 'bool' : 'int32', n, r, { bigInts: true })).toBeNull();
    }
    for (const n of [3, 64, 257]) {
      expect(compare(E.cast('int32', $0), [{ dtype: 'float32', scalar: false }], 'int32', n, r)).toBeNull();
      expect(compare($0, [{ dtype: 'float32', scalar: false }], 'int32', n, r)).toBeNull();
    }
  });

  it('gives NaN, -0 and infinities exactly as JS on the ops where they matter', () => {
    const r = rng(4);
    const $0 = E.input(0), $1 = E.input(1);
    const f2: Leaf[] = [{ dtype: 'float32', scalar: false }, { dtype: 'float32', scalar: false }];
    const cases: Expr[] = [E.max($0, $1), E.min($0, $1), E.relu($0), E.abs($0), E.neg($0), E.floor($0), E.ceil($0), E.sqrt($0),
      E.div($0, $1), E.isnan($0), E.not($0), E.eq($0, $1), E.ne($0, $1), E.cast('bool', $0), E.select($0, $0, $1), E.and($0, $1)];
    for (const e of cases) for (const n of [1, 7, 97]) expect(compare(e, f2, e.k === 'unary' && (e.fn === 'isnan' || e.fn === 'not') ? 'bool' : 'float32', n, r)).toBeNull();
  });

  it('within float32 tolerance on deep arithmetic over positive values (no cancellation)', () => {
    const r = rng(5);
    const pos = (depth: number, g: Gen): Expr => {
      if (depth <= 0) return r() < 0.2 ? E.const(0.75) : E.abs(g.input('float32'));
      const a = pos(depth - 1, g), b = pos(depth - 1, g);
      return g.pick([() => E.add(a, b), () => E.mul(a, b), () => E.div(a, E.add(b, E.const(1))), () => E.max(a, b), () => E.sqrt(a)])();
    };
    for (let t = 0; t < 100; t++) {
      const g = new Gen(r);
      expect(compare(pos(4, g), g.leaves, 'float32', g.pick(SIZES), r, { tol: 1e-5 })).toBeNull();
    }
  });

  it('exp and sigmoid within 2 float32 ulp of Math.exp, over the whole range (overflow, subnormals, NaN, infinities)', () => {
    const r = rng(7);
    const $0 = E.input(0), $1 = E.input(1);
    const edges = [NaN, Infinity, -Infinity, 0, -0, 88.72, 88.7228, 88.73, 89, 100, -87.33, -87.34, -100, -103.9, -104, -110, 1e-8, -1e-8, 0.34657, -0.34657, 1, -1];
    const draw = () => (r() < 0.2 ? edges[Math.floor(r() * edges.length)] : Math.fround((r() - 0.45) * 220));
    for (const e of [E.exp($0), E.sigmoid($0), E.exp(E.sub($0, $1)), E.div(E.exp($0), E.add(E.exp($1), E.const(1)))]) {
      for (const n of [1, 7, 64, 1001]) {
        // A composite's float32 intermediates overflow where JS's float64 ones do not (e^106 / e^24):
        // its arguments stay within +-40, specials aside.
        const small = () => (r() < 0.1 ? [NaN, Infinity, -Infinity, 0, -0][Math.floor(r() * 5)] : Math.fround((r() - 0.5) * 80));
        const composite = e.k !== 'unary' || e.a.k !== 'input';
        const x = new Float32Array(n).map(composite ? small : draw), y = new Float32Array(n).map(composite ? small : draw);
        const ref = new Float32Array(n), out = heapArray('float32', n);
        const flat = (data: HostArray): Operand => ({ data, offset: 0, strides: [1], dtype: 'float32' });
        runElementwise(e, [n], flat(ref), [flat(x), flat(y)]);
        const hx = heapArray('float32', n), hy = heapArray('float32', n);
        hx.set(x); hy.set(y);
        const kernel = compileSimdElementwise(`exp|${exprToString(e)}`, e, ['float32', 'float32'], 'float32', ['v', 'v'])!;
        expect(kernel).not.toBeNull();
        kernel(n, 1, 1, heap.addressOf(out), 0, 0, heap.addressOf(hx), 0, 0, heap.addressOf(hy), 0, 0);
        // 2 ulp for exp alone. A composite rounds its argument to float32 first (JS keeps float64),
        // and exp turns an argument's error into |argument| times as much relative error.
        for (let i = 0; i < n; i++) {
          const a = out[i], b = ref[i];
          const cond = composite ? 4 * (1 + Math.abs(x[i]) + Math.abs(y[i])) : 2;
          const ok = same(a, b) || Math.abs(a - b) <= cond * 2 ** -23 * Math.abs(b) || Math.abs(a - b) <= 2 ** -146 * 4;
          expect(ok, `${exprToString(e)} at ${i}: x=${x[i]} y=${y[i]}: wasm ${a} js ${b}`).toBe(true);
        }
      }
    }
  });

  it('leaves to JS what Wasm has no instruction for, and float64', () => {
    const $0 = E.input(0), $1 = E.input(1);
    const none = (e: Expr, dtypes: DType[], out: DType) => compileSimdElementwise(`none|${exprToString(e)}|${dtypes}>${out}`, e, dtypes, out, dtypes.map((): LaneMode => 'v'));
    for (const e of [E.log($0), E.tanh($0), E.sin($0), E.cos($0), E.sign($0), E.pow($0, $1), E.add($0, E.log($1))]) {
      expect(none(e, ['float32', 'float32'], 'float32')).toBeNull();
    }
    expect(none(E.div($0, $1), ['int32', 'int32'], 'float32')).toBeNull();
    expect(none(E.add($0, $1), ['float64', 'float64'], 'float64')).toBeNull();
    expect(none(E.add($0, $1), ['float32', 'float32'], 'float32')).not.toBeNull();
  });
});

describe('runElementwise takes the Wasm path for heap operands', () => {
  it('runs a flat kernel on heap operands (broadcast scalars outside the heap included) with the JS result', () => {
    const n = 1001;
    const expr = E.add(E.input(0), E.mul(E.input(1), E.input(2)));
    const a = heapArray('float32', n), g = heapArray('float32', n), out = heapArray('float32', n);
    for (let i = 0; i < n; i++) { a[i] = Math.fround(Math.sin(i)); g[i] = Math.fround(Math.cos(i)); }
    const lr = new Float32Array([-0.5]); // a plan's constant: not in the heap, passed by value
    const flat = (data: HostArray, scalar = false): Operand => ({ data, offset: 0, strides: [scalar ? 0 : 1], dtype: 'float32' });
    const merged = { shape: [n], strides: [[1], [1], [1], [0]] };
    expect(runSimdElementwise('integration|sgd', expr, merged, flat(out), [flat(a), flat(g), flat(lr, true)])).toBe(process.env.KILN_WASM !== '0');
    const ref = new Float32Array(n);
    runElementwise(expr, [n], flat(ref), [flat(a.slice()), flat(g.slice()), flat(lr, true)]);
    out.fill(0);
    runElementwise(expr, [n], flat(out), [flat(a), flat(g), flat(lr, true)]);
    expect([...out]).toEqual([...ref]);
  });

  it('runs strided layouts row by row (transposed operands, broadcast along rows, offsets) with the JS result', () => {
    const r = rng(6);
    const expr = E.select(E.gt(E.input(0), E.input(1)), E.add(E.input(2), E.input(3)), E.max(E.input(1), E.input(4)));
    for (let t = 0; t < 60; t++) {
      // [A, B, C] or, every other time, [A, B*D, C] read as 4-d by $2: one dim outside the kernel's three.
      const [A, B, C, D] = [1 + Math.floor(r() * 5), 1 + Math.floor(r() * 6), 1 + Math.floor(r() * 60), t % 2 ? 1 : 2 + Math.floor(r() * 3)];
      const shape = D > 1 ? [A, B, D, C] : [A, B, C], n = A * B * C * D;
      const fill = (x: HostArray, len: number) => { for (let i = 0; i < len; i++) x[i] = value(r, 'float32', false); return x; };
      // $0 contiguous at an offset; $1 one value per (a, b) row; $2 with its outer dims transposed; $3 a global scalar;
      // $4 one value per a (the same along the kernel's rows and elements, not along its planes).
      const specs = D > 1
        ? [
          { len: n + 3, offset: 3, strides: contiguousStrides(shape) },
          { len: A * B * D, offset: 0, strides: [B * D, D, 1, 0] },
          { len: n, offset: 0, strides: [C, A * C, A * B * C, 1] },
          { len: 1, offset: 0, strides: [0, 0, 0, 0] },
          { len: A, offset: 0, strides: [1, 0, 0, 0] },
        ]
        : [
          { len: n + 3, offset: 3, strides: [B * C, C, 1] },
          { len: A * B, offset: 0, strides: [B, 1, 0] },
          { len: n, offset: 0, strides: [C, A * C, 1] },
          { len: 1, offset: 0, strides: [0, 0, 0] },
          { len: A, offset: 0, strides: [1, 0, 0] },
        ];
      const plain = specs.map((sp) => fill(new Float32Array(sp.len), sp.len));
      // $1 (small) stays outside the heap every third time: it is copied in for the call.
      const inHeap = plain.map((p, j) => {
        if (j === 1 && t % 3 === 0) return p;
        const h = heapArray('float32', p.length);
        h.set(p);
        return h;
      });
      const ops = (arrs: HostArray[]): Operand[] => specs.map((sp, j) => ({ data: arrs[j], offset: sp.offset, strides: sp.strides, dtype: 'float32' }));
      const ref = new Float32Array(n);
      runElementwise(expr, shape, { data: ref, offset: 0, strides: contiguousStrides(shape), dtype: 'float32' }, ops(plain));
      const out = heapArray('float32', n);
      const outOp: Operand = { data: out, offset: 0, strides: contiguousStrides(shape), dtype: 'float32' };
      const merged = coalesce(shape, [outOp.strides, ...specs.map((sp) => sp.strides)]);
      const wasm = runSimdElementwise(`strided|${t}`, expr, merged, outOp, ops(inHeap));
      // Wasm takes every layout here but one with short rows or few elements, or a copy-in bigger than an eighth of the work.
      const short = (merged.shape.length > 1 && merged.shape[merged.shape.length - 1] < 4) || n < MIN_WASM_ELEMENTS;
      if (!short && t % 3 !== 0 && process.env.KILN_WASM !== '0') expect(wasm).toBe(true);
      if (!wasm) runElementwise(expr, shape, outOp, ops(inHeap));
      for (let i = 0; i < n; i++) expect(same(out[i], ref[i]), `shape ${shape} at ${i}: ${out[i]} vs ${ref[i]}`).toBe(true);
    }
  });

  it('reads float32 and int32 inputs a step apart along the row (mode s: max-pool taps) with the JS result', () => {
    const r = rng(11);
    // A max-pool chain step: where x_a > x_b or x_a is NaN, a's position, else b's.
    const expr = E.select(E.or(E.gt(E.input(0), E.input(1)), E.ne(E.input(0), E.input(0))), E.input(2), E.input(3));
    for (let t = 0; t < 40; t++) {
      const A = 64 + Math.floor(r() * 8), C = [1, 3, 4, 5, 8, 13, 37][t % 7], step = 2 + (t % 3);
      const shape = [A, C], n = A * C;
      // $0 and $2 step along the row (float32, int32), $1 contiguous, $3 steps with a negative row stride.
      const specs = [
        { dtype: 'float32' as DType, offset: 1, strides: [C * step + 1, step] },
        { dtype: 'float32' as DType, offset: 0, strides: [C, 1] },
        { dtype: 'int32' as DType, offset: 0, strides: [C * step, step] },
        { dtype: 'int32' as DType, offset: (A - 1) * C * step, strides: [-C * step, step] },
      ];
      const lens = specs.map((sp) => 1 + sp.offset + Math.abs(sp.strides[0]) * A + sp.strides[1] * C);
      const inHeap = specs.map((sp, j) => {
        const h = heapArray(sp.dtype, lens[j]);
        for (let i = 0; i < lens[j]; i++) h[i] = value(r, sp.dtype, false);
        return h;
      });
      const ops = specs.map((sp, j): Operand => ({ data: inHeap[j], offset: sp.offset, strides: sp.strides, dtype: sp.dtype }));
      const ref = new Int32Array(n);
      runElementwise(expr, shape, { data: ref, offset: 0, strides: [C, 1], dtype: 'int32' }, ops);
      const out = heapArray('int32', n);
      const outOp: Operand = { data: out, offset: 0, strides: [C, 1], dtype: 'int32' };
      const merged = coalesce(shape, [outOp.strides, ...specs.map((sp) => sp.strides)]);
      const wasm = runSimdElementwise(`stepped|${t}`, expr, merged, outOp, ops);
      // Rows shorter than four stay on JS.
      if (process.env.KILN_WASM !== '0') expect(wasm).toBe(C >= 4);
      if (!wasm) runElementwise(expr, shape, outOp, ops);
      expect([...out]).toEqual([...ref]);
    }
    // Bigger rows, so the Wasm path surely runs: the four-lane body and the tail.
    const n = 1027, step = 2;
    const x = heapArray('float32', n * step), y = heapArray('float32', n), out = heapArray('float32', n);
    for (let i = 0; i < n * step; i++) x[i] = value(r, 'float32', false);
    for (let i = 0; i < n; i++) y[i] = value(r, 'float32', false);
    const sum = E.add(E.input(0), E.input(1));
    const ops: Operand[] = [{ data: x, offset: 1, strides: [step], dtype: 'float32' }, { data: y, offset: 0, strides: [1], dtype: 'float32' }];
    const merged = { shape: [n - 1], strides: [[1], [step], [1]] };
    expect(runSimdElementwise('stepped|big', sum, merged, { data: out, offset: 0, strides: [1], dtype: 'float32' }, ops)).toBe(process.env.KILN_WASM !== '0');
    for (let i = 0; i < n - 1; i++) expect(same(out[i], Math.fround(x[1 + i * step] + y[i])), `at ${i}`).toBe(true);
  });

  it('keeps the JS kernel when an operand lies outside the heap, and under KILN_WASM=0', async () => {
    const n = 2 * MIN_WASM_ELEMENTS;
    const inHeap = heapArray('float32', n);
    const plain = new Float32Array(n);
    const flat = (data: HostArray): Operand => ({ data, offset: 0, strides: [1], dtype: 'float32' });
    const merged = { shape: [n], strides: [[1], [1]] };
    expect(runSimdElementwise('integration|neg', E.neg(E.input(0)), merged, flat(inHeap), [flat(inHeap)])).toBe(process.env.KILN_WASM !== '0');
    expect(runSimdElementwise('integration|neg', E.neg(E.input(0)), merged, flat(inHeap), [flat(plain)])).toBe(false);
    vi.stubEnv('KILN_WASM', '0');
    vi.resetModules();
    try {
      const mod = await import('../runtime/cpu/wasm/elementwise-simd.js');
      expect(mod.runSimdElementwise('integration|neg', E.neg(E.input(0)), merged, flat(inHeap), [flat(inHeap)])).toBe(false);
    } finally {
      vi.unstubAllEnvs();
      vi.resetModules();
    }
  });
});
