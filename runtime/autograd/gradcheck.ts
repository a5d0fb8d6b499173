// gradcheck: compares the gradients autograd computes with central finite differences, in float64
// (torch.autograd.gradcheck).
import { fmtShape, isFloating } from '../../ir/index.js';
import { tensor } from '../creation.js';
import type { Tensor } from '../tensor.js';
import { grad } from './engine.js';
import { noGrad } from './grad-mode.js';

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  /** Throw an error describing the first mismatch (default); false: return false instead. */
  raiseException?: boolean;
}

type Fn = (...inputs: Tensor[]) => Tensor | Tensor[];

const outputsOf = (fn: Fn, inputs: Tensor[]): Tensor[] => {
  const r = fn(...inputs);
  return Array.isArray(r) ? r : [r];
};

/**
 * Checks d(outputs)/d(inputs) of `fn` at `inputs`. Every floating input that requires grad is
 * checked and must be float64 (float32 finite differences are too coarse to judge a gradient).
 */
export function gradcheck(fn: Fn, inputs: Tensor[], opts: GradcheckOptions = {}): boolean {
  const { eps = 1e-6, atol = 1e-5, rtol = 1e-3, raiseException = true } = opts;
  const checked = inputs.map((t, i) => ({ t, i })).filter(({ t }) => t.requiresGrad);
  if (checked.length === 0) throw new Error('gradcheck: no input requires grad');
  for (const { t, i } of checked) {
    if (t.dtype !== 'float64') throw new TypeError(`gradcheck: input ${i} is ${t.dtype}; gradcheck needs float64 inputs`);
  }
  const outs = outputsOf(fn, inputs);
  for (const [o, out] of outs.entries()) {
    if (!isFloating(out.dtype)) continue;
    const n = out.numel();
    // Analytical Jacobian: one backward pass per output element.
    const analytical = checked.map(({ t }) => new Float64Array(n * t.numel()));
    for (let k = 0; k < n; k++) {
      const seed = new Float64Array(n);
      seed[k] = 1;
      const gs = grad(outputsOf(fn, inputs)[o], checked.map(({ t }) => t), {
        gradOutputs: [tensor(seed, { dtype: out.dtype }).reshape([...out.shape])],
        allowUnused: true,
      });
      gs.forEach((g, j) => {
        const vals = g ? g.double().dataSync() : new Float64Array(checked[j].t.numel());
        analytical[j].set(vals, k * checked[j].t.numel());
      });
    }
    // Numerical Jacobian: perturb each input element both ways.
    for (const [j, { t, i }] of checked.entries()) {
      const base = Float64Array.from(t.dataSync() as Float64Array);
      for (let e = 0; e < base.length; e++) {
        const eval_ = (delta: number) => {
          const shifted = Float64Array.from(base);
          shifted[e] += delta;
          const args = inputs.map((x, m) => (m === i ? tensor(shifted, { dtype: 'float64' }).reshape([...t.shape]) : x));
          return noGrad(() => outputsOf(fn, args)[o].double().dataSync());
        };
        const plus = eval_(eps);
        const minus = eval_(-eps);
        for (let k = 0; k < n; k++) {
          const num = (plus[k] - minus[k]) / (2 * eps);
          const ana = analytical[j][k * base.length + e];
          if (!(Math.abs(num - ana) <= atol + rtol * Math.abs(num))) {
            if (!raiseException) return false;
            throw new Error(
              `gradcheck: Jacobian mismatch for output ${o} (shape ${fmtShape(out.shape)}) with respect to input ${i} (shape ${fmtShape(t.shape)}), ` +
                `output element ${k}, input element ${e}: numerical ${num}, analytical ${ana}`,
            );
          }
        }
      }
    }
  }
  return true;
}
