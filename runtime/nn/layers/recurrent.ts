// Recurrent layers: RNN (tanh/relu), LSTM, GRU and their single-step cells, with PyTorch's options,
// parameter names, shapes, gate order (LSTM i,f,g,o; GRU r,z,n) and init U(-1/sqrt(H), 1/sqrt(H)).
// Every step is a composition of linear, sigmoid/tanh/relu and elementwise ops, so autograd gives
// backpropagation through time; the multi-layer layers project a whole sequence's inputs with one
// `linear` per layer and direction and only run the hidden-to-hidden product step by step.
import { fmtShape } from '../../../ir/index.js';
import { zeros } from '../../creation.js';
import { cat, stack } from '../../ops/index.js';
import type { Tensor } from '../../tensor.js';
import * as F from '../functional/index.js';
import { Module } from '../module.js';
import type { Parameter } from '../parameter.js';
import { py, uniformParameter } from './util.js';

export type RNNNonlinearity = 'tanh' | 'relu';
type Mode = 'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU';

const GATES: Record<Mode, number> = { RNN_TANH: 1, RNN_RELU: 1, LSTM: 4, GRU: 3 };

interface Weights {
  wIh: Tensor;
  wHh: Tensor;
  bIh: Tensor | null;
  bHh: Tensor | null;
}

/**
 * One time step from `gi` (the input projection x W_ih^T + b_ih, precomputed) and the state
 * ([h] or, for LSTM, [h, c]); returns the new state. Written as ATen's CPU cells are.
 */
function step(mode: Mode, gi: Tensor, state: Tensor[], w: Weights): Tensor[] {
  const gh = F.linear(state[0], w.wHh, w.bHh);
  switch (mode) {
    case 'RNN_TANH':
      return [F.tanh(gi.add(gh))];
    case 'RNN_RELU':
      return [F.relu(gi.add(gh))];
    case 'LSTM': {
      const [i, f, g, o] = gi.add(gh).chunk(4, -1);
      const c = F.sigmoid(f).mul(state[1]).add(F.sigmoid(i).mul(F.tanh(g)));
      return [F.sigmoid(o).mul(F.tanh(c)), c];
    }
    case 'GRU': {
      const [ir, iz, inn] = gi.chunk(3, -1);
      const [hr, hz, hn] = gh.chunk(3, -1);
      const r = F.sigmoid(ir.add(hr));
      const z = F.sigmoid(iz.add(hz));
      const n = F.tanh(inn.add(r.mul(hn)));
      return [state[0].sub(n).mul(z).add(n)]; // (1 - z) * n + z * h
    }
  }
}

function modeOf(kind: 'RNN' | 'LSTM' | 'GRU', nonlinearity: RNNNonlinearity): Mode {
  if (kind !== 'RNN') return kind;
  if (nonlinearity === 'tanh') return 'RNN_TANH';
  if (nonlinearity === 'relu') return 'RNN_RELU';
  throw new Error(`Unknown nonlinearity '${String(nonlinearity)}'. Select from 'tanh' or 'relu'.`);
}

const shapeText = (s: readonly number[]) => `(${s.join(', ')}${s.length === 1 ? ',' : ''})`;

function checkPositive(what: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0) throw new RangeError(`${what} should be a positive integer, got ${v}`);
}

// ---------------------------------------------------------------------------------------------
// Multi-layer RNN / LSTM / GRU

export interface RNNOptions {
  numLayers?: number;
  /** RNN only: 'tanh' (default) or 'relu'. */
  nonlinearity?: RNNNonlinearity;
  bias?: boolean;
  /** Input and output are [batch, seq, feature] instead of [seq, batch, feature] (hidden states are not affected). */
  batchFirst?: boolean;
  /** Dropout on the outputs of every layer but the last, in training mode. */
  dropout?: number;
  bidirectional?: boolean;
}

abstract class RNNBase extends Module {
  readonly mode: Mode;
  readonly numLayers: number;
  readonly bias: boolean;
  readonly batchFirst: boolean;
  readonly dropout: number;
  readonly bidirectional: boolean;
  /** Parameter names per layer and direction, in PyTorch's order (`_flat_weights_names`). */
  readonly flatWeightsNames: string[] = [];

