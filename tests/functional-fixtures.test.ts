// nn.functional on the project's PyTorch fixtures (float32 inputs, float64 references, tol 1e-5).
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';
import * as F from '../runtime/nn/functional/index.js';
import { expectClose, fromFixture, loadFixture } from './helpers.js';

/** Gradients of sum(out * gradOut) with respect to `wrt`. */
const gradsOf = (out: Tensor, gradOut: Tensor, wrt: Tensor[]): Tensor[] => kiln.autograd.grad(out.mul(gradOut).sum(), wrt).map((g) => g!);

describe('functional ops on the PyTorch fixtures', () => {
  it('conv2d, stride 2, padding 1 (op_conv2d_s2p1)', () => {
    const f = loadFixture('op_conv2d_s2p1');
    const [x, w, b] = ['x', 'weight', 'bias'].map((k) => fromFixture(f.inputs[k], { requiresGrad: true }));
    const out = F.conv2d(x, w, b, { stride: f.hyper.stride, padding: f.hyper.padding });
    expectClose(out, f.outputs.out);
    const [gx, gw, gb] = gradsOf(out, fromFixture(f.inputs.grad_out), [x, w, b]);
    expectClose(gx, f.outputs.grad_x);
    expectClose(gw, f.outputs.grad_weight);
    expectClose(gb, f.outputs.grad_bias);
  });

  for (const sub of ['k2s2', 'k3s2p1']) {
    it(`maxPool2d ${sub}: values, PyTorch's indices and the routed gradient (op_maxpool2d)`, () => {
      const f = loadFixture('op_maxpool2d');
      const h = f.hyper[sub];
      const x = fromFixture(f.inputs[`x_${sub}`], { requiresGrad: true });
      const [out, indices] = F.maxPool2d(x, h.kernel_size, { stride: h.stride, padding: h.padding, returnIndices: true });
      expectClose(out, f.outputs[sub].out);
      expect(indices.dtype).toBe('int32');
      expect(Array.from(indices.dataSync())).toEqual(f.outputs[sub].indices.data);
      const [gx] = gradsOf(out, fromFixture(f.inputs[`grad_out_${sub}`]), [x]);
      expectClose(gx, f.outputs[sub].grad_x);
    });
  }

  it('softmax and logSoftmax, including a row of magnitude ~300 (op_softmax)', () => {
    const f = loadFixture('op_softmax');
    for (const [name, fn] of [['softmax', F.softmax], ['log_softmax', F.logSoftmax]] as const) {
      const x = fromFixture(f.inputs.x, { requiresGrad: true });
      const out = fn(x, f.hyper.dim);
      expectClose(out, f.outputs[name].out);
      expectClose(gradsOf(out, fromFixture(f.inputs.grad_out), [x])[0], f.outputs[name].grad_x);
    }
  });

  for (const reduction of ['mean', 'sum', 'none'] as const) {
    it(`crossEntropy, reduction ${reduction} (op_cross_entropy)`, () => {
      const f = loadFixture('op_cross_entropy');
      const logits = fromFixture(f.inputs.logits, { requiresGrad: true });
      const loss = F.crossEntropy(logits, fromFixture(f.inputs.target), { reduction });
      expectClose(loss, f.outputs[reduction].loss);
      expectClose(kiln.autograd.grad(loss.sum(), [logits])[0]!, f.outputs[reduction].grad_logits);
    });
  }

  for (const sub of ['x2d', 'x3d']) {
    it(`batchNorm in training with running statistics, ${sub} (op_batchnorm1d_train)`, () => {
      const f = loadFixture('op_batchnorm1d_train');
      const x = fromFixture(f.inputs[sub], { requiresGrad: true });
      const w = fromFixture(f.params_init.weight, { requiresGrad: true });
      const b = fromFixture(f.params_init.bias, { requiresGrad: true });
      const rm = fromFixture(f.params_init.running_mean);
      const rv = fromFixture(f.params_init.running_var);
      const out = F.batchNorm(x, rm, rv, w, b, { training: true, momentum: f.hyper.momentum, eps: f.hyper.eps });
      const o = f.outputs[sub];
      expectClose(out, o.out);
      expectClose(rm, o.running_mean_after);
      expectClose(rv, o.running_var_after);
      const [gx, gw, gb] = gradsOf(out, fromFixture(f.inputs[sub === 'x2d' ? 'grad_out2d' : 'grad_out3d']), [x, w, b]);
      expectClose(gx, o.grad_x);
      expectClose(gw, o.grad_weight);
      expectClose(gb, o.grad_bias);
    });
  }
});
