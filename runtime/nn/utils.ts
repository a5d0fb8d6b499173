// nn.utils: gradient clipping and flattening parameters to one vector (torch.nn.utils).
import { promoteTypes } from '../../ir/index.js';
import { noGrad } from '../autograd/grad-mode.js';
import { tensor } from '../creation.js';
import { add, cast, cat, clamp, div, norm, stack } from '../ops/index.js';
import { Tensor } from '../tensor.js';

type Params = Iterable<Tensor> | Tensor;

const list = (parameters: Params): Tensor[] => (parameters instanceof Tensor ? [parameters] : [...parameters]);

/**
 * Scales all gradients together so their joint `normType`-norm is at most `maxNorm`, and returns
 * that norm (before clipping). As PyTorch: coefficient `maxNorm / (total + 1e-6)` clamped to 1,
 * applied to every gradient; parameters without a gradient are ignored.
 */
export function clipGradNorm_(parameters: Params, maxNorm: number, opts: { normType?: number; errorIfNonfinite?: boolean } = {}): Tensor {
  const normType = opts.normType ?? 2;
  if (!(normType > 0)) throw new RangeError(`clipGradNorm_: normType must be positive (Infinity for the max norm), got ${normType}`);
  const grads = list(parameters).filter((p) => p.grad !== null).map((p) => p.grad!.detach());
  if (grads.length === 0) return tensor(0);
  return noGrad(() => {
    let total: Tensor;
    if (normType === Infinity) {
      const norms = grads.map((g) => g.abs().amax());
      total = norms.length === 1 ? norms[0] : common(norms).amax();
    } else {
      total = norm(common(grads.map((g) => norm(g, normType))), normType);
    }
    if (opts.errorIfNonfinite && !Number.isFinite(total.itemSync())) {
      throw new Error(`The total norm of order ${normType} for gradients from \`parameters\` is non-finite, so it cannot be clipped. To disable this error and scale the gradients by the non-finite norm anyway, set errorIfNonfinite: false`);
    }
    const coef = clamp(div(maxNorm, add(total, 1e-6)), { max: 1 });
    for (const g of grads) g.mul_(coef);
    return total;
  });
}

/** The per-parameter norms stacked in one dtype (grads of mixed precision promote, as torch.stack does). */
function common(norms: Tensor[]): Tensor {
  const dtype = norms.map((n) => n.dtype).reduce(promoteTypes);
  return stack(norms.map((n) => cast(n, dtype)));
}

/** Clamps every gradient to [-clipValue, clipValue] in place. */
export function clipGradValue_(parameters: Params, clipValue: number): void {
  noGrad(() => {
    for (const p of list(parameters)) if (p.grad !== null) p.grad.clamp_(-clipValue, clipValue);
  });
}

/** All parameters flattened and joined into one 1-D tensor (differentiable, like PyTorch's). */
export function parametersToVector(parameters: Iterable<Tensor>): Tensor {
  const ps = [...parameters];
  if (ps.length === 0) throw new Error('parametersToVector: expected at least one parameter');
  return cat(ps.map((p) => p.reshape([-1])));
}

/**
 * Copies consecutive slices of `vec` into the parameters (PyTorch rebinds `.data` to views of
 * `vec`; Kiln copies, so later changes to `vec` do not reach the parameters).
 */
export function vectorToParameters(vec: Tensor, parameters: Iterable<Tensor>): void {
  if (!(vec instanceof Tensor)) throw new TypeError(`expected a Tensor, but got: ${typeof vec}`);
  const ps = [...parameters];
  const total = ps.reduce((n, p) => n + p.numel(), 0);
  if (vec.ndim !== 1 || vec.numel() !== total) {
    throw new Error(`vectorToParameters: expected a 1-D vector of ${total} elements (the parameters' total), got shape [${vec.shape.join(', ')}]`);
  }
  noGrad(() => {
    let at = 0;
    for (const p of ps) {
      p.copy_(vec.narrow(0, at, p.numel()).reshape(p.shape));
      at += p.numel();
    }
  });
}
