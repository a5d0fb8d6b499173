// kiln.optim: every optimizer against a plain float64 re-implementation of PyTorch 1.13's formulas
// and against real PyTorch numbers; the Adam fixture; stateDict round trips; skipped parameters;
// the learning-rate schedulers.
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';
import * as optim from '../runtime/optim/index.js';
import { expectClose, fromFixture, loadFixture } from './helpers.js';

type Opts = Record<string, number | boolean | number[]>;

const P0 = [[0.5, -1.2, 2.0], [0.3, 0.9, -0.4]];
const P1 = [1.5, -0.7, 0.2];
const T0 = [[0.1, 0.2, 0.3], [-0.1, -0.2, -0.3]];
const T1 = [0.0, 1.0, -1.0];
const W0 = [[1.0, 2.0, 0.5], [3.0, 0.25, 1.5]];
const W1 = [0.5, 1.0, 2.0];

const CASES: Record<string, Opts[]> = {
  SGD: [{ lr: 0.1 }, { lr: 0.1, momentum: 0.9 }, { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 0.01 },
    { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.1 }, { lr: 0.1, momentum: 0.5, maximize: true }],
  Adam: [{ lr: 0.1 }, { lr: 0.05, betas: [0.8, 0.99], weightDecay: 0.1 }, { lr: 0.1, amsgrad: true }, { lr: 0.1, eps: 1e-3, maximize: true }],
  AdamW: [{ lr: 0.1 }, { lr: 0.1, weightDecay: 0.5, amsgrad: true }],
  Adagrad: [{ lr: 0.1 }, { lr: 0.1, lrDecay: 0.1, weightDecay: 0.1, initialAccumulatorValue: 0.5 }, { eps: 1e-2, maximize: true }],
  RMSprop: [{ lr: 0.01 }, { lr: 0.01, momentum: 0.9 }, { lr: 0.01, centered: true, weightDecay: 0.1 },
    { lr: 0.01, centered: true, momentum: 0.5, alpha: 0.9, eps: 1e-4 }],
};

