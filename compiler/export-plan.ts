// What a bundle (`kiln compile`, compiler/bundle.ts) needs from the compiler: a module's forward, or
// a whole training step, traced once for example inputs, optimised and planned, as plain data — the
// executor Plan, the names of its inputs, and the concrete tensors it captures (parameters, buffers,
// optimizer state), which a bundle carries as safetensors and binds to the plan's inputs at run time.
//
// Also the tracing half of kiln.compileTrainStep (compiler/train-step.ts calls it), so a bundle's
// training step is traced exactly as a compiled one is.
import { printGraph, type DType, type Graph } from '../ir/index.js';
import { noGrad } from '../runtime/autograd/grad-mode.js';
import { full, zerosLike } from '../runtime/creation.js';
import { DynamicTraceError } from '../runtime/dynamic.js';
import type { Plan } from '../runtime/executor.js';
import type { Module } from '../runtime/nn/module.js';
import { Adagrad } from '../runtime/optim/adagrad.js';
import { Adam } from '../runtime/optim/adam.js';
import { AdamW } from '../runtime/optim/adamw.js';
import type { Optimizer, ParamState } from '../runtime/optim/optimizer.js';
import { RMSprop } from '../runtime/optim/rmsprop.js';
import { SGD } from '../runtime/optim/sgd.js';
import { Tensor } from '../runtime/tensor.js';
import { optimize } from './passes/index.js';
import { buildPlan } from './plan.js';
import { moduleForward, traceFunction, type Template, type Trace } from './trace-function.js';

export interface ExportedInput {
  readonly name: string;
  readonly kind: 'arg' | 'capture';
  readonly shape: readonly number[];
  readonly dtype: DType;
}

export interface ExportedPlan {
  /** The executor's plan (plain data; encode it with `encodePlan` from runtime/bundle/entry.ts for JSON). */
  plan: Plan;
  /** One name per plan input, in order: the call's arguments (`arg0`, ...) then the captures. */
  inputNames: string[];
  /** The captured tensors, in the order of the capture inputs (they follow the arguments). */
  captures: { name: string; tensor: Tensor }[];
  kernels: number;
  peakBytes: number;
  /** The optimised graph, printed. */
  graphText: string;
  /** Every plan input with its shape and dtype (arguments first). */
  inputs: ExportedInput[];
  /** How the outputs nest (a forward that returns a tensor, or an array of them). */
  template: Template;
}

type LossFn = (output: any, target: any) => Tensor;

/** Traces, optimises and plans `module.forward(...exampleInputs)` without gradients. */
export function exportForward(module: Module, exampleInputs: Tensor[], opts: { fuse?: boolean } = {}): ExportedPlan {
  const name = `${module.constructor.name}.forward`;
  const fn = moduleForward(module);
  const trace = refuseDynamic(name, () => noGrad(() => traceFunction(fn, exampleInputs, { names: namesOf(module) })));
  return finish(trace, exampleInputs, opts);
}

/**
 * Traces, optimises and plans one training step — zeroGrad, `lossFn(module(...inputs), target)`,
 * backward, `optimizer.step()` — whose only output is the loss; the plan's updates write the
 * parameters and the optimizer state (captured as `optim.<param>.<key>`) in place.
 *
 * The optimizer's state is created first (see `initOptimizerState`), so the traced step is also
 * exactly the first step: a bundle runs every step, the first included, with the one plan.
 */
export function exportTrainStep(module: Module, lossFn: LossFn, optimizer: Optimizer<any>, exampleInputs: Tensor[], exampleTarget: Tensor, opts: { fuse?: boolean } = {}): ExportedPlan {
  const who = 'kiln bundle';
  checkCompilableOptimizer(optimizer, who);
  initOptimizerState(optimizer);
  const body = trainStepBody((...args: unknown[]) => lossFn(module(...args.slice(0, -1)), args[args.length - 1]), optimizer);
  const names = namesOf(module);
  const paramName = new Map(module.namedParameters().map(([n, p]) => [p as Tensor, n]));
  optimizer.paramGroups.flatMap((g) => g.params).forEach((p, k) => {
    const state = optimizer.state.get(p) ?? {};
    for (const [key, v] of Object.entries(state)) if (v instanceof Tensor) names.push([v, `optim.${paramName.get(p) ?? `param${k}`}.${key}`]);
  });
  const args = [...exampleInputs, exampleTarget];
  const { trace } = refuseDynamic(`${module.constructor.name} training step`, () => traceTrainStep(body, optimizer, args, names, who, false));
  return finish(trace, args, opts);
}

/**
 * Creates the optimizer state the first `step()` would create, so that the steady-state step —
 * the graph a trace records once the state exists — computes exactly PyTorch's first step too:
 * - SGD with momentum m and dampening 0: momentum_buffer = zeros. The steady-state update
 *   `buf = buf * m + d` then gives `0 * m + d = d` (exact in floating point), which is what the
 *   first step does (`buf = d.clone()`). With dampening it would give `(1 - dampening) * d`
 *   instead, so dampening is refused.
 * - Adam / AdamW: step = 0 (a float32 scalar tensor), exp_avg = exp_avg_sq (= max_exp_avg_sq with
 *   amsgrad) = zeros: the very tensors Adam creates on its first step before updating them.
 * State that already exists (an optimizer that has stepped) is kept as it is.
 */
