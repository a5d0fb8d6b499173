// Containers: Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict.
import type { Tensor } from '../tensor.js';
import { Module, registeredChildren } from './module.js';
import { Parameter } from './parameter.js';

type Named<T> = Record<string, T> | Map<string, T>;

function entriesOf<T>(named: Named<T>): [string, T][] {
  return named instanceof Map ? [...named] : Object.entries(named);
}

/** Modules applied in order: `new Sequential(a, b, c)` or, with names, `new Sequential({ fc1: a, act: b })`. */
export class Sequential extends Module {
  constructor(...modules: Module[] | [Named<Module>]) {
    super();
    const first = modules[0];
    if (modules.length === 1 && !(first instanceof Module) && typeof first === 'object') {
      for (const [name, m] of entriesOf(first as Named<Module>)) this.addModule(name, m);
    } else {
      (modules as Module[]).forEach((m, i) => this.addModule(String(i), m));
    }
  }
  override forward(input: any): any {
    let x = input;
    for (const m of this.children()) x = m(x);
    return x;
  }
  override get length(): number {
    return this.children().length;
  }
  /** The i-th module (negative counts from the end). */
  at(i: number): Module {
    const kids = this.children();
    const m = kids[i < 0 ? i + kids.length : i];
    if (!m) throw new RangeError(`index ${i} is out of range for a Sequential of length ${kids.length}`);
    return m;
  }
  append(m: Module): this {
    this.addModule(String(this.children().length), m);
    return this;
  }
  [Symbol.iterator](): Iterator<Module> {
    return this.children()[Symbol.iterator]();
  }
}

/** A list of modules, registered as `0`, `1`, ... (no forward of its own). */
export class ModuleList extends Module {
  constructor(modules: Iterable<Module> = []) {
    super();
    for (const m of modules) this.append(m);
  }
  override get length(): number {
    return this.children().length;
  }
  at(i: number): Module {
    const kids = this.children();
    const m = kids[i < 0 ? i + kids.length : i];
    if (!m) throw new RangeError(`index ${i} is out of range for a ModuleList of length ${kids.length}`);
    return m;
  }
  append(m: Module): this {
    this.addModule(String(this.length), m);
    return this;
  }
  extend(ms: Iterable<Module>): this {
    for (const m of ms) this.append(m);
    return this;
  }
  [Symbol.iterator](): Iterator<Module> {
    return this.children()[Symbol.iterator]();
  }
}

/** Modules by name; read them with `get(name)`. */
export class ModuleDict extends Module {
  private readonly order: string[];
  constructor(modules: Named<Module> = {}) {
    super();
    this.order = [];
    for (const [k, m] of entriesOf(modules)) this.set(k, m);
  }
  get(key: string): Module | undefined {
    return registeredChildren(this).get(key) ?? undefined;
  }
  set(key: string, m: Module): this {
    this.addModule(key, m);
    if (!this.order.includes(key)) this.order.push(key);
    return this;
  }
  has(key: string): boolean {
    return this.order.includes(key);
  }
  keys(): string[] {
    return [...this.order];
  }
  values(): Module[] {
    return this.order.map((k) => this.get(k)!);
  }
  entries(): [string, Module][] {
    return this.order.map((k) => [k, this.get(k)!]);
  }
  get size(): number {
    return this.order.length;
  }
}

/** A list of parameters, registered as `0`, `1`, ... */
export class ParameterList extends Module {
  private count: number;
  constructor(params: Iterable<Tensor> = []) {
    super();
    this.count = 0;
    for (const p of params) this.append(p);
  }
  append(p: Tensor): this {
    this.registerParameter(String(this.count++), p instanceof Parameter ? p : new Parameter(p));
    return this;
  }
  at(i: number): Parameter {
    const ps = this.parameters({ recurse: false });
    return ps[i < 0 ? i + ps.length : i];
  }
  override get length(): number {
    return this.count;
  }
  [Symbol.iterator](): Iterator<Parameter> {
    return this.parameters({ recurse: false })[Symbol.iterator]();
  }
  override extraRepr(): string {
    return this.namedParameters({ recurse: false }).map(([n, p]) => `(${n}): Parameter containing: [${p.dtype} of size ${p.shape.join('x')}]`).join('\n');
  }
}

/** Parameters by name; read them with `get(name)`. */
export class ParameterDict extends Module {
  constructor(params: Named<Tensor> = {}) {
    super();
    for (const [k, p] of entriesOf(params)) this.set(k, p);
  }
  get(key: string): Parameter | undefined {
    return this.namedParameters({ recurse: false }).find(([n]) => n === key)?.[1];
  }
  set(key: string, p: Tensor): this {
    this.registerParameter(key, p instanceof Parameter ? p : new Parameter(p));
    return this;
  }
  keys(): string[] {
    return this.namedParameters({ recurse: false }).map(([n]) => n);
  }
  override extraRepr(): string {
    return this.namedParameters({ recurse: false }).map(([n, p]) => `(${n}): Parameter containing: [${p.dtype} of size ${p.shape.join('x')}]`).join('\n');
  }
}
