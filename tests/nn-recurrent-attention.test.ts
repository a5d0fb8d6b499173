// Recurrent layers (RNN/LSTM/GRU and their cells) and attention layers (MultiheadAttention,
// TransformerEncoderLayer, TransformerEncoder) against real PyTorch 1.13.1: each fixture case's
// state dict is loaded with loadStateDict (PyTorch's keys, exactly), the forward outputs and the
// gradients of a weighted sum of the outputs (w.r.t. the inputs and every parameter) are compared
// with expectClose. gradcheck (float64) checks the cells and MultiheadAttention end to end.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { nn, type Tensor } from 'kiln';
import { MultiheadAttention, TransformerEncoder, TransformerEncoderLayer, type TransformerEncoderLayerOptions } from '../runtime/nn/layers/attention.js';
import { GRU, GRUCell, LSTM, LSTMCell, RNN, RNNCell, type RNNOptions } from '../runtime/nn/layers/recurrent.js';
import { expectClose, fromFixture, loadFixture, type FixtureTensor } from './helpers.js';

interface Case {
  module: { kind: string; args: [number, number]; opts: Record<string, unknown>; forward?: Record<string, unknown> };
  state_dict: Record<string, FixtureTensor>;
  inputs: Record<string, FixtureTensor | { shape: number[]; dtype: 'bool'; data: number[] }>;
  grad_weights: Record<string, FixtureTensor>;
  outputs: Record<string, FixtureTensor>;
  grads: Record<string, FixtureTensor>;
}

const fixture = loadFixture('generated/recurrent_attention') as { torch_version: string; cases: Record<string, Case> };

function build(spec: Case['module']): nn.Module {
  const [a, b] = spec.args;
  const o = spec.opts;
  switch (spec.kind) {
    case 'RNN': return new RNN(a, b, o as RNNOptions);
    case 'LSTM': return new LSTM(a, b, o as RNNOptions);
    case 'GRU': return new GRU(a, b, o as RNNOptions);
    case 'RNNCell': return new RNNCell(a, b, o);
    case 'LSTMCell': return new LSTMCell(a, b, o);
    case 'GRUCell': return new GRUCell(a, b, o);
    case 'MultiheadAttention': return new MultiheadAttention(a, b, o);
    case 'TransformerEncoderLayer': return new TransformerEncoderLayer(a, b, o as TransformerEncoderLayerOptions);
    case 'TransformerEncoder': return new TransformerEncoder(new TransformerEncoderLayer(a, b, o as TransformerEncoderLayerOptions), 2, { norm: new nn.LayerNorm(a) });
  }
  throw new Error(`unknown kind ${spec.kind}`);
}

/** Runs the Kiln module as the generator ran the torch one; returns the outputs by the fixture's names. */
function call(kind: string, m: nn.Module, i: Record<string, Tensor>, fwd: Record<string, unknown> = {}): Record<string, Tensor> {
  switch (kind) {
    case 'RNN':
    case 'GRU': {
      const [output, hN] = (m as RNN)(i.input, i.h0);
      return { output, h_n: hN };
    }
    case 'LSTM': {
      const [output, [hN, cN]] = (m as LSTM)(i.input, i.h0 ? [i.h0, i.c0] : undefined);
      return { output, h_n: hN, c_n: cN };
    }
    case 'RNNCell':
    case 'GRUCell':
      return { output: (m as RNNCell)(i.input, i.hx) };
    case 'LSTMCell': {
      const [h, c] = (m as LSTMCell)(i.input, i.hx ? [i.hx, i.cx] : undefined);
      return { h, c };
    }
    case 'MultiheadAttention': {
      const [q, k, v] = i.x ? [i.x, i.x, i.x] : [i.query, i.key, i.value];
      const [output, weights] = (m as MultiheadAttention)(q, k, v, { attnMask: i.attn_mask, keyPaddingMask: i.key_padding_mask, ...fwd });
      return { output, weights: weights! };
    }
    case 'TransformerEncoderLayer':
      return { output: (m as TransformerEncoderLayer)(i.src, { srcMask: i.src_mask, srcKeyPaddingMask: i.src_key_padding_mask }) };
    case 'TransformerEncoder':
      return { output: (m as TransformerEncoder)(i.src, { mask: i.mask }) };
  }
  throw new Error(`unknown kind ${kind}`);
}

