// kiln.compileTrainStep: forward, loss, backward (the same VJP rules as eager autograd, traced) and
// the optimizer's in-place update, compiled into one plan. Parameters and optimizer state are
// captured tensors that the plan updates in place; `.grad` is set from the plan's outputs.
//
// The first call runs eagerly: it creates the optimizer's state (SGD's momentum buffer starts as
// the first gradient, Adam's moments start at zero), so the traced step is the same every call.
import { DynamicTraceError } from '../runtime/dynamic.js';
import { Executable } from '../runtime/executor.js';
import { adoptLongLived } from '../runtime/memory.js';
import { Module } from '../runtime/nn/module.js';
import type { Optimizer } from '../runtime/optim/optimizer.js';
import { Tensor } from '../runtime/tensor.js';
import type { CompileOptions } from './compile.js';
import { checkCompilableOptimizer, trainStepBody, traceTrainStep } from './export-plan.js';
import { optimize } from './passes/index.js';
import { buildPlan } from './plan.js';


type LossFn = (output: any, target: any) => Tensor;

export interface TrainStep<A extends unknown[]> {
  (...args: A): Tensor;
  /** Statistics of the compiled step for these arguments (after its first, eager, call). */
  stats(...args: A): { tracedOps: number; kernels: number; peakBytes: number };
}

interface Entry {
  exec: Executable;
  captures: Tensor[];
  gradParams: Tensor[];
  tracedOps: number;
}

export function compileTrainStep(model: Module, lossFn: LossFn, optimizer: Optimizer<any>, opts?: CompileOptions): TrainStep<[Tensor, Tensor]>;
export function compileTrainStep<A extends unknown[]>(fn: (...args: A) => Tensor, optimizer: Optimizer<any>, opts?: CompileOptions): TrainStep<A>;
export function compileTrainStep(a: unknown, b: unknown, c?: unknown, d?: unknown): TrainStep<unknown[]> {
  const model = a instanceof Module ? a : undefined;
  const optimizer = (model ? c : b) as Optimizer<any>;
  const opts = ((model ? d : c) ?? {}) as CompileOptions;
  const lossOf: (...args: unknown[]) => Tensor = model ? (x, y) => (b as LossFn)(model(x), y) : (a as (...args: unknown[]) => Tensor);
  const name = model ? `${model.constructor.name} training step` : 'training step';
  const log = opts.log ?? ((m: string) => console.warn(m));
  const cacheSize = opts.cacheSize ?? 8;
  checkCompilableOptimizer(optimizer, 'kiln.compileTrainStep');
  const stepBody = trainStepBody(lossOf, optimizer);
  const params = () => optimizer.paramGroups.flatMap((g) => g.params);
  const cache = new Map<string, Entry>();
  let calls = 0;
  let dynamic = false;

  // The key has two parts: the arguments' types (and the training flag), and the optimizer's
  // settings, which are constants of the traced graph (a learning-rate schedule changes them).
  const argsKeyOf = (args: unknown[]) => {
    const argText = args.map((x) => (x instanceof Tensor ? `${x.dtype}[${x.shape.join(',')}]@${x.device}` : JSON.stringify(x)));
    return `${argText.join('|')}|${model?.training ?? ''}`;
  };
  const hyperKey = () => JSON.stringify(optimizer.paramGroups.map(({ params: _p, ...rest }) => rest));
  const keyOf = (args: unknown[]) => `${argsKeyOf(args)}|${hyperKey()}`;

  const build = (args: unknown[]): Entry => {
    const ps = params();
    const names: [Tensor, string][] = model ? [...model.namedParameters(), ...model.namedBuffers()].map(([n, t]) => [t, n]) : [];
    // Traced with the loss and the gradients as outputs; the parameters' .grad are restored after.
    const { trace, gradParams } = traceTrainStep(stepBody, optimizer, args, names, 'kiln.compileTrainStep');
    const tracedOps = trace.graph.nodes.length;
    const g = optimize(trace.graph, { fuse: opts.fuse });
    const device = ps[0]?.device ?? 'cpu';
    adoptLongLived(trace.tracer.captures);
    return { exec: new Executable(buildPlan(g, device)), captures: trace.tracer.captures, gradParams, tracedOps };
  };

  const entryFor = (args: unknown[]): Entry => {
    const key = keyOf(args);
    let entry = cache.get(key);
    if (entry) {
      cache.delete(key);
      cache.set(key, entry); // most recently used last
      return entry;
    }
    if (cache.size >= cacheSize) {
      // New optimizer settings for arguments already compiled (a learning-rate schedule): replace
      // the least recently used plan. New argument shapes beyond the bound are refused.
      const argsKey = argsKeyOf(args);
      const sameArgs = [...cache.keys()].find((k) => k.startsWith(`${argsKey}|`));
      if (!sameArgs) throw new Error(`kiln.compileTrainStep: ${name} is already compiled for ${cache.size} signatures (cacheSize ${cacheSize}); refusing a new one. Pass { cacheSize } to allow more.`);
      cache.delete(cache.keys().next().value!);
    }
    if (cache.size > 0) log(`kiln.compileTrainStep: recompiling ${name} (new arguments or optimizer settings: ${key})`);
    entry = build(args);
    cache.set(key, entry);
    return entry;
  };

  const step = ((...args: unknown[]) => {
    calls++;
    if (calls === 1 || dynamic) return stepBody(...args).detach();
    let entry: Entry;
    try {
      entry = entryFor(args);
    } catch (e) {
      if (!(e instanceof DynamicTraceError)) throw e;
      if (opts.fullgraph) throw new Error(`kiln.compileTrainStep(fullgraph): ${name} cannot be compiled to one graph: it is dynamic (${e.message})`);
      dynamic = true;
      log(`kiln.compileTrainStep: ${name} is dynamic (${e.message}); running it eagerly`);
      return stepBody(...args).detach();
    }
    const argTensors = args.filter((x): x is Tensor => x instanceof Tensor);
    // Gradients are tensors over the plan's own memory (no copy), overwritten by the next step as
    // accumulated gradients are; so a compiled step allocates only its loss.
    const [loss, ...grads] = entry.exec.run([...argTensors, ...entry.captures], [false, ...entry.gradParams.map(() => true)]);
    entry.gradParams.forEach((p, k) => (p.grad = grads[k]));
    return loss;
  }) as TrainStep<unknown[]>;
  step.stats = (...args) => {
    const e = entryFor(args);
    return { tracedOps: e.tracedOps, kernels: e.exec.kernelCount, peakBytes: e.exec.plan.peakBytes };
  };
  return step;
}
