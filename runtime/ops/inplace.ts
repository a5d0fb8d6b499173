// In-place ops (`sub_`, `zero_`, `maskedFill_`, `copy_`, ...): compute the result out of place,
// check it fits, then write it into the tensor's storage and bump the storage's version, which
// autograd checks before it uses a saved tensor. Errors are raised before anything is written.
// The arithmetic ones (add_, sub_, mul_, div_, addcmul_, addcdiv_: inPlaceInto) have their last
// op write straight into the tensor instead, where that gives the same values (eager.ts bindInto).
import { broadcastShapes, canCast, fmtShape, shapesEqual } from '../../ir/index.js';
import { isGradEnabled } from '../autograd/grad-mode.js';
import { assign, bind, bindInto } from '../dispatch.js';
import type { OpDef } from '../../ir/index.js';
import type { Tensor } from '../tensor.js';
import { expand } from './shape.js';

/** The refusals every in-place op makes before it computes anything. */
function checkInPlace(self: Tensor, name: string): void {
  const recording = isGradEnabled();
  if (recording && self.isLeaf && self.requiresGrad) {
    throw new Error(`${name}: a leaf tensor that requires grad is being used in an in-place operation; do the update inside kiln.noGrad(() => ...)`);
  }
  if (self._symbol === undefined && self._view === undefined) throw new Error(`${name}: the tensor has no values`);
  if (recording && self._base && (self.requiresGrad || self._base.requiresGrad)) {
    throw new Error(`${name}: in-place modification of a view of a tensor that requires grad is not supported; clone() the view first`);
  }
}

export function inPlace<T extends Tensor>(self: T, name: string, compute: () => Tensor): T {
  checkInPlace(self, name);
  return write(self, name, compute());
}

/** inPlace after its checks: `result` checked to fit, then written into self. */
function write<T extends Tensor>(self: T, name: string, result: Tensor): T {
  const recording = isGradEnabled();
  if (result.device !== self.device) {
    throw new Error(`${name}: expected all tensors to be on the same device, but found ${self.device} and ${result.device}`);
  }
  if (!shapesEqual(result.shape, self.shape)) {
    let ok = false;
    try { ok = shapesEqual(broadcastShapes(result.shape, self.shape, name), self.shape); } catch { ok = false; }
    if (!ok) throw new Error(`${name}: output with shape ${fmtShape(self.shape)} doesn't match the broadcast shape ${fmtShape(result.shape)}`);
    result = expand(result, self.shape);
  }
  if (!canCast(result.dtype, self.dtype)) {
    throw new TypeError(`${name}: result dtype ${result.dtype} can't be cast to the desired output dtype ${self.dtype}`);
  }
  assign(self, result);
  if (recording && result.requiresGrad) {
    self.gradFn = result.gradFn;
    self._requiresGrad = true;
  } else if (recording && self.gradFn) {
    // The new values do not depend on the old history (zero_, fill_, copy_ of a constant).
    self.gradFn = null;
    self._requiresGrad = false;
  }
  return self;
}

/**
 * An in-place op whose last step is the elementwise primitive `op` over `inputs()` (self first,
 * the rest computed out of place): written straight into self's storage where the interpreter can
 * (eager, nothing recorded for autograd: Interpreter.bindInto), saving the result's allocation and
 * its copy; otherwise as `inPlace`, with its checks and errors.
 */
export function inPlaceInto<T extends Tensor>(self: T, name: string, op: OpDef, inputs: () => Tensor[]): T {
  checkInPlace(self, name);
  const ins = inputs();
  if (bindInto(op, ins, {}, self)) return self;
  return write(self, name, bind(op, ins));
}