function input(t: Case['inputs'][string]): Tensor {
  if (t.dtype === 'bool') return kiln.tensor(t.data.map((v) => v !== 0)).reshape(t.shape);
  return fromFixture(t as FixtureTensor, { requiresGrad: true });
}

describe(`recurrent and attention layers match PyTorch ${fixture.torch_version}`, () => {
  for (const [name, c] of Object.entries(fixture.cases)) {
    it(name, () => {
      const m = build(c.module);
      if (c.module.kind.startsWith('Transformer')) m.eval(); // dropout off, as the generator ran it
      const sd = Object.fromEntries(Object.entries(c.state_dict).map(([k, t]) => [k, fromFixture(t)]));
      expect(Object.keys(m.stateDict())).toEqual(Object.keys(c.state_dict)); // PyTorch's names, in PyTorch's order
      expect(m.loadStateDict(sd)).toEqual({ missingKeys: [], unexpectedKeys: [] });
      const ins = Object.fromEntries(Object.entries(c.inputs).map(([k, t]) => [k, input(t)]));
      const outs = call(c.module.kind, m, ins, c.module.forward);
      // Outputs the generator's torch call did not return (MHA weights with needWeights) are not there.
      expect(Object.keys(outs).filter((k) => outs[k])).toEqual(Object.keys(c.outputs));
      let loss: Tensor | null = null;
      for (const [k, ref] of Object.entries(c.outputs)) {
        expectClose(outs[k], ref);
        const term = outs[k].mul(fromFixture(c.grad_weights[k])).sum();
        loss = loss ? loss.add(term) : term;
      }
      loss!.backward();
      const params = Object.fromEntries(m.namedParameters());
      for (const [k, ref] of Object.entries(c.grads)) {
        const t = k in ins ? ins[k] : params[k];
        expect(t, k).toBeDefined();
        expectClose(t.grad!, ref);
      }
      expect(Object.keys(c.grads).filter((k) => !(k in ins))).toEqual(Object.keys(params));
    });
  }
});

/**
 * gradcheck of `fn` with respect to `inputs` and every parameter of `m`: gradcheck hands `fn`
 * perturbed copies of a parameter, which are written into the module (and restored) around the call.
 */
function gradcheckModule(m: nn.Module, inputs: Tensor[], fn: (...inputs: Tensor[]) => Tensor | Tensor[]): boolean {
  const params = m.parameters();
  const saved = params.map((p) => p.detach().clone());
  const f = (...args: Tensor[]) => {
    const ps = args.slice(inputs.length);
    const swapped = ps.map((p, j) => p !== params[j]);
    if (swapped.some(Boolean)) kiln.noGrad(() => ps.forEach((p, j) => swapped[j] && params[j].copy_(p)));
    try {
      return fn(...args.slice(0, inputs.length));
    } finally {
      if (swapped.some(Boolean)) kiln.noGrad(() => params.forEach((p, j) => swapped[j] && p.copy_(saved[j])));
    }
  };
  return kiln.autograd.gradcheck(f, [...inputs, ...params]);
}

const rand64 = (...shape: number[]) => kiln.randn(shape, { dtype: 'float64' }).requiresGrad_();