  constructor(kind: 'RNN' | 'LSTM' | 'GRU', readonly inputSize: number, readonly hiddenSize: number, opts: RNNOptions) {
    super();
    this.mode = modeOf(kind, opts.nonlinearity ?? 'tanh');
    this.numLayers = opts.numLayers ?? 1;
    this.bias = opts.bias ?? true;
    this.batchFirst = opts.batchFirst ?? false;
    this.dropout = opts.dropout ?? 0;
    this.bidirectional = opts.bidirectional ?? false;
    checkPositive('input_size', inputSize);
    checkPositive('hidden_size', hiddenSize);
    checkPositive('num_layers', this.numLayers);
    if (!(this.dropout >= 0 && this.dropout <= 1)) {
      throw new RangeError(`dropout should be a number in range [0, 1] representing the probability of an element being zeroed, got ${this.dropout}`);
    }
    const gateSize = GATES[this.mode] * hiddenSize;
    const dirs = this.bidirectional ? 2 : 1;
    const self = this as unknown as Record<string, Parameter>;
    // The init draws in PyTorch's order: every parameter from U(-1/sqrt(H), 1/sqrt(H)).
    for (let layer = 0; layer < this.numLayers; layer++) {
      for (let dir = 0; dir < dirs; dir++) {
        const layerIn = layer === 0 ? inputSize : hiddenSize * dirs;
        const sfx = `_l${layer}${dir === 1 ? '_reverse' : ''}`;
        const shapes: [string, number[]][] = [[`weight_ih${sfx}`, [gateSize, layerIn]], [`weight_hh${sfx}`, [gateSize, hiddenSize]]];
        if (this.bias) shapes.push([`bias_ih${sfx}`, [gateSize]], [`bias_hh${sfx}`, [gateSize]]);
        for (const [name, shape] of shapes) {
          self[name] = uniformParameter(shape, hiddenSize);
          this.flatWeightsNames.push(name);
        }
      }
    }
  }

  /** The parameters of each layer and direction, as PyTorch's `all_weights`. */
  get allWeights(): Parameter[][] {
    const per = this.bias ? 4 : 2;
    const out: Parameter[][] = [];
    for (let i = 0; i < this.flatWeightsNames.length; i += per) out.push(this.flatWeightsNames.slice(i, i + per).map((n) => this.param(n)));
    return out;
  }

  private param(name: string): Parameter {
    return (this as unknown as Record<string, Parameter>)[name];
  }

  private weights(layer: number, dir: number): Weights {
    const sfx = `_l${layer}${dir === 1 ? '_reverse' : ''}`;
    return {
      wIh: this.param(`weight_ih${sfx}`),
      wHh: this.param(`weight_hh${sfx}`),
      bIh: this.bias ? this.param(`bias_ih${sfx}`) : null,
      bHh: this.bias ? this.param(`bias_hh${sfx}`) : null,
    };
  }

  /** Runs the stack on `input` from the states `hx` ([h0] or [h0, c0], or null for zeros); returns the output and final states. */
  protected run(input: Tensor, hx: Tensor[] | null): [Tensor, Tensor[]] {
    const name = this.constructor.name;
    if (input.ndim !== 2 && input.ndim !== 3) throw new Error(`${name}: Expected input to be 2-D or 3-D but received ${input.ndim}-D tensor`);
    const batched = input.ndim === 3;
    if (hx) {
      const want = batched ? 3 : 2;
      if (hx.some((h) => h.ndim !== want)) {
        const dims = hx.map((h) => `${h.ndim}-D`);
        const what = hx.length === 2 ? `hx and cx should also be ${want}-D but got (${dims.join(', ')}) tensors` : `hx should also be ${want}-D but got ${dims[0]} tensor`;
        throw new Error(`For ${batched ? 'batched 3' : 'unbatched 2'}-D input, ${what}`);
      }
    }
    let x = batched ? (this.batchFirst ? input.transpose(0, 1) : input) : input.unsqueeze(1);
    if (x.shape[2] !== this.inputSize) throw new Error(`input.size(-1) must be equal to input_size. Expected ${this.inputSize}, got ${x.shape[2]}`);
    const [seqLen, batch] = x.shape;
    if (seqLen === 0) throw new Error(`${name}: expected a non-empty sequence, got input of shape ${fmtShape(input.shape)}`);
    const dirs = this.bidirectional ? 2 : 1;
    const hShape = [this.numLayers * dirs, batch, this.hiddenSize];
    const nStates = this.mode === 'LSTM' ? 2 : 1;
    let states: Tensor[];
    if (hx) {
      states = hx.map((h) => (batched ? h : h.unsqueeze(1)));
      states.forEach((h, k) => {
        if (h.shape.length !== 3 || h.shape.some((d, i) => d !== hShape[i])) {
          const which = nStates === 2 ? `hidden[${k}]` : 'hidden';
          throw new Error(`Expected ${which} size ${shapeText(hShape)}, got ${fmtShape(h.shape)}`);
        }
      });
    } else {
      states = Array.from({ length: nStates }, () => zeros(hShape, { dtype: x.dtype, device: x.device }));
    }

    const finals: Tensor[][] = Array.from({ length: nStates }, () => []);
    for (let layer = 0; layer < this.numLayers; layer++) {
      const dirOutputs: Tensor[] = [];
      for (let dir = 0; dir < dirs; dir++) {
        const w = this.weights(layer, dir);
        const gi = F.linear(x, w.wIh, w.bIh); // [seq, batch, gates * hidden], all steps at once
        let state = states.map((h) => h.select(0, layer * dirs + dir));
        const outs: Tensor[] = new Array(seqLen);
        for (let k = 0; k < seqLen; k++) {
          const t = dir === 0 ? k : seqLen - 1 - k;
          state = step(this.mode, gi.select(0, t), state, w);
          outs[t] = state[0];
        }
        dirOutputs.push(stack(outs, 0));
        state.forEach((s, j) => finals[j].push(s));
      }
      x = dirs === 2 ? cat(dirOutputs, 2) : dirOutputs[0];
      if (this.dropout > 0 && this.training && layer < this.numLayers - 1) x = F.dropout(x, this.dropout, true);
    }
    let output = x;
    let hN = finals.map((f) => stack(f, 0));
    if (!batched) {
      output = output.squeeze(1);
      hN = hN.map((h) => h.squeeze(1));
    } else if (this.batchFirst) {
      output = output.transpose(0, 1);
    }
    return [output, hN];
  }

