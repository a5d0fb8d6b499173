// Applying an op's VJP rule: shared by eager autograd (runtime/) and symbolic differentiation
// (compiler/), so the two agree by construction.
import type { KilnOps } from './kiln-ops.js';
import type { OpDef, VjpContext } from './op.js';
import { shapesEqual } from './shape.js';

/**
 * Gradients of `op`'s inputs given `g`, the gradient of its output. `needed[i]` says whether
 * input i wants one; the others come back null and are never built. Each gradient is summed
 * back to its input's shape (undoing broadcasting) and cast to its input's dtype here, once, so
 * no rule repeats that.
 */
export function inputGradients<T>(
  op: OpDef,
  g: T,
  ctx: VjpContext<T, unknown>,
  K: KilnOps<T>,
  needed: readonly boolean[],
): (T | null)[] {
  if (!op.vjp) throw new Error(`${op.name} is not differentiable`);
  const rules = op.vjp(g, ctx as VjpContext<T, any>, K);
  return needed.map((need, i) => {
    const rule = rules[i];
    if (!need || !rule) return null;
    let grad = rule();
    const want = ctx.inputs[i];
    if (!shapesEqual(K.shape(grad), want.shape)) grad = K.sumToShape(grad, want.shape);
    if (K.dtype(grad) !== want.dtype) grad = K.cast(grad, want.dtype);
    return grad;
  });
}