// PyTorch 1.13.1 (float64) values, from throwaway scripts run while writing these tests:
// parameters [p0 (2x3, flattened), p1 (3)] after 5 steps of each case, in the order of CASES.
const TORCH: Record<string, number[][]> = {
  SGD: [
    [-0.09586319900192937, -0.12015438849217802, 1.3627651197109094, -0.2563912061979622, 0.2957779075233666, -0.5583665329607513, 0.7238158717265873, 0.1234070877422909, -1.0570388330512446],
    [-0.867572264704143, 0.8690340621238268, 0.32971123284336123, -0.3374865318245625, -0.6504854944336941, -0.7161744802933201, -0.4837713556388295, 1.3070727411080227, -1.8488869080500567],
    [-0.34941051756699704, 0.6680490117223146, 1.2067418689221254, -0.6863567197108188, 0.16441118701572857, -0.6530440395525907, 0.5358783096604834, 0.532606601886031, -1.9180142562409888],
    [-0.47605296597014085, 0.46805803054012785, 0.7851333288658031, -0.43262226548585175, -0.16001738586676817, -0.6269987056276807, 0.11327717549193278, 0.679799860638457, -1.605654713130716],
    [2.2978348533004267, -11.810780978292703, 3.096541367664046, 8.583581754488666, 1.7615031902932767, 0.6034958212175708, 2.784168737150243, -4.621929052521386, 10.198681152022804],
  ],
  Adam: [
    [0.00788646354429727, -0.7070809165485269, 1.5001393445107498, -0.17881088674008222, 0.39943612677020424, -0.6817001203041175, 1.0000897924835856, -0.20739159819663977, -0.2954714789101302],
    [0.2526010621805213, -0.9524512961190905, 1.7502415697012865, 0.05537572600220187, 0.6497824985407203, -0.6062371824445228, 1.2501452428708424, -0.45263273509303703, -0.04828307895523902],
    [0.00788646354429727, -0.7070809165485269, 1.5001393445107498, -0.17881088674008222, 0.39943612677020424, -0.6817001203041175, 1.0000897924835856, -0.20739159819663977, -0.2954714789101302],
    [1.0017655606387743, -1.702062115914101, 2.500152664436741, 0.8019421288761002, 1.3979034193099507, 0.09482110825501915, 1.999707435310313, -1.2020310144172248, 0.701713780534252],
  ],
  AdamW: [
    [0.006437885277705779, -0.7022048101337598, 1.491158694034043, -0.17924116806404988, 0.3959438056406417, -0.6806331870062745, 0.9936068720257175, -0.20495689615405482, -0.2954679852632577],
    [-0.055261284511482274, -0.48958063834481275, 1.0952806383856677, -0.1958701977218597, 0.24345132754953108, -0.6355337075661589, 0.7085586128027339, -0.0995910026365644, -0.29306153932750123],
  ],
  Adagrad: [
    [0.1970381359642999, -0.8961607488523271, 1.6775510757259275, 0.01562908715511386, 0.5737171150699081, -0.5744649552734378, 1.1770944007995183, -0.39696363673975904, -0.10945334347572719],
    [0.24431835014400743, -0.932666716307942, 1.735177806415144, 0.048844750244866404, 0.6379934874673744, -0.5375448168521145, 1.2307942828451972, -0.43736188711234253, -0.07139577434573194],
    [0.5323487040432263, -1.2324489942206884, 2.032153927370645, 0.33256261616626304, 0.9320764159716098, -0.3670861155450324, 1.532172256251951, -0.7324178027481764, 0.23239992173647578],
  ],
  RMSprop: [
    [0.1957934266991536, -0.8949051356809734, 1.676255936632379, 0.014468364077158562, 0.5724286862174113, -0.5746813864086244, 1.1758026079502901, -0.3957080121767964, -0.1107225450319573],
    [-0.35417146551219303, -0.3330251964291528, 1.0505530524173683, -0.46281115045145166, -0.058135862146985774, -0.7081343875171842, 0.5515556016349932, 0.1658955812096266, -0.6901706078045691],
    [0.19286652884702138, -0.8911738746239598, 1.6732272959866674, 0.011830775671777032, 0.569802472486918, -0.5613026872138966, 1.172654926194706, -0.39233077076883527, -0.11424056353033796],
    [0.3019056240551273, -1.0018570007003524, 1.7966622565577097, 0.10701344151538154, 0.6952660001361335, -0.5604072234241513, 1.2964050835020982, -0.5021638380623082, 0.000208690742289889],
  ],
};
/** Two groups (p1's group has lr 0.02), 5 steps. */
const TORCH_GROUPS: Record<string, number[]> = {
  SGD: [-0.867572264704143, 0.8690340621238268, 0.32971123284336123, -0.3374865318245625, -0.6504854944336941, -0.7161744802933201, 1.0873646225254003, -0.0866021123788472, -1.0458525352305026],
  Adam: [0.00788646354429727, -0.7070809165485269, 1.5001393445107498, -0.17881088674008222, 0.39943612677020424, -0.6817001203041175, 1.4000006115897994, -0.6001952397554216, 0.10012498886763674],
};
/** p1 has a gradient only on even steps (6 steps). */
const TORCH_SKIP: Record<string, number[]> = {
  SGD: [-0.9442115219353723, 0.4392548302703011, -0.23139311797176934, 0.002919555575010765, -1.1306952098321084, -0.6710636589002618, 0.6215668008364311, 0.4883353468652529, -1.9522036503789357],
  Adam: [-0.08543335792438812, -0.6125182201579268, 1.4001952583169899, -0.2599633610230352, 0.299210721959016, -0.6571704243017861, 1.2000085529570739, -0.4015337080211551, -0.09908663395622756],
  RMSprop: [-0.06670656381050595, -0.6253940691015193, 1.361238649573303, -0.19870687059445316, 0.2534412091241119, -0.5756118112727956, 1.1607589713773414, -0.3734292923169046, -0.13079898980200805],
};
/** getLastLr() after construction and after each step; groups with lr 0.1 and 0.5. */
const TORCH_LR: Record<string, number[][]> = {
  step: [[0.1, 0.5], [0.1, 0.5], [0.1, 0.5], [0.05, 0.25], [0.05, 0.25], [0.05, 0.25], [0.025, 0.125], [0.025, 0.125], [0.025, 0.125], [0.0125, 0.0625], [0.0125, 0.0625]],
  exp: [[0.1, 0.5], [0.09000000000000001, 0.45], [0.08100000000000002, 0.405], [0.07290000000000002, 0.36450000000000005], [0.06561000000000002, 0.32805000000000006], [0.05904900000000002, 0.2952450000000001], [0.05314410000000002, 0.2657205000000001]],
  cos: [[0.1, 0.5], [0.09140576474687263, 0.45320916362186214], [0.06890576474687263, 0.33070916362186215], [0.04109423525312736, 0.1792908363781379], [0.018594235253127367, 0.0567908363781379], [0.01, 0.01], [0.018594235253127367, 0.05679083637813787], [0.04109423525312739, 0.17929083637813795], [0.06890576474687267, 0.33070916362186226], [0.09140576474687269, 0.45320916362186237], [0.10000000000000006, 0.5000000000000002], [0.09140576474687272, 0.4532091636218625], [0.06890576474687268, 0.3307091636218623], [0.0410942352531274, 0.17929083637813803], [0.01859423525312738, 0.05679083637813795]],
};

