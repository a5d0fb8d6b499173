// The inner loops of unfold and fold (./conv.ts) in WebAssembly, for float32 operands that lie in
// the Wasm heap (a compiled plan's memory). One call does every line of a range of taps of every
// channel, and big ones are shared out over the worker threads. Per tap and channel:
// a line read with step 1 is copied (or added) four floats at a time with v128 loads and stores,
// other steps one float at a time; padding is stored as the pad value's bits. Taps whose lines lie
// wholly inside the input with step 1 (every tap of a conv without padding) take a tight loop
// over whole lines: conv2's unfold 700 -> 500 us and fold 620 -> 410 in the ConvNet step. In JS the same lines
// cost ~2.5 ns a float here, mostly float32 loads and stores; this is the ConvNet's im2col and col2im.
import { FuncBuilder, I32 } from './wasm/emit.js';
import { compileKernel, type WasmKernel, wasmKernelsEnabled } from './wasm/kernel.js';
import { wasmHeap } from './wasm/heap.js';
import { runTasks, splitRange } from './threads/pool.js';
import { threadCount } from './threads/thread-count.js';

// The per-tap functions (called by the tap loops below, not from JS):
// unfoldLines(src, dst, table, lines, width, l0, l1, first, step, pad, ...planes): for each of
// `lines` lines r, line = table[r] (an element offset from src, or -1: all padding); dst[r*width + q]
// = src[line + first + (q - l0)*step] for l0 <= q < l1, else the float with bits `pad`.
// foldLines(src, dst, table, lines, width, l0, l1, first, step, srcStep, ...planes): for each line r
// with table[r] >= 0, dst[table[r] + first + (q - l0)*step] += src[(r*width + q)*srcStep] for
// l0 <= q < l1 (foldAssignLines: = instead of +=). Addresses in bytes, offsets and steps in elements.
/** nb, sb, nc, sc, dPlane: see forEachPlane. */
type Planes = [number, number, number, number, number];


/**
 * unfoldTaps(src, dst, table, tapTable, t0, t1, lines, width, step, pad, ...planes, tapDst): unfoldLines
 * for each tap t0 <= t < t1, its rows at dst + t*tapDst, its lines at table + 4*t*lines, and its
 * (l0, l1, first) the three int32s at tapTable + 12*t. foldTaps / foldAssignTaps(src, dst, table,
 * tapTable, t0, t1, lines, width, step, srcStep, ...planes, tapSrc): likewise, each tap's columns at
 * src + t*tapSrc. One call covers many taps, so a worker thread can take a share of them.
 */
type Taps = (src: number, dst: number, table: number, tapTable: number, t0: number, t1: number, lines: number, width: number, step: number, last: number, ...rest: [...Planes, number]) => void;

interface Kernels { module: WasmKernel; unfold: Taps; fold: Taps; foldAssign: Taps }
let kernels: Kernels | null | undefined;

function load(): Kernels | null {
  if (kernels !== undefined) return kernels;
  kernels = null;
  if (!wasmKernelsEnabled || !wasmHeap()?.canHoldStorages) return kernels;
  try {
    const module = compileKernel([buildUnfold(), buildFold('foldLines', false), buildFold('foldAssignLines', true),
      buildTaps('unfoldTaps', 0, 'dst'), buildTaps('foldTaps', 1, 'src'), buildTaps('foldAssignTaps', 2, 'src')]);
    const x = module.instance.exports;
    kernels = { module, unfold: x.unfoldTaps as Taps, fold: x.foldTaps as Taps, foldAssign: x.foldAssignTaps as Taps };
  } catch {
    kernels = null; // no SIMD: the JS loops serve
  }
  return kernels;
}

/** Whether the Wasm line kernels run here (WebAssembly SIMD and a heap that holds storages). */
export function wasmLinesReady(): boolean {
  return load() !== null;
}

/**
 * Below this many column floats (written by unfold, read by fold) an unfold or fold runs on the
 * calling thread: a worker's share must outweigh waking it (tens of microseconds). The ConvNet's
 * are 82k to 1M.
 */
const MIN_THREADED_FLOATS = 1 << 17;

