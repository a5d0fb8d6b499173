// MultiheadAttention, TransformerEncoderLayer and TransformerEncoder, with PyTorch's parameter and
// submodule names, as compositions of linear, matmul, softmax, dropout and layerNorm (autograd
// differentiates them). Masks follow PyTorch: a bool mask marks the positions NOT allowed to
// attend (true = masked); a float mask is added to the attention scores.
import { noGrad } from '../../autograd/grad-mode.js';
import { full, zeros } from '../../creation.js';
import { where } from '../../ops/index.js';
import type { Tensor } from '../../tensor.js';
import * as F from '../functional/index.js';
import { ModuleList } from '../containers.js';
import { Module } from '../module.js';
import { Parameter } from '../parameter.js';
import { Linear } from './linear.js';
import { Dropout } from './misc.js';
import { LayerNorm } from './normalization.js';

/** PyTorch's name for MultiheadAttention's output projection (a plain Linear; the name only matters to quantization and printing). */
export class NonDynamicallyQuantizableLinear extends Linear {}

/** xavier_uniform_: U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) for a [fan_out, fan_in] weight. */
function xavierUniform(shape: [number, number]): Parameter {
  const bound = Math.sqrt(6 / (shape[0] + shape[1]));
  return new Parameter(zeros(shape).uniform_(-bound, bound));
}

const torchSize = (s: readonly number[]) => `torch.Size([${s.join(', ')}])`;

/** A mask as an additive float mask of `dtype`: bool true → -inf, false → 0; float masks pass through. */
function additiveMask(mask: Tensor, dtype: Tensor['dtype'], what: string): Tensor {
  if (mask.dtype === 'bool') return where(mask, full([], -Infinity, { dtype, device: mask.device }), full([], 0, { dtype, device: mask.device }));
  if (!mask.isFloatingPoint()) throw new TypeError(`only bool and floating types of ${what} are supported, got ${mask.dtype}`);
  return mask.dtype === dtype ? mask : mask.to(dtype);
}

export interface MultiheadAttentionOptions {
  dropout?: number;
  bias?: boolean;
  batchFirst?: boolean;
  /** Feature size of `key` (default embedDim); when kdim or vdim differ, q/k/v get separate weights. */
  kdim?: number;
  vdim?: number;
}

export interface MultiheadAttentionForwardOptions {
  /** [batch, S] (unbatched: [S]); true (bool) marks keys to ignore, float values are added. */
  keyPaddingMask?: Tensor | null;
  /** Return the attention weights (default true); false returns null in their place. */
  needWeights?: boolean;
  /** [L, S] or [batch * numHeads, L, S]; true (bool) marks pairs not allowed to attend, float values are added. */
  attnMask?: Tensor | null;
  /** Average the returned weights over heads ([batch, L, S]) instead of [batch, numHeads, L, S] (default true). */
  averageAttnWeights?: boolean;
}

/**
 * Multi-head scaled dot-product attention (torch.nn.MultiheadAttention):
 * softmax((q W_q^T + b_q)(k W_k^T + b_k)^T / sqrt(headDim) + mask) (v W_v^T + b_v), per head, then
 * `out_proj`. Inputs [L, batch, E] ([batch, L, E] with batchFirst, or unbatched [L, E]);
 * `forward(query, key, value, opts)` returns `[output, weights | null]`.
 */
export class MultiheadAttention extends Module {
  in_proj_weight!: Parameter | null;
  q_proj_weight!: Parameter | null;
  k_proj_weight!: Parameter | null;
  v_proj_weight!: Parameter | null;
  in_proj_bias!: Parameter | null;
  out_proj!: NonDynamicallyQuantizableLinear;
  readonly kdim: number;
  readonly vdim: number;
  readonly qkvSameEmbedDim: boolean;
  readonly headDim: number;
  readonly dropout: number;
  readonly batchFirst: boolean;

