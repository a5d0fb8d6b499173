// The eager interpreter: runs each op's kernel now on the inputs' device and records the autograd
// graph when a gradient will be needed.
import { contiguousStrides, fmtShape, isContiguous, isFloating, numel, OPS, type DType, type OpDef } from '../ir/index.js';
import type { FullAttrs } from '../ir/ops/creation.js';
import { isGradEnabled } from './autograd/grad-mode.js';
import { OpNode } from './autograd/op-node.js';
import { backendFor, type HostArray, type View } from './backend.js';
import { setEagerInterpreter, type Interpreter } from './dispatch.js';
import { Tensor } from './tensor.js';

function deviceOf(op: OpDef, inputs: readonly Tensor[], attrs: unknown): string {
  if (inputs.length === 0) return (attrs as FullAttrs).device;
  const device = inputs[0].device;
  for (const t of inputs) {
    if (t.device !== device) {
      throw new Error(`${op.name}: expected all tensors to be on the same device, but found at least two devices, ${device} and ${t.device}`);
    }
  }
  return device;
}

/** A view of `v` broadcast to `shape` (stride 0 along broadcast dims). */
function broadcastView(v: View, shape: readonly number[]): View {
  if (v.shape.length === shape.length && v.shape.every((d, i) => d === shape[i])) return v;
  const lead = shape.length - v.shape.length;
  const strides = shape.map((d, i) => (i < lead || v.shape[i - lead] !== d ? 0 : v.strides[i - lead]));
  return { ...v, shape, strides };
}

/** Runs a non-view op's kernel on `device` into `out` (elementwise inputs broadcast to its shape). */
function runKernel(op: OpDef, inputs: readonly Tensor[], attrs: unknown, out: View, device: string): void {
  const views = inputs.map((t) => t.eagerView(op.name));
  backendFor(device).run(op, op.lowering.kind === 'elementwise' ? views.map((v) => broadcastView(v, out.shape)) : views, attrs, out);
}

function contiguousView(storage: View['storage'], shape: readonly number[], dtype: DType): View {
  return { storage, shape, strides: contiguousStrides(shape), offset: 0, dtype };
}

export const eager: Interpreter = {
  bind(op, inputs, attrs) {
    const device = deviceOf(op, inputs, attrs);
    const meta = op.infer(inputs.map((t) => ({ shape: t.shape, dtype: t.dtype })), attrs);
    const backend = backendFor(device);
    if (!backend.supports(meta.dtype)) throw new TypeError(`${op.name}: device '${device}' does not support dtype ${meta.dtype}`);
    let out: Tensor;
    const lowering = op.lowering;
    if (lowering.kind === 'view') {
      let src = inputs[0];
      let layout = lowering.layout(src.eagerView(op.name), attrs);
      if (!layout) {
        // The layout cannot be re-strided (reshape of a transposed tensor): copy first, as PyTorch's reshape does.
        src = eager.bind(OPS.copy, [src], {});
        layout = lowering.layout(src.eagerView(op.name), attrs)!;
      }
      const v = src.eagerView(op.name);
      out = new Tensor(meta.shape, meta.dtype, device, { ...layout, storage: v.storage, dtype: meta.dtype }, src._base ?? src);
      return record(op, [src], attrs, out);
    } else {
      const outView = contiguousView(backend.alloc(meta.dtype, numel(meta.shape)), meta.shape, meta.dtype);
      runKernel(op, inputs, attrs, outView, device);
      out = new Tensor(meta.shape, meta.dtype, device, outView);
    }
    return record(op, inputs, attrs, out);
  },

  assign(target, value) {
    const dst = target.eagerView('assign');
    let src = value;
    // Writing a view of the target's own storage onto it could read values already overwritten.
    if (src._view && src._view.storage === dst.storage && src !== target) src = eager.bind(OPS.copy, [src], {});
    if (src !== target) backendFor(target.device).copy(src.eagerView('assign'), dst);
    dst.storage.version++;
  },

  bindInto(op, inputs, attrs, target) {
    // Only an elementwise op over the target itself (result element i reads its element i alone),
    // of the target's shape and dtype, with nothing recorded for autograd (a recorded op
    // may have saved the old values), and no other input in the target's storage (which a write
    // could overwrite before it is read).
    const dst = target._view;
    // (A contiguous target from its storage's start: every backend writes such an output, and no two elements share a place.)
    if (!dst || !isContiguous(dst) || dst.offset !== 0 || op.lowering.kind !== 'elementwise' || inputs[0] !== target) return false;
    if (isGradEnabled() && inputs.some((t) => t.requiresGrad)) return false;
    if (inputs.some((t, i) => i > 0 && t._view?.storage === dst.storage && t !== target)) return false;
    const meta = op.infer(inputs.map((t) => ({ shape: t.shape, dtype: t.dtype })), attrs);
    if (meta.dtype !== target.dtype || meta.shape.length !== target.shape.length || meta.shape.some((d, i) => d !== target.shape[i])) return false;
    runKernel(op, inputs, attrs, dst, deviceOf(op, inputs, attrs));
    dst.storage.version++;
    return true;
  },

  constant(values: HostArray, shape, dtype, device) {
    if (values.length !== numel(shape)) throw new Error(`tensor: ${values.length} values cannot fill shape ${fmtShape(shape)}`);
    const storage = backendFor(device).upload(values, dtype);
    return new Tensor(shape, dtype, device, contiguousView(storage, shape, dtype));
  },
};

/** Attaches an autograd node to `out` when grad mode is on and an input requires grad. */
export function record(op: OpDef, inputs: readonly Tensor[], attrs: unknown, out: Tensor): Tensor {
  if (op.vjp && isFloating(out.dtype) && isGradEnabled() && inputs.some((t) => t.requiresGrad)) {
    out.gradFn = new OpNode(op, attrs, inputs, out);
    out._requiresGrad = true;
  }
  return out;
}

setEagerInterpreter(eager);