export function initOptimizerState(optimizer: Optimizer<any>): void {
  noGrad(() => {
    for (const group of optimizer.paramGroups) {
      for (const p of group.params) {
        let state = optimizer.state.get(p);
        if (!state) {
          state = {} as ParamState;
          optimizer.state.set(p, state);
        }
        if (optimizer instanceof SGD) {
          if (group.momentum === 0) continue;
          if (group.dampening !== 0) {
            throw new Error(`kiln bundle: SGD with dampening ${group.dampening} cannot be compiled as one step for every call (its first step takes the gradient undampened); use dampening 0`);
          }
          if (!(state.momentum_buffer instanceof Tensor)) state.momentum_buffer = zerosLike(p);
        } else if (optimizer instanceof Adam || optimizer instanceof AdamW) {
          if (Object.keys(state).length > 0) continue;
          state.step = full([], 0, { dtype: 'float32', device: p.device });
          state.exp_avg = zerosLike(p);
          state.exp_avg_sq = zerosLike(p);
          if (group.amsgrad) state.max_exp_avg_sq = zerosLike(p);
        }
        // Another optimizer's state must already exist, or its first step would replace it
        // (traceTrainStep then refuses, naming the state).
      }
    }
  });
}

// ---- shared with kiln.compileTrainStep ----

/** Adagrad and RMSprop count steps in numbers outside the graph: they cannot be compiled. */
export function checkCompilableOptimizer(optimizer: Optimizer<any>, who: string): void {
  if (optimizer instanceof Adagrad || optimizer instanceof RMSprop) {
    throw new Error(`${who}: ${optimizer.constructor.name} keeps its step count as a number outside the graph; compiled steps support SGD, Adam and AdamW`);
  }
}

/** One training step, as eager code: zeroGrad, loss, backward, optimizer step; returns the loss. */
export function trainStepBody(lossOf: (...args: unknown[]) => Tensor, optimizer: Optimizer<any>): (...args: unknown[]) => Tensor {
  return (...args: unknown[]): Tensor => {
    optimizer.zeroGrad();
    const loss = lossOf(...args);
    loss.backward();
    optimizer.step();
    return loss;
  };
}

/**
 * Traces `stepBody(...args)`: its outputs are the loss and (with `withGrads`) the gradients of the
 * parameters that got one (`gradParams`, in the optimizer's order). The parameters' `.grad` are
 * restored afterwards; state the optimizer replaced instead of updating in place is refused.
 */
export function traceTrainStep(stepBody: (...args: unknown[]) => Tensor, optimizer: Optimizer<any>, args: unknown[], names: [Tensor, string][], who: string, withGrads = true): { trace: Trace; gradParams: Tensor[] } {
  const ps = optimizer.paramGroups.flatMap((g) => g.params);
  const savedGrads = ps.map((p) => p.grad);
  let gradParams: Tensor[] = [];
  try {
    const trace = traceFunction(stepBody, args, {
      names,
      body: (_tracer, loss) => {
        gradParams = ps.filter((p) => p.grad && p.grad._symbol !== undefined);
        return withGrads ? [loss, ...gradParams.map((p) => p.grad)] : [loss];
      },
    });
    for (const [p, state] of optimizer.state) {
      for (const [k, v] of Object.entries(state)) {
        if (v instanceof Tensor && v._symbol !== undefined) {
          throw new Error(`${who}: ${optimizer.constructor.name} replaced its state '${k}' of a parameter of shape [${p.shape.join(', ')}] during the step instead of updating it in place`);
        }
      }
    }
    return { trace, gradParams };
  } finally {
    ps.forEach((p, k) => (p.grad = savedGrads[k]));
  }
}

// ---- helpers ----

function namesOf(module: Module): [Tensor, string][] {
  return [...module.namedParameters(), ...module.namedBuffers()].map(([n, t]) => [t as Tensor, n]);
}

function refuseDynamic<R>(name: string, fn: () => R): R {
  try {
    return fn();
  } catch (e) {
    if (e instanceof DynamicTraceError) throw new Error(`kiln bundle: ${name} cannot be compiled to one graph: it is dynamic (${e.message})`);
    throw e;
  }
}

function finish(trace: Trace, args: readonly Tensor[], opts: { fuse?: boolean }): ExportedPlan {
  const g: Graph = optimize(trace.graph, { fuse: opts.fuse });
  const captures = trace.tracer.captures;
  const device = args[0]?.device ?? captures[0]?.device ?? 'cpu';
  const plan = buildPlan(g, device);
  // Capture names: the module's (and the optimizer state's) names, which the tracer gave the capture
  // inputs, made unique; anything else the function read (a tensor it closed over) is `capture<k>`.
  const used = new Set<string>();
  const unique = (n: string) => {
    let u = n;
    for (let k = 1; used.has(u); k++) u = `${n}_${k}`;
    used.add(u);
    return u;
  };
  const captureInputs = g.inputs.filter((i) => i.kind === 'capture');
  const named = captures.map((tensor, k) => ({ name: unique(captureInputs[k]?.name ?? `capture${k}`), tensor }));
  let c = 0;
  const inputs = g.inputs.map((i): ExportedInput => {
    const v = g.value(i.value);
    const name = i.kind === 'capture' ? named[c++].name : i.name;
    return { name, kind: i.kind, shape: [...v.shape], dtype: v.dtype };
  });
  return {
    plan,
    inputNames: inputs.map((i) => i.name),
    captures: named,
    kernels: plan.steps.length,
    peakBytes: plan.peakBytes,
    graphText: printGraph(g),
    inputs,
    template: trace.template,
  };
}