  constructor(readonly embedDim: number, readonly numHeads: number, opts: MultiheadAttentionOptions = {}) {
    super();
    if (!Number.isInteger(embedDim) || embedDim <= 0 || !Number.isInteger(numHeads) || numHeads <= 0) {
      throw new RangeError(`embed_dim and num_heads must be greater than 0, got embed_dim=${embedDim} and num_heads=${numHeads} instead`);
    }
    this.kdim = opts.kdim ?? embedDim;
    this.vdim = opts.vdim ?? embedDim;
    this.qkvSameEmbedDim = this.kdim === embedDim && this.vdim === embedDim;
    this.dropout = opts.dropout ?? 0;
    this.batchFirst = opts.batchFirst ?? false;
    this.headDim = Math.floor(embedDim / numHeads);
    if (this.headDim * numHeads !== embedDim) throw new Error('embed_dim must be divisible by num_heads');
    const bias = opts.bias ?? true;
    // PyTorch's registration order and init: xavier-uniform projections, zero biases.
    if (!this.qkvSameEmbedDim) {
      this.q_proj_weight = xavierUniform([embedDim, embedDim]);
      this.k_proj_weight = xavierUniform([embedDim, this.kdim]);
      this.v_proj_weight = xavierUniform([embedDim, this.vdim]);
      this.registerParameter('in_proj_weight', null);
    } else {
      this.in_proj_weight = xavierUniform([3 * embedDim, embedDim]);
      this.registerParameter('q_proj_weight', null);
      this.registerParameter('k_proj_weight', null);
      this.registerParameter('v_proj_weight', null);
    }
    if (bias) this.in_proj_bias = new Parameter(zeros([3 * embedDim]));
    else this.registerParameter('in_proj_bias', null);
    this.out_proj = new NonDynamicallyQuantizableLinear(embedDim, embedDim, { bias });
    if (this.out_proj.bias) noGrad(() => this.out_proj.bias!.zero_());
  }