describe('gradcheck (float64)', () => {
  it('RNNCell (tanh and relu)', () => {
    kiln.manualSeed(1);
    for (const nonlinearity of ['tanh', 'relu'] as const) {
      const cell = new RNNCell(3, 2, { nonlinearity }).double();
      expect(gradcheckModule(cell, [rand64(2, 3), rand64(2, 2)], (x, h) => cell(x, h))).toBe(true);
    }
  });
  it('LSTMCell', () => {
    kiln.manualSeed(2);
    const cell = new LSTMCell(3, 2).double();
    expect(gradcheckModule(cell, [rand64(2, 3), rand64(2, 2), rand64(2, 2)], (x, h, c) => cell(x, [h, c]))).toBe(true);
  });
  it('GRUCell', () => {
    kiln.manualSeed(3);
    const cell = new GRUCell(3, 2).double();
    expect(gradcheckModule(cell, [rand64(2, 3), rand64(2, 2)], (x, h) => cell(x, h))).toBe(true);
  });
  it('MultiheadAttention with masks', () => {
    kiln.manualSeed(4);
    const mha = new MultiheadAttention(4, 2).double();
    kiln.noGrad(() => mha.in_proj_bias!.normal_(0, 0.1));
    const attnMask = kiln.tensor([[false, true, false], [false, false, true]]);
    const kpm = kiln.tensor([[false, false, true]]);
    const fn = (q: Tensor, k: Tensor, v: Tensor) => {
      const [out, w] = mha(q, k, v, { attnMask, keyPaddingMask: kpm, averageAttnWeights: false });
      return [out, w!];
    };
    expect(gradcheckModule(mha, [rand64(2, 1, 4), rand64(3, 1, 4), rand64(3, 1, 4)], fn)).toBe(true);
  });
});

describe('recurrent layers', () => {
  it('parameters: PyTorch names, shapes and init U(-1/sqrt(H), 1/sqrt(H))', () => {
    const lstm = new LSTM(10, 20, { numLayers: 2, bidirectional: true });
    const shapes = Object.fromEntries(lstm.namedParameters().map(([n, p]) => [n, p.shape]));
    expect(shapes.weight_ih_l0).toEqual([80, 10]);
    expect(shapes.weight_hh_l0_reverse).toEqual([80, 20]);
    expect(shapes.weight_ih_l1).toEqual([80, 40]);
    expect(shapes.bias_hh_l1_reverse).toEqual([80]);
    expect(lstm.parameters().length).toBe(16);
    expect(lstm.allWeights.length).toBe(4);
    const bound = 1 / Math.sqrt(20);
    for (const p of lstm.parameters()) {
      expect(p.abs().amax().itemSync()).toBeLessThanOrEqual(bound);
      expect(p.abs().amax().itemSync()).toBeGreaterThan(bound * 0.5);
    }
    expect(Object.keys(new GRU(3, 4, { bias: false }).stateDict())).toEqual(['weight_ih_l0', 'weight_hh_l0']);
    expect(new GRUCell(3, 4).weight_ih.shape).toEqual([12, 3]);
    expect(new RNNCell(3, 4, { bias: false }).bias_ih).toBeNull();
  });
  it('prints like PyTorch', () => {
    expect(new LSTM(10, 20, { numLayers: 2 }).toString()).toBe('LSTM(10, 20, num_layers=2)');
    expect(new RNN(3, 4, { nonlinearity: 'relu', dropout: 1, bidirectional: true, batchFirst: true, bias: false }).toString()).toBe(
      'RNN(3, 4, bias=False, batch_first=True, dropout=1.0, bidirectional=True)',
    );
    expect(new GRU(3, 4, { dropout: 0.5, numLayers: 2 }).toString()).toBe('GRU(3, 4, num_layers=2, dropout=0.5)');
    expect(new GRUCell(3, 4, { bias: false }).toString()).toBe('GRUCell(3, 4, bias=False)');
    expect(new RNNCell(3, 4, { nonlinearity: 'relu' }).toString()).toBe('RNNCell(3, 4, nonlinearity=relu)');
    expect(new LSTMCell(3, 4).toString()).toBe('LSTMCell(3, 4)');
  });
  it('shapes: unbatched input, batchFirst, bidirectional, cells without a batch', () => {
    const lstm = new LSTM(3, 4, { numLayers: 2, bidirectional: true });
    const [out, [h, c]] = lstm(kiln.randn([5, 3]));
    expect([out.shape, h.shape, c.shape]).toEqual([[5, 8], [4, 4], [4, 4]]);
    const gru = new GRU(3, 4, { batchFirst: true });
    const [o2, h2] = gru(kiln.randn([2, 5, 3]), kiln.zeros([1, 2, 4]));
    expect([o2.shape, h2.shape]).toEqual([[2, 5, 4], [1, 2, 4]]);
    // The last output step of a unidirectional single layer is its final state.
    expectClose(o2.select(1, 4), h2.select(0, 0), 0);
    expect(new GRUCell(3, 4)(kiln.randn([3])).shape).toEqual([4]);
    const [hc, cc] = new LSTMCell(3, 4)(kiln.randn([3]), [kiln.zeros([4]), kiln.zeros([4])]);
    expect([hc.shape, cc.shape]).toEqual([[4], [4]]);
  });
  it('dropout between layers only in training mode', () => {
    kiln.manualSeed(0);
    const rnn = new RNN(3, 4, { numLayers: 2, dropout: 0.5 });
    const x = kiln.randn([4, 2, 3]);
    const [a] = rnn(x);
    const [b] = rnn(x);
    expect(a.sub(b).abs().amax().itemSync()).toBeGreaterThan(0);
    rnn.eval();
    expectClose(rnn(x)[0], rnn(x)[0], 0);
  });
  it('errors name the mismatch as PyTorch does', () => {
    const lstm = new LSTM(3, 4, { numLayers: 2 });
    expect(() => lstm(kiln.zeros([5, 2, 2]))).toThrow('input.size(-1) must be equal to input_size. Expected 3, got 2');
    expect(() => lstm(kiln.zeros([5, 2, 3]), [kiln.zeros([2, 3, 4]), kiln.zeros([2, 2, 4])])).toThrow('Expected hidden[0] size (2, 2, 4), got [2, 3, 4]');
    expect(() => lstm(kiln.zeros([5, 3]), [kiln.zeros([2, 2, 4]), kiln.zeros([2, 2, 4])])).toThrow('For unbatched 2-D input, hx and cx should also be 2-D but got (3-D, 3-D) tensors');
    expect(() => new GRU(3, 4)(kiln.zeros([5, 2, 3]), kiln.zeros([1, 3, 4]))).toThrow('Expected hidden size (1, 2, 4), got [1, 3, 4]');
    expect(() => new GRUCell(3, 4)(kiln.zeros([5, 2, 3]))).toThrow('GRUCell: Expected input to be 1-D or 2-D but received 3-D tensor');
    expect(() => new GRUCell(3, 4)(kiln.zeros([2, 3]), kiln.zeros([3, 4]))).toThrow("Input batch size 2 doesn't match hidden0 batch size 3");
    expect(() => new RNN(3, 4, { nonlinearity: 'sigmoid' as 'tanh' })).toThrow("Unknown nonlinearity 'sigmoid'");
  });
});

