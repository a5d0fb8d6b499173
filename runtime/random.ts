// Kiln's seeded random number generator (xoshiro128**, seeded through splitmix32). One global
// generator, like PyTorch's default CPU generator; `manualSeed` makes runs reproducible. It does
// not reproduce PyTorch's stream: tests that compare with PyTorch load the fixtures' data.
export class Generator {
  private s0 = 0; private s1 = 0; private s2 = 0; private s3 = 0;
  private spare: number | undefined;

  constructor(seed = 67280421310721) {
    this.manualSeed(seed);
  }

  manualSeed(seed: number): this {
    let x = (Math.floor(seed) ^ Math.floor(seed / 0x100000000)) >>> 0;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next(); this.s1 = next(); this.s2 = next(); this.s3 = next();
    this.spare = undefined;
    return this;
  }

  /** A uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0; this.s3 ^= this.s1; this.s1 ^= this.s2; this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Standard normal (Box–Muller, both values of each pair used). */
  normal(): number {
    if (this.spare !== undefined) {
      const v = this.spare;
      this.spare = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Uniform integer in [low, high). */
  integer(low: number, high: number): number {
    return low + Math.floor(this.uniform() * (high - low));
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export const defaultGenerator = new Generator();

/** Seeds Kiln's global generator (`torch.manual_seed`). */
export function manualSeed(seed: number): Generator {
  return defaultGenerator.manualSeed(seed);
}

/** Fills `out` with draws from the default generator, in index order (what the `random` op computes on every device). */
export function drawRandom(out: { length: number; [i: number]: number }, distribution: 'uniform' | 'normal' | 'integer', a: number, b: number): void {
  const g = defaultGenerator;
  if (distribution === 'uniform') for (let i = 0; i < out.length; i++) out[i] = a + (b - a) * g.uniform();
  else if (distribution === 'normal') for (let i = 0; i < out.length; i++) out[i] = a + b * g.normal();
  else for (let i = 0; i < out.length; i++) out[i] = g.integer(a, b);
}
