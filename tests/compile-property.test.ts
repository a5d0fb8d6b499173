// Property test: kiln.compile agrees with eager execution on random programs (tests/random-graphs.ts):
// random DAGs of elementwise ops (fusion), reductions, movement ops (views, copies, cat) and matmul
// over 1-3 inputs. For each seed, in float64: the compiled values equal eager within
// 1e-9·max(1, max|ref|) (fusion computes in double, so float64 must agree closely), so do the input
// gradients of sum(out²), and the plan never has more kernels than the trace has ops. Every third
// seed is also run in float32 against eager float32 with the project's 1e-5·max|ref| (expectClose),
// for each result float32 can compute at all (see `wellConditioned`). A failure names the seed and
// prints the program. KILN_PROPERTY_SEEDS=3,17 runs only those seeds; KILN_PROPERTY_CASES=2000 runs
// seeds 1..2000. The last block holds minimal reproductions of bugs the generator found.
import { afterAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';
import { expectClose, maxAbs } from './helpers.js';
import { generateProgram, makeInputs, type Program } from './random-graphs.js';

const CASES = Number(process.env.KILN_PROPERTY_CASES ?? 150);
const FLOAT32_EVERY = 3;
const quiet = { log: () => {} };

const only = (process.env.KILN_PROPERTY_SEEDS ?? '').split(',').filter(Boolean).map(Number);
const seeds = only.length ? only : Array.from({ length: CASES }, (_, i) => i + 1);

type Fn = (...xs: Tensor[]) => Tensor | Tensor[];
const asList = (r: Tensor | Tensor[]): Tensor[] => (Array.isArray(r) ? r : [r]);
const functionOf = (p: Program): Fn => (...xs) => {
  const outs = p.run(xs);
  return outs.length === 1 ? outs[0] : outs;
};

/** max|got - ref| <= tol·max(1, max|ref|), same shape and dtype, reference finite. */
function expectNear(got: Tensor, ref: Tensor, what: string, tol = 1e-9): void {
  expect([...got.shape], `${what}: shape`).toEqual([...ref.shape]);
  expect(got.dtype, `${what}: dtype`).toBe(ref.dtype);
  const g = got.double().dataSync();
  const r = ref.double().dataSync();
  let maxErr = 0;
  for (let i = 0; i < r.length; i++) {
    if (!Number.isFinite(r[i])) throw new Error(`${what}: the eager reference is not finite (${r[i]} at ${i}); the generator should keep values finite`);
    maxErr = Math.max(maxErr, Math.abs(g[i] - r[i]));
  }
  const scale = Math.max(1, maxAbs(r));
  if (!(maxErr <= tol * scale)) throw new Error(`${what}: max|got-ref| = ${maxErr} > ${tol}·${scale}`);
}

const sumOfSquares = (outs: Tensor[]) => outs.reduce((s: Tensor, t) => s.add(t.mul(t).sum()), kiln.zeros([], { dtype: outs[0].dtype }));

interface Run {
  eager: Tensor[];
  compiled: Tensor[];
  /** Per input: [eager grad, compiled grad] (undefined where the input gets none). */
  grads: [Tensor | undefined, Tensor | undefined][];
}

/** Runs a program eagerly and compiled: values under noGrad, then sum(out²).backward() in both. */
function runBoth(p: Program, dtype: 'float32' | 'float64'): Run {
  const fn = functionOf(p);
  const compiled = kiln.compile(fn, quiet);
  const xs = makeInputs(p, { dtype });
  const eager = asList(kiln.noGrad(() => fn(...xs)));
  const got = asList(kiln.noGrad(() => compiled(...xs)));
  expect(got.length).toBe(eager.length);
  // Fusion and the plan never add kernels (forward only, then forward of the joint graph).
  const s = kiln.noGrad(() => compiled.stats(...xs));
  expect(s.kernels, `forward kernels (${s.kernels}) <= traced ops (${s.tracedOps})`).toBeLessThanOrEqual(s.tracedOps);

  const eagerIn = makeInputs(p, { dtype, requiresGrad: true });
  const compiledIn = makeInputs(p, { dtype, requiresGrad: true });
  const refG = asList(fn(...eagerIn));
  const gotG = asList(compiled(...compiledIn));
  // The grad-mode forward is its own plan (it also returns residuals, so it fuses differently):
  // its values must agree with the noGrad plan's too.
  gotG.forEach((g, k) => expectNear(g, got[k], `${dtype} output ${k}, grad mode vs noGrad`, dtype === 'float64' ? 1e-9 : 1e-5));
  if (refG.some((t) => t.requiresGrad)) {
    sumOfSquares(refG).backward();
    sumOfSquares(gotG).backward();
  }
  const sg = compiled.stats(...compiledIn);
  expect(sg.kernels, `forward kernels with grad (${sg.kernels}) <= traced ops (${sg.tracedOps})`).toBeLessThanOrEqual(sg.tracedOps);
  return { eager, compiled: got, grads: eagerIn.map((x, i) => [x.grad ?? undefined, compiledIn[i].grad ?? undefined]) };
}

function checkGradPresence([ref, got]: [Tensor | undefined, Tensor | undefined], what: string): [Tensor, Tensor] | undefined {
  if (!ref) {
    // An input no output depends on gets no gradient (or, at most, a zero one).
    if (got) expectNear(got, kiln.zerosLike(got), `${what} (unused input)`, 0);
    return undefined;
  }
  expect(got, `${what}: the compiled call gave no gradient`).toBeTruthy();
  return [ref, got!];
}

/**
 * float32 is compared only where float32 itself can compute the result: eager float32 within
 * 1e-6·max|ref| of eager float64. A result that cancels (sum(mean(x) - x) is 0 up to rounding) is
 * rounding noise in float32, and fusion (which computes in double) legitimately rounds differently.
 */
function wellConditioned(f32: Tensor, f64: Tensor): boolean {
  const a = f32.double().dataSync();
  const b = f64.dataSync();
  const scale = maxAbs(b);
  let err = 0;
  for (let i = 0; i < b.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
  return err <= 1e-6 * scale;
}

let float32Compared = 0;
let float32Skipped = 0;

function check(p: Program): void {
  const r64 = runBoth(p, 'float64');
  r64.compiled.forEach((g, k) => expectNear(g, r64.eager[k], `float64 output ${k}`));
  r64.grads.forEach((pair, i) => {
    const both = checkGradPresence(pair, `float64 grad of input ${i}`);
    if (both) expectNear(both[1], both[0], `float64 grad of input ${i}`);
  });
  if (p.seed % FLOAT32_EVERY !== 0) return;

  const r32 = runBoth(p, 'float32');
  const close = (got: Tensor, ref: Tensor, ref64: Tensor, what: string) => {
    expect(got.dtype, what).toBe('float32');
    if (!wellConditioned(ref, ref64)) {
      float32Skipped++;
      return;
    }
    float32Compared++;
    try {
      expectClose(got, ref);
    } catch (e) {
      throw new Error(`${what}: ${(e as Error).message}`);
    }
  };
  r32.compiled.forEach((g, k) => close(g, r32.eager[k], r64.eager[k], `float32 output ${k}`));
  r32.grads.forEach((pair, i) => {
    const both = checkGradPresence(pair, `float32 grad of input ${i}`);
    if (both) close(both[1], both[0], r64.grads[i][0]!, `float32 grad of input ${i}`);
  });
}

describe('kiln.compile agrees with eager on random programs', () => {
  for (const seed of seeds) {
    it(`seed ${seed}`, () => {
      const p = generateProgram(seed);
      try {
        check(p);
      } catch (e) {
        const err = e as Error;
        err.message = `seed ${seed} (KILN_PROPERTY_SEEDS=${seed}): ${err.message}\n--- program ---\n${p.text}`;
        throw err;
      }
    });
  }
  afterAll(() => {
    // The conditioning filter must stay an exception, or the float32 check would test nothing.
    if (only.length === 0) expect(float32Skipped, `float32 results skipped as ill-conditioned (${float32Skipped}) vs compared (${float32Compared})`).toBeLessThanOrEqual(Math.max(3, 0.1 * float32Compared));
  });
});

/** Values (noGrad) of `fn` compiled and eager, within 1e-9·max(1, max|ref|). */
function expectCompiledMatches(fn: Fn, xs: Tensor[]): void {
  const ref = asList(kiln.noGrad(() => fn(...xs)));
  const got = asList(kiln.noGrad(() => kiln.compile(fn, quiet)(...xs)));
  got.forEach((g, k) => expectNear(g, ref[k], `output ${k}`));
}

describe('kiln.compile: reproductions of bugs found by the random programs', () => {
  const x = kiln.tensor([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6], [0.7, 0.8, 0.9]], { dtype: 'float64' });

  it('plan: a step reading two views of one slot frees it once (seed 126)', () => {
    // y + y.t() is y's last use through two views; freeing its slot twice let a and b share memory.
    expectCompiledMatches((x) => {
      const y = x.exp();
      const s = y.add(y.t());
      const a = s.matmul(s);
      return [a, a.matmul(s)];
    }, [x]);
  });

  it('fusion: a reduction does not absorb an elementwise node that already absorbed a matmul (seed 116)', () => {
    expectCompiledMatches((x) => x.matmul(x).abs().sum(0), [x]);
  });

  it('fusion: a matmul epilogue that reads the product twice (seed 10)', () => {
    expectCompiledMatches((x) => {
      const m = x.matmul(x);
      return m.add(m);
    }, [x]);
  });

  it('fusion: a matmul epilogue that changes the dtype (bool) keeps the product exact', () => {
    // gt(x@x, 0.3) is a bool kernel that cannot fuse into the larger `where`; as a matmul
    // epilogue, the product would be stored in the bool output before the comparison reads it.
    const b = kiln.arange(18, { dtype: 'float64' }).reshape([2, 3, 3]);
    expectCompiledMatches((x, b) => kiln.where(x.matmul(x).gt(0.3), b, 0), [x, b]);
  });

  it('backward: the same tensor returned twice gets the gradient of both (seed 13)', () => {
    const f = (x: Tensor) => {
      const y = x.mul(x);
      return [y, y];
    };
    const [xe, xc] = [x.clone().requiresGrad_(), x.clone().requiresGrad_()];
    sumOfSquares(f(xe)).backward();
    sumOfSquares(kiln.compile(f, quiet)(xc)).backward();
    expectNear(xc.grad!, xe.grad!, 'grad');
  });
});