/** unfoldTaps over taps [0, taps), split by ranges of taps over the threads when big enough (taps write disjoint rows). */
export function unfoldTaps(colFloats: number, taps: number, ...args: Parameters<Taps>): void {
  const threads = colFloats >= MIN_THREADED_FLOATS ? Math.min(threadCount(), taps) : 1;
  if (threads <= 1) return kernels!.unfold(...args);
  // Four tasks per thread, claimed one at a time: a slow thread takes fewer.
  const tasks = splitRange(taps, threads * 4).map(([t0, n]) => {
    const task = [...args];
    task[4] = t0;
    task[5] = t0 + n;
    return task;
  });
  runTasks(kernels!.module, 'unfoldTaps', tasks, 0);
}

/**
 * foldTaps over every tap, split by planes over the threads when big enough: taps of one plane add
 * into the same positions, so a thread takes whole planes (a range of batches, or of channels
 * when there is one batch) and every tap of them.
 */
export function foldTaps(assign: boolean, colFloats: number, ...args: Parameters<Taps>): void {
  const name = assign ? 'foldAssignTaps' : 'foldTaps';
  const [src, dst, , , , , , , , , nb, sb, nc, sc, dPlane] = args;
  const byBatch = nb > 1;
  const count = byBatch ? nb : nc;
  const threads = colFloats >= MIN_THREADED_FLOATS ? Math.min(threadCount(), count) : 1;
  if (threads <= 1) return (assign ? kernels!.foldAssign : kernels!.fold)(...args);
  const tasks = splitRange(count, threads).map(([i0, n]) => {
    const task = [...args];
    if (byBatch) {
      task[0] = src + i0 * sb;
      task[1] = dst + i0 * nc * dPlane;
      task[10] = n;
    } else {
      task[0] = src + i0 * sc;
      task[1] = dst + i0 * dPlane;
      task[12] = n;
    }
    return task;
  });
  runTasks(kernels!.module, name, tasks, 0);
}

/**
 * Locals for the whole-line loops (`wholeLine`): a line's bytes and those of its whole f32x4
 * vectors, set from the width param, and the byte counter.
 */
function wholeLineLocals(f: FuncBuilder, width: number): { rowBytes: number; vecBytes: number; k: number } {
  const rowBytes = f.local(I32), vecBytes = f.local(I32), k = f.local(I32);
  f.get(width).i32Const(4).i32Mul().set(rowBytes);
  f.get(width).i32Const(-4).i32And().i32Const(4).i32Mul().set(vecBytes);
  return { rowBytes, vecBytes, k };
}

/**
 * One line of `width` floats from address local `src` into `dst`, copied (`add` false) or added
 * (true): four floats at a time, then one at a time. The tight loop of unfold's and fold's whole
 * lines.
 */
function wholeLine(f: FuncBuilder, dst: number, src: number, { rowBytes, vecBytes, k }: ReturnType<typeof wholeLineLocals>, add: boolean): void {
  f.i32Const(0).set(k);
  f.whileLess(k, vecBytes, () => {
    f.get(dst).get(k).i32Add();
    if (add) f.get(dst).get(k).i32Add().v128LoadUnaligned();
    f.get(src).get(k).i32Add().v128LoadUnaligned();
    if (add) f.f32x4Add();
    f.v128StoreUnaligned();
    f.incr(k, 16);
  });
  f.whileLess(k, rowBytes, () => {
    f.get(dst).get(k).i32Add();
    if (add) f.get(dst).get(k).i32Add().f32Load();
    f.get(src).get(k).i32Add().f32Load();
    if (add) f.f32Add();
    f.f32Store();
    f.incr(k, 4);
  });
}

/** Stores the 32 bits `pad` at addresses [from, to) (bytes, a multiple of 4 apart). */
function fill(f: FuncBuilder, at: number, to: number, pad: number): void {
  f.whileLess(at, to, () => {
    f.get(at).get(pad).i32Store();
    f.incr(at, 4);
  });
}

// Both kernels take, after their own parameters, the planes to repeat over: nb batches (src byte
// stride sb) of nc channels (sc), the plane of batch b, channel c at src + b*sb + c*sc and at
// dst + (b*nc + c)*dPlane; each plane reads the same line table. So a call covers one tap of the
// whole tensor, and short lines (a pool's 4-wide ones) do not pay a JS-to-Wasm call each.
const PLANE_PARAMS = 5;