// ---- the plain-JS float64 reference: PyTorch 1.13's single-tensor loops, element by element ----

type Update = (i: number, p: Float64Array, g: Float64Array, lr: number) => void;
const num = (o: Opts, k: string, d: number) => (o[k] ?? d) as number;

function sgdRef(o: Opts): Update {
  const [m, damp, wd, nesterov, max] = [num(o, 'momentum', 0), num(o, 'dampening', 0), num(o, 'weightDecay', 0), !!o.nesterov, !!o.maximize];
  const bufs: Float64Array[] = [];
  return (i, p, g, lr) => {
    const d = p.map((pk, k) => (max ? -g[k] : g[k]) + wd * pk);
    if (m !== 0) {
      if (!bufs[i]) bufs[i] = Float64Array.from(d);
      else for (let k = 0; k < d.length; k++) bufs[i][k] = m * bufs[i][k] + (1 - damp) * d[k];
      for (let k = 0; k < d.length; k++) d[k] = nesterov ? d[k] + m * bufs[i][k] : bufs[i][k];
    }
    for (let k = 0; k < p.length; k++) p[k] -= lr * d[k];
  };
}

function adamRef(o: Opts, decoupled: boolean): Update {
  const [b1, b2] = (o.betas ?? [0.9, 0.999]) as number[];
  const [eps, wd, ams, max] = [num(o, 'eps', 1e-8), num(o, 'weightDecay', decoupled ? 1e-2 : 0), !!o.amsgrad, !!o.maximize];
  const st: { t: number; m: Float64Array; v: Float64Array; vmax: Float64Array }[] = [];
  return (i, p, g, lr) => {
    const s = (st[i] ??= { t: 0, m: new Float64Array(p.length), v: new Float64Array(p.length), vmax: new Float64Array(p.length) });
    s.t++;
    for (let k = 0; k < p.length; k++) {
      let gk = max ? -g[k] : g[k];
      if (decoupled) p[k] *= 1 - lr * wd;
      else gk += wd * p[k];
      s.m[k] = b1 * s.m[k] + (1 - b1) * gk;
      s.v[k] = b2 * s.v[k] + (1 - b2) * gk * gk;
      s.vmax[k] = Math.max(s.vmax[k], s.v[k]);
      const denom = Math.sqrt(ams ? s.vmax[k] : s.v[k]) / Math.sqrt(1 - b2 ** s.t) + eps;
      p[k] -= (lr / (1 - b1 ** s.t)) * (s.m[k] / denom);
    }
  };
}

