// Linear maps: y = x W^T + b (weight in PyTorch's [out, in] layout) and the bilinear form.
import { fmtShape } from '../../../ir/index.js';
import { add, matmul, mul, sum, transpose } from '../../ops/index.js';
import type { Tensor } from '../../tensor.js';
import { requireSameDType } from './utils.js';

/** x [*, in] @ weight[out, in]^T + bias[out]. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  if (weight.ndim !== 2) throw new Error(`linear: weight must be 2-D [out_features, in_features], got ${fmtShape(weight.shape)}`);
  if (x.ndim < 1 || x.shape[x.ndim - 1] !== weight.shape[1]) {
    throw new Error(`linear: input ${fmtShape(x.shape)} has ${x.shape[x.ndim - 1] ?? 0} features but weight ${fmtShape(weight.shape)} expects ${weight.shape[1]} (in_features)`);
  }
  requireSameDType(x, weight, 'linear', ['input', 'weight']);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== weight.shape[0])) throw new Error(`linear: bias must have shape [${weight.shape[0]}] (out_features), got ${fmtShape(bias.shape)}`);
  const y = matmul(x, transpose(weight, 0, 1));
  return bias ? add(y, bias) : y;
}

/** y[*, k] = x1[*, :] @ weight[k] @ x2[*, :] + bias[k], with weight [out, in1, in2]. */
export function bilinear(x1: Tensor, x2: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  if (weight.ndim !== 3) throw new Error(`bilinear: weight must be 3-D [out_features, in1_features, in2_features], got ${fmtShape(weight.shape)}`);
  const [out, in1, in2] = weight.shape;
  const batch = x1.shape.slice(0, -1);
  if (x1.ndim < 1 || x1.shape[x1.ndim - 1] !== in1 || x2.ndim !== x1.ndim || fmtShape(x2.shape.slice(0, -1)) !== fmtShape(batch) || x2.shape[x2.ndim - 1] !== in2) {
    throw new Error(`bilinear: inputs ${fmtShape(x1.shape)} and ${fmtShape(x2.shape)} do not fit weight ${fmtShape(weight.shape)} (expected [*, ${in1}] and [*, ${in2}] with the same leading dims)`);
  }
  requireSameDType(x1, weight, 'bilinear', ['input1', 'weight']);
  requireSameDType(x2, weight, 'bilinear', ['input2', 'weight']);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== out)) throw new Error(`bilinear: bias must have shape [${out}] (out_features), got ${fmtShape(bias.shape)}`);
  // x1 @ W viewed as [in1, out * in2], then contract in2 with x2.
  const left = matmul(x1.reshape([-1, in1]), weight.permute(1, 0, 2).reshape([in1, out * in2])).reshape([-1, out, in2]);
  let y = sum(mul(left, x2.reshape([-1, 1, in2])), 2).reshape([...batch, out]);
  if (bias) y = add(y, bias);
  return y;
}
