// Sliding windows: unfold (im2col) and its adjoint fold (col2im), for any number of spatial dims.
// Convolution is unfold + matmul, max-pooling unfold + argmax + gather, average pooling unfold +
// sum, so those layers need no kernels or gradients of their own. Each op's VJP is the other.
import { defineOp } from '../op.js';
import { fmtShape, numel } from '../shape.js';

/** Per spatial dim: window size, step, zero-based symmetric padding and spacing of the window's taps. */
export interface WindowAttrs {
  readonly kernel: readonly number[];
  readonly stride: readonly number[];
  readonly padding: readonly number[];
  readonly dilation: readonly number[];
}

export interface UnfoldAttrs extends WindowAttrs {
  /** What padded positions read as (0 for convolution, -Infinity for max-pooling). */
  readonly padValue: number;
}

export interface FoldAttrs extends WindowAttrs {
  /** The spatial size of the folded output (fold cannot infer it from the columns). */
  readonly outputSize: readonly number[];
}

/** How many window positions fit along each spatial dim (PyTorch's floor formula). */
export function windowCounts(spatial: readonly number[], a: WindowAttrs): number[] {
  return spatial.map((n, d) => Math.floor((n + 2 * a.padding[d] - a.dilation[d] * (a.kernel[d] - 1) - 1) / a.stride[d]) + 1);
}

function checkWindow(op: string, spatial: readonly number[], a: WindowAttrs, what: string): number[] {
  const n = spatial.length;
  const lists = { kernel: a.kernel, stride: a.stride, padding: a.padding, dilation: a.dilation };
  for (const [name, v] of Object.entries(lists)) {
    const min = name === 'padding' ? 0 : 1;
    if (v.length !== n || v.some((p) => !Number.isInteger(p) || p < min)) {
      throw new Error(`${op}: ${name} must be ${n} integer(s) >= ${min} (one per spatial dim of ${what}), got ${JSON.stringify(v)}`);
    }
  }
  const counts = windowCounts(spatial, a);
  if (counts.some((c) => c < 1)) {
    throw new Error(`${op}: kernel ${fmtShape(a.kernel)} with dilation ${fmtShape(a.dilation)} is larger than the padded input ${fmtShape(spatial.map((s, d) => s + 2 * a.padding[d]))} of ${what}`);
  }
  return counts;
}

/** [N, C, *spatial] -> [N, C * prod(kernel), L]: row c*K + k holds tap k of channel c for each of the L window positions. */
export const unfold = defineOp<UnfoldAttrs>({
  name: 'unfold',
  arity: 1,
  infer: ([x], a) => {
    const k = a.kernel.length;
    if (k < 1 || x.shape.length !== k + 2) {
      throw new Error(`unfold: expected a ${k + 2}-D input [N, C, ${k} spatial dim(s)] for a ${k}-D kernel, got ${fmtShape(x.shape)}`);
    }
    const counts = checkWindow('unfold', x.shape.slice(2), a, `input ${fmtShape(x.shape)}`);
    return { shape: [x.shape[0], x.shape[1] * numel(a.kernel), numel(counts)], dtype: x.dtype };
  },
  lowering: { kind: 'routine', routine: 'unfold' },
  vjp: (g, c, K) => {
    const { kernel, stride, padding, dilation } = c.attrs;
    return [() => K.fold(g, { kernel, stride, padding, dilation, outputSize: c.inputs[0].shape.slice(2) })];
  },
});

/** [N, C * prod(kernel), L] -> [N, C, *outputSize], summing the taps that land on the same position; padded taps are dropped. */
export const fold = defineOp<FoldAttrs>({
  name: 'fold',
  arity: 1,
  infer: ([x], a) => {
    const k = a.kernel.length;
    if (x.shape.length !== 3) throw new Error(`fold: expected a 3-D input [N, C * prod(kernel), L], got ${fmtShape(x.shape)}`);
    if (a.outputSize.length !== k || a.outputSize.some((s) => !Number.isInteger(s) || s < 0)) {
      throw new Error(`fold: outputSize ${JSON.stringify(a.outputSize)} must be ${k} non-negative integer(s), one per kernel dim`);
    }
    const counts = checkWindow('fold', a.outputSize, a, `outputSize ${fmtShape(a.outputSize)}`);
    const taps = numel(a.kernel);
    const [n, rows, l] = x.shape;
    if (rows % taps !== 0) throw new Error(`fold: dim 1 of input ${fmtShape(x.shape)} must be divisible by prod(kernel) = ${taps}`);
    if (l !== numel(counts)) {
      throw new Error(`fold: input ${fmtShape(x.shape)} has ${l} blocks, but outputSize ${fmtShape(a.outputSize)} with kernel ${fmtShape(a.kernel)} gives ${fmtShape(counts)} = ${numel(counts)}`);
    }
    return { shape: [n, rows / taps, ...a.outputSize], dtype: x.dtype };
  },
  lowering: { kind: 'routine', routine: 'fold' },
  vjp: (g, c, K) => {
    const { kernel, stride, padding, dilation } = c.attrs;
    return [() => K.unfold(g, { kernel, stride, padding, dilation, padValue: 0 })];
  },
});
