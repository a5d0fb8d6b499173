// Constant folding: a node whose inputs are all constants is computed now, by the eager
// interpreter (the same kernels as at run time), and becomes a constant. Large results stay
// nodes, so folding never bloats the graph with data it would be cheaper to compute.
import type { Graph } from '../../ir/index.js';
import { OPS, numel } from '../../ir/index.js';
import { noGrad } from '../../runtime/autograd/grad-mode.js';
import { tensor } from '../../runtime/creation.js';
import { eager } from '../../runtime/eager.js';
import { replaceAllUses } from './uses.js';

const MAX_FOLDED_ELEMENTS = 4096;

export function fold(g: Graph): Graph {
  const constData = new Map(g.constants.map((c) => [c.value, c.data]));
  const kept: typeof g.nodes = [];
  const subst = new Map<number, number>();
  for (const original of g.nodes) {
    const n = { ...original, inputs: original.inputs.map((i) => subst.get(i) ?? i) };
    const out = g.value(n.output);
    const foldable = n.op !== 'fused' && !OPS[n.op]?.impure && n.inputs.every((i) => constData.has(i)) && numel(out.shape) <= MAX_FOLDED_ELEMENTS && out.dtype !== 'float16';
    if (!foldable) {
      kept.push(n);
      continue;
    }
    const inputs = n.inputs.map((i) => {
      const v = g.value(i);
      return tensor(Array.from(constData.get(i)!), { dtype: v.dtype }).reshape([...v.shape]);
    });
    const attrs = OPS[n.op].arity === 0 ? { ...(n.attrs as object), device: 'cpu' } : n.attrs;
    const result = noGrad(() => eager.bind(OPS[n.op], inputs, attrs));
    const c = g.addConstant(out.shape, out.dtype, Array.from(result.dataSync()));
    constData.set(c.id, g.constants[g.constants.length - 1].data);
    subst.set(n.output, c.id);
  }
  g.nodes = kept;
  for (const [from, to] of subst) replaceAllUses(g, from, to);
  return g;
}
