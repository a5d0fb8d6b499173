// The line loops of gather and scatterAdd (./routines.ts) in WebAssembly, for float32 values (and
// int32 for gather) and int32 indices that lie in the Wasm heap (a compiled plan's memory), or are
// copied there: max-pooling gathers each window's pick and scatters its gradient back this way. In JS these loops cost ~7 ns an
// element here (typed arrays over the heap's growable shared buffer are a slower elements kind).
import { FuncBuilder, I32 } from './wasm/emit.js';
import { compileKernel, wasmKernelsEnabled } from './wasm/kernel.js';
import { wasmHeap } from './wasm/heap.js';
import { copyInThreshold, stage, type Span } from './wasm/copy-in.js';

/**
 * gatherLines(x, index, out, rows, len, xs, is, os, xs2, is2, os2, step, size) and
 * scatterAddLines(src, ...the same): for r < rows and e < len, with the operands' positions
 * x + r*xs2 + e*xs (and so on), i = index[...] (negative counts from the end), then out[...] =
 * x[... + i*step], or out[... + i*step] += src[...]. Addresses in bytes, strides in elements.
 * Returns -1, or the position r*len + e of the first index out of range (nothing from it on is
 * done). Two loops per call, so short lines (a pool's windows) do not pay a JS-to-Wasm call each.
 */
type Lines = (a: number, index: number, out: number, rows: number, len: number, as: number, is: number, os: number, as2: number, is2: number, os2: number, step: number, size: number) => number;


let kernels: { gather: Lines; scatterAdd: Lines } | null | undefined;

function load(): { gather: Lines; scatterAdd: Lines } | null {
  if (kernels !== undefined) return kernels;
  kernels = null;
  if (!wasmKernelsEnabled || !wasmHeap()?.canHoldStorages) return kernels;
  try {
    const { instance } = compileKernel([build('gatherLines', false), build('scatterAddLines', true)]);
    kernels = { gather: instance.exports.gatherLines as Lines, scatterAdd: instance.exports.scatterAddLines as Lines };
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
export function wasmIndexLines(values: Span, index: Span, out: Span, outIsRead: boolean, work: number): { run: { gather: Lines; scatterAdd: Lines }; at: number[]; done: () => void } | null {
  // Gather moves 32-bit values without looking at them (f32 loads and stores keep every bit), so
  // int32 values go too (max-pool gathers int32 positions); scatterAdd adds, so float32 only.
  const kind = values.data instanceof Float32Array || (!outIsRead && values.data instanceof Int32Array);
  if (!kind || out.data.constructor !== values.data.constructor || !(index.data instanceof Int32Array)) return null;
  const run = load();
  if (!run) return null;
  const heap = wasmHeap()!;
  const spans = [values, index, out];
  // Operands outside the heap are copied in only for work that pays for it (stage uses the rest in place).
  const copies = spans.some((o) => heap.addressOf(o.data) < 0);
  if (copies && (work < copyInThreshold() || spans.some((o) => o.hi < o.lo))) return null;
  const staged = stage(heap, [
    { ...values, read: true, write: false },
    { ...index, read: true, write: false },
    { ...out, read: outIsRead, write: true },
  ]);
  return { run, ...staged };
}

function build(name: string, scatter: boolean): FuncBuilder {
  const [a, index, out, rows, len, as, is, os, as2, is2, os2, step, size] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
  const f = new FuncBuilder(name, new Array(13).fill(I32), [I32]);
  const r = f.local(I32), e = f.local(I32), i = f.local(I32), target = f.local(I32), pa = f.local(I32), pi = f.local(I32), po = f.local(I32);
  // Strides and step to bytes.
  for (const v of [as, is, os, as2, is2, os2, step]) f.get(v).i32Const(4).i32Mul().set(v);
  f.i32Const(0).set(r);
  f.whileLess(r, rows, () => {
    f.get(a).set(pa).get(index).set(pi).get(out).set(po);
    f.i32Const(0).set(e);
    f.whileLess(e, len, () => {
      f.get(pi).i32Load().set(i);
      f.get(i).i32Const(0).i32LtS();
      f.if().get(i).get(size).i32Add().set(i).end();
      // Out of range (i < 0 or i >= size, 0/1 flags added): report r*len + e.
      f.get(i).i32Const(0).i32LtS().get(i).get(size).i32GeS().i32Add();
      f.if().get(r).get(len).i32Mul().get(e).i32Add().return().end();
      if (scatter) {
        f.get(po).get(i).get(step).i32Mul().i32Add().set(target);
        f.get(target).get(target).f32Load().get(pa).f32Load().f32Add().f32Store();
      } else {
        f.get(po).get(pa).get(i).get(step).i32Mul().i32Add().f32Load().f32Store();
      }
      f.get(pa).get(as).i32Add().set(pa);
      f.get(pi).get(is).i32Add().set(pi);
      f.get(po).get(os).i32Add().set(po);
      f.incr(e, 1);
    });
    f.get(a).get(as2).i32Add().set(a);
    f.get(index).get(is2).i32Add().set(index);
    f.get(out).get(os2).i32Add().set(out);
    f.incr(r, 1);
  });
  f.i32Const(-1);
  return f;
}
