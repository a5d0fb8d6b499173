// nn.Module: the base class of every layer and model. Assigning a Parameter, a Module or (for a
// registered name) a buffer to a module's attribute registers it, as in PyTorch; modules are
// callable (`model(x)`), running hooks around `forward` (module-call.ts).
import { DTYPES, fmtShape, shapesEqual, type DType } from '../../ir/index.js';
import { releaseGrad } from '../autograd/engine.js';
import { noGrad } from '../autograd/grad-mode.js';
import { Tensor } from '../tensor.js';
import { callModule, type HookRegistry, newHookRegistry } from './module-call.js';
import { moduleToString } from './module-repr.js';
import { Parameter } from './parameter.js';

export type StateDict = Record<string, Tensor>;

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

// Every module's call signature is its own forward's: `model(x)` type-checks like `model.forward(x)`.
export interface Module {
  (...args: Parameters<this['forward']>): ReturnType<this['forward']>;
}

/** Internal state, kept off the enumerable attributes a user sees. */
interface ModuleState {
  training: boolean;
  parameters: Map<string, Parameter | null>;
  buffers: Map<string, Tensor | null>;
  nonPersistent: Set<string>;
  modules: Map<string, Module | null>;
  hooks: HookRegistry;
}

const STATE = Symbol('kiln.module');

function stateOf(m: Module): ModuleState {
  return (m as unknown as { [STATE]: ModuleState })[STATE];
}

/** Registers `value` under `name` if it is a parameter, module or registered buffer; checks PyTorch's assignment rules. */
function register(target: Module, name: string, value: unknown): void {
  const s = stateOf(target);
  if (!s) return;
  if (value instanceof Parameter) {
    s.modules.delete(name);
    s.buffers.delete(name);
    s.parameters.set(name, value);
  } else if (value instanceof Module) {
    s.parameters.delete(name);
    s.buffers.delete(name);
    s.modules.set(name, value);
  } else if (s.parameters.has(name)) {
    if (value !== null && value !== undefined) {
      throw new TypeError(`cannot assign ${describe(value)} as parameter '${name}' (nn.Parameter or null expected)`);
    }
    s.parameters.set(name, null);
  } else if (s.modules.has(name)) {
    if (value !== null && value !== undefined) throw new TypeError(`cannot assign ${describe(value)} as child module '${name}' (nn.Module or null expected)`);
    s.modules.set(name, null);
  } else if (s.buffers.has(name)) {
    if (value !== null && value !== undefined && !(value instanceof Tensor)) {
      throw new TypeError(`cannot assign ${describe(value)} as buffer '${name}' (Tensor or null expected)`);
    }
    s.buffers.set(name, (value as Tensor | null | undefined) ?? null);
  }
}

function isRegistered(target: Module, name: string): boolean {
  const s = stateOf(target);
  return !!s && (s.parameters.get(name) ?? s.buffers.get(name) ?? s.modules.get(name)) != null;
}

function describe(v: unknown): string {
  return v instanceof Tensor ? 'a Tensor' : typeof v;
}

const handler: ProxyHandler<Module> = {
  set(target, key, value, receiver) {
    if (typeof key === 'string') register(target, key, value);
    return Reflect.set(target, key, value, receiver);
  },
  defineProperty(target, key, desc) {
    // A subclass's field declaration (`weight!: Parameter`) redefines the name as undefined after
    // the base constructor registered it; keep the registered value.
    if (typeof key === 'string' && desc.value === undefined && isRegistered(target, key)) return true;
    if (typeof key === 'string' && 'value' in desc) register(target, key, desc.value);
    return Reflect.defineProperty(target, key, desc);
  },
  deleteProperty(target, key) {
    const s = stateOf(target);
    if (typeof key === 'string' && s) {
      s.parameters.delete(key);
      s.buffers.delete(key);
      s.modules.delete(key);
    }
    return Reflect.deleteProperty(target, key);
  },
};

export class Module {
  declare [STATE]: ModuleState;

  constructor() {
    // A module is a function object (so `model(x)` works) behind a Proxy (so attribute assignment
    // registers). No field initialisers here: they would land on the discarded `this`.
    let self: Module;
    const callable = ((...args: unknown[]) => callModule(self, args)) as unknown as Module;
    delete (callable as unknown as { name?: string }).name;
    delete (callable as unknown as { length?: number }).length;
    Object.setPrototypeOf(callable, new.target.prototype);
    Object.defineProperty(callable, STATE, {
      value: { training: true, parameters: new Map(), buffers: new Map(), nonPersistent: new Set(), modules: new Map(), hooks: newHookRegistry() },
      enumerable: false,
    });
    self = new Proxy(callable, handler);
    return self;
  }

  /** What the module computes; subclasses override it. */
  forward(..._args: any[]): any {
    throw new Error(`Module [${this.constructor.name}] is missing the required "forward" function`);
  }

  get training(): boolean {
    return stateOf(this).training;
  }