  override extraRepr(): string {
    let s = `${this.inputSize}, ${this.hiddenSize}`;
    if (this.numLayers !== 1) s += `, num_layers=${this.numLayers}`;
    if (!this.bias) s += `, bias=${py(this.bias)}`;
    if (this.batchFirst) s += `, batch_first=${py(this.batchFirst)}`;
    if (this.dropout !== 0) s += `, dropout=${py(this.dropout, true)}`;
    if (this.bidirectional) s += `, bidirectional=${py(this.bidirectional)}`;
    return s;
  }
}

/**
 * Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu), stacked `numLayers`
 * deep. `forward(input, h0?)` returns `[output, hN]`: output [seq, batch, D * hidden] (batchFirst:
 * [batch, seq, ...]; unbatched 2-D input: [seq, D * hidden]) and hN [D * numLayers, batch, hidden].
 */
export class RNN extends RNNBase {
  readonly nonlinearity: RNNNonlinearity;
  constructor(inputSize: number, hiddenSize: number, opts: RNNOptions = {}) {
    super('RNN', inputSize, hiddenSize, opts);
    this.nonlinearity = opts.nonlinearity ?? 'tanh';
  }
  override forward(input: Tensor, h0?: Tensor | null): [Tensor, Tensor] {
    const [out, [h]] = this.run(input, h0 ? [h0] : null);
    return [out, h];
  }
}

/** LSTM (gates i, f, g, o). `forward(input, [h0, c0]?)` returns `[output, [hN, cN]]`. */
export class LSTM extends RNNBase {
  constructor(inputSize: number, hiddenSize: number, opts: Omit<RNNOptions, 'nonlinearity'> = {}) {
    super('LSTM', inputSize, hiddenSize, opts);
  }
  override forward(input: Tensor, hx?: readonly [Tensor, Tensor] | null): [Tensor, [Tensor, Tensor]] {
    const [out, [h, c]] = this.run(input, hx ? [hx[0], hx[1]] : null);
    return [out, [h, c]];
  }
}

/** GRU (gates r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn))). `forward(input, h0?)` returns `[output, hN]`. */
export class GRU extends RNNBase {
  constructor(inputSize: number, hiddenSize: number, opts: Omit<RNNOptions, 'nonlinearity'> = {}) {
    super('GRU', inputSize, hiddenSize, opts);
  }
  override forward(input: Tensor, h0?: Tensor | null): [Tensor, Tensor] {
    const [out, [h]] = this.run(input, h0 ? [h0] : null);
    return [out, h];
  }
}

// ---------------------------------------------------------------------------------------------
// Cells: one time step, input [batch, input] or unbatched [input].

abstract class RNNCellBase extends Module {
  weight_ih!: Parameter;
  weight_hh!: Parameter;
  bias_ih!: Parameter | null;
  bias_hh!: Parameter | null;
  readonly bias: boolean;