/** Emits the plane loops around `body(src, dst, table)`, which gets fresh locals per plane. */
function forEachPlane(f: FuncBuilder, src: number, dst: number, table: number, first: number, body: (src: number, dst: number, table: number) => void): void {
  const [nb, sb, nc, sc, dPlane] = [first, first + 1, first + 2, first + 3, first + 4];
  const b = f.local(I32), c = f.local(I32), ps = f.local(I32), pd = f.local(I32), pt = f.local(I32), plane = f.local(I32);
  f.i32Const(0).set(b).i32Const(0).set(plane);
  f.whileLess(b, nb, () => {
    f.i32Const(0).set(c);
    f.whileLess(c, nc, () => {
      f.get(src).get(b).get(sb).i32Mul().i32Add().get(c).get(sc).i32Mul().i32Add().set(ps);
      f.get(dst).get(plane).get(dPlane).i32Mul().i32Add().set(pd);
      f.get(table).set(pt);
      body(ps, pd, pt);
      f.incr(c, 1).incr(plane, 1);
    });
    f.incr(b, 1);
  });
}

/** The tap loop around per-tap function `callee` (see Taps): `strided` is the operand that moves by a tap stride. */
function buildTaps(name: string, callee: number, strided: 'src' | 'dst'): FuncBuilder {
  const [src, dst, table, tapTable, t0, t1, lines, width, step, last, nb, sb, nc, sc, dPlane, tapStride] = Array.from({ length: 16 }, (_, i) => i);
  const f = new FuncBuilder(name, new Array(16).fill(I32));
  const t = f.local(I32), at = f.local(I32);
  f.get(t0).set(t);
  f.whileLess(t, t1, () => {
    f.get(tapTable).get(t).i32Const(12).i32Mul().i32Add().set(at);
    f.get(src);
    if (strided === 'src') f.get(t).get(tapStride).i32Mul().i32Add();
    f.get(dst);
    if (strided === 'dst') f.get(t).get(tapStride).i32Mul().i32Add();
    f.get(table).get(t).get(lines).i32Mul().i32Const(4).i32Mul().i32Add();
    f.get(lines).get(width);
    f.get(at).i32Load(0).get(at).i32Load(4).get(at).i32Load(8);
    for (const v of [step, last, nb, sb, nc, sc, dPlane]) f.get(v);
    f.call(callee);
    f.incr(t, 1);
  });
  return f;
}

function buildUnfold(): FuncBuilder {
  const [src0, dst0, table0, lines, width, l0, l1, first, step, pad] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const f = new FuncBuilder('unfoldLines', new Array(10 + PLANE_PARAMS).fill(I32));
  const r = f.local(I32), line = f.local(I32), at = f.local(I32), to = f.local(I32), s = f.local(I32), vecEnd = f.local(I32), rowEnd = f.local(I32), stepBytes = f.local(I32);
  const full = f.local(I32), run = wholeLineLocals(f, width);
  f.get(step).i32Const(4).i32Mul().set(stepBytes);
  // Every column of the line inside the input, read with step 1 (a conv without padding): each
  // line is one run of `width` floats, copied in a tight loop (the general loop below costs ~20
  // cycles a line in bookkeeping, as much as the copy itself for a conv2's 8-float lines).
  f.get(l0).i32Eqz().get(l1).get(width).i32Eq().i32And().get(step).i32Const(1).i32Eq().i32And().set(full);
  forEachPlane(f, src0, dst0, table0, 10, (src, dst, table) => {
    f.i32Const(0).set(r);
    f.get(full).if();
    f.whileLess(r, lines, () => {
      f.get(table).i32Load().set(line);
      f.get(line).i32Const(0).i32LtS().if();
      f.get(dst).set(at);
      f.get(dst).get(run.rowBytes).i32Add().set(rowEnd);
      fill(f, at, rowEnd, pad);
      f.else();
      f.get(src).get(line).get(first).i32Add().i32Const(4).i32Mul().i32Add().set(s);
      wholeLine(f, dst, s, run, false);
      f.end();
      f.get(dst).get(run.rowBytes).i32Add().set(dst);
      f.incr(table, 4).incr(r, 1);
    });
    f.end();
    f.whileLess(r, lines, () => {
      f.get(table).i32Load().set(line);
      f.get(dst).get(width).i32Const(4).i32Mul().i32Add().set(rowEnd);
      f.get(dst).set(at);
      // A line in the padding, or no tap inside the input: all pad.
      f.get(line).i32Const(0).i32LtS().get(l0).get(l1).i32Eq().i32Add(); // either (0/1 flags)
      f.if();
      fill(f, at, rowEnd, pad);
      f.else();
      f.get(dst).get(l0).i32Const(4).i32Mul().i32Add().set(to);
      fill(f, at, to, pad);
      f.get(src).get(line).get(first).i32Add().i32Const(4).i32Mul().i32Add().set(s);
      f.get(dst).get(l1).i32Const(4).i32Mul().i32Add().set(to);
      f.get(step).i32Const(1).i32Eq();
      f.if();
      f.get(to).i32Const(12).i32Sub().set(vecEnd);
      f.whileLess(at, vecEnd, () => {
        f.get(at).get(s).v128LoadUnaligned().v128StoreUnaligned();
        f.incr(at, 16).incr(s, 16);
      });
      f.end();
      f.whileLess(at, to, () => {
        f.get(at).get(s).f32Load().f32Store();
        f.incr(at, 4).get(s).get(stepBytes).i32Add().set(s);
      });
      fill(f, at, rowEnd, pad);
      f.end();
      f.get(rowEnd).set(dst);
      f.incr(table, 4).incr(r, 1);
    });
  });
  return f;
}