  /** @internal the hooks run around forward (module-call.ts). */
  get _hooks(): HookRegistry {
    return stateOf(this).hooks;
  }

  // ---- registration ----
  registerParameter(name: string, param: Parameter | null): void {
    checkName(this, name, 'parameter');
    if (param !== null && !(param instanceof Parameter)) throw new TypeError(`cannot assign ${describe(param)} as parameter '${name}' (nn.Parameter or null expected)`);
    stateOf(this).parameters.set(name, param);
    Reflect.set(this, name, param);
  }
  registerBuffer(name: string, tensor: Tensor | null, opts: { persistent?: boolean } = {}): void {
    checkName(this, name, 'buffer');
    if (tensor !== null && !(tensor instanceof Tensor)) throw new TypeError(`cannot assign ${describe(tensor)} as buffer '${name}' (Tensor or null expected)`);
    const s = stateOf(this);
    s.buffers.set(name, tensor);
    if (opts.persistent === false) s.nonPersistent.add(name);
    else s.nonPersistent.delete(name);
    (this as unknown as Record<string, unknown>)[name] = tensor;
  }
  addModule(name: string, module: Module | null): void {
    checkName(this, name, 'module');
    if (module !== null && !(module instanceof Module)) throw new TypeError(`${describe(module)} is not a Module subclass`);
    // A name that is also a method (a ModuleDict key 'train') is registered but does not shadow the method.
    if (typeof (Object.getPrototypeOf(this) as Record<string, unknown>)[name] !== 'function') (this as unknown as Record<string, unknown>)[name] = module;
    stateOf(this).modules.set(name, module);
  }
  registerModule(name: string, module: Module | null): void {
    this.addModule(name, module);
  }

