// Convolutions compiled: conv runs its whole batch as one GEMM whose output is a permuted view, and
// fusion moves those permutes around elementwise ops (compiler/passes/conv-layout.ts). Compiled
// training steps and compiled forward/backward must equal eager for every conv geometry, whether
// the rewrites apply (ReLU after a conv) or not (an op that reads the conv output twice, no bias).
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { nn, optim, type Tensor } from 'kiln';
import { expectClose } from './helpers.js';

const F = nn.functional;
const quiet = { log: () => {} };

class Net extends nn.Module {
  conv: nn.Conv2d | nn.Conv1d;
  constructor(conv: nn.Conv2d | nn.Conv1d, readonly after: (y: Tensor) => Tensor) {
    super();
    this.conv = conv;
  }
  override forward(x: Tensor): Tensor {
    return this.after(this.conv(x));
  }
}

const cases: [string, () => nn.Conv2d | nn.Conv1d, (y: Tensor) => Tensor, number[]][] = [
  ['conv2d + relu + maxpool', () => new nn.Conv2d(2, 4, 3), (y) => F.maxPool2d(F.relu(y), 2), [3, 2, 9, 9]],
  ['padding, stride, dilation', () => new nn.Conv2d(3, 5, [3, 2], { padding: [2, 1], stride: [2, 1], dilation: [1, 2] }), (y) => F.relu(y), [2, 3, 8, 7]],
  ['groups, no bias', () => new nn.Conv2d(4, 6, 3, { groups: 2, bias: false }), (y) => F.relu(y), [2, 4, 6, 6]],
  ['padding same', () => new nn.Conv2d(2, 3, 4, { padding: 'same' }), (y) => F.relu(y).mul(3), [2, 2, 5, 6]],
  ['output read twice', () => new nn.Conv2d(2, 3, 3), (y) => y.mul(y).add(y), [2, 2, 6, 6]],
  ['conv1d', () => new nn.Conv1d(3, 4, 3, { padding: 1 }), (y) => F.relu(y), [5, 3, 11]],
  ['batch of one', () => new nn.Conv2d(1, 2, 3), (y) => F.relu(y), [1, 1, 5, 5]],
];

describe('compiled convolutions equal eager', () => {
  for (const [name, makeConv, after, shape] of cases) {
    it(`${name}: 5 SGD momentum steps`, () => {
      kiln.manualSeed(3);
      const m1 = new Net(makeConv(), after);
      const m2 = new Net(makeConv(), after);
      m2.loadStateDict(m1.stateDict());
      const x = kiln.randn(shape);
      const target = kiln.randn(after(m1.conv(x)).shape);
      const loss = (out: Tensor, t: Tensor) => F.mseLoss(out, t);
      const o1 = new optim.SGD(m1.parameters(), { lr: 0.05, momentum: 0.9 });
      const step = kiln.compileTrainStep(m2, loss, new optim.SGD(m2.parameters(), { lr: 0.05, momentum: 0.9 }), quiet);
      for (let t = 0; t < 5; t++) {
        o1.zeroGrad();
        const l = loss(m1(x), target);
        l.backward();
        o1.step();
        expectClose(step(x, target).itemSync(), l.itemSync());
      }
      const sd1 = m1.stateDict({ keepVars: true });
      for (const [k, v] of Object.entries(m2.stateDict())) expectClose(v, sd1[k]);
    });

    it(`${name}: compiled forward and input gradient`, () => {
      kiln.manualSeed(4);
      const m = new Net(makeConv(), after);
      const fast = kiln.compile(m, quiet);
      const x1 = kiln.randn(shape, { requiresGrad: true });
      const x2 = x1.detach().clone().requiresGrad_();
      const ref = m(x1);
      const got = fast(x2);
      expectClose(got, ref);
      ref.mul(ref).sum().backward();
      got.mul(got).sum().backward();
      expect(x2.grad).toBeTruthy();
      expectClose(x2.grad!, x1.grad!);
    });
  }
});

describe('max-pool picks the tap PyTorch picks', () => {
  const pool = (x: Tensor) => F.maxPool2d(x, [1, 4], { returnIndices: true });
  it('the first of tied maxima gets the index and the gradient, eager and compiled', () => {
    for (const run of [pool, kiln.compile((x: Tensor) => pool(x)[0], quiet)]) {
      const x = kiln.tensor([1, 3, 3, 2, -1, -1, -1, -1]).reshape([1, 1, 1, 8]).requiresGrad_();
      const r = run(x) as Tensor | [Tensor, Tensor];
      const out = Array.isArray(r) ? r[0] : r;
      out.sum().backward();
      expect(out.dataSync()).toEqual(Float32Array.from([3, -1]));
      expect([...x.grad!.dataSync()]).toEqual([0, 1, 0, 0, 1, 0, 0, 0]);
    }
    expect([...pool(kiln.tensor([1, 3, 3, 2]).reshape([1, 1, 1, 4]))[1].dataSync()]).toEqual([1]);
  });
  it('a NaN wins, the last one (PyTorch CPU: val > max || isnan(val))', () => {
    const [out, idx] = pool(kiln.tensor([1, NaN, 5, NaN]).reshape([1, 1, 1, 4]));
    expect(Number.isNaN(out.dataSync()[0])).toBe(true);
    expect([...idx.dataSync()]).toEqual([3]);
  });
});

describe('the layout rewrites outside convolutions', () => {
  it('a reshape of a transposed elementwise result, with a broadcast operand, equals eager', () => {
    const f = (x: Tensor, b: Tensor) => x.mul(b).add(x.exp()).relu().transpose(0, 2).reshape([-1]).mul(2);
    const fast = kiln.compile(f, quiet);
    const x = kiln.randn([3, 4, 5]), b = kiln.randn([4, 1]);
    expectClose(fast(x, b), f(x, b));
  });
});

describe('max-pool with many taps per window', () => {
  it('a 5x5 window (25 taps: argmax, not the chain) gives the window maxima, eager and compiled', () => {
    kiln.manualSeed(5);
    const x = kiln.randn([2, 3, 10, 10]);
    const big = F.maxPool2d(x, 5);
    expectClose(big, x.reshape([2, 3, 2, 5, 2, 5]).amax([3, 5]));
    expectClose(kiln.compile((t: Tensor) => F.maxPool2d(t, 5), quiet)(x), big);
  });
});
