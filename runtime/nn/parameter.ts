// nn.Parameter: a leaf tensor that a Module registers as learnable when assigned to it.
import { Tensor } from '../tensor.js';

export class Parameter extends Tensor {
  /** Shares `data`'s storage, as PyTorch's Parameter(data) does, but starts a fresh autograd leaf. */
  constructor(data: Tensor, requiresGrad = true) {
    super(data.shape, data.dtype, data.device, data._view);
    this._symbol = data._symbol;
    if (requiresGrad) this.requiresGrad_(true);
  }
  override toString(): string {
    return `Parameter containing:\n${super.toString()}`;
  }
}
