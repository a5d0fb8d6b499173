// Matrix multiply: [..., M, K] @ [..., K, N] with broadcast batch dims. mm, bmm, matmul, linear and
// the 1-D cases of torch.matmul are composites over this one op.
import { defineOp } from '../op.js';
import { broadcastShapes, fmtShape } from '../shape.js';

export const matmul = defineOp<{}>({
  name: 'matmul',
  arity: 2,
  infer: ([a, b]) => {
    if (a.shape.length < 2 || b.shape.length < 2) {
      throw new Error(`matmul: expected operands of at least 2 dimensions, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
    }
    if (a.dtype !== b.dtype) {
      throw new TypeError(`matmul: expected both operands to have the same dtype, got ${a.dtype} and ${b.dtype}`);
    }
    if (a.dtype === 'bool') throw new TypeError('matmul: bool operands are not supported');
    const [m, k] = a.shape.slice(-2);
    const [k2, n] = b.shape.slice(-2);
    if (k !== k2) {
      throw new Error(
        `matmul: shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} cannot be multiplied ` +
          `(${m}x${k} and ${k2}x${n}: inner dimensions ${k} and ${k2} differ)`,
      );
    }
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul (batch dimensions)');
    return { shape: [...batch, m, n], dtype: a.dtype };
  },
  lowering: { kind: 'routine', routine: 'matmul' },
  saves: { inputs: 'all' },
  // dA = g Bᵀ and dB = Aᵀ g; for an operand laid out transposed, the same product transposed,
  // (B gᵀ)ᵀ and (gᵀ A)ᵀ, so its gradient has its layout (see KilnOps.columnMajor).
  vjp: (g, c, K) => {
    const t = (x: typeof g) => K.transpose(x, -1, -2);
    return [
      () => (K.columnMajor(c.x(0)) ? t(K.matmul(c.x(1), t(g))) : K.matmul(g, t(c.x(1)))),
      () => (K.columnMajor(c.x(1)) ? t(K.matmul(t(g), c.x(0))) : K.matmul(t(c.x(0)), g)),
    ];
  },
});
