// Kiln's IR: a typed SSA graph. Every value is defined once (a graph input, a constant, or the
// output of one node) and has a static shape and dtype. Nodes name ops of the op table (or a
// fused kernel built from them); `updates` record in-place writes to inputs (parameters, optimizer
// state) that a compiled training step performs.
import type { DType } from './dtype.js';
import { exprToString, type Expr } from './expr.js';
import { fmtShape, shapesEqual } from './shape.js';
import { OPS } from './ops/index.js';
import { decodeNumbers, encodeNumbers } from './json-numbers.js';

export interface Value {
  readonly id: number;
  readonly shape: readonly number[];
  readonly dtype: DType;
}

/** Where a graph input comes from: an argument of the call, or a tensor read at call time (a parameter, a buffer, optimizer state). */
export type InputKind = 'arg' | 'capture';

export interface GraphInput {
  readonly value: number;
  readonly kind: InputKind;
  readonly name: string;
}

export interface Constant {
  readonly value: number;
  /** Row-major values (bool as 0/1). */
  readonly data: ArrayLike<number>;
}

export interface Node {
  readonly op: string;
  readonly inputs: readonly number[];
  readonly attrs: unknown;
  readonly output: number;
  /** A fused elementwise kernel's expression over `inputs` (op 'fused'). */
  readonly expr?: Expr;
  /** The model source line that produced this node, for error messages. */
  readonly where?: string;
}

export interface Update {
  /** The graph input (kind 'capture') whose tensor is overwritten... */
  readonly input: number;
  /** ...with this value, after the graph has run. */
  readonly value: number;
}

export class Graph {
  readonly values: Value[] = [];
  readonly inputs: GraphInput[] = [];
  readonly constants: Constant[] = [];
  nodes: Node[] = [];
  outputs: number[] = [];
  updates: Update[] = [];

  newValue(shape: readonly number[], dtype: DType): Value {
    const v = { id: this.values.length, shape: [...shape], dtype };
    this.values.push(v);
    return v;
  }
  value(id: number): Value {
    const v = this.values[id];
    if (!v) throw new Error(`graph: no value %${id}`);
    return v;
  }
  addInput(shape: readonly number[], dtype: DType, kind: InputKind, name: string): Value {
    const v = this.newValue(shape, dtype);
    this.inputs.push({ value: v.id, kind, name });
    return v;
  }
  addConstant(shape: readonly number[], dtype: DType, data: ArrayLike<number>): Value {
    const v = this.newValue(shape, dtype);
    this.constants.push({ value: v.id, data });
    return v;
  }
  addNode(op: string, inputs: readonly number[], attrs: unknown, shape: readonly number[], dtype: DType, extra: { expr?: Expr; where?: string } = {}): Value {
    const v = this.newValue(shape, dtype);
    this.nodes.push({ op, inputs: [...inputs], attrs, output: v.id, ...extra });
    return v;
  }

  toString(): string {
    return printGraph(this);
  }

  /** Plain JSON (for bundles); infinities and NaN, which JSON cannot hold, are written as `{ "$num": "-Infinity" }`. */
  toJSON(): object {
    return encodeNumbers({
      values: this.values.map((v) => [v.shape, v.dtype]),
      inputs: this.inputs,
      constants: this.constants.map((c) => ({ value: c.value, data: Array.from(c.data) })),
      nodes: this.nodes,
      outputs: this.outputs,
      updates: this.updates,
    }) as object;
  }

  static fromJSON(text: string | object): Graph {
    const json = decodeNumbers(typeof text === 'string' ? JSON.parse(text) : text) as any;
    const g = new Graph();
    for (const [shape, dtype] of json.values) g.newValue(shape, dtype);
    g.inputs.push(...json.inputs);
    g.constants.push(...json.constants);
    g.nodes = json.nodes;
    g.outputs = json.outputs;
    g.updates = json.updates;
    return g;
  }
}

const typeOf = (v: Value) => `${v.dtype}${fmtShape(v.shape)}`;

function attrText(attrs: unknown): string {
  if (attrs === undefined || attrs === null) return '';
  const entries = Object.entries(attrs as Record<string, unknown>);
  const show = (v: unknown) => (typeof v === 'number' ? String(v) : JSON.stringify(v));
  return entries.length ? ` {${entries.map(([k, v]) => `${k}=${show(v)}`).join(', ')}}` : '';
}

export function printGraph(g: Graph): string {
  const lines: string[] = [];
  const ins = g.inputs.map((i) => `%${i.value}: ${typeOf(g.value(i.value))} ${i.kind === 'arg' ? i.name : `<${i.name}>`}`);
  lines.push(`graph(${ins.join(', ')}) {`);
  for (const c of g.constants) {
    const v = g.value(c.value);
    const shown = c.data.length <= 4 ? Array.from(c.data).join(', ') : `${c.data.length} values`;
    lines.push(`  %${v.id}: ${typeOf(v)} = constant [${shown}]`);
  }
  for (const n of g.nodes) {
    const v = g.value(n.output);
    const args = n.inputs.map((i) => `%${i}`).join(', ');
    const text = n.expr ? exprToString(n.expr) : '';
    const body = n.expr ? ` ${text.length <= 160 ? text : `${text.slice(0, 157)}...`}` : '';
    lines.push(`  %${v.id}: ${typeOf(v)} = ${n.op}(${args})${attrText(n.attrs)}${body}`);
  }
  for (const u of g.updates) lines.push(`  %${u.input} <- %${u.value}`);
  lines.push(`  return ${g.outputs.map((o) => `%${o}`).join(', ')}`);
  lines.push('}');
  return lines.join('\n');
}

/**
 * Checks the graph's invariants: every value defined exactly once before use, node types agree
 * with their op's shape rule, outputs and updates refer to defined values of matching type.
 * Throws an error naming the first broken one.
 */
export function verifyGraph(g: Graph): void {
  const defined = new Set<number>();
  const define = (id: number, what: string) => {
    if (defined.has(id)) throw new Error(`verify: %${id} is defined twice (${what})`);
    g.value(id);
    defined.add(id);
  };
  for (const i of g.inputs) define(i.value, 'input');
  for (const c of g.constants) define(c.value, 'constant');
  for (const n of g.nodes) {
    for (const i of n.inputs) if (!defined.has(i)) throw new Error(`verify: ${n.op} uses %${i} before it is defined`);
    const out = g.value(n.output);
    if (n.expr === undefined) {
      const op = OPS[n.op];
      if (!op) throw new Error(`verify: unknown op ${n.op}`);
      const meta = op.infer(n.inputs.map((i) => g.value(i)), n.attrs as never);
      if (!shapesEqual(meta.shape, out.shape) || meta.dtype !== out.dtype) {
        throw new Error(`verify: ${n.op} -> %${n.output} is ${typeOf(out)} but its shape rule gives ${meta.dtype}${fmtShape(meta.shape)}`);
      }
    }
    define(n.output, n.op);
  }
  for (const o of g.outputs) if (!defined.has(o)) throw new Error(`verify: output %${o} is not defined`);
  for (const u of g.updates) {
    const input = g.inputs.find((i) => i.value === u.input);
    if (!input || input.kind !== 'capture') throw new Error(`verify: update target %${u.input} is not a captured input`);
    if (!defined.has(u.value)) throw new Error(`verify: update value %${u.value} is not defined`);
    const a = g.value(u.input), b = g.value(u.value);
    if (!shapesEqual(a.shape, b.shape) || a.dtype !== b.dtype) throw new Error(`verify: update %${u.input} <- %${u.value} changes type ${typeOf(a)} -> ${typeOf(b)}`);
  }
}
