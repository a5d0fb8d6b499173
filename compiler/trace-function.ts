// Running a function once under the tracer: arguments become symbolic graph inputs, the result's
// tensors become graph outputs, and anything that makes the function dynamic stops the trace with
// a DynamicTraceError naming the reason and the line.
import { verifyGraph, type Graph } from '../ir/index.js';
import { withInterpreter } from '../runtime/dispatch.js';
import { DynamicTraceError, moduleStack, noteModulePath } from '../runtime/dynamic.js';
import type { Module } from '../runtime/nn/module.js';
import { Tensor } from '../runtime/tensor.js';
import { Tracer } from './tracer.js';

/** A function's result with its tensors replaced by output indices, to rebuild it after a run. */
export type Template = { t: 'tensor'; index: number } | { t: 'array'; items: Template[] } | { t: 'other'; value: unknown };

export function flatten(x: unknown, out: Tensor[]): Template {
  if (x instanceof Tensor) return { t: 'tensor', index: out.push(x) - 1 };
  if (Array.isArray(x)) return { t: 'array', items: x.map((v) => flatten(v, out)) };
  return { t: 'other', value: x };
}

export function unflatten(tpl: Template, tensors: readonly Tensor[]): unknown {
  switch (tpl.t) {
    case 'tensor': return tensors[tpl.index];
    case 'array': return tpl.items.map((i) => unflatten(i, tensors));
    case 'other': return tpl.value;
  }
}

/**
 * A module's forward as a plain function to trace: its hooks are not part of a compiled graph, and
 * its name is pushed so trace errors can say which module they happened in.
 */
export function moduleForward(module: Module): (...args: unknown[]) => unknown {
  return (...args) => {
    moduleStack.push(module.constructor.name);
    try {
      return module.forward(...args);
    } catch (e) {
      noteModulePath(e);
      throw e;
    } finally {
      moduleStack.pop();
    }
  };
}

export interface Trace {
  readonly tracer: Tracer;
  readonly graph: Graph;
  /** The symbolic tensors standing for the arguments (tensor arguments only, in order). */
  readonly args: Tensor[];
  /** The function's result, symbolic. */
  readonly result: unknown;
  readonly outputs: Tensor[];
  readonly template: Template;
}

/**
 * Traces `fn(...args)`. Tensor arguments become 'arg' inputs (marked requiresGrad when `gradArgs`
 * says so); other arguments are passed through as they are (they are part of the cache key).
 * `body` may extend the trace (autograd, optimizer updates) before outputs are collected.
 */
export function traceFunction(
  fn: (...args: any[]) => unknown,
  args: readonly unknown[],
  opts: { names?: [Tensor, string][]; gradArgs?: boolean; body?: (tracer: Tracer, result: unknown, symArgs: Tensor[]) => unknown } = {},
): Trace {
  const tracer = new Tracer();
  for (const [t, name] of opts.names ?? []) tracer.nameCapture(t, name);
  const symArgs: Tensor[] = [];
  const callArgs = args.map((a, i) => {
    if (!(a instanceof Tensor)) return a;
    const s = tracer.argument(a, `arg${i}`);
    if (opts.gradArgs && a.requiresGrad) s.requiresGrad_(true);
    symArgs.push(s);
    return s;
  });
  const random = Math.random;
  Math.random = () => {
    throw new DynamicTraceError('Math.random() called while tracing');
  };
  let result: unknown;
  try {
    result = withInterpreter(tracer, () => {
      const r = fn(...callArgs);
      return opts.body ? opts.body(tracer, r, symArgs) : r;
    });
  } catch (e) {
    throw tracer.located(e as Error);
  } finally {
    Math.random = random;
  }
  const outputs: Tensor[] = [];
  const template = flatten(result, outputs);
  const graph = tracer.graph;
  graph.outputs = outputs.map((t) => tracer.valueOf(t));
  graph.updates = tracer.updates();
  verifyGraph(graph);
  return { tracer, graph, args: symArgs, result, outputs, template };
}
