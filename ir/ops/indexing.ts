// gather / scatterAdd along one dim (PyTorch semantics); indexSelect, maskedFill and embedding
// lookups are composites over these and `where`.
import { defineOp } from '../op.js';
import { fmtShape } from '../shape.js';

export const gather = defineOp<{ dim: number }>({
  name: 'gather',
  arity: 2,
  infer: ([x, index], a) => {
    if (index.dtype !== 'int32') throw new TypeError(`gather: index must be int32, got ${index.dtype}`);
    const ok = index.shape.length === x.shape.length && index.shape.every((s, i) => i === a.dim || s <= x.shape[i]);
    if (!ok) throw new Error(`gather: index of shape ${fmtShape(index.shape)} does not fit input of shape ${fmtShape(x.shape)} along dim ${a.dim}`);
    return { shape: index.shape, dtype: x.dtype };
  },
  lowering: { kind: 'routine', routine: 'gather' },
  saves: { inputs: [1] },
  vjp: (g, c, K) => [() => K.scatterAdd(K.zeros(c.inputs[0].shape, g), c.attrs.dim, c.x(1), g), null],
});

export const scatterAdd = defineOp<{ dim: number }>({
  name: 'scatterAdd',
  arity: 3,
  infer: ([base, index, src], a) => {
    if (index.dtype !== 'int32') throw new TypeError(`scatterAdd: index must be int32, got ${index.dtype}`);
    const ok = index.shape.length === base.shape.length && src.shape.length === base.shape.length &&
      index.shape.every((s, i) => s <= src.shape[i] && (i === a.dim || s <= base.shape[i]));
    if (!ok) throw new Error(`scatterAdd: index ${fmtShape(index.shape)} and src ${fmtShape(src.shape)} do not fit ${fmtShape(base.shape)} along dim ${a.dim}`);
    if (src.dtype !== base.dtype) throw new TypeError(`scatterAdd: src dtype ${src.dtype} differs from self dtype ${base.dtype}`);
    return { shape: base.shape, dtype: base.dtype };
  },
  lowering: { kind: 'routine', routine: 'scatterAdd' },
  saves: { inputs: [1] },
  // src may be larger than index (its extra elements are never scattered): their gradient is zero.
  vjp: (g, c, K) => [() => g, null, () => {
    const picked = K.gather(g, c.attrs.dim, c.x(1));
    const src = c.inputs[2].shape;
    const idx = c.inputs[1].shape;
    return src.every((d, i) => d === idx[i]) ? picked : K.pad(picked, src.map(() => 0), src.map((d, i) => d - idx[i]), src.map(() => 0), 0);
  }],
});