  // ---- traversal ----
  *namedModules(memo: Set<Module> = new Set(), prefix = ''): Generator<[string, Module]> {
    if (memo.has(this)) return;
    memo.add(this);
    yield [prefix, this];
    for (const [name, m] of stateOf(this).modules) {
      if (m) yield* m.namedModules(memo, prefix ? `${prefix}.${name}` : name);
    }
  }
  modules(): Module[] {
    return [...this.namedModules()].map(([, m]) => m);
  }
  namedChildren(): [string, Module][] {
    const seen = new Set<Module>();
    const out: [string, Module][] = [];
    for (const [name, m] of stateOf(this).modules) {
      if (m && !seen.has(m)) { seen.add(m); out.push([name, m]); }
    }
    return out;
  }
  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }
  /** Parameters with their dotted names; a parameter shared by two modules is listed once. */
  namedParameters(opts: { prefix?: string; recurse?: boolean } = {}): [string, Parameter][] {
    return this.namedMembers((s) => s.parameters, opts) as [string, Parameter][];
  }
  parameters(opts: { recurse?: boolean } = {}): Parameter[] {
    return this.namedParameters(opts).map(([, p]) => p);
  }
  namedBuffers(opts: { prefix?: string; recurse?: boolean } = {}): [string, Tensor][] {
    return this.namedMembers((s) => s.buffers, opts);
  }
  buffers(opts: { recurse?: boolean } = {}): Tensor[] {
    return this.namedBuffers(opts).map(([, b]) => b);
  }
  private namedMembers(pick: (s: ModuleState) => Map<string, Tensor | null>, opts: { prefix?: string; recurse?: boolean }): [string, Tensor][] {
    const seen = new Set<Tensor>();
    const out: [string, Tensor][] = [];
    const mods = opts.recurse === false ? [['', this] as [string, Module]] : [...this.namedModules(new Set(), opts.prefix ?? '')];
    for (const [modName, m] of mods) {
      for (const [name, t] of pick(stateOf(m))) {
        if (!t || seen.has(t)) continue;
        seen.add(t);
        out.push([modName ? `${modName}.${name}` : name, t]);
      }
    }
    return out;
  }

  // ---- state ----
  /** Parameters and persistent buffers by PyTorch's dotted names (detached; every occurrence of a shared tensor is listed). */
  stateDict(opts: { prefix?: string; keepVars?: boolean } = {}): StateDict {
    const out: StateDict = {};
    const visit = (m: Module, prefix: string) => {
      const s = stateOf(m);
      for (const [name, p] of s.parameters) if (p) out[prefix + name] = opts.keepVars ? p : p.detach();
      for (const [name, b] of s.buffers) if (b && !s.nonPersistent.has(name)) out[prefix + name] = opts.keepVars ? b : b.detach();
      for (const [name, c] of s.modules) if (c) visit(c, `${prefix}${name}.`);
    };
    visit(this, opts.prefix ?? '');
    return out;
  }

  /**
   * Copies `stateDict`'s tensors into this module's parameters and buffers. Everything is checked
   * first (missing and unexpected keys under `strict`, shapes always), so an error changes nothing.
   */
  loadStateDict(stateDict: StateDict, opts: { strict?: boolean } = {}): LoadResult {
    const strict = opts.strict ?? true;
    const own = this.stateDict({ keepVars: true });
    const missingKeys = Object.keys(own).filter((k) => !(k in stateDict));
    const unexpectedKeys = Object.keys(stateDict).filter((k) => !(k in own));
    const problems: string[] = [];
    if (strict && missingKeys.length) problems.push(`Missing key(s) in state_dict: ${missingKeys.map((k) => `"${k}"`).join(', ')}.`);
    if (strict && unexpectedKeys.length) problems.push(`Unexpected key(s) in state_dict: ${unexpectedKeys.map((k) => `"${k}"`).join(', ')}.`);
    for (const [k, t] of Object.entries(own)) {
      const src = stateDict[k];
      if (!src) continue;
      if (!(src instanceof Tensor)) problems.push(`value for ${k} is not a Tensor`);
      else if (!shapesEqual(src.shape, t.shape)) {
        problems.push(`size mismatch for ${k}: copying a param with shape ${fmtShape(src.shape)} from checkpoint, the shape in current model is ${fmtShape(t.shape)}.`);
      }
    }
    if (problems.length) throw new Error(`Error(s) in loading state_dict for ${this.constructor.name}:\n\t${problems.join('\n\t')}`);
    noGrad(() => {
      for (const [k, t] of Object.entries(own)) if (stateDict[k]) t.copy_(stateDict[k]);
    });
    return { missingKeys, unexpectedKeys };
  }

  // ---- modes and bulk changes ----
  train(mode = true): this {
    for (const m of this.modules()) stateOf(m).training = mode;
    return this;
  }
  eval(): this {
    return this.train(false);
  }
  /** Calls `fn` on every submodule (children first) and then on this module. */
  apply(fn: (m: Module) => void): this {
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }
  /** Resets gradients; by default to null (PyTorch 2), or to zeros with `setToNone: false`. */
  zeroGrad(opts: { setToNone?: boolean } | boolean = {}): void {
    const setToNone = typeof opts === 'boolean' ? opts : opts.setToNone ?? true;
    for (const p of this.parameters()) {
      if (!p.grad) continue;
      if (setToNone) releaseGrad(p);
      else noGrad(() => p.grad!.zero_());
    }
  }
  requiresGrad_(flag = true): this {
    for (const p of this.parameters()) p.requiresGrad_(flag);
    return this;
  }
  /** Moves or casts every parameter and buffer (floating ones only, for a dtype), replacing them with converted tensors. */
  to(target: DType | string | { dtype?: DType; device?: string }): this {
    const spec = typeof target === 'string' ? ((DTYPES as readonly string[]).includes(target) ? { dtype: target as DType } : { device: target }) : target;
    for (const m of this.modules()) {
      const s = stateOf(m);
      const convert = (t: Tensor) => noGrad(() => t.to({ device: spec.device, dtype: spec.dtype && t.isFloatingPoint() ? spec.dtype : undefined }));
      for (const [name, p] of s.parameters) if (p) (m as unknown as Record<string, unknown>)[name] = new Parameter(convert(p), p.requiresGrad);
      for (const [name, b] of s.buffers) if (b) (m as unknown as Record<string, unknown>)[name] = convert(b);
    }
    return this;
  }
  float(): this { return this.to('float32'); }
  double(): this { return this.to('float64'); }
  half(): this { return this.to('float16'); }

  // ---- hooks ----
  registerForwardPreHook(hook: (module: this, inputs: unknown[]) => unknown): { remove(): void } {
    return this._hooks.add('forwardPre', hook as never);
  }
  registerForwardHook(hook: (module: this, inputs: unknown[], output: any) => unknown): { remove(): void } {
    return this._hooks.add('forward', hook as never);
  }
  /** `hook(module, gradInput, gradOutput)` when the gradients of the module's inputs are computed; may return replacement gradInput. */
  registerFullBackwardHook(hook: (module: this, gradInput: (Tensor | null)[], gradOutput: (Tensor | null)[]) => (Tensor | null)[] | void): { remove(): void } {
    return this._hooks.add('backward', hook as never);
  }

  // ---- printing ----
  /** The text inside the parentheses of this module's line in `toString()` (override in layers). */
  extraRepr(): string {
    return '';
  }
  toString(): string {
    return moduleToString(this);
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

function checkName(m: Module, name: string, what: string): void {
  if (typeof name !== 'string' || name === '' || name.includes('.')) {
    throw new Error(`${what} name must be a non-empty string without '.', got ${JSON.stringify(name)}`);
  }
  const s = stateOf(m);
  const taken = (what !== 'parameter' && s.parameters.has(name)) || (what !== 'buffer' && s.buffers.has(name)) || (what !== 'module' && s.modules.has(name));
  if (taken) throw new Error(`attribute '${name}' already exists on ${m.constructor.name}`);
}

/** @internal */
export function registeredChildren(m: Module): Map<string, Module | null> {
  return stateOf(m).modules;
}