function adagradRef(o: Opts): Update {
  const [decay, wd, init, eps, max] = [num(o, 'lrDecay', 0), num(o, 'weightDecay', 0), num(o, 'initialAccumulatorValue', 0), num(o, 'eps', 1e-10), !!o.maximize];
  const st: { t: number; sum: Float64Array }[] = [];
  return (i, p, g, lr) => {
    const s = (st[i] ??= { t: 0, sum: new Float64Array(p.length).fill(init) });
    s.t++;
    const clr = lr / (1 + (s.t - 1) * decay);
    for (let k = 0; k < p.length; k++) {
      const gk = (max ? -g[k] : g[k]) + wd * p[k];
      s.sum[k] += gk * gk;
      p[k] -= clr * (gk / (Math.sqrt(s.sum[k]) + eps));
    }
  };
}

function rmspropRef(o: Opts): Update {
  const [alpha, eps, wd, m, centered, max] = [num(o, 'alpha', 0.99), num(o, 'eps', 1e-8), num(o, 'weightDecay', 0), num(o, 'momentum', 0), !!o.centered, !!o.maximize];
  const st: { sq: Float64Array; ga: Float64Array; buf: Float64Array }[] = [];
  return (i, p, g, lr) => {
    const s = (st[i] ??= { sq: new Float64Array(p.length), ga: new Float64Array(p.length), buf: new Float64Array(p.length) });
    for (let k = 0; k < p.length; k++) {
      const gk = (max ? -g[k] : g[k]) + wd * p[k];
      s.sq[k] = alpha * s.sq[k] + (1 - alpha) * gk * gk;
      s.ga[k] = alpha * s.ga[k] + (1 - alpha) * gk;
      const avg = Math.sqrt(centered ? s.sq[k] - s.ga[k] * s.ga[k] : s.sq[k]) + eps;
      if (m > 0) {
        s.buf[k] = m * s.buf[k] + gk / avg;
        p[k] -= lr * s.buf[k];
      } else p[k] -= lr * (gk / avg);
    }
  };
}

const REF: Record<string, (o: Opts) => Update> = {
  SGD: sgdRef, Adam: (o) => adamRef(o, false), AdamW: (o) => adamRef(o, true), Adagrad: adagradRef, RMSprop: rmspropRef,
};
const DEFAULT_LR: Record<string, number> = { SGD: 1e-3, Adam: 1e-3, AdamW: 1e-3, Adagrad: 1e-2, RMSprop: 1e-2 };

interface RunOpts { steps?: number; groups?: boolean; skipOdd?: boolean }