describe('attention layers', () => {
  it('MultiheadAttention: parameters, init and printing', () => {
    const mha = new MultiheadAttention(8, 2);
    expect(Object.keys(mha.stateDict())).toEqual(['in_proj_weight', 'in_proj_bias', 'out_proj.weight', 'out_proj.bias']);
    expect(mha.in_proj_bias!.abs().amax().itemSync()).toBe(0);
    expect(mha.out_proj.bias!.abs().amax().itemSync()).toBe(0);
    expect(mha.in_proj_weight!.abs().amax().itemSync()).toBeLessThanOrEqual(Math.sqrt(6 / 32));
    expect(mha.toString()).toBe('MultiheadAttention(\n  (out_proj): NonDynamicallyQuantizableLinear(in_features=8, out_features=8, bias=True)\n)');
    const sep = new MultiheadAttention(8, 2, { kdim: 3, vdim: 5, bias: false });
    expect(Object.keys(sep.stateDict())).toEqual(['q_proj_weight', 'k_proj_weight', 'v_proj_weight', 'out_proj.weight']);
    expect(sep.k_proj_weight!.shape).toEqual([8, 3]);
    expect(() => new MultiheadAttention(5, 2)).toThrow('embed_dim must be divisible by num_heads');
  });
  it('MultiheadAttention: needWeights false, weights summing to 1, errors', () => {
    const mha = new MultiheadAttention(4, 2);
    const q = kiln.randn([3, 2, 4]);
    const kv = kiln.randn([5, 2, 4]);
    const [out, none] = mha(q, kv, kv, { needWeights: false });
    expect(out.shape).toEqual([3, 2, 4]);
    expect(none).toBeNull();
    const [, w] = mha(q, kv, kv, { keyPaddingMask: kiln.tensor([[false, false, false, false, true], [false, false, false, false, false]]) });
    expect(w!.shape).toEqual([2, 3, 5]);
    expectClose(w!.sum(-1), kiln.ones([2, 3]));
    expect(w!.select(0, 0).select(1, 4).abs().amax().itemSync()).toBe(0);
    expect(() => mha(q, kv, kv, { attnMask: kiln.zeros([3, 4]) })).toThrow('The shape of the 2D attn_mask is torch.Size([3, 4]), but should be (3, 5).');
    expect(() => mha(q, kv, kv, { attnMask: kiln.zeros([2, 3, 5]) })).toThrow('The shape of the 3D attn_mask is torch.Size([2, 3, 5]), but should be (4, 3, 5).');
    expect(() => mha(q, kv, kv, { keyPaddingMask: kiln.zeros([2, 4]) })).toThrow('expecting key_padding_mask shape of (2, 5), but got torch.Size([2, 4])');
    expect(() => mha(q, kv, kiln.zeros([4, 2, 4]))).toThrow('key shape torch.Size([5, 2, 4]) does not match value shape torch.Size([4, 2, 4])');
    expect(() => mha(kiln.zeros([3, 2, 3]), kv, kv)).toThrow('was expecting embedding dimension of 4, but got 3');
  });
  it('TransformerEncoderLayer: submodule names and printing; TransformerEncoder clones the layer', () => {
    const layer = new TransformerEncoderLayer(4, 2, { dimFeedforward: 8 });
    expect(layer.namedChildren().map(([n]) => n)).toEqual(['self_attn', 'linear1', 'dropout', 'linear2', 'norm1', 'norm2', 'dropout1', 'dropout2']);
    expect(layer.toString()).toBe(
      [
        'TransformerEncoderLayer(',
        '  (self_attn): MultiheadAttention(',
        '    (out_proj): NonDynamicallyQuantizableLinear(in_features=4, out_features=4, bias=True)',
        '  )',
        '  (linear1): Linear(in_features=4, out_features=8, bias=True)',
        '  (dropout): Dropout(p=0.1, inplace=False)',
        '  (linear2): Linear(in_features=8, out_features=4, bias=True)',
        '  (norm1): LayerNorm((4,), eps=1e-05, elementwise_affine=True)',
        '  (norm2): LayerNorm((4,), eps=1e-05, elementwise_affine=True)',
        '  (dropout1): Dropout(p=0.1, inplace=False)',
        '  (dropout2): Dropout(p=0.1, inplace=False)',
        ')',
      ].join('\n'),
    );
    const enc = new TransformerEncoder(layer, 2);
    const layers = [...enc.layers] as TransformerEncoderLayer[];
    expect(layers[0]).not.toBe(layer);
    expect(layers[0].linear1.weight).not.toBe(layers[1].linear1.weight);
    expectClose(layers[1].linear1.weight, layer.linear1.weight, 0);
    expect(enc.parameters().length).toBe(2 * layer.parameters().length);
    enc.eval();
    expect(enc(kiln.randn([3, 2, 4])).shape).toEqual([3, 2, 4]);
  });
  it('TransformerEncoderLayer: dropout in training mode, deterministic in eval', () => {
    kiln.manualSeed(0);
    const layer = new TransformerEncoderLayer(4, 2, { dimFeedforward: 8, dropout: 0.5, batchFirst: true });
    const x = kiln.randn([2, 3, 4]);
    expect(layer(x).sub(layer(x)).abs().amax().itemSync()).toBeGreaterThan(0);
    layer.eval();
    expectClose(layer(x), layer(x), 0);
  });
});
