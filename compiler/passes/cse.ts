// Common subexpression elimination: two nodes with the same op, inputs and attributes compute the
// same value, and two constants with the same type and data are one constant.
import { exprToString, OPS, type Graph } from '../../ir/index.js';
import { replaceAllUses } from './uses.js';

export function cse(g: Graph): Graph {
  const seenConst = new Map<string, number>();
  for (const c of [...g.constants]) {
    const v = g.value(c.value);
    const key = `${v.dtype}[${v.shape.join(',')}]:${Array.from(c.data).join(',')}`;
    const first = seenConst.get(key);
    if (first === undefined) seenConst.set(key, c.value);
    else replaceAllUses(g, c.value, first);
  }
  const seen = new Map<string, number>();
  for (let i = 0; i < g.nodes.length; i++) {
    const n = g.nodes[i];
    if (OPS[n.op]?.impure) continue; // two draws of random numbers are different values
    const key = `${n.op}(${n.inputs.join(',')})${JSON.stringify(n.attrs)}${n.expr ? exprToString(n.expr) : ''}`;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, n.output);
    else replaceAllUses(g, n.output, first);
  }
  return g;
}
