import { it } from 'vitest';
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';
const cmp = (name: string, h: (...xs: Tensor[]) => Tensor | Tensor[], xs: Tensor[], opts = {}) => {
  const r = [kiln.noGrad(() => h(...xs))].flat();
  const c = kiln.compile(h, { log: () => {}, ...opts });
  const g = [kiln.noGrad(() => c(...xs))].flat();
  console.log(name, g.map((t, k) => t.sub(r[k]).abs().amax().itemSync()), String(c.graph(...xs)));
};
it('c', () => {
  const x = kiln.tensor([[0.1, -0.2, 0.3], [0.4, 0.5, -0.6], [0.7, 0.8, 0.9]], { dtype: 'float64' });
  const big = kiln.tensor([[[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[1, 2, 3], [4, 5, 6], [7, 8, 9]]], { dtype: 'float64' });
  cmp('epilogue bool', (x, b) => kiln.where(x.matmul(x).gt(0.3), b, 0), [x, big]);
  cmp('epilogue f32', (x) => x.matmul(x).float(), [x]);
});
