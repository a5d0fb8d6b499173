// Calling a module: forward pre-hooks, forward, forward hooks, and the wiring of full backward
// hooks (identity autograd Functions around the inputs and outputs, as PyTorch's BackwardHook).
import { isGradEnabled } from '../autograd/grad-mode.js';
import { Function, type Context } from '../autograd/function.js';
import { moduleStack, noteModulePath } from '../dynamic.js';
import { Tensor } from '../tensor.js';
import type { Module } from './module.js';

type AnyHook = (...args: any[]) => unknown;
type Kind = 'forwardPre' | 'forward' | 'backward';

export interface HookRegistry {
  readonly forwardPre: Map<number, AnyHook>;
  readonly forward: Map<number, AnyHook>;
  readonly backward: Map<number, AnyHook>;
  add(kind: Kind, hook: AnyHook): { remove(): void };
}

let nextId = 0;

/** Compiled forwards standing in for modules' own, while a dynamic model runs with its submodules compiled (a graph break). */
let overrides: Map<Module, (...args: unknown[]) => unknown> | undefined;

export function setModuleOverrides(map: Map<Module, (...args: unknown[]) => unknown> | undefined) {
  const prev = overrides;
  overrides = map;
  return prev;
}

export function newHookRegistry(): HookRegistry {
  const reg = {
    forwardPre: new Map<number, AnyHook>(),
    forward: new Map<number, AnyHook>(),
    backward: new Map<number, AnyHook>(),
    add(kind: Kind, hook: AnyHook) {
      const id = nextId++;
      reg[kind].set(id, hook);
      return { remove: () => void reg[kind].delete(id) };
    },
  };
  return reg;
}

/** Identity whose backward reports the gradient flowing through it. */
class GradTap extends Function {
  static override forward(ctx: Context, x: Tensor, onGrad: (g: Tensor) => Tensor | null | void): Tensor {
    ctx.onGrad = onGrad;
    return x;
  }
  static override backward(ctx: Context, g: Tensor): Tensor | null {
    const r = (ctx.onGrad as (g: Tensor) => Tensor | null | void)(g);
    return r === undefined ? g : r;
  }
}

export function callModule(module: Module, args: unknown[]): unknown {
  const hooks = module._hooks;
  for (const hook of hooks.forwardPre.values()) {
    const r = hook(module, args);
    if (r !== undefined) args = Array.isArray(r) ? r : [r];
  }
  const backward = hooks.backward.size > 0 && isGradEnabled() ? wireBackwardHooks(module, args) : undefined;
  if (backward) args = backward.inputs;
  moduleStack.push(module.constructor.name);
  let output: unknown;
  try {
    const compiled = overrides?.get(module);
    output = compiled ? compiled(...args) : module.forward(...args);
  } catch (e) {
    noteModulePath(e);
    throw e;
  } finally {
    moduleStack.pop();
  }
  for (const hook of hooks.forward.values()) {
    const r = hook(module, args, output);
    if (r !== undefined) output = r;
  }
  return backward ? backward.wrapOutput(output) : output;
}

/**
 * Full backward hooks see (gradInput, gradOutput) once the gradients of the module's tensor inputs
 * are known. Inputs that need no gradient report null, as in PyTorch. The hook may return a
 * replacement gradInput.
 */
function wireBackwardHooks(module: Module, args: unknown[]) {
  const tensorArgs = args.map((a, i) => ({ a, i })).filter((x): x is { a: Tensor; i: number } => x.a instanceof Tensor);
  const needing = tensorArgs.filter(({ a }) => a.requiresGrad);
  let gradOutput: (Tensor | null)[] = [];
  const gradInput: (Tensor | null)[] = tensorArgs.map(() => null);
  let pending = needing.length;
  const runHooks = (): (Tensor | null)[] | undefined => {
    let replaced: (Tensor | null)[] | undefined;
    for (const hook of module._hooks.backward.values()) {
      const r = hook(module, replaced ?? gradInput, gradOutput) as (Tensor | null)[] | undefined;
      if (r !== undefined) replaced = r;
    }
    return replaced;
  };
  const inputs = args.map((a, i) => {
    const slot = tensorArgs.findIndex((t) => t.i === i);
    if (!(a instanceof Tensor) || !a.requiresGrad) return a;
    return GradTap.apply(a, (g: Tensor) => {
      gradInput[slot] = g;
      pending--;
      if (pending > 0) return undefined;
      const replaced = runHooks();
      return replaced ? replaced[slot] : undefined;
    });
  });
  const wrapOutput = (output: unknown): unknown => {
    const outs = Array.isArray(output) ? output : [output];
    gradOutput = outs.map(() => null);
    const wrapped = outs.map((o, k) =>
      o instanceof Tensor && o.requiresGrad
        ? GradTap.apply(o, (g: Tensor) => {
            gradOutput[k] = g;
            if (needing.length === 0) runHooks();
          })
        : o,
    );
    return Array.isArray(output) ? wrapped : wrapped[0];
  };
  return { inputs, wrapOutput };
}
