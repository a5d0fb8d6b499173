// `.to(dtype | device)`: a cast, or a copy to another device that autograd sees through.
import { contiguousStrides, DTYPES, type DType } from '../../ir/index.js';
import { Function, type Context } from '../autograd/function.js';
import { backendFor } from '../backend.js';
import { Tensor } from '../tensor.js';
import { cast } from './elementwise.js';

/** Copies a tensor's values to another device; its gradient is copied back. */
class ToDevice extends Function {
  static override forward(ctx: Context, x: Tensor, device: string): Tensor {
    ctx.sourceDevice = x.device;
    const target = backendFor(device);
    const view = x.eagerView('to');
    const storage = target.upload(backendFor(x.device).readSync(view), x.dtype);
    return new Tensor(x.shape, x.dtype, device, { storage, shape: x.shape, strides: contiguousStrides(x.shape), offset: 0, dtype: x.dtype });
  }
  static override backward(ctx: Context, g: Tensor): Tensor {
    const source = ctx.sourceDevice as string;
    try {
      return to(g, source);
    } catch (err) {
      // backward() is synchronous, and a device such as WebGPU can only be read asynchronously.
      throw new Error(
        `backward through .to('${g.device}'): the gradient of a ${source} tensor would have to be read back from ${g.device} ` +
          `synchronously, which ${g.device} cannot do. Make the tensors that need gradients on ${g.device} itself ` +
          `(model.to('${g.device}'), or create the leaf with { device: '${g.device}' }). (${(err as Error).message})`,
      );
    }
  }
}


export function to(x: Tensor, target: DType | string | { dtype?: DType; device?: string }): Tensor {
  const spec = typeof target === 'string' ? ((DTYPES as readonly string[]).includes(target) ? { dtype: target as DType } : { device: target }) : target;
  let out = x;
  if (spec.device !== undefined && spec.device !== x.device) {
    backendFor(spec.device);
    out = ToDevice.apply(out, spec.device);
  }
  if (spec.dtype !== undefined) out = cast(out, spec.dtype);
  return out;
}
