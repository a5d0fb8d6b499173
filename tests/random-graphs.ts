// A small seeded generator of random tensor programs, for property tests of kiln.compile.
// `generateProgram(seed)` builds a random DAG of 3-12 ops over 1-3 inputs (elementwise, reductions,
// movement, matmul) with every shape worked out at generation time, so each program is valid by
// construction; `run` replays it with any tensors (eager or symbolic) and `text` prints it, so a
// failing seed can be read and replayed. Values are kept finite: exp/log/sqrt/div get safe
// arguments, and a value whose magnitude bound grows past 2^10 is scaled by an exact power of two.
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';
import { numel } from '../ir/index.js';

/** mulberry32: a tiny 32-bit PRNG, uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [lo, hi] drawn from `rand` (uniform in [0, 1)). */
export function randInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1));
}

export class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  float(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return randInt(this.next, lo, hi);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)];
  }
  shuffle<T>(xs: readonly T[]): T[] {
    const a = [...xs];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
}

/** How an input tensor is laid out: contiguous, or a permuted view of a contiguous tensor. */
export interface InputSpec {
  shape: number[];
  /** If set, the input is `base.permute(perm)` with base of shape `perm`-inverse of `shape`. */
  perm?: number[];
}

interface Step {
  text: string;
  args: number[];
  apply: (xs: Tensor[]) => Tensor;
}

export interface Program {
  seed: number;
  inputs: InputSpec[];
  steps: Step[];
  /** Value indices returned (inputs are values 0..n-1, step k is value n+k). */
  outputs: number[];
  text: string;
  /** Runs the program on one tensor per input; returns the outputs. */
  run(inputs: readonly Tensor[]): Tensor[];
}

const MAX_NUMEL = 1000;
const fmt = (s: readonly number[]) => `[${s.join(',')}]`;

function broadcast(a: readonly number[], b: readonly number[]): number[] | null {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out.push(Math.max(x, y));
  }
  return out;
}

function primeFactors(n: number): number[] {
  const out: number[] = [];
  for (let p = 2; n > 1; p++) {
    while (n % p === 0) {
      out.push(p);
      n /= p;
    }
  }
  return out;
}

interface Val {
  shape: number[];
  /** An upper bound of |value| (loose; only used to keep values finite). */
  bound: number;
}

/** One operand of a step: a value, optionally scaled by a power of two. */
type Ref = number;

