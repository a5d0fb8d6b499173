// Convolution as unfold (im2col) + one matmul over the whole batch, and PyTorch's F.unfold / F.fold,
// over the unfold and fold primitives (ir/ops/conv.ts). Their gradients come from those two ops and
// matmul.
import { fmtShape, numel, OPS } from '../../../ir/index.js';
import { windowCounts, type FoldAttrs, type UnfoldAttrs } from '../../../ir/ops/conv.js';
import { bind } from '../../dispatch.js';
import { add, matmul, pad } from '../../ops/index.js';
import type { Tensor } from '../../tensor.js';
import { batchify, ntuple, requireSameDType, type IntOrTuple } from './utils.js';

/** The unfold primitive with every attribute spelled out. */
export const unfoldRaw = (x: Tensor, attrs: UnfoldAttrs): Tensor => bind(OPS.unfold, [x], attrs);
export const foldRaw = (x: Tensor, attrs: FoldAttrs): Tensor => bind(OPS.fold, [x], attrs);

export interface UnfoldOptions {
  dilation?: IntOrTuple;
  padding?: IntOrTuple;
  stride?: IntOrTuple;
}

/**
 * Sliding blocks of a batched input [N, C, *spatial] as columns [N, C * prod(kernelSize), L]
 * (torch.nn.functional.unfold; any number of spatial dims, given by the length of kernelSize
 * when it is a tuple, else input.ndim - 2).
 */
export function unfold(x: Tensor, kernelSize: IntOrTuple, opts: UnfoldOptions = {}): Tensor {
  const nd = typeof kernelSize === 'number' ? x.ndim - 2 : kernelSize.length;
  if (nd < 1 || x.ndim !== nd + 2) throw new Error(`unfold: expected a batched input [N, C, *spatial] with ${Math.max(nd, 1)} spatial dim(s), got ${fmtShape(x.shape)}`);
  return unfoldRaw(x, { ...windowAttrs(nd, kernelSize, opts, 'unfold'), padValue: 0 });
}

/** The inverse layout of unfold: sums columns [N, C * prod(kernelSize), L] into [N, C, *outputSize] (torch.nn.functional.fold). */
export function fold(x: Tensor, outputSize: IntOrTuple, kernelSize: IntOrTuple, opts: UnfoldOptions = {}): Tensor {
  const nd = typeof outputSize !== 'number' ? outputSize.length : typeof kernelSize !== 'number' ? kernelSize.length : 2;
  const attrs = { ...windowAttrs(nd, kernelSize, opts, 'fold'), outputSize: ntuple(outputSize, nd, 'outputSize', 'fold') };
  if (x.ndim === 2) return foldRaw(x.unsqueeze(0), attrs).squeeze(0);
  return foldRaw(x, attrs);
}

function windowAttrs(nd: number, kernelSize: IntOrTuple, opts: UnfoldOptions, op: string) {
  return {
    kernel: ntuple(kernelSize, nd, 'kernelSize', op),
    stride: ntuple(opts.stride ?? 1, nd, 'stride', op),
    padding: ntuple(opts.padding ?? 0, nd, 'padding', op),
    dilation: ntuple(opts.dilation ?? 1, nd, 'dilation', op),
  };
}

export interface ConvOptions {
  stride?: IntOrTuple;
  /** Zero padding on both sides of each spatial dim, or 'valid' (none) or 'same' (output size = input size; stride 1 only). */
  padding?: IntOrTuple | 'valid' | 'same';
  dilation?: IntOrTuple;
  groups?: number;
}

