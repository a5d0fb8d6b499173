// kiln.compile: trace a Module's forward (or any function of tensors) once per input signature,
// optimise it, plan its memory, and run the plan on later calls. When gradients are needed the
// trace includes the VJPs (the same rules eager autograd runs), is split into a forward and a
// backward plan, and the compiled call joins eager autograd as one node. A model that turns out
// dynamic is never replayed along one traced path: it is refused (fullgraph) or run eagerly with
// its static submodules compiled (a graph break), and the reason is reported once.
import type { Graph } from '../ir/index.js';
import { grad as autogradGrad } from '../runtime/autograd/engine.js';
import { isGradEnabled } from '../runtime/autograd/grad-mode.js';
import { DynamicTraceError } from '../runtime/dynamic.js';
import { Executable, type Plan } from '../runtime/executor.js';
import { adoptLongLived } from '../runtime/memory.js';
import { Module } from '../runtime/nn/module.js';
import { setModuleOverrides } from '../runtime/nn/module-call.js';
import { Tensor } from '../runtime/tensor.js';
import { attachBackward } from './compiled-node.js';
import { partition } from './partition.js';
import { optimize } from './passes/index.js';
import { buildPlan } from './plan.js';
import { flatten, moduleForward, traceFunction, unflatten, type Template } from './trace-function.js';

export interface CompileOptions {
  /** Refuse a dynamic model instead of breaking the graph. */
  fullgraph?: boolean;
  /** How many input signatures to keep compiled; a call beyond it is an error. Default 8. */
  cacheSize?: number;
  /** Where recompilation and graph-break reports go (default console.warn). */
  log?: (message: string) => void;
  /** Skip the fusion pass (for comparisons). */
  fuse?: boolean;
}

interface Entry {
  key: string;
  signature: string[];
  forward: Executable;
  forwardGraph: Graph;
  template: Template;
  nOutputs: number;
  captures: Tensor[];
  backward?: { exec: Executable; graph: Graph; diffArgs: number[]; diffParams: Tensor[]; directInputs: number[]; outputNeedsGrad: boolean[] };
  tracedOps: number;
}

export interface Compiled<F extends (...args: any[]) => any> {
  (...args: Parameters<F>): ReturnType<F>;
  /** The optimised IR for these arguments (compiling if needed); `toString()` prints it. */
  graph(...args: Parameters<F>): Graph;
  /** The optimised backward IR for these arguments, when gradients are needed (undefined otherwise). */
  backwardGraph(...args: Parameters<F>): Graph | undefined;
  /** Statistics of the plan for these arguments. */
  stats(...args: Parameters<F>): { tracedOps: number; kernels: number; backwardKernels: number; peakBytes: number };
}

let tracing = 0;

function describeArg(a: unknown): string {
  if (a instanceof Tensor) return `${a.dtype}[${a.shape.join(',')}]@${a.device}${a.requiresGrad ? '+grad' : ''}`;
  return JSON.stringify(a) ?? String(a);
}

