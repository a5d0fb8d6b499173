// The line loops of gather and scatterAdd (./routines.ts) in WebAssembly, for float32 values and
// int32 indices that lie in the Wasm heap (a compiled plan's memory): max-pooling gathers each
// window's maximum and scatters its gradient back this way. In JS these loops cost ~7 ns an
// element here (typed arrays over the heap's growable shared buffer are a slower elements kind).
import { FuncBuilder, I32 } from './wasm/emit.js';
import { compileKernel } from './wasm/kernel.js';
import { wasmHeap } from './wasm/heap.js';
import { copyInThreshold, stage, type Span } from './wasm/copy-in.js';

/**
 * gatherLine(x, index, out, len, xs, is, os, step, size) and scatterAddLine(src, index, out, len,
 * ss, is, os, step, size): for e < len, i = index[e*is] (negative counts from the end), then
 * out[e*os] = x[e*xs + i*step], or out[e*os + i*step] += src[e*ss]. Addresses in bytes, strides in
 * elements. Returns -1, or the first e whose index is out of range (nothing from e on is done).
 */
type Line = (a: number, index: number, out: number, len: number, as: number, is: number, os: number, step: number, size: number) => number;

const ENABLED = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.KILN_WASM !== '0';

let kernels: { gather: Line; scatterAdd: Line } | null | undefined;

function load(): { gather: Line; scatterAdd: Line } | null {
  if (kernels !== undefined) return kernels;
  kernels = null;
  if (!ENABLED || !wasmHeap()?.canHoldStorages) return kernels;
  try {
    const { instance } = compileKernel([build('gatherLine', false), build('scatterAddLine', true)]);
    kernels = { gather: instance.exports.gatherLine as Line, scatterAdd: instance.exports.scatterAddLine as Line };
  } catch {
    kernels = null;
  }
  return kernels;
}

/**
 * The Wasm line kernels and the byte addresses of (values, index, out), for float32 values and out
 * and an int32 index: in place when all three lie in the heap; when some do not (eager tensors),
 * copied in and out through the copy-in scratch area if the call touches at least `work` >= the
 * copy-in threshold elements (`done` copies the output back). Else null: the JS loops run.
 * `outIsRead`: the kernel adds into out (scatterAdd), so its values are copied in too.
 */
export function wasmIndexLines(values: Span, index: Span, out: Span, outIsRead: boolean, work: number): { run: { gather: Line; scatterAdd: Line }; at: number[]; done: () => void } | null {
  if (!(values.data instanceof Float32Array) || !(out.data instanceof Float32Array) || !(index.data instanceof Int32Array)) return null;
  const run = load();
  if (!run) return null;
  const heap = wasmHeap()!;
  const spans = [values, index, out];
  if (spans.every((o) => heap.addressOf(o.data) >= 0)) return { run, at: spans.map((o) => heap.addressOf(o.data)), done: () => {} };
  if (work < copyInThreshold() || spans.some((o) => o.hi < o.lo)) return null;
  const staged = stage(heap, [
    { ...values, read: true, write: false },
    { ...index, read: true, write: false },
    { ...out, read: outIsRead, write: true },
  ]);
  return { run, ...staged };
}

function build(name: string, scatter: boolean): FuncBuilder {
  const [a, index, out, len, as, is, os, step, size] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const f = new FuncBuilder(name, new Array(9).fill(I32), [I32]);
  const e = f.local(I32), i = f.local(I32), target = f.local(I32);
  // Strides and step to bytes.
  for (const v of [as, is, os, step]) f.get(v).i32Const(4).i32Mul().set(v);
  f.i32Const(0).set(e);
  f.block().loop();
  f.get(e).get(len).i32GeS().brIf(1);
  f.get(index).i32Load().set(i);
  f.get(i).i32Const(0).i32LtS();
  f.if().get(i).get(size).i32Add().set(i).end();
  // Out of range (i < 0 or i >= size, 0/1 flags added): report e.
  f.get(i).i32Const(0).i32LtS().get(i).get(size).i32GeS().i32Add();
  f.if().get(e).return().end();
  if (scatter) {
    f.get(out).get(i).get(step).i32Mul().i32Add().set(target);
    f.get(target).get(target).f32Load().get(a).f32Load().f32Add().f32Store();
  } else {
    f.get(out).get(a).get(i).get(step).i32Mul().i32Add().f32Load().f32Store();
  }
  f.get(a).get(as).i32Add().set(a);
  f.get(index).get(is).i32Add().set(index);
  f.get(out).get(os).i32Add().set(out);
  f.incr(e, 1).br(0).end().end();
  f.i32Const(-1);
  return f;
}
