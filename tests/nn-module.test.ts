// nn.Module behaviours: registration by assignment, traversal (shared modules once), state dicts
// (strict loading reports keys), hooks removed by their handle, train/eval, apply, zeroGrad, to().
import { describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { nn, type Tensor } from 'kiln';

class Affine extends nn.Module {
  weight: nn.Parameter;
  bias: nn.Parameter;
  constructor(n: number) {
    super();
    this.weight = new nn.Parameter(kiln.ones([n]));
    this.bias = new nn.Parameter(kiln.zeros([n]));
    this.registerBuffer('calls', kiln.zeros([]));
  }
  override forward(x: Tensor): Tensor {
    return x.mul(this.weight).add(this.bias);
  }
}

class Net extends nn.Module {
  a: Affine;
  b: Affine;
  shared: Affine;
  plain = 3;
  constructor() {
    super();
    this.a = new Affine(2);
    this.b = new Affine(2);
    this.shared = this.a;
  }
  override forward(x: Tensor): Tensor {
    return this.b(this.a(x));
  }
}

describe('nn.Module', () => {
  it('is callable and typed by its forward', () => {
    const m = new Affine(2);
    const y: Tensor = m(kiln.tensor([1, 2]));
    expect(y.tolistSync()).toEqual([1, 2]);
    expect(typeof m).toBe('function');
    expect(m instanceof nn.Module).toBe(true);
    expect(m instanceof Affine).toBe(true);
  });
  it('registers parameters, buffers and modules by assignment, in order', () => {
    const net = new Net();
    expect(net.namedChildren().map(([n]) => n)).toEqual(['a', 'b']);
    expect(net.namedParameters().map(([n]) => n)).toEqual(['a.weight', 'a.bias', 'b.weight', 'b.bias']);
    expect(net.namedBuffers().map(([n]) => n)).toEqual(['a.calls', 'b.calls']);
    expect(net.modules().length).toBe(3);
    expect(net.namedModules ? [...net.namedModules()].map(([n]) => n) : []).toEqual(['', 'a', 'b']);
    expect(net.plain).toBe(3);
  });
  it('lists a shared module or parameter once, but its every name in the state dict', () => {
    const net = new Net();
    expect(net.parameters().length).toBe(4);
    expect(Object.keys(net.stateDict())).toEqual(['a.weight', 'a.bias', 'a.calls', 'b.weight', 'b.bias', 'b.calls', 'shared.weight', 'shared.bias', 'shared.calls']);
  });
  it('refuses a plain tensor where a parameter lives', () => {
    const m = new Affine(2);
    expect(() => { (m as unknown as { weight: Tensor }).weight = kiln.ones([2]); }).toThrow("cannot assign a Tensor as parameter 'weight' (nn.Parameter or null expected)");
  });
  it('loadStateDict copies values and reports missing/unexpected keys', () => {
    const src = new Affine(2);
    kiln.noGrad(() => src.weight.fill_(5));
    const dst = new Affine(2);
    expect(dst.loadStateDict(src.stateDict())).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect(dst.weight.tolistSync()).toEqual([5, 5]);
    const partial = { weight: kiln.full([2], 7), extra: kiln.zeros([1]) };
    expect(() => dst.loadStateDict(partial)).toThrow(/Missing key\(s\) in state_dict: "bias", "calls"\.[\s\S]*Unexpected key\(s\) in state_dict: "extra"/);
    expect(dst.weight.tolistSync()).toEqual([5, 5]);
    expect(dst.loadStateDict(partial, { strict: false })).toEqual({ missingKeys: ['bias', 'calls'], unexpectedKeys: ['extra'] });
    expect(dst.weight.tolistSync()).toEqual([7, 7]);
    expect(() => dst.loadStateDict({ ...src.stateDict(), weight: kiln.zeros([3]) })).toThrow('size mismatch for weight: copying a param with shape [3] from checkpoint, the shape in current model is [2].');
  });
  it('forward pre-hooks, forward hooks and their handles', () => {
    const m = new Affine(2);
    const seen: string[] = [];
    const h1 = m.registerForwardPreHook((_mod, inputs) => { seen.push('pre'); return [(inputs[0] as Tensor).mul(2)]; });
    const h2 = m.registerForwardHook((_mod, _inputs, out) => { seen.push('post'); return (out as Tensor).add(1); });
    expect(m(kiln.tensor([1, 2])).tolistSync()).toEqual([3, 5]);
    expect(seen).toEqual(['pre', 'post']);
    h1.remove();
    h2.remove();
    expect(m(kiln.tensor([1, 2])).tolistSync()).toEqual([1, 2]);
    expect(seen.length).toBe(2);
  });
  it('full backward hooks see gradInput and gradOutput', () => {
    const net = new Net();
    let got: { gin: (Tensor | null)[]; gout: (Tensor | null)[] } | undefined;
    const h = net.b.registerFullBackwardHook((_m, gin, gout) => { got = { gin, gout }; });
    const x = kiln.tensor([1, 2], { requiresGrad: true });
    net(x).mul(kiln.tensor([3, 4])).sum().backward();
    expect(got!.gout[0]!.tolistSync()).toEqual([3, 4]);
    expect(got!.gin[0]!.tolistSync()).toEqual([3, 4]);
    h.remove();
    got = undefined;
    net(x).sum().backward();
    expect(got).toBeUndefined();
  });
  it('train/eval, apply, zeroGrad, requiresGrad_', () => {
    const net = new Net();
    net.eval();
    expect(net.modules().every((m) => !m.training)).toBe(true);
    net.train();
    expect(net.a.training).toBe(true);
    const names: string[] = [];
    net.apply((m) => names.push(m.constructor.name));
    expect(names).toEqual(['Affine', 'Affine', 'Net']);
    net(kiln.ones([2])).sum().backward();
    expect(net.a.weight.grad).not.toBeNull();
    net.zeroGrad({ setToNone: false });
    expect(net.a.weight.grad!.tolistSync()).toEqual([0, 0]);
    net.zeroGrad();
    expect(net.a.weight.grad).toBeNull();
    net.requiresGrad_(false);
    expect(net.parameters().every((p) => !p.requiresGrad)).toBe(true);
  });
  it('to(dtype) converts parameters and buffers', () => {
    const net = new Net().double();
    expect(net.parameters().every((p) => p.dtype === 'float64' && p instanceof nn.Parameter && p.requiresGrad)).toBe(true);
    expect(net.a.forward(kiln.ones([2], { dtype: 'float64' })).dtype).toBe('float64');
  });
  it('containers', () => {
    const seq = new nn.Sequential(new Affine(2), new Affine(2));
    expect(Object.keys(seq.stateDict())).toEqual(['0.weight', '0.bias', '0.calls', '1.weight', '1.bias', '1.calls']);
    expect(seq(kiln.tensor([1, 2])).tolistSync()).toEqual([1, 2]);
    expect(seq.length).toBe(2);
    const named = new nn.Sequential({ first: new Affine(1), second: new Affine(1) });
    expect(named.namedChildren().map(([n]) => n)).toEqual(['first', 'second']);
    const list = new nn.ModuleList([new Affine(1)]).append(new Affine(1));
    expect(list.length).toBe(2);
    expect([...list].length).toBe(2);
    const dict = new nn.ModuleDict({ train: new Affine(1), b: new Affine(1) });
    expect(dict.keys()).toEqual(['train', 'b']);
    expect(dict.get('train')).toBeInstanceOf(Affine);
    expect(typeof dict.train).toBe('function');
    const plist = new nn.ParameterList([kiln.ones([1]), kiln.ones([2])]);
    expect(plist.parameters().length).toBe(2);
    const pdict = new nn.ParameterDict({ w: kiln.ones([1]) });
    expect(Object.keys(pdict.stateDict())).toEqual(['w']);
  });
  it('prints like PyTorch', () => {
    expect(new Net().toString()).toBe('Net(\n  (a): Affine()\n  (b): Affine()\n  (shared): Affine()\n)');
  });
});