/** The reference trajectory: loss = sum(w*(p-t)^2) + sum(sin p) per parameter, so grad = 2w(p-t) + cos p. */
function runRef(name: string, o: Opts, { steps = 5, groups = false, skipOdd = false }: RunOpts = {}): number[] {
  const ps = [Float64Array.from(P0.flat()), Float64Array.from(P1)];
  const ts = [T0.flat(), T1];
  const ws = [W0.flat(), W1];
  const update = REF[name](o);
  for (let s = 0; s < steps; s++) {
    ps.forEach((p, i) => {
      if (skipOdd && i === 1 && s % 2 === 1) return;
      const g = p.map((pk, k) => 2 * ws[i][k] * (pk - ts[i][k]) + Math.cos(pk));
      update(i, p, g, groups && i === 1 ? 0.02 : num(o, 'lr', DEFAULT_LR[name]));
    });
  }
  return [...ps[0], ...ps[1]];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const CLASSES: Record<string, new (params: any, options?: any) => optim.Optimizer<any>> = {
  SGD: optim.SGD, Adam: optim.Adam, AdamW: optim.AdamW, Adagrad: optim.Adagrad, RMSprop: optim.RMSprop,
};

const f64 = (v: number[] | number[][]) => kiln.tensor(v, { dtype: 'float64' });
const term = (p: Tensor, t: Tensor, w: Tensor) => w.mul(p.sub(t).square()).sum().add(p.sin().sum());

/** The same problem in Kiln (float64), with kiln.optim and autograd. */
function runKiln(name: string, o: Opts, { steps = 5, groups = false, skipOdd = false }: RunOpts = {}) {
  const p0 = kiln.tensor(P0, { dtype: 'float64', requiresGrad: true });
  const p1 = kiln.tensor(P1, { dtype: 'float64', requiresGrad: true });
  const opt = new CLASSES[name](groups ? [{ params: [p0] }, { params: [p1], lr: 0.02 }] : [p0, p1], o);
  const [t0, t1, w0, w1] = [f64(T0), f64(T1), f64(W0), f64(W1)];
  for (let s = 0; s < steps; s++) {
    opt.zeroGrad();
    let loss = term(p0, t0, w0);
    if (!(skipOdd && s % 2 === 1)) loss = loss.add(term(p1, t1, w1));
    loss.backward();
    opt.step();
  }
  return { values: [...p0.dataSync(), ...p1.dataSync()], opt, params: [p0, p1] };
}

/** Relative closeness for float64 trajectories. */
function near(got: number[], ref: number[], tol: number): void {
  expect(got.length).toBe(ref.length);
  const scale = Math.max(...ref.map(Math.abs));
  const err = Math.max(...got.map((g, i) => Math.abs(g - ref[i])));
  if (!(err <= tol * scale)) throw new Error(`not close: max|got-ref| = ${err} > ${tol} * ${scale}\n got ${got}\n ref ${ref}`);
}

describe('optimizers against the float64 reference and PyTorch', () => {
  for (const [name, cases] of Object.entries(CASES)) {
    cases.forEach((o, c) => {
      it(`${name} ${JSON.stringify(o)}`, () => {
        const { values } = runKiln(name, o);
        near(values, runRef(name, o), 1e-12);
        near(values, TORCH[name][c], 1e-12);
      });
    });
  }
  for (const name of ['SGD', 'Adam']) {
    it(`${name} with two parameter groups (per-group lr)`, () => {
      const o = { lr: 0.1, ...(name === 'SGD' ? { momentum: 0.9 } : {}) };
      const { values, opt } = runKiln(name, o, { groups: true });
      near(values, runRef(name, o, { groups: true }), 1e-12);
      near(values, TORCH_GROUPS[name], 1e-12);
      expect(opt.paramGroups.map((g) => g.lr)).toEqual([0.1, 0.02]);
    });
  }
});

describe('a parameter whose .grad is null is skipped', () => {
  const skipCases: [string, Opts][] = [['SGD', { lr: 0.1, momentum: 0.9 }], ['Adam', { lr: 0.1 }], ['RMSprop', { lr: 0.01, momentum: 0.5 }]];
  for (const [name, o] of skipCases) {
    it(`${name}: its value and state stay as they were`, () => {
      const { values } = runKiln(name, o, { steps: 6, skipOdd: true });
      near(values, runRef(name, o, { steps: 6, skipOdd: true }), 1e-12);
      near(values, TORCH_SKIP[name], 1e-12);
    });
  }
  it('never touches a parameter that never gets a gradient, nor creates state for it', () => {
    const a = kiln.tensor([1, 2], { requiresGrad: true });
    const b = kiln.tensor([3, 4], { requiresGrad: true });
    const opt = new optim.Adam([a, b], { lr: 0.1 });
    a.mul(a).sum().backward();
    opt.step();
    expect(b.tolistSync()).toEqual([3, 4]);
    expect(opt.state.has(b)).toBe(false);
    expect(Number(opt.state.get(a)!.step)).toBe(1);
  });
});

describe('the Adam fixture (f_sequential_adam: Sequential(Linear, ReLU, Linear), MSE sum, 20 steps)', () => {
  const f = loadFixture('f_sequential_adam');
  const names = ['0.weight', '0.bias', '2.weight', '2.bias'];
  for (const dtype of ['float32', 'float64'] as const) {
    it(`matches losses, params_after and exp_avg/exp_avg_sq in ${dtype}`, () => {
      const x = fromFixture(f.inputs.x, { dtype });
      const y = fromFixture(f.inputs.y, { dtype });
      const params = names.map((n) => fromFixture(f.params_init[n], { dtype, requiresGrad: true }));
      const [w0, b0, w2, b2] = params;
      const { lr, betas, eps, weight_decay, amsgrad } = f.hyper;
      const opt = new optim.Adam(params, { lr, betas, eps, weightDecay: weight_decay, amsgrad });
      const losses: number[] = [];
      for (let t = 0; t < f.hyper.steps; t++) {
        opt.zeroGrad();
        const pred = x.matmul(w0.t()).add(b0).relu().matmul(w2.t()).add(b2);
        const loss = pred.sub(y).square().sum();
        losses.push(loss.itemSync());
        loss.backward();
        opt.step();
      }
      const tol = dtype === 'float32' ? 1e-5 : 1e-10;
      expectClose(losses, f.outputs.losses, tol);
      names.forEach((n, i) => expectClose(params[i], f.outputs.params_after[n], tol));
      const s = opt.state.get(w0)!;
      const ref = f.outputs['adam_state_after_0.weight'];
      expect(Number(s.step)).toBe(ref.step); // a 0-d tensor, as in PyTorch
      expectClose(s.exp_avg as Tensor, ref.exp_avg, tol);
      expectClose(s.exp_avg_sq as Tensor, ref.exp_avg_sq, tol);
    });
  }
});

describe('stateDict / loadStateDict', () => {
  const roundTrip: [string, Opts][] = [['SGD', { lr: 0.1, momentum: 0.9, nesterov: true }], ['Adam', { lr: 0.1, amsgrad: true }],
    ['AdamW', { lr: 0.1 }], ['Adagrad', { lr: 0.1, lrDecay: 0.1 }], ['RMSprop', { lr: 0.01, momentum: 0.5, centered: true }]];
  for (const [name, o] of roundTrip) {
    it(`${name}: save, load into a new optimizer, continue: the same trajectory`, () => {
      const a = runKiln(name, o, { steps: 3 });
      const sd = a.opt.stateDict();
      // A fresh optimizer over copies of the parameters, given the saved state.
      const copies = a.params.map((p) => p.detach().clone().requiresGrad_(true));
      const b = new CLASSES[name](copies, { lr: 123 });
      b.loadStateDict(sd);
      expect(b.paramGroups[0].lr).toBe(o.lr);
      const [t0, t1, w0, w1] = [f64(T0), f64(T1), f64(W0), f64(W1)];
      for (const [opt, [p0, p1]] of [[a.opt, a.params], [b, copies]] as const) {
        for (let s = 0; s < 3; s++) {
          opt.zeroGrad();
          term(p0, t0, w0).add(term(p1, t1, w1)).backward();
          opt.step();
        }
      }
      expect([...copies[0].dataSync(), ...copies[1].dataSync()]).toEqual([...a.params[0].dataSync(), ...a.params[1].dataSync()]);
      near([...copies[0].dataSync(), ...copies[1].dataSync()], runRef(name, o, { steps: 6 }), 1e-12);
    });
  }
  it("has PyTorch's layout and key names, and clones tensors", () => {
    const { opt, params } = runKiln('Adam', { lr: 0.1, amsgrad: true }, { steps: 2 });
    const sd = opt.stateDict();
    expect(Object.keys(sd.state)).toEqual(['0', '1']);
    expect(Object.keys(sd.state[0])).toEqual(['step', 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq']);
    expect(Number(sd.state[1].step)).toBe(2);
    expect(sd.param_groups).toEqual([{ lr: 0.1, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: true, maximize: false, params: [0, 1] }]);
    const saved = (sd.state[0].exp_avg as Tensor).tolistSync();
    kiln.noGrad(() => (opt.state.get(params[0])!.exp_avg as Tensor).fill_(7));
    expect((sd.state[0].exp_avg as Tensor).tolistSync()).toEqual(saved);
    const sgd = runKiln('SGD', { lr: 0.1, momentum: 0.9 }, { steps: 1 }).opt.stateDict();
    expect(Object.keys(sgd.state[0])).toEqual(['momentum_buffer']);
    expect(runKiln('SGD', { lr: 0.1 }, { steps: 1 }).opt.stateDict().state[0]).toEqual({ momentum_buffer: null });
  });
  it('casts loaded state to the parameter dtype', () => {
    const { opt } = runKiln('Adam', { lr: 0.1 }, { steps: 1 });
    const p = kiln.tensor(P0, { requiresGrad: true });
    const q = kiln.tensor(P1, { requiresGrad: true });
    const b = new optim.Adam([p, q]);
    b.loadStateDict(opt.stateDict());
    expect((b.state.get(p)!.exp_avg as Tensor).dtype).toBe('float32');
  });
  it('refuses a state dict that does not fit, and names the mismatch', () => {
    const { opt } = runKiln('SGD', { lr: 0.1, momentum: 0.9 }, { steps: 1 });
    const sd = opt.stateDict();
    const one = new optim.SGD([kiln.zeros([2, 3], { requiresGrad: true })]);
    expect(() => one.loadStateDict(sd)).toThrow(/group 0 of the loaded state dict has 2 parameters, but the optimizer's group 0 has 1/);
    const two = new optim.SGD([{ params: [kiln.zeros([2, 3], { requiresGrad: true })] }, { params: [kiln.zeros([3], { requiresGrad: true })] }]);
    expect(() => two.loadStateDict(sd)).toThrow(/loaded state dict has 1 parameter groups, but the optimizer has 2/);
    const swapped = new optim.SGD([kiln.zeros([3], { requiresGrad: true }), kiln.zeros([2, 3], { requiresGrad: true })]);
    expect(() => swapped.loadStateDict(sd)).toThrow(/momentum_buffer' of parameter 0 has shape \[2, 3\], but the parameter has shape \[3\]/);
    expect(swapped.state.size).toBe(0);
  });
});

describe('zeroGrad, construction and options', () => {
  it('zeroGrad() sets grads to null (PyTorch 2); zeroGrad(false) zeroes them in place', () => {
    const a = kiln.tensor([1, 2], { requiresGrad: true });
    const opt = new optim.SGD([a], { lr: 0.1 });
    a.mul(a).sum().backward();
    const g = a.grad!;
    opt.zeroGrad(false);
    expect(a.grad).toBe(g);
    expect(g.tolistSync()).toEqual([0, 0]);
    opt.zeroGrad();
    expect(a.grad).toBeNull();
  });
  it('fills group options from the defaults and adds groups later', () => {
    const a = kiln.zeros([2], { requiresGrad: true });
    const b = kiln.zeros([2], { requiresGrad: true });
    const opt = new optim.SGD([{ params: a, momentum: 0.5 }], { lr: 0.3 });
    opt.addParamGroup({ params: [b], lr: 0.1 });
    expect(opt.paramGroups.map(({ lr, momentum }) => [lr, momentum])).toEqual([[0.3, 0.5], [0.1, 0]]);
    expect(() => opt.addParamGroup({ params: [a] })).toThrow(/some parameters appear in more than one parameter group/);
  });
  it('refuses bad parameters and bad options with PyTorch-like messages', () => {
    const a = kiln.zeros([2], { requiresGrad: true });
    expect(() => new optim.SGD([])).toThrow(/optimizer got an empty parameter list/);
    expect(() => new optim.SGD(a as unknown as Tensor[])).toThrow(/iterable of Tensors or parameter groups, but got a Tensor/);
    expect(() => new optim.SGD([a.mul(2)])).toThrow(/can't optimize a non-leaf Tensor/);
    expect(() => new optim.SGD([a, a])).toThrow(/duplicate parameters/);
    expect(new optim.SGD([{ params: new Set([a]) }]).paramGroups[0].params[0]).toBe(a); // a JS Set keeps its order
    expect(() => new optim.SGD([a], { lr: -1 })).toThrow(/Invalid learning rate: -1/);
    expect(() => new optim.SGD([a], { lr: 0.1, nesterov: true })).toThrow(/Nesterov momentum requires a momentum and zero dampening/);
    expect(() => new optim.Adam([a], { betas: [1, 0.999] })).toThrow(/Invalid beta parameter at index 0: 1/);
    expect(() => new optim.RMSprop([a], { alpha: -0.1 })).toThrow(/Invalid alpha value/);
  });
  it('step(closure) re-evaluates the loss with grad enabled and returns it', () => {
    const a = kiln.tensor([3], { dtype: 'float64', requiresGrad: true });
    const opt = new optim.SGD([a], { lr: 0.25 });
    const loss = kiln.noGrad(() => opt.step(() => {
      opt.zeroGrad();
      const l = a.mul(a).sum();
      l.backward();
      return l.itemSync();
    }));
    expect(loss).toBe(9);
    expect(a.itemSync()).toBe(1.5);
  });
  it('has PyTorch defaults', () => {
    const a = kiln.zeros([1], { requiresGrad: true });
    expect(new optim.Adam([a]).defaults).toEqual({ lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false, maximize: false });
    expect(new optim.AdamW([a]).defaults.weightDecay).toBe(1e-2);
    expect(new optim.Adagrad([a]).defaults).toEqual({ lr: 1e-2, lrDecay: 0, weightDecay: 0, initialAccumulatorValue: 0, eps: 1e-10, maximize: false });
    expect(new optim.RMSprop([a]).defaults).toEqual({ lr: 1e-2, alpha: 0.99, eps: 1e-8, weightDecay: 0, momentum: 0, centered: false, maximize: false });
  });
});

describe('learning-rate schedulers (PyTorch values)', () => {
  const make = () => new optim.SGD([{ params: [kiln.zeros([1], { requiresGrad: true })] }, { params: [kiln.zeros([1], { requiresGrad: true })], lr: 0.5 }], { lr: 0.1 });
  const sequence = (opt: optim.SGD, s: optim.lrScheduler.LRScheduler, steps: number) => {
    const seq = [s.getLastLr()];
    for (let i = 0; i < steps; i++) {
      opt.step();
      s.step();
      seq.push(s.getLastLr());
    }
    return seq;
  };
  const check = (got: number[][], ref: number[][]) => {
    expect(got.length).toBe(ref.length);
    got.forEach((row, i) => row.forEach((v, j) => expect(Math.abs(v - ref[i][j])).toBeLessThanOrEqual(1e-15)));
  };
  it('StepLR(stepSize 3, gamma 0.5)', () => {
    const opt = make();
    check(sequence(opt, new optim.lrScheduler.StepLR(opt, 3, { gamma: 0.5 }), 10), TORCH_LR.step);
    expect(opt.paramGroups.map((g) => g.initialLr)).toEqual([0.1, 0.5]);
  });
  it('ExponentialLR(gamma 0.9)', () => {
    const opt = make();
    check(sequence(opt, new optim.lrScheduler.ExponentialLR(opt, 0.9), 6), TORCH_LR.exp);
  });
  it('CosineAnnealingLR(tMax 5, etaMin 0.01), past tMax', () => {
    const opt = make();
    check(sequence(opt, new optim.lrScheduler.CosineAnnealingLR(opt, 5, { etaMin: 0.01 }), 14), TORCH_LR.cos);
  });
  it('step(epoch) uses the closed forms, and the optimizer sees the new lr', () => {
    const opt = make();
    const s = new optim.lrScheduler.CosineAnnealingLR(opt, 5, { etaMin: 0.01 });
    s.step(3);
    check([s.getLastLr()], [TORCH_LR.cos[3]]);
    const e = new optim.lrScheduler.StepLR(make(), 3, { gamma: 0.5 });
    e.step(7);
    check([e.getLastLr()], [TORCH_LR.step[7]]);
    expect(opt.paramGroups[0].lr).toBe(s.getLastLr()[0]);
  });
  it('stateDict / loadStateDict resume the schedule', () => {
    const opt = make();
    const s = new optim.lrScheduler.StepLR(opt, 3, { gamma: 0.5 });
    for (let i = 0; i < 4; i++) s.step();
    const sd = s.stateDict();
    const opt2 = make();
    opt2.paramGroups.forEach((g, i) => Object.assign(g, { lr: opt.paramGroups[i].lr, initialLr: opt.paramGroups[i].initialLr }));
    const s2 = new optim.lrScheduler.StepLR(opt2, 3, { gamma: 0.5 }); // epoch 0 keeps the loaded lr
    s2.loadStateDict(sd);
    for (let i = 0; i < 4; i++) { s.step(); s2.step(); }
    expect(s2.getLastLr()).toEqual(s.getLastLr());
    check([s2.getLastLr()], [TORCH_LR.step[8]]);
  });
});