  constructor(protected readonly mode: Mode, readonly inputSize: number, readonly hiddenSize: number, bias: boolean) {
    super();
    checkPositive('input_size', inputSize);
    checkPositive('hidden_size', hiddenSize);
    this.bias = bias;
    const gateSize = GATES[mode] * hiddenSize;
    this.weight_ih = uniformParameter([gateSize, inputSize], hiddenSize);
    this.weight_hh = uniformParameter([gateSize, hiddenSize], hiddenSize);
    if (bias) {
      this.bias_ih = uniformParameter([gateSize], hiddenSize);
      this.bias_hh = uniformParameter([gateSize], hiddenSize);
    } else {
      this.registerParameter('bias_ih', null);
      this.registerParameter('bias_hh', null);
    }
  }

  /** One step from `input` and the states ([h] or [h, c]; null for zeros); unbatched input gives unbatched states. */
  protected cell(input: Tensor, hx: Tensor[] | null): Tensor[] {
    const name = this.constructor.name;
    if (input.ndim !== 1 && input.ndim !== 2) throw new Error(`${name}: Expected input to be 1-D or 2-D but received ${input.ndim}-D tensor`);
    const batched = input.ndim === 2;
    const x = batched ? input : input.unsqueeze(0);
    if (x.shape[1] !== this.inputSize) throw new Error(`input has inconsistent input_size: got ${x.shape[1]} expected ${this.inputSize}`);
    const nStates = this.mode === 'LSTM' ? 2 : 1;
    let states: Tensor[];
    if (hx) {
      states = hx.map((h, k) => {
        if (h.ndim !== input.ndim) throw new Error(`${name}: Expected hidden${nStates === 2 ? `[${k}]` : ''} to be ${input.ndim}-D like the input, got ${h.ndim}-D tensor`);
        const h2 = batched ? h : h.unsqueeze(0);
        if (h2.shape[0] !== x.shape[0]) throw new Error(`Input batch size ${x.shape[0]} doesn't match hidden${k} batch size ${h2.shape[0]}`);
        if (h2.shape[1] !== this.hiddenSize) throw new Error(`hidden${k} has inconsistent hidden_size: got ${h2.shape[1]}, expected ${this.hiddenSize}`);
        return h2;
      });
    } else {
      states = Array.from({ length: nStates }, () => zeros([x.shape[0], this.hiddenSize], { dtype: x.dtype, device: x.device }));
    }
    const w: Weights = { wIh: this.weight_ih, wHh: this.weight_hh, bIh: this.bias_ih, bHh: this.bias_hh };
    const out = step(this.mode, F.linear(x, w.wIh, w.bIh), states, w);
    return batched ? out : out.map((s) => s.squeeze(0));
  }

  override extraRepr(): string {
    let s = `${this.inputSize}, ${this.hiddenSize}`;
    if (!this.bias) s += `, bias=${py(this.bias)}`;
    if (this.mode === 'RNN_RELU') s += ', nonlinearity=relu';
    return s;
  }
}

/** h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu). */
export class RNNCell extends RNNCellBase {
  readonly nonlinearity: RNNNonlinearity;
  constructor(inputSize: number, hiddenSize: number, opts: { bias?: boolean; nonlinearity?: RNNNonlinearity } = {}) {
    super(modeOf('RNN', opts.nonlinearity ?? 'tanh'), inputSize, hiddenSize, opts.bias ?? true);
    this.nonlinearity = opts.nonlinearity ?? 'tanh';
  }
  override forward(input: Tensor, hx?: Tensor | null): Tensor {
    return this.cell(input, hx ? [hx] : null)[0];
  }
}

/** One LSTM step: `forward(input, [h, c]?)` returns `[h', c']`. */
export class LSTMCell extends RNNCellBase {
  constructor(inputSize: number, hiddenSize: number, opts: { bias?: boolean } = {}) {
    super('LSTM', inputSize, hiddenSize, opts.bias ?? true);
  }
  override forward(input: Tensor, hx?: readonly [Tensor, Tensor] | null): [Tensor, Tensor] {
    const [h, c] = this.cell(input, hx ? [hx[0], hx[1]] : null);
    return [h, c];
  }
}

/** One GRU step: `forward(input, h?)` returns h'. */
export class GRUCell extends RNNCellBase {
  constructor(inputSize: number, hiddenSize: number, opts: { bias?: boolean } = {}) {
    super('GRU', inputSize, hiddenSize, opts.bias ?? true);
  }
  override forward(input: Tensor, hx?: Tensor | null): Tensor {
    return this.cell(input, hx ? [hx] : null)[0];
  }
}
