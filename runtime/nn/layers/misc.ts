// Dropout, Embedding, CosineSimilarity, PairwiseDistance over nn.functional.
import { randn } from '../../creation.js';
import type { Tensor } from '../../tensor.js';
import { noGrad } from '../../autograd/grad-mode.js';
import * as F from '../functional/index.js';
import { Module } from '../module.js';
import { Parameter } from '../parameter.js';
import { py } from './util.js';

export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    if (p < 0 || p > 1) throw new RangeError(`Dropout: probability has to be between 0 and 1, but got ${p}`);
  }
  override forward(x: Tensor): Tensor {
    return F.dropout(x, this.p, this.training);
  }
  override extraRepr(): string {
    return `p=${py(this.p)}, inplace=False`;
  }
}

/** A lookup table of `numEmbeddings` vectors of size `embeddingDim`, initialised N(0, 1). */
export class Embedding extends Module {
  weight!: Parameter;
  readonly paddingIdx: number | undefined;
  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, opts: { paddingIdx?: number } = {}) {
    super();
    this.paddingIdx = opts.paddingIdx === undefined || opts.paddingIdx >= 0 ? opts.paddingIdx : opts.paddingIdx + numEmbeddings;
    const w = randn([numEmbeddings, embeddingDim]);
    if (this.paddingIdx !== undefined) noGrad(() => w.select(0, this.paddingIdx!).zero_());
    this.weight = new Parameter(w);
  }
  override forward(indices: Tensor): Tensor {
    return F.embedding(indices, this.weight, { paddingIdx: this.paddingIdx });
  }
  override extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}${this.paddingIdx !== undefined ? `, padding_idx=${this.paddingIdx}` : ''}`;
  }
}

export class CosineSimilarity extends Module {
  constructor(readonly opts: { dim?: number; eps?: number } = {}) {
    super();
  }
  override forward(x1: Tensor, x2: Tensor): Tensor {
    return F.cosineSimilarity(x1, x2, this.opts);
  }
}

export class PairwiseDistance extends Module {
  constructor(readonly opts: { p?: number; eps?: number; keepdim?: boolean } = {}) {
    super();
  }
  override forward(x1: Tensor, x2: Tensor): Tensor {
    return F.pairwiseDistance(x1, x2, this.opts);
  }
}
