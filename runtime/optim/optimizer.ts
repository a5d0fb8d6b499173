// The Optimizer base class (torch.optim.Optimizer): parameter groups with their options, per-
// parameter state, zeroGrad, step, and stateDict / loadStateDict in PyTorch's layout, where
// parameters are named by their position across all groups.
import { isFloating, shapesEqual, fmtShape } from '../../ir/index.js';
import { enableGrad, noGrad } from '../autograd/grad-mode.js';
import { releaseGrad } from '../autograd/engine.js';
import { keep, Tensor } from '../tensor.js';
import { adoptLongLived } from '../memory.js';

/** What an optimizer keeps per parameter (PyTorch's key names: `step`, `exp_avg`, `momentum_buffer`, ...). */
export type StateValue = Tensor | number | boolean | null;
export type ParamState = Record<string, StateValue>;

/** Every optimizer has a learning rate; the schedulers rely on it (and set `initialLr`). */
export interface BaseOptions {
  lr: number;
}

/** A parameter group as given by the user: some params and any options that override the defaults. */
export type ParamGroupInput<O> = { params: Iterable<Tensor> | Tensor } & Partial<O>;

/** A parameter group as held: every option filled in. */
export type ParamGroup<O> = O & { params: Tensor[]; initialLr?: number };

export interface OptimizerStateDict {
  state: Record<number, ParamState>;
  param_groups: (Record<string, unknown> & { params: number[] })[];
}

export abstract class Optimizer<O extends BaseOptions = BaseOptions> {
  readonly defaults: O;
  paramGroups: ParamGroup<O>[] = [];
  state = new Map<Tensor, ParamState>();

  constructor(params: Iterable<Tensor> | Iterable<ParamGroupInput<O>>, defaults: O) {
    if (params instanceof Tensor) {
      throw new TypeError('params argument given to the optimizer should be an iterable of Tensors or parameter groups, but got a Tensor');
    }
    this.defaults = defaults;
    const list = [...(params as Iterable<Tensor | ParamGroupInput<O>>)];
    if (list.length === 0) throw new Error('optimizer got an empty parameter list');
    const groups = list[0] instanceof Tensor ? [{ params: list as Tensor[] } as unknown as ParamGroupInput<O>] : (list as ParamGroupInput<O>[]);
    for (const g of groups) this.addParamGroup(g);
  }

  /** Adds a group of parameters with its own options (the defaults fill the rest). */
  addParamGroup(group: ParamGroupInput<O>): void {
    if (typeof group !== 'object' || group === null || !('params' in group)) {
      throw new TypeError('addParamGroup: a parameter group must be an object with a `params` field');
    }
    // Any iterable will do: unlike Python's, a JavaScript Set keeps insertion order.
    const raw = group.params;
    const params = raw instanceof Tensor ? [raw] : [...raw];
    for (const p of params) {
      if (!(p instanceof Tensor)) throw new TypeError(`optimizer can only optimize Tensors, but one of the params is ${describe(p)}`);
      if (!p.isLeaf && !p._retainsGrad) throw new Error("can't optimize a non-leaf Tensor");
    }
    // Unlike PyTorch (a warning), a duplicate is an error: it would be updated twice per step.
    if (new Set(params).size !== params.length) throw new Error('optimizer contains a parameter group with duplicate parameters');
    for (const g of this.paramGroups) {
      if (g.params.some((p) => params.includes(p))) throw new Error('some parameters appear in more than one parameter group');
    }
    const options: Record<string, unknown> = { ...(this.defaults as Record<string, unknown>) };
    for (const [k, v] of Object.entries(group)) if (k !== 'params' && v !== undefined) options[k] = v;
    this.paramGroups.push({ ...options, params } as ParamGroup<O>);
    // The optimizer updates them in place every step, and the model reads them every step: where
    // the device keeps long-lived data (the CPU's Wasm heap), its kernels use them in place
    // (the eager TwoLayerNet loop of bench/peers, three alternating runs without and with it:
    // 1.65-1.66 -> 1.56-1.66 ms/step; with its fixed batch adopted too, ~8 % in one process).
    adoptLongLived(params);
  }