export function compile<F extends (...args: any[]) => any>(target: F | Module, opts: CompileOptions = {}): Compiled<F> {
  const module = target instanceof Module ? target : undefined;
  const name = module ? `${module.constructor.name}.forward` : (target as F).name || 'function';
  const fn = module ? moduleForward(module) : (target as (...args: unknown[]) => unknown);
  const log = opts.log ?? ((m: string) => console.warn(m));
  const cacheSize = opts.cacheSize ?? 8;
  const cache = new Map<string, Entry>();
  let lastSignature: string[] | undefined;
  let dynamic: DynamicTraceError | undefined;
  const childCompiled = new Map<Module, (...args: unknown[]) => unknown>();

  const entryFor = (args: unknown[]): Entry => {
    const needsGrad = isGradEnabled() && (args.some((a) => a instanceof Tensor && a.requiresGrad) || (module?.parameters().some((p) => p.requiresGrad) ?? false));
    const signature = [...args.map(describeArg), `grad=${needsGrad}`, module ? `training=${module.training}` : ''];
    const key = signature.join('|');
    const hit = cache.get(key);
    if (hit) {
      cache.delete(key);
      cache.set(key, hit); // most recently used last
      return hit;
    }
    if (cache.size >= cacheSize) {
      throw new Error(`kiln.compile: ${name} is already compiled for ${cache.size} input signatures (cacheSize ${cacheSize}); refusing a new one (${signature.filter(Boolean).join(', ')}). Pass { cacheSize } to allow more.`);
    }
    if (lastSignature) log(`kiln.compile: recompiling ${name}: ${diff(lastSignature, signature)}`);
    lastSignature = signature;
    const entry = build(args, needsGrad, key, signature);
    cache.set(key, entry);
    return entry;
  };

  const build = (args: unknown[], needsGrad: boolean, key: string, signature: string[]): Entry => {
    const names: [Tensor, string][] = module ? [...module.namedParameters(), ...module.namedBuffers()].map(([n, t]) => [t, n]) : [];
    let gradInputs: number[] = [];
    let gradOutputs: (number | null)[] = [];
    let diffInputs: Tensor[] = [];
    let diffArgs: number[] = [];
    let params: Tensor[] = [];
    let outputNeedsGrad: boolean[] = [];
    tracing++;
    let trace;
    try {
      trace = traceFunction(fn, args, {
        names,
        gradArgs: needsGrad,
        body: needsGrad
          ? (tracer, result, symArgs) => {
              const outs: Tensor[] = [];
              flatten(result, outs);
              outputNeedsGrad = outs.map((o) => o.requiresGrad);
              const withGrad = outs.filter((o) => o.requiresGrad);
              const gIn = withGrad.map((o, k) => tracer.argument(o, `grad_out${k}`));
              gradInputs = gIn.map((t) => tracer.valueOf(t));
              params = module ? module.parameters().filter((p) => p.requiresGrad) : [];
              diffArgs = symArgs.flatMap((a, i) => (a.requiresGrad ? [i] : []));
              diffInputs = [...diffArgs.map((i) => symArgs[i]), ...params];
              const grads = withGrad.length && diffInputs.length ? autogradGrad(withGrad, diffInputs, { gradOutputs: gIn, allowUnused: true }) : [];
              gradOutputs = grads.map((g) => (g ? tracer.valueOf(g) : null));
              return result;
            }
          : undefined,
      });
    } finally {
      tracing--;
    }
    const tracedOps = trace.graph.nodes.length;
    const captures = trace.tracer.captures;
    adoptLongLived(captures);
    const outputsOf = trace.graph.outputs;
    if (!needsGrad || gradOutputs.every((g) => g === null)) {
      const g = optimize(trace.graph, { fuse: opts.fuse });
      return { key, signature, forward: new Executable(buildPlan(g, deviceOf(args, captures))), forwardGraph: g, template: trace.template, nOutputs: outputsOf.length, captures, tracedOps };
    }
    const realGrads = gradOutputs.filter((g): g is number => g !== null);
    const parts = partition(trace.graph, outputsOf, realGrads, gradInputs);
    const device = deviceOf(args, captures);
    const fwd = optimize(parts.forward, { fuse: opts.fuse });
    const bwd = optimize(parts.backward, { fuse: opts.fuse });
    // The forward's inputs are the caller's (args, then captures): the backward reads some of them directly.
    const argIndexOfInput = (v: number) => parts.forward.inputs.findIndex((i) => i.value === v);
    const hasGrad = (k: number) => gradOutputs[k] !== null;
    return {
      key, signature, forward: new Executable(buildPlan(fwd, device)), forwardGraph: fwd, template: trace.template, nOutputs: outputsOf.length, captures, tracedOps,
      backward: {
        exec: new Executable(buildPlan(bwd, device)),
        graph: bwd,
        diffArgs: diffArgs.filter((_, k) => hasGrad(k)),
        diffParams: params.filter((_, k) => hasGrad(diffArgs.length + k)),
        directInputs: parts.backwardInputs.map((i) => argIndexOfInput(i.value)),
        outputNeedsGrad,
      },
    };
  };

  const run = (entry: Entry, args: unknown[]): unknown => {
    const argTensors = args.filter((a): a is Tensor => a instanceof Tensor);
    const inputs = [...argTensors, ...entry.captures];
    // Graph inputs are ordered args first (traced before anything is captured), then captures.
    const outs = entry.forward.run(inputs);
    const results = outs.slice(0, entry.nOutputs);
    if (entry.backward) {
      const residuals = outs.slice(entry.nOutputs);
      const b = entry.backward;
      const realDiff = [...b.diffArgs.map((i) => argTensors[i]), ...b.diffParams];
      attachBackward(results.filter((_, k) => b.outputNeedsGrad[k]), realDiff, (grads) => {
        const direct = b.directInputs.map((k) => inputs[k]);
        return b.exec.run([...residuals, ...grads, ...direct]);
      });
    }
    return unflatten(entry.template, results);
  };

  const callDynamic = (args: unknown[]): unknown => {
    if (!module) return (target as F)(...args);
    for (const child of module.children()) if (!childCompiled.has(child)) childCompiled.set(child, compile(child, { ...opts, log }));
    const prev = setModuleOverrides(childCompiled);
    try {
      return module.forward(...args);
    } finally {
      setModuleOverrides(prev);
    }
  };

  const compiled = ((...args: unknown[]) => {
    if (tracing > 0) return fn(...args);
    if (dynamic) return callDynamic(args);
    try {
      return run(entryFor(args), args);
    } catch (e) {
      if (!(e instanceof DynamicTraceError)) throw e;
      if (opts.fullgraph) {
        throw new Error(`kiln.compile(fullgraph): ${name} cannot be compiled to one graph: it is dynamic (${e.message})`);
      }
      dynamic = e;
      log(`kiln.compile: ${name} is dynamic (${e.message}); running it eagerly${module ? ' and compiling the submodules it calls (a graph break)' : ''}`);
      return callDynamic(args);
    }
  }) as unknown as Compiled<F>;
  compiled.graph = (...args) => entryFor(args).forwardGraph;
  compiled.backwardGraph = (...args) => entryFor(args).backward?.graph;
  compiled.stats = (...args) => {
    const e = entryFor(args);
    return { tracedOps: e.tracedOps, kernels: e.forward.kernelCount, backwardKernels: e.backward?.exec.kernelCount ?? 0, peakBytes: e.forward.plan.peakBytes + (e.backward?.exec.plan.peakBytes ?? 0) };
  };
  return compiled;
}

function deviceOf(args: unknown[], captures: Tensor[]): string {
  const t = args.find((a): a is Tensor => a instanceof Tensor) ?? captures[0];
  return t?.device ?? 'cpu';
}

function diff(before: string[], after: string[]): string {
  const changes = after.map((a, i) => (a !== before[i] ? `${i < after.length - 2 ? `arg${i}` : 'mode'} ${before[i] ?? '(none)'} -> ${a}` : '')).filter(Boolean);
  return changes.join(', ') || 'new signature';
}

export type { Plan };