/** `assign`: store instead of add (windows that tile the output: each position gets one tap). */
function buildFold(name: string, assign: boolean): FuncBuilder {
  const [src0, dst0, table0, lines, width, l0, l1, first, step, srcStep] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const f = new FuncBuilder(name, new Array(10 + PLANE_PARAMS).fill(I32));
  const r = f.local(I32), line = f.local(I32), d = f.local(I32), s = f.local(I32), n = f.local(I32), k = f.local(I32), vecN = f.local(I32), stepBytes = f.local(I32), srcStepBytes = f.local(I32);
  const full = f.local(I32), run = wholeLineLocals(f, width);
  f.get(step).i32Const(4).i32Mul().set(stepBytes);
  f.get(srcStep).i32Const(4).i32Mul().set(srcStepBytes);
  // As in unfold: whole lines, both steps 1, in a tight loop.
  f.get(l0).i32Eqz().get(l1).get(width).i32Eq().i32And().get(step).i32Const(1).i32Eq().i32And().get(srcStep).i32Const(1).i32Eq().i32And().set(full);
  forEachPlane(f, src0, dst0, table0, 10, (src, dst, table) => {
    f.i32Const(0).set(r);
    f.get(full).if();
    f.get(src).set(s);
    f.whileLess(r, lines, () => {
      f.get(table).i32Load().set(line);
      f.get(line).i32Const(0).i32GeS().if();
      f.get(dst).get(line).get(first).i32Add().i32Const(4).i32Mul().i32Add().set(d);
      wholeLine(f, d, s, run, !assign);
      f.end();
      f.get(s).get(run.rowBytes).i32Add().set(s);
      f.incr(table, 4).incr(r, 1);
    });
    f.end();
    f.whileLess(r, lines, () => {
      f.get(table).i32Load().set(line);
      f.get(line).i32Const(0).i32GeS();
      f.if();
      f.get(dst).get(line).get(first).i32Add().i32Const(4).i32Mul().i32Add().set(d);
      f.get(src).get(r).get(width).i32Mul().get(l0).i32Add().get(srcStepBytes).i32Mul().i32Add().set(s);
      f.get(l1).get(l0).i32Sub().set(n);
      f.i32Const(0).set(k);
      f.get(step).i32Const(1).i32Eq().get(srcStep).i32Const(1).i32Eq().i32Mul(); // both
      f.if();
      f.get(n).i32Const(3).i32Sub().set(vecN);
      f.whileLess(k, vecN, () => {
        if (assign) f.get(d).get(s).v128LoadUnaligned().v128StoreUnaligned();
        else f.get(d).get(d).v128LoadUnaligned().get(s).v128LoadUnaligned().f32x4Add().v128StoreUnaligned();
        f.incr(d, 16).incr(s, 16).incr(k, 4);
      });
      f.end();
      f.whileLess(k, n, () => {
        if (assign) f.get(d).get(s).f32Load().f32Store();
        else f.get(d).get(d).f32Load().get(s).f32Load().f32Add().f32Store();
        f.get(d).get(stepBytes).i32Add().set(d);
        f.get(s).get(srcStepBytes).i32Add().set(s);
        f.incr(k, 1);
      });
      f.end();
      f.incr(table, 4).incr(r, 1);
    });
  });
  return f;
}