export function generateProgram(seed: number): Program {
  const rng = new Rng(seed);
  const vals: Val[] = [];
  const steps: Step[] = [];

  // Inputs: shapes derived from one base shape (dropping leading dims, setting dims to 1), so most
  // pairs broadcast; sometimes one unrelated shape.
  const nIn = rng.int(1, 3);
  const rank = rng.int(1, 4);
  const base = Array.from({ length: rank }, () => rng.int(1, 5));
  const inputs: InputSpec[] = [];
  for (let i = 0; i < nIn; i++) {
    let shape: number[];
    if (i > 0 && rng.chance(0.15)) {
      shape = Array.from({ length: rng.int(1, 4) }, () => rng.int(1, 5));
    } else {
      const drop = i === 0 ? 0 : rng.int(0, rank - 1);
      shape = base.slice(drop).map((d) => (i > 0 && rng.chance(0.3) ? 1 : d));
    }
    const spec: InputSpec = { shape };
    if (shape.length >= 2 && rng.chance(0.2)) spec.perm = rng.shuffle(shape.map((_, k) => k));
    inputs.push(spec);
    vals.push({ shape, bound: 2 });
  }

  const name = (i: number) => `v${i}`;
  /** Recent values are likelier operands; reuse of a value makes the graph a DAG, not a tree. */
  const pickVal = (pred: (v: Val) => boolean = () => true): Ref | undefined => {
    const ok = vals.map((v, i) => [v, i] as const).filter(([v]) => pred(v)).map(([, i]) => i);
    if (!ok.length) return undefined;
    const r = rng.float();
    return ok[ok.length - 1 - Math.floor(r * r * ok.length)];
  };
  const compatibleWith = (shape: readonly number[]) => (v: Val) => {
    const b = broadcast(shape, v.shape);
    return b !== null && numel(b) <= MAX_NUMEL;
  };

  const push = (text: string, args: number[], shape: number[], bound: number, apply: (xs: Tensor[]) => Tensor) => {
    // Keep magnitudes bounded with an exact power-of-two scaling.
    if (bound > 1024) {
      const k = Math.ceil(Math.log2(bound));
      const scale = 2 ** -k;
      const raw = apply;
      apply = (xs) => raw(xs).mul(scale);
      text = `(${text}) * 2^-${k}`;
      bound = bound * scale;
    }
    steps.push({ text: `${name(vals.length)} = ${text}  ${fmt(shape)}`, args, apply });
    vals.push({ shape, bound });
    return true;
  };

  const CONSTS = [0.5, -1.5, 2, 3.25, -0.75, 0.1];

  // --- generators: each returns false when it does not apply ---
  const unary = (): boolean => {
    const a = pickVal()!;
    const { shape, bound: b } = vals[a];
    const x = name(a);
    const kind = rng.pick(['neg', 'exp', 'log', 'sqrt', 'abs', 'relu', 'sigmoid', 'tanh', 'clamp', 'pow', 'mulc', 'addc', 'square'] as const);
    switch (kind) {
      case 'neg': return push(`neg(${x})`, [a], shape, b, ([t]) => t.neg());
      case 'exp': return push(`exp(tanh(${x}))`, [a], shape, Math.E, ([t]) => t.tanh().exp());
      case 'log': return push(`log(abs(${x})+1)`, [a], shape, Math.log1p(b), ([t]) => t.abs().add(1).log());
      case 'sqrt': return push(`sqrt(abs(${x})+0.5)`, [a], shape, Math.sqrt(b + 0.5), ([t]) => t.abs().add(0.5).sqrt());
      case 'abs': return push(`abs(${x})`, [a], shape, b, ([t]) => t.abs());
      case 'relu': return push(`relu(${x})`, [a], shape, b, ([t]) => t.relu());
      case 'sigmoid': return push(`sigmoid(${x})`, [a], shape, 1, ([t]) => t.sigmoid());
      case 'tanh': return push(`tanh(${x})`, [a], shape, 1, ([t]) => t.tanh());
      case 'clamp': {
        const lo = rng.pick([-1, -0.5, 0, 0.25]);
        const hi = lo + rng.pick([0.5, 1, 2]);
        const form = rng.int(0, 2);
        if (form === 0) return push(`clamp(${x}, ${lo}, ${hi})`, [a], shape, Math.max(Math.abs(lo), Math.abs(hi)), ([t]) => t.clamp(lo, hi));
        if (form === 1) return push(`clamp(${x}, min=${lo})`, [a], shape, Math.max(b, Math.abs(lo)), ([t]) => t.clamp({ min: lo }));
        return push(`clamp(${x}, max=${hi})`, [a], shape, Math.max(b, Math.abs(hi)), ([t]) => t.clamp(null, hi));
      }
      case 'pow': {
        const k = rng.pick([2, 3]);
        return push(`pow(${x}, ${k})`, [a], shape, b ** k, ([t]) => t.pow(k));
      }
      case 'mulc': {
        const c = rng.pick(CONSTS);
        return push(`${x} * ${c}`, [a], shape, b * Math.abs(c), ([t]) => t.mul(c));
      }
      case 'addc': {
        const c = rng.pick(CONSTS);
        return push(`${x} + ${c}`, [a], shape, b + Math.abs(c), ([t]) => t.add(c));
      }
      case 'square': return push(`${x} * ${x}`, [a], shape, b * b, ([t]) => t.mul(t));
    }
  };

  const binary = (): boolean => {
    const a = pickVal()!;
    const b = pickVal(compatibleWith(vals[a].shape)) ?? a;
    const shape = broadcast(vals[a].shape, vals[b].shape)!;
    const [ba, bb] = [vals[a].bound, vals[b].bound];
    const [x, y] = [name(a), name(b)];
    const kind = rng.pick(['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'where'] as const);
    switch (kind) {
      case 'add': return push(`${x} + ${y}`, [a, b], shape, ba + bb, ([s, t]) => s.add(t));
      case 'sub': return push(`${x} - ${y}`, [a, b], shape, ba + bb, ([s, t]) => s.sub(t));
      case 'mul': return push(`${x} * ${y}`, [a, b], shape, ba * bb, ([s, t]) => s.mul(t));
      case 'div': return push(`${x} / (abs(${y})+1)`, [a, b], shape, ba, ([s, t]) => s.div(t.abs().add(1)));
      case 'maximum': return push(`maximum(${x}, ${y})`, [a, b], shape, Math.max(ba, bb), ([s, t]) => s.maximum(t));
      case 'minimum': return push(`minimum(${x}, ${y})`, [a, b], shape, Math.max(ba, bb), ([s, t]) => s.minimum(t));
      case 'where': {
        const cmp = rng.pick(['lt', 'gt'] as const);
        const form = rng.int(0, 4);
        const c = rng.pick(CONSTS);
        const bound = Math.max(ba, bb, Math.abs(c));
        if (form === 0) return push(`where(${x} ${cmp} ${y}, ${x}, ${y})`, [a, b], shape, bound, ([s, t]) => kiln.where(s[cmp](t), s, t));
        if (form === 1) return push(`where(${x} ${cmp} ${y}, ${y}, ${c})`, [a, b], shape, bound, ([s, t]) => kiln.where(s[cmp](t), t, c));
        if (form === 2) return push(`where(${x} ${cmp} ${c}, ${y}, ${x})`, [a, b], shape, bound, ([s, t]) => kiln.where(s[cmp](c), t, s));
        // The condition alone reads y (a bool kernel of y's shape, which may be smaller than the result's).
        if (form === 3) return push(`where(${y} ${cmp} ${c}, ${x}, 0)`, [a, b], shape, ba, ([s, t]) => kiln.where(t[cmp](c), s, 0));
        return push(`where(${y} ${cmp} 0, ${c}, ${x}*${y})`, [a, b], shape, Math.max(ba * bb, Math.abs(c)), ([s, t]) => kiln.where(t[cmp](0), c, s.mul(t)));
      }
    }
  };

  const reduction = (): boolean => {
    const a = pickVal((v) => v.shape.length > 0);
    if (a === undefined) return false;
    const { shape, bound } = vals[a];
    const x = name(a);
    const kind = rng.pick(['sum', 'mean', 'amax', 'sumAll'] as const);
    if (kind === 'sumAll') return push(`sum(${x})`, [a], [], bound * numel(shape), ([t]) => t.sum());
    const d = rng.int(0, shape.length - 1);
    const keepdim = rng.chance(0.5);
    const out = keepdim ? shape.map((s, i) => (i === d ? 1 : s)) : shape.filter((_, i) => i !== d);
    const b = kind === 'sum' ? bound * shape[d] : bound;
    return push(`${kind}(${x}, dim=${d}, keepdim=${keepdim})`, [a], out, b, ([t]) => t[kind](d, keepdim));
  };

  const randomShapeOf = (n: number): number[] => {
    if (n === 1 && rng.chance(0.3)) return [];
    const k = rng.int(1, 4);
    const dims = new Array<number>(k).fill(1);
    for (const p of primeFactors(n)) dims[rng.int(0, k - 1)] *= p;
    return dims;
  };

  const movement = (): boolean => {
    const a = pickVal()!;
    const { shape, bound } = vals[a];
    const x = name(a);
    const n = shape.length;
    const kind = rng.pick(['reshape', 'permute', 'transpose', 'unsqueeze', 'squeeze', 'expand', 'narrow', 'slice', 'cat'] as const);
    switch (kind) {
      case 'reshape': {
        const to = randomShapeOf(numel(shape));
        return push(`reshape(${x}, ${fmt(to)})`, [a], to, bound, ([t]) => t.reshape(to));
      }
      case 'permute': {
        if (n < 2) return false;
        const perm = rng.shuffle(shape.map((_, i) => i));
        return push(`permute(${x}, ${fmt(perm)})`, [a], perm.map((p) => shape[p]), bound, ([t]) => t.permute(perm));
      }
      case 'transpose': {
        if (n < 2) return false;
        const [d0, d1] = rng.shuffle(shape.map((_, i) => i));
        const out = [...shape];
        [out[d0], out[d1]] = [out[d1], out[d0]];
        return push(`transpose(${x}, ${d0}, ${d1})`, [a], out, bound, ([t]) => t.transpose(d0, d1));
      }
      case 'unsqueeze': {
        if (n >= 4) return false;
        const d = rng.int(0, n);
        const out = [...shape];
        out.splice(d, 0, 1);
        return push(`unsqueeze(${x}, ${d})`, [a], out, bound, ([t]) => t.unsqueeze(d));
      }
      case 'squeeze': {
        const ones = shape.flatMap((s, i) => (s === 1 ? [i] : []));
        if (!ones.length) return false;
        if (rng.chance(0.3)) return push(`squeeze(${x})`, [a], shape.filter((s) => s !== 1), bound, ([t]) => t.squeeze());
        const d = rng.pick(ones);
        return push(`squeeze(${x}, ${d})`, [a], shape.filter((_, i) => i !== d), bound, ([t]) => t.squeeze(d));
      }
      case 'expand': {
        const ones = shape.flatMap((s, i) => (s === 1 ? [i] : []));
        const lead = n < 4 && (ones.length === 0 || rng.chance(0.3)) ? [rng.int(2, 3)] : [];
        const out = [...lead, ...shape.map((s, i) => (ones.includes(i) && rng.chance(0.7) ? rng.int(2, 4) : s))];
        if (numel(out) > MAX_NUMEL || numel(out) === numel(shape)) return false;
        return push(`expand(${x}, ${fmt(out)})`, [a], out, bound, ([t]) => t.expand(out));
      }
      case 'narrow': {
        const dims = shape.flatMap((s, i) => (s >= 2 ? [i] : []));
        if (!dims.length) return false;
        const d = rng.pick(dims);
        const len = rng.int(1, shape[d] - 1);
        const start = rng.int(0, shape[d] - len);
        const out = shape.map((s, i) => (i === d ? len : s));
        return push(`narrow(${x}, ${d}, ${start}, ${len})`, [a], out, bound, ([t]) => t.narrow(d, start, len));
      }
      case 'slice': {
        const dims = shape.flatMap((s, i) => (s >= 2 ? [i] : []));
        if (!dims.length) return false;
        const d = rng.pick(dims);
        const start = rng.int(0, shape[d] - 1);
        const step = rng.int(1, 2);
        const out = shape.map((s, i) => (i === d ? Math.ceil((s - start) / step) : s));
        return push(`slice(${x}, ${d}, ${start}:, step ${step})`, [a], out, bound, ([t]) => t.slice(d, start, null, step));
      }
      case 'cat': {
        if (n === 0) return false;
        const d = rng.int(0, n - 1);
        const sameButD = (v: Val) => v.shape.length === n && v.shape.every((s, i) => i === d || s === shape[i]);
        const b = pickVal(sameButD)!; // a itself qualifies
        const out = shape.map((s, i) => (i === d ? s + vals[b].shape[d] : s));
        if (numel(out) > MAX_NUMEL) return false;
        return push(`cat([${x}, ${name(b)}], ${d})`, [a, b], out, Math.max(bound, vals[b].bound), ([s, t]) => kiln.cat([s, t], d));
      }
    }
  };

  const matmul = (): boolean => {
    const a = pickVal()!;
    const b = pickVal()!;
    const [na, nb] = [numel(vals[a].shape), numel(vals[b].shape)];
    const ks: number[] = [];
    for (let k = 1; k <= Math.min(na, nb); k++) {
      if (na % k === 0 && nb % k === 0 && (na / k) * (nb / k) <= MAX_NUMEL) ks.push(k);
    }
    if (!ks.length) return false;
    const big = ks.filter((k) => k > 1);
    const k = big.length && rng.chance(0.85) ? rng.pick(big) : rng.pick(ks);
    const [m, nn] = [na / k, nb / k];
    const transA = rng.chance(0.3);
    const transB = rng.chance(0.3);
    const vecA = m === 1 && rng.chance(0.5);
    const out = vecA ? [nn] : [m, nn];
    const bound = vals[a].bound * vals[b].bound * k;
    const text = `matmul(${vecA ? `reshape(${name(a)}, [${k}])` : transA ? `reshape(${name(a)}, [${k},${m}]).t()` : `reshape(${name(a)}, [${m},${k}])`}, ${transB ? `reshape(${name(b)}, [${nn},${k}]).t()` : `reshape(${name(b)}, [${k},${nn}])`})`;
    return push(text, [a, b], out, bound, ([s, t]) => {
      const A = vecA ? s.reshape([k]) : transA ? s.reshape([k, m]).t() : s.reshape([m, k]);
      const B = transB ? t.reshape([nn, k]).t() : t.reshape([k, nn]);
      return A.matmul(B);
    });
  };

  const nOps = rng.int(3, 12);
  const kinds: [number, () => boolean][] = [[28, unary], [30, binary], [12, reduction], [22, movement], [8, matmul]];
  const total = kinds.reduce((s, [w]) => s + w, 0);
  while (steps.length < nOps) {
    let r = rng.float(0, total);
    const gen = kinds.find(([w]) => (r -= w) < 0)?.[1] ?? unary;
    gen();
  }

  // Outputs: the last value, sometimes reduced; sometimes a second, earlier value too.
  const last = vals.length - 1;
  const fin = rng.int(0, 3);
  if (fin === 1 && vals[last].shape.length > 0) {
    const d = rng.int(0, vals[last].shape.length - 1);
    const { shape, bound } = vals[last];
    push(`sum(${name(last)}, dim=${d})`, [last], shape.filter((_, i) => i !== d), bound * shape[d], ([t]) => t.sum(d));
  } else if (fin === 2) {
    push(`sum(${name(last)})`, [last], [], vals[last].bound * numel(vals[last].shape), ([t]) => t.sum());
  }
  const outputs = [vals.length - 1];
  if (rng.chance(0.4)) outputs.push(rng.int(nIn, vals.length - 1));

  const header = inputs.map((s, i) => `${name(i)}: input ${fmt(s.shape)}${s.perm ? ` (permuted view, perm ${fmt(s.perm)})` : ''}`);
  const text = [`seed ${seed}`, ...header, ...steps.map((s) => s.text), `return ${outputs.map(name).join(', ')}`].join('\n');
  return {
    seed,
    inputs,
    steps,
    outputs,
    text,
    run(xs) {
      const vs = [...xs];
      for (const s of steps) vs.push(s.apply(s.args.map((i) => vs[i])));
      return outputs.map((i) => vs[i]);
    },
  };
}

/** Input tensors for a program: seeded values in [-2, 2], laid out as `InputSpec` says. */
export function makeInputs(p: Program, opts: { dtype: 'float32' | 'float64'; requiresGrad?: boolean; dataSeed?: number }): Tensor[] {
  const rng = new Rng((opts.dataSeed ?? p.seed * 7919 + 13) >>> 0);
  return p.inputs.map((spec) => {
    const n = numel(spec.shape);
    const data = new Float64Array(n);
    for (let i = 0; i < n; i++) data[i] = rng.float(-2, 2);
    let t: Tensor;
    if (spec.perm) {
      // base has the dims in the order perm lists them; base.permute(inverse) has `shape`.
      const perm = spec.perm;
      const baseShape = perm.map((q) => spec.shape[q]);
      const inv = new Array<number>(perm.length);
      perm.forEach((q, i) => (inv[q] = i));
      t = kiln.tensor(data, { dtype: opts.dtype }).reshape(baseShape).permute(inv);
    } else {
      t = kiln.tensor(data, { dtype: opts.dtype }).reshape(spec.shape);
    }
    return opts.requiresGrad ? t.detach().requiresGrad_() : t;
  });
}