  override forward(query: Tensor, key: Tensor, value: Tensor, opts: MultiheadAttentionForwardOptions = {}): [Tensor, Tensor | null] {
    const needWeights = opts.needWeights ?? true;
    const average = opts.averageAttnWeights ?? true;
    const E = this.embedDim;
    const H = this.numHeads;
    const hd = this.headDim;

    if (query.ndim !== 2 && query.ndim !== 3) throw new Error(`query should be unbatched 2-D or batched 3-D tensor but received ${query.ndim}-D query tensor`);
    const batched = query.ndim === 3;
    if (key.ndim !== query.ndim || value.ndim !== query.ndim) {
      throw new Error(`For ${batched ? 'batched (3-D)' : 'unbatched (2-D)'} \`query\`, expected \`key\` and \`value\` to be ${query.ndim}-D but found ${key.ndim}-D and ${value.ndim}-D tensors respectively`);
    }
    let q = query;
    let k = key;
    let v = value;
    let kpm = opts.keyPaddingMask ?? null;
    let attnMask = opts.attnMask ?? null;
    if (!batched) {
      q = q.unsqueeze(1);
      k = k.unsqueeze(1);
      v = v.unsqueeze(1);
      if (kpm) {
        if (kpm.ndim !== 1) throw new Error(`For unbatched (2-D) \`query\`, expected \`key_padding_mask\` to be \`None\` or 1-D but found ${kpm.ndim}-D tensor instead`);
        kpm = kpm.unsqueeze(0);
      }
    } else if (this.batchFirst) {
      q = q.transpose(0, 1);
      k = k.transpose(0, 1);
      v = v.transpose(0, 1);
    }
    const [L, N, qE] = q.shape;
    const S = k.shape[0];
    if (qE !== E) throw new Error(`was expecting embedding dimension of ${E}, but got ${qE}`);
    if (k.shape[0] !== v.shape[0] || k.shape[1] !== v.shape[1]) throw new Error(`key shape ${torchSize(k.shape)} does not match value shape ${torchSize(v.shape)}`);
    if (k.shape[1] !== N) throw new Error(`key batch size ${k.shape[1]} does not match query batch size ${N}`);
    if (k.shape[2] !== this.kdim) throw new Error(`was expecting key embedding dimension of ${this.kdim}, but got ${k.shape[2]}`);
    if (v.shape[2] !== this.vdim) throw new Error(`was expecting value embedding dimension of ${this.vdim}, but got ${v.shape[2]}`);

    // Input projections.
    const b = this.in_proj_bias;
    const bq = b ? b.narrow(0, 0, E) : null;
    const bk = b ? b.narrow(0, E, E) : null;
    const bv = b ? b.narrow(0, 2 * E, E) : null;
    const w = this.in_proj_weight;
    q = F.linear(q, w ? w.narrow(0, 0, E) : this.q_proj_weight!, bq);
    k = F.linear(k, w ? w.narrow(0, E, E) : this.k_proj_weight!, bk);
    v = F.linear(v, w ? w.narrow(0, 2 * E, E) : this.v_proj_weight!, bv);

    // Masks, merged into one additive [N * H | 1, L, S] mask.
    let mask: Tensor | null = null;
    if (attnMask) {
      if (attnMask.ndim === 2) {
        if (attnMask.shape[0] !== L || attnMask.shape[1] !== S) throw new Error(`The shape of the 2D attn_mask is ${torchSize(attnMask.shape)}, but should be (${L}, ${S}).`);
        attnMask = attnMask.unsqueeze(0);
      } else if (attnMask.ndim === 3) {
        const want = [N * H, L, S];
        if (attnMask.shape.some((d, i) => d !== want[i])) throw new Error(`The shape of the 3D attn_mask is ${torchSize(attnMask.shape)}, but should be (${want.join(', ')}).`);
      } else {
        throw new Error(`attn_mask's dimension ${attnMask.ndim} is not supported`);
      }
      mask = additiveMask(attnMask, q.dtype, 'attn_mask');
    }
    if (kpm) {
      if (kpm.ndim !== 2 || kpm.shape[0] !== N || kpm.shape[1] !== S) throw new Error(`expecting key_padding_mask shape of (${N}, ${S}), but got ${torchSize(kpm.shape)}`);
      const add = additiveMask(kpm, q.dtype, 'key_padding_mask').reshape([N, 1, 1, S]).expand([N, H, 1, S]).reshape([N * H, 1, S]);
      mask = mask ? mask.add(add) : add;
    }

    // Heads: [L, N, E] → [N * H, L, hd].
    q = q.reshape([L, N * H, hd]).transpose(0, 1);
    k = k.reshape([S, N * H, hd]).transpose(0, 1);
    v = v.reshape([S, N * H, hd]).transpose(0, 1);
    let scores = q.div(Math.sqrt(hd)).matmul(k.transpose(1, 2)); // [N * H, L, S]
    if (mask) scores = scores.add(mask);
    let attn = F.softmax(scores, -1);
    if (this.dropout > 0 && this.training) attn = F.dropout(attn, this.dropout, true);
    let out = attn.matmul(v).transpose(0, 1).reshape([L, N, E]);
    out = this.out_proj(out);

    let weights: Tensor | null = null;
    if (needWeights) {
      weights = attn.reshape([N, H, L, S]);
      if (average) weights = weights.sum(1).div(H);
      if (!batched) weights = weights.squeeze(0);
    }
    if (!batched) out = out.squeeze(1);
    else if (this.batchFirst) out = out.transpose(0, 1);
    return [out, weights];
  }
}

// ---------------------------------------------------------------------------------------------

export type TransformerActivation = 'relu' | 'gelu' | ((x: Tensor) => Tensor);

export interface TransformerEncoderLayerOptions {
  dimFeedforward?: number;
  dropout?: number;
  activation?: TransformerActivation;
  layerNormEps?: number;
  batchFirst?: boolean;
  /** Pre-norm (x + sa(norm1(x)), ...) instead of post-norm (norm1(x + sa(x)), ...). */
  normFirst?: boolean;
}

export interface TransformerEncoderLayerForwardOptions {
  srcMask?: Tensor | null;
  srcKeyPaddingMask?: Tensor | null;
}