export const conv1d = (x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor => convNd(x, weight, bias ?? null, opts, 1, 'conv1d');
export const conv2d = (x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor => convNd(x, weight, bias ?? null, opts, 2, 'conv2d');

function convNd(input: Tensor, weight: Tensor, bias: Tensor | null, opts: ConvOptions, nd: number, op: string): Tensor {
  const dims = nd === 1 ? '[C, L]' : '[C, H, W]';
  const { x: x0, undo } = batchify(input, nd, op, `${dims} or [N, ${dims.slice(1)}`);
  if (weight.ndim !== nd + 2) {
    throw new Error(`${op}: weight must be ${nd + 2}-D [out_channels, in_channels / groups, ${nd === 1 ? 'kW' : 'kH, kW'}], got ${fmtShape(weight.shape)}`);
  }
  requireSameDType(x0, weight, op, ['input', 'weight']);
  const groups = opts.groups ?? 1;
  const [outC, inCg] = weight.shape;
  const inC = x0.shape[1];
  if (!Number.isInteger(groups) || groups < 1) throw new Error(`${op}: groups must be a positive integer, got ${groups}`);
  if (outC % groups !== 0) throw new Error(`${op}: out_channels ${outC} (weight ${fmtShape(weight.shape)}) must be divisible by groups=${groups}`);
  if (inCg * groups !== inC) {
    throw new Error(`${op}: given groups=${groups}, weight of size ${fmtShape(weight.shape)}, expected input ${fmtShape(input.shape)} to have ${inCg * groups} channels, but got ${inC} channels instead`);
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outC)) throw new Error(`${op}: bias must have shape [${outC}] (out_channels), got ${fmtShape(bias.shape)}`);
  if (bias) requireSameDType(x0, bias, op, ['input', 'bias']);

  const kernel = weight.shape.slice(2);
  const stride = ntuple(opts.stride ?? 1, nd, 'stride', op);
  const dilation = ntuple(opts.dilation ?? 1, nd, 'dilation', op);
  let x = x0;
  let padding: number[];
  if (opts.padding === 'valid') padding = kernel.map(() => 0);
  else if (opts.padding === 'same') {
    if (stride.some((s) => s !== 1)) throw new Error(`${op}: padding='same' is not supported for strided convolutions (stride ${JSON.stringify(stride)})`);
    // PyTorch puts the odd element of the total padding on the right: pad that side first.
    const total = kernel.map((k, d) => dilation[d] * (k - 1));
    padding = total.map((t) => Math.floor(t / 2));
    const extra = total.map((t, d) => t - 2 * padding[d]);
    if (extra.some((e) => e > 0)) x = pad(x, [...extra].reverse().flatMap((e) => [0, e]));
  } else padding = ntuple(opts.padding ?? 0, nd, 'padding', op);

  // The batch is unfolded as one more spatial dim (kernel 1) of a single image [1, C, N, *spatial],
  // so the columns come out as [C*K, N*L] and the whole batch is one GEMM [O, C*K] @ [C*K, N*L]
  // (one big product instead of N small ones, and its weight gradient is one product too). The
  // product is [O, N, *spatialOut]: the output is its NCHW-permuted view.
  const n = x.shape[0];
  // Geometry errors name the user's kernel and input, not the batch-as-spatial view below.
  OPS.unfold.infer([x], { kernel, stride, padding, dilation, padValue: 0 });
  const batchAsSpatial = x.permute([1, 0, ...kernel.map((_, d) => d + 2)]).unsqueeze(0); // [1, C, N, *spatial]
  const cols = unfoldRaw(batchAsSpatial, { kernel: [1, ...kernel], stride: [1, ...stride], padding: [0, ...padding], dilation: [1, ...dilation], padValue: 0 });
  const ck = inCg * numel(kernel);
  const spatialOut = windowCounts(x.shape.slice(2), { kernel, stride, padding, dilation });
  const nl = n * numel(spatialOut);
  let out = groups === 1
    ? matmul(weight.reshape([outC, ck]), cols.reshape([ck, nl]))
    : matmul(weight.reshape([groups, outC / groups, ck]), cols.reshape([groups, ck, nl])).reshape([outC, nl]);
  // The bias is added to the product itself, so the compiler fuses it into the GEMM as an epilogue.
  if (bias) out = add(out, bias.reshape([outC, 1]));
  const y = out.reshape([outC, n, ...spatialOut]).permute([1, 0, ...spatialOut.map((_, d) => d + 2)]);
  return undo(y);
}