  /** Resets the gradients: to null (PyTorch 2's default), or zeroed in place with `setToNone = false`. */
  zeroGrad(setToNone = true): void {
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        const g = p.grad;
        if (g === null) continue;
        if (setToNone) {
          releaseGrad(p);
          continue;
        }
        if (g.gradFn) g.detach_();
        else g.requiresGrad_(false);
        noGrad(() => g.zero_());
      }
    }
  }

  /**
   * One update of every parameter that has a gradient (a null `.grad` is skipped, its state
   * untouched). `closure`, if given, recomputes the loss with grad enabled and is returned.
   */
  step<R = undefined>(closure?: () => R): R | undefined {
    let loss: R | undefined;
    if (closure) {
      loss = enableGrad(closure);
      if (loss instanceof Promise) throw new TypeError('step: the closure must be synchronous (compute the loss and call backward without awaiting)');
    }
    noGrad(() => {
      for (const group of this.paramGroups) this.updateGroup(group);
    });
    // State created during the step (moments, momentum buffers) outlives any kiln.tidy around it.
    for (const state of this.state.values()) for (const v of Object.values(state)) if (v instanceof Tensor) keep(v);
    return loss;
  }

  /** Updates one group's parameters in place (runs inside noGrad). */
  protected abstract updateGroup(group: ParamGroup<O>): void;

  /** The state of `p`, created empty on first use (PyTorch's defaultdict). */
  protected stateOf(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (!s) {
      s = {};
      this.state.set(p, s);
    }
    return s;
  }

  /** `{ state: { [paramIndex]: {...} }, param_groups: [{ ...options, params: [indices] }] }`; tensors are cloned. */
  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    const param_groups = this.paramGroups.map((g) => {
      const { params, ...options } = g;
      return { ...copyOptions(options), params: params.map((p) => (index.has(p) ? index.get(p)! : index.set(p, index.size).get(p)!)) };
    });
    const state: Record<number, ParamState> = {};
    for (const [p, s] of this.state) {
      const i = index.get(p);
      if (i !== undefined) state[i] = copyState(s, null);
    }
    return { state, param_groups };
  }

  /** Restores a `stateDict()`: options per group, and state cast to each parameter's dtype and device. */
  loadStateDict(sd: OptimizerStateDict): void {
    if (typeof sd !== 'object' || sd === null || typeof sd.state !== 'object' || sd.state === null || !Array.isArray(sd.param_groups)) {
      throw new TypeError('loadStateDict: expected an object with `state` and `param_groups`, as returned by stateDict()');
    }
    const saved = sd.param_groups;
    if (saved.length !== this.paramGroups.length) {
      throw new Error(`loadStateDict: loaded state dict has ${saved.length} parameter groups, but the optimizer has ${this.paramGroups.length}`);
    }
    const byIndex = new Map<number, Tensor>();
    saved.forEach((sg, gi) => {
      const mine = this.paramGroups[gi].params;
      if (!Array.isArray(sg.params) || sg.params.length !== mine.length) {
        throw new Error(`loadStateDict: parameter group ${gi} of the loaded state dict has ${Array.isArray(sg.params) ? sg.params.length : 'no'} parameters, but the optimizer's group ${gi} has ${mine.length}`);
      }
      sg.params.forEach((id, j) => byIndex.set(id, mine[j]));
    });
    // Build everything first so that a bad entry leaves the optimizer as it was.
    const state = new Map<Tensor, ParamState>();
    for (const [key, s] of Object.entries(sd.state)) {
      const p = byIndex.get(Number(key));
      if (!p) throw new Error(`loadStateDict: state refers to parameter ${key}, which no parameter group lists`);
      for (const [k, v] of Object.entries(s)) {
        if (v instanceof Tensor && k !== 'step' && !shapesEqual(v.shape, p.shape)) {
          throw new Error(`loadStateDict: state '${k}' of parameter ${key} has shape ${fmtShape(v.shape)}, but the parameter has shape ${fmtShape(p.shape)}`);
        }
      }
      state.set(p, copyState(s, p));
    }
    const groups = saved.map((sg, gi) => {
      const { params: _ignored, ...options } = sg;
      return { ...copyOptions(options), params: this.paramGroups[gi].params } as ParamGroup<O>;
    });
    this.state = state;
    this.paramGroups = groups;
  }
}

/** A deep copy of one parameter's state; floating tensors follow `like`'s dtype and device (except `step`, as in PyTorch). */
function copyState(s: ParamState, like: Tensor | null): ParamState {
  const out: ParamState = {};
  for (const [k, v] of Object.entries(s)) {
    if (v instanceof Tensor) {
      out[k] = noGrad(() => {
        let t = v.detach();
        if (like && k !== 'step') t = t.to({ dtype: isFloating(like.dtype) && isFloating(t.dtype) ? like.dtype : t.dtype, device: like.device });
        return t.clone();
      });
    } else out[k] = v;
  }
  return out;
}

function copyOptions(options: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) out[k] = Array.isArray(v) ? [...v] : v;
  return out;
}

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/** Checks a hyper-parameter the way PyTorch's constructors do (`Invalid learning rate: -1`). */
export function checkOption(ok: boolean, what: string, value: unknown): void {
  if (!ok) throw new RangeError(`Invalid ${what}: ${Array.isArray(value) ? `[${value.join(', ')}]` : String(value)}`);
}

/** The options the user actually set (an explicit `undefined` keeps the default). */
export function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