/** Self-attention and a feed-forward block, each with a residual connection and LayerNorm (torch.nn.TransformerEncoderLayer). */
export class TransformerEncoderLayer extends Module {
  self_attn!: MultiheadAttention;
  linear1!: Linear;
  dropout!: Dropout;
  linear2!: Linear;
  norm1!: LayerNorm;
  norm2!: LayerNorm;
  dropout1!: Dropout;
  dropout2!: Dropout;
  readonly normFirst: boolean;
  readonly activation: (x: Tensor) => Tensor;

  constructor(readonly dModel: number, readonly nhead: number, readonly options: TransformerEncoderLayerOptions = {}) {
    super();
    const dff = options.dimFeedforward ?? 2048;
    const p = options.dropout ?? 0.1;
    const eps = options.layerNormEps ?? 1e-5;
    this.self_attn = new MultiheadAttention(dModel, nhead, { dropout: p, batchFirst: options.batchFirst ?? false });
    this.linear1 = new Linear(dModel, dff);
    this.dropout = new Dropout(p);
    this.linear2 = new Linear(dff, dModel);
    this.normFirst = options.normFirst ?? false;
    this.norm1 = new LayerNorm(dModel, { eps });
    this.norm2 = new LayerNorm(dModel, { eps });
    this.dropout1 = new Dropout(p);
    this.dropout2 = new Dropout(p);
    const act = options.activation ?? 'relu';
    if (act === 'relu') this.activation = F.relu;
    else if (act === 'gelu') this.activation = (x) => F.gelu(x);
    else if (typeof act === 'function') this.activation = act;
    else throw new Error(`activation should be relu/gelu, not ${String(act)}`);
  }

  override forward(src: Tensor, opts: TransformerEncoderLayerForwardOptions = {}): Tensor {
    const sa = (x: Tensor) => this.dropout1(this.self_attn(x, x, x, { attnMask: opts.srcMask, keyPaddingMask: opts.srcKeyPaddingMask, needWeights: false })[0]);
    const ff = (x: Tensor) => this.dropout2(this.linear2(this.dropout(this.activation(this.linear1(x)))));
    let x = src;
    if (this.normFirst) {
      x = x.add(sa(this.norm1(x)));
      x = x.add(ff(this.norm2(x)));
    } else {
      x = this.norm1(x.add(sa(x)));
      x = this.norm2(x.add(ff(x)));
    }
    return x;
  }
}

/** A fresh layer with the same configuration, dtype, mode and (copied, unshared) parameters: PyTorch's deepcopy in `_get_clones`. */
function cloneLayer(layer: TransformerEncoderLayer): TransformerEncoderLayer {
  const copy = new TransformerEncoderLayer(layer.dModel, layer.nhead, layer.options);
  const dtype = layer.parameters()[0]?.dtype;
  if (dtype) copy.to(dtype);
  copy.loadStateDict(layer.stateDict());
  return copy.train(layer.training);
}

/** `numLayers` copies of `encoderLayer` applied in turn, then `norm` if given (torch.nn.TransformerEncoder). */
export class TransformerEncoder extends Module {
  layers!: ModuleList;
  norm!: Module | null;
  constructor(encoderLayer: TransformerEncoderLayer, readonly numLayers: number, opts: { norm?: Module | null } = {}) {
    super();
    if (!(encoderLayer instanceof TransformerEncoderLayer)) throw new TypeError('TransformerEncoder: encoderLayer must be a TransformerEncoderLayer');
    this.layers = new ModuleList(Array.from({ length: numLayers }, () => cloneLayer(encoderLayer)));
    if (opts.norm) this.norm = opts.norm;
    else this.norm = null;
  }
  override forward(src: Tensor, opts: { mask?: Tensor | null; srcKeyPaddingMask?: Tensor | null } = {}): Tensor {
    let x = src;
    for (const layer of this.layers) x = (layer as TransformerEncoderLayer)(x, { srcMask: opts.mask, srcKeyPaddingMask: opts.srcKeyPaddingMask });
    return this.norm ? (this.norm as Module & { forward(x: Tensor): Tensor })(x) : x;
  }
}
