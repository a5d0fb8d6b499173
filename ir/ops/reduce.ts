// Reductions over `dims` (normalised, sorted) with keepdim. mean, var, logsumexp, ... are
// composites over these in the runtime.
import { isFloating, type DType } from '../dtype.js';
import { defineOp, type Meta, type OpDef, type Reducer, type VjpRule } from '../op.js';
import { normalizeDims } from '../shape.js';

export interface ReduceAttrs {
  readonly dims: readonly number[];
  readonly keepdim: boolean;
}

export function reducedShape(shape: readonly number[], dims: readonly number[], keepdim: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!dims.includes(i)) out.push(d);
    else if (keepdim) out.push(1);
  });
  return out;
}

function inferReduce(name: string, dtypeOf: (d: DType) => DType) {
  return (ins: readonly Meta[], a: ReduceAttrs): Meta => {
    const { shape } = ins[0];
    const dims = normalizeDims(a.dims, shape.length, name);
    for (const d of dims) {
      if (shape[d] === 0 && name !== 'sum') {
        throw new Error(`${name}: cannot reduce over dimension ${d} of size 0 (shape [${shape.join(', ')}]): the result has no identity`);
      }
    }
    return { shape: reducedShape(shape, dims, a.keepdim), dtype: dtypeOf(ins[0].dtype) };
  };
}

function reduceOp(name: string, reducer: Reducer, dtypeOf: (d: DType) => DType, extra: Pick<OpDef<ReduceAttrs>, 'vjp' | 'saves'> = {}) {
  return defineOp<ReduceAttrs>({ name, arity: 1, infer: inferReduce(name, dtypeOf), lowering: { kind: 'reduce', reducer }, ...extra });
}

/** The shape the output had before keepdim=false dropped the reduced dims (so it broadcasts against the input). */
const keptShape = (inShape: readonly number[], a: ReduceAttrs) => reducedShape(inShape, a.dims, true);

// Summing bools or ints gives int32 (PyTorch gives int64, which Kiln does not have).
export const sum = reduceOp('sum', 'sum', (d) => (isFloating(d) ? d : 'int32'), {
  vjp: (g, c, K) => [() => K.expand(K.reshape(g, keptShape(c.inputs[0].shape, c.attrs)), c.inputs[0].shape)],
});

// amax/amin: the gradient is shared evenly among the elements equal to the extreme value.
const extremeVjp: VjpRule<ReduceAttrs> = (g, c, K) => [
  () => {
    const kept = keptShape(c.inputs[0].shape, c.attrs);
    const mask = K.cast(K.eq(c.x(0), K.reshape(c.out(), kept)), K.dtype(g));
    const count = K.sum(mask, c.attrs.dims, true);
    return K.mul(K.div(mask, count), K.reshape(g, kept));
  },
];
export const max = reduceOp('max', 'max', (d) => d, { vjp: extremeVjp, saves: { inputs: 'all', output: true } });
export const min = reduceOp('min', 'min', (d) => d, { vjp: extremeVjp, saves: { inputs: 'all', output: true } });
// Index of the first extreme value along the (single) reduced dim, as PyTorch returns it.
export const argmax = reduceOp('argmax', 'argmax', () => 'int32');
export const argmin = reduceOp('argmin', 'argmin', () => 'int32');
