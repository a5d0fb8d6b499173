// Static analysis of a model file (the model-file convention of runtime/model-spec.ts) with ts-morph,
// before anything runs: which classes are nn.Modules and how they are built, which constructs make a
// forward dynamic (so that `kiln compile` will break the graph there), what the file exports, and
// what is wrong with it.
//
// Speed: one ts-morph Project per process (kept between calls), made with the repo's tsconfig.json
// but without `types` and DOM libs; only the analysed file is added. 'kiln' resolves to the
// package's sources (index.ts, or the built dist/index.d.ts) through a `paths` entry, so files
// outside the repo (temp files in tests) get the same types. The first call pays for loading
// Kiln's sources into the type checker (about 0.7 s); later calls reuse the program (~50 ms).
// Kiln's own sources are not re-read between calls in one process.
//
// Whether a value is a tensor comes from the type checker (its type is `Tensor` from Kiln, or a
// subclass such as Parameter). When 'kiln' cannot be resolved (types come back as `any`), a
// syntactic heuristic takes over: a variable declared `: Tensor`, or a call of a known tensor method
// (see TENSOR_METHODS) is a tensor.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Node,
  Project,
  SyntaxKind,
  ts,
  type ClassDeclaration,
  type ParameterDeclaration,
  type SourceFile,
  type Symbol as MorphSymbol,
  type Type,
} from 'ts-morph';

// ---- the report ----

export interface ParamInfo {
  readonly name: string;
  /** The annotation's text, or the checker's inferred type when there is no annotation. */
  readonly type: string | undefined;
  /** The default value's source text. */
  readonly default: string | undefined;
  /** `?`, a default value, or a rest parameter. */
  readonly optional: boolean;
  readonly rest?: boolean;
}

export interface ModuleInfo {
  readonly name: string;
  readonly line: number;
  /** The `extends` clause's text (`nn.Module`, or an in-file Module class). */
  readonly base: string;
  readonly exported: boolean;
  /** The constructor's parameters (an in-file base class's when the class has no constructor). */
  readonly constructorParams: readonly ParamInfo[];
  /** forward's parameters (an in-file base class's when inherited); undefined when there is no forward. */
  readonly forwardParams: readonly ParamInfo[] | undefined;
  readonly forwardLine?: number;
}

export type DynamicKind = 'random' | 'value-read' | 'to-number' | 'control-flow';

export interface SourceLocation {
  readonly line: number;
  readonly column: number;
  readonly text: string;
}

export interface DynamicConstruct extends SourceLocation {
  /** The Module class whose forward this makes dynamic. */
  readonly module: string;
  /** The function the construct is in: `DynamicNet.forward`, `DynamicNet.step`, or a file-level function. */
  readonly method: string;
  readonly kind: DynamicKind;
  /** What the construct does, e.g. `draws a random number (Math.random)`. */
  readonly reason: string;
  /** How forward reaches it when it is not in forward itself, e.g. ['this.sampleDepth() (line 23)', 'randomDepth (line 6)']. */
  readonly via: readonly string[];
  /** control-flow only: the dynamic values its condition depends on. */
  readonly causes: readonly SourceLocation[];
  /** random, value-read, to-number: the control flow that depends on it, e.g. 'the number of middleLinear applications depends on it'. */
  readonly effects: readonly string[];
}

export type ModelFileErrorKind = 'syntax' | 'no-module' | 'no-model-spec' | 'module-not-exported';

export interface ModelFileError {
  readonly kind: ModelFileErrorKind;
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
}

export interface ModelFileReport {
  /** The absolute path analysed. */
  readonly file: string;
  /** The path as printed: relative to the working directory when inside it. */
  readonly displayPath: string;
  readonly modules: readonly ModuleInfo[];
  readonly dynamic: readonly DynamicConstruct[];
  readonly exports: { readonly modelSpec: boolean; readonly modules: readonly string[] };
  readonly errors: readonly ModelFileError[];
  /** False when 'kiln' could not be resolved and tensors were recognised syntactically. */
  readonly typesResolved: boolean;
  readonly ms: number;
}

// ---- the project ----

const HERE = dirname(fileURLToPath(import.meta.url));

/** The Kiln package root: the nearest folder above this file whose package.json is named kiln. */
function kilnRoot(): string {
  for (let d = HERE; ; d = dirname(d)) {
    const pj = join(d, 'package.json');
    if (existsSync(pj)) {
      try {
        if (JSON.parse(readFileSync(pj, 'utf8')).name === 'kiln') return d;
      } catch { /* not ours */ }
    }
    if (dirname(d) === d) return resolve(HERE, '..');
  }
}

let shared: { project: Project; root: string; entry: string } | undefined;

function project() {
  if (shared) return shared;
  const root = kilnRoot();
  const entry = existsSync(join(root, "index.ts")) ? join(root, "index.ts") : join(root, "dist", "index.d.ts");
  const tsconfig = join(root, 'tsconfig.json');
  const compilerOptions: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    customConditions: ['kiln-source'],
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    // Node's and WebGPU's types and the DOM lib triple the program's size; the analysis needs none of them.
    types: [],
    lib: ['lib.es2023.d.ts'],
    paths: { kiln: [entry] },
  };
  const project = existsSync(tsconfig)
    ? new Project({ tsConfigFilePath: tsconfig, skipAddingFilesFromTsConfig: true, skipFileDependencyResolution: true, compilerOptions })
    : new Project({ skipFileDependencyResolution: true, compilerOptions });
  shared = { project, root, entry };
  return shared;
}

// ---- the analysis ----

const VALUE_READS = new Set(['item', 'itemSync', 'data', 'dataSync', 'tolist', 'tolistSync']);
// Kiln's own random numbers (rand*, dropout, uniform_) are not flagged: the compiler records them
// as `random` ops that draw fresh values on every call. Only Math.random (a number the trace would
// freeze) and reading tensor values make a forward dynamic.
/** For the syntactic fallback only: methods that return a tensor. */
const TENSOR_METHODS = new Set([
  'sum', 'mean', 'norm', 'var', 'std', 'amax', 'amin', 'max', 'min', 'argmax', 'argmin', 'abs', 'exp', 'log', 'sqrt',
  'add', 'sub', 'mul', 'div', 'pow', 'neg', 'clamp', 'relu', 'sigmoid', 'tanh', 'mm', 'matmul', 'bmm', 'dot', 'mv',
  'view', 'reshape', 'flatten', 'squeeze', 'unsqueeze', 'transpose', 't', 'permute', 'expand', 'select', 'narrow',
  'gt', 'lt', 'ge', 'le', 'eq', 'ne', 'detach', 'clone', 'contiguous', 'softmax', 'logSoftmax', 'prod', 'all', 'any',
]);
const COMPARISONS = new Set([SyntaxKind.LessThanToken, SyntaxKind.GreaterThanToken, SyntaxKind.LessThanEqualsToken, SyntaxKind.GreaterThanEqualsToken]);
const LOOSE_EQUALITY = new Set([SyntaxKind.EqualsEqualsToken, SyntaxKind.ExclamationEqualsToken]);
const ARITHMETIC = new Set([SyntaxKind.MinusToken, SyntaxKind.AsteriskToken, SyntaxKind.SlashToken, SyntaxKind.PercentToken, SyntaxKind.AsteriskAsteriskToken, SyntaxKind.PlusToken]);
const LOGICAL = new Set([SyntaxKind.AmpersandAmpersandToken, SyntaxKind.BarBarToken, SyntaxKind.QuestionQuestionToken]);

type FunctionLike = Node; // a method, function declaration, arrow function, function expression or get accessor

interface Entry {
  node: Node;
  kind: DynamicKind;
  method: string;
  reason: string;
  via: string[];
  causes: Entry[];
  effects: string[];
}

const short = (text: string, max = 80) => {
  const one = text.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
};
const lineOf = (n: Node) => n.getStartLineNumber();
const locOf = (n: Node): { line: number; column: number } => n.getSourceFile().getLineAndColumnAtPos(n.getStart());

function isErrorOrAny(t: Type): boolean {
  return t.isAny() || t.isUnknown() || (t.compilerType as { intrinsicName?: string }).intrinsicName === 'error';
}

/** Kiln's Tensor (or a subclass: Parameter) by the checker: a class named Tensor declared in Kiln's runtime/tensor file. */
function isTensorType(t: Type, depth = 0): boolean {
  if (depth > 8) return false;
  if (t.isUnion()) return t.getUnionTypes().some((u) => !u.isUndefined() && !u.isNull() && isTensorType(u, depth + 1));
  if (t.isIntersection()) return t.getIntersectionTypes().some((u) => isTensorType(u, depth + 1));
  const sym = t.getSymbol();
  if (!sym) return false;
  if (sym.getName() === 'Tensor' && sym.getDeclarations().some((d) => /[\\/]runtime[\\/]tensor(\.d)?\.ts$/.test(d.getSourceFile().getFilePath()))) return true;
  if (t.isClassOrInterface()) return t.getBaseTypes().some((b) => isTensorType(b, depth + 1));
  return false;
}

class FileAnalysis {
  /** Local names bound to Kiln's exports: '' for the namespace, 'nn', 'nn.functional', 'randn', ... */
  readonly kilnNames = new Map<string, string>();
  readonly typesResolved: boolean;
  readonly moduleClasses = new Map<ClassDeclaration, string>();

  constructor(readonly sf: SourceFile, readonly root: string, readonly entry: string) {
    let resolved = true;
    for (const imp of sf.getImportDeclarations()) {
      const spec = imp.getModuleSpecifierValue();
      const target = imp.getModuleSpecifierSourceFile()?.getFilePath();
      const isKiln = spec === 'kiln' || (target !== undefined && resolve(target) === resolve(entry));
      if (!isKiln) continue;
      if (!target) resolved = false;
      const ns = imp.getNamespaceImport();
      if (ns) this.kilnNames.set(ns.getText(), '');
      for (const named of imp.getNamedImports()) this.kilnNames.set(named.getAliasNode()?.getText() ?? named.getName(), named.getName());
    }
    this.typesResolved = resolved;
    // File-level aliases: `const F = nn.functional;`, `const { Module } = nn;`.
    for (let pass = 0; pass < 3; pass++) {
      for (const decl of sf.getVariableDeclarations()) {
        const init = decl.getInitializer();
        const path = init && this.kilnPath(init);
        if (path === undefined) continue;
        const name = decl.getNameNode();
        if (Node.isIdentifier(name)) this.kilnNames.set(name.getText(), path);
        else if (Node.isObjectBindingPattern(name)) {
          for (const el of name.getElements()) {
            const key = el.getPropertyNameNode()?.getText() ?? el.getName();
            this.kilnNames.set(el.getName(), path ? `${path}.${key}` : key);
          }
        }
      }
    }
  }

  /** `kiln.nn.functional.dropout` / `F.dropout` (F = nn.functional) → 'nn.functional.dropout'; undefined when not Kiln's. */
  kilnPath(e: Node): string | undefined {
    if (Node.isParenthesizedExpression(e)) return this.kilnPath(e.getExpression());
    if (Node.isIdentifier(e)) return this.kilnNames.get(e.getText());
    if (Node.isPropertyAccessExpression(e)) {
      const base = this.kilnPath(e.getExpression());
      return base === undefined ? undefined : base ? `${base}.${e.getName()}` : e.getName();
    }
    return undefined;
  }

  isTensor(e: Node): boolean {
    if (Node.isParenthesizedExpression(e) || Node.isAwaitExpression(e) || Node.isNonNullExpression(e)) return this.isTensor(e.getExpression());
    let t: Type;
    try { t = e.getType(); } catch { return false; }
    if (isTensorType(t)) return true;
    if (this.typesResolved && !isErrorOrAny(t)) return false;
    if (!isErrorOrAny(t)) return false;
    // Syntactic fallback (types unresolved).
    if (Node.isIdentifier(e)) {
      return (e.getSymbol()?.getDeclarations() ?? []).some((d) => (Node.isVariableDeclaration(d) || Node.isParameterDeclaration(d) || Node.isPropertyDeclaration(d)) && /\bTensor\b/.test(d.getTypeNode()?.getText() ?? ''));
    }
    if (Node.isCallExpression(e)) {
      const callee = e.getExpression();
      if (Node.isPropertyAccessExpression(callee)) return TENSOR_METHODS.has(callee.getName()) || this.isTensor(callee.getExpression()) && !VALUE_READS.has(callee.getName());
      const path = this.kilnPath(callee);
      return path !== undefined && /^(rand|randn|zeros|ones|full|tensor|cat|stack|matmul)/.test(path);
    }
    return false;
  }

  /** Whether a class extends nn.Module: syntactically (nn.Module, Module from 'kiln', an in-file Module class) or, failing that, by its base types. */
  isModuleClass(cls: ClassDeclaration, seen = new Set<ClassDeclaration>()): boolean {
    if (seen.has(cls)) return false;
    seen.add(cls);
    const ext = cls.getExtends();
    if (!ext) return false;
    const e = ext.getExpression();
    const path = this.kilnPath(e);
    if (path === 'nn.Module' || path === 'Module') return true;
    if (Node.isIdentifier(e)) {
      const local = this.sf.getClass(e.getText());
      if (local) return this.isModuleClass(local, seen);
    }
    // nn.Sequential, nn.Linear, a Module class imported from another file: ask the checker.
    const hasModuleBase = (t: Type, depth: number): boolean => {
      if (depth > 10) return false;
      const sym = t.getSymbol();
      if (sym?.getName() === 'Module' && sym.getDeclarations().some((d) => /[\\/]nn[\\/]module(\.d)?\.ts$/.test(d.getSourceFile().getFilePath()))) return true;
      return t.getBaseTypes().some((b) => hasModuleBase(b, depth + 1));
    };
    try {
      return hasModuleBase(cls.getType(), 0);
    } catch {
      return false;
    }
  }
}

function paramInfo(p: ParameterDeclaration): ParamInfo {
  const init = p.getInitializer();
  const typeNode = p.getTypeNode();
  let type = typeNode?.getText();
  if (type === undefined) {
    try { type = p.getType().getText(p, ts.TypeFormatFlags.UseAliasDefinedOutsideCurrentScope); } catch { type = undefined; }
  }
  const rest = p.isRestParameter();
  return { name: p.getName(), type, default: init?.getText(), optional: p.hasQuestionToken() || init !== undefined || rest, ...(rest ? { rest } : {}) };
}

/** The class and its in-file base classes, nearest first. */
function classChain(cls: ClassDeclaration): ClassDeclaration[] {
  const out: ClassDeclaration[] = [];
  for (let c: ClassDeclaration | undefined = cls; c && !out.includes(c); c = c.getBaseClass()) {
    if (c.getSourceFile() !== cls.getSourceFile()) break;
    out.push(c);
  }
  return out;
}

function bodyOf(fn: FunctionLike): Node | undefined {
  if (Node.isMethodDeclaration(fn) || Node.isFunctionDeclaration(fn) || Node.isFunctionExpression(fn) || Node.isGetAccessorDeclaration(fn) || Node.isConstructorDeclaration(fn)) return fn.getBody();
  if (Node.isArrowFunction(fn)) return fn.getBody();
  return undefined;
}

/** The condition of a control-flow construct, if `n` is one. */
function conditionOf(n: Node): Node | undefined {
  if (Node.isIfStatement(n) || Node.isWhileStatement(n) || Node.isDoStatement(n) || Node.isSwitchStatement(n)) return n.getExpression();
  if (Node.isForStatement(n)) return n.getCondition();
  if (Node.isForOfStatement(n) || Node.isForInStatement(n)) return n.getExpression();
  if (Node.isConditionalExpression(n)) return n.getCondition();
  if (Node.isBinaryExpression(n) && LOGICAL.has(n.getOperatorToken().getKind())) return n.getLeft();
  return undefined;
}

/** Inside the condition of an if/while/for/switch/?: (a `&&` there is part of that condition, not a construct of its own). */
function inCondition(n: Node): boolean {
  for (let c: Node = n, p = n.getParent(); p; c = p, p = p.getParent()) {
    if (Node.isStatement(p) && !Node.isIfStatement(p) && !Node.isWhileStatement(p) && !Node.isDoStatement(p) && !Node.isForStatement(p) && !Node.isSwitchStatement(p) && !Node.isForOfStatement(p) && !Node.isForInStatement(p)) return false;
    if (Node.isBinaryExpression(p) && LOGICAL.has(p.getOperatorToken().getKind())) {
      if (p.getLeft() === c) return true; // `(a && b) || c`: the outer operator is the construct
      continue;
    }
    const cond = conditionOf(p);
    if (cond === c) return true;
    if (Node.isStatement(p) || Node.isArrowFunction(p) || Node.isFunctionExpression(p)) return false;
  }
  return false;
}

/** The header of a control-flow construct, without its body. */
function headerText(n: Node): string {
  if (Node.isIfStatement(n)) return `if (${n.getExpression().getText()})`;
  if (Node.isWhileStatement(n)) return `while (${n.getExpression().getText()})`;
  if (Node.isDoStatement(n)) return `do … while (${n.getExpression().getText()})`;
  if (Node.isSwitchStatement(n)) return `switch (${n.getExpression().getText()})`;
  if (Node.isForStatement(n) || Node.isForOfStatement(n) || Node.isForInStatement(n)) return n.getText().slice(0, n.getStatement().getStart() - n.getStart()).trim();
  if (Node.isConditionalExpression(n)) return `${n.getCondition().getText()} ? … : …`;
  if (Node.isBinaryExpression(n)) return `${n.getLeft().getText()} ${n.getOperatorToken().getText()} …`;
  return n.getText();
}

/** What depends on a dynamic condition, in words. */
function effectOf(n: Node): string {
  const line = lineOf(n);
  const isLoop = Node.isWhileStatement(n) || Node.isDoStatement(n) || Node.isForStatement(n) || Node.isForOfStatement(n) || Node.isForInStatement(n);
  if (isLoop) {
    const body = (n as unknown as { getStatement(): Node }).getStatement();
    const applied = new Set<string>();
    for (const call of body.getDescendantsOfKind(SyntaxKind.CallExpression)) {
      const callee = call.getExpression();
      if (Node.isPropertyAccessExpression(callee) && Node.isThisExpression(callee.getExpression())) applied.add(callee.getName());
    }
    const names = [...applied];
    return names.length
      ? `the number of ${names.join('/')} applications depends on it (the loop at line ${line})`
      : `the number of iterations of the loop at line ${line} depends on it`;
  }
  if (Node.isIfStatement(n) || Node.isSwitchStatement(n)) return `which branch runs at line ${line} depends on it`;
  if (Node.isConditionalExpression(n)) return `which value the \`?:\` at line ${line} takes depends on it`;
  if (Node.isBinaryExpression(n)) return `whether the right side of \`${n.getOperatorToken().getText()}\` at line ${line} runs depends on it`;
  return `the control flow at line ${line} depends on it`;
}

/** The call chain through a parameter's default value: `randomDepth (line 6; the default of sampleDepth)`. */
function defaultVia(param: string, init: Node, line: number, via: string[]): string[] {
  const note = `the default of ${param}, line ${line}`;
  if (!via.length) return [`${short(init.getText(), 40)} (${note})`];
  return [via[0].replace(/\)$/, `; ${note})`), ...via.slice(1)];
}

/** Analyses one Module class's forward and what it calls on `this` / in the file. */
class ForwardAnalysis {
  readonly entries = new Map<Node, Entry>();
  private readonly cache = new Map<Node, Set<Entry>>();
  private readonly chain: ClassDeclaration[];

  constructor(readonly fa: FileAnalysis, readonly cls: ClassDeclaration) {
    this.chain = classChain(cls);
  }

  run(forward: FunctionLike): Entry[] {
    this.visit(forward, [], `${this.cls.getName() ?? '<class>'}.forward`);
    return [...this.entries.values()];
  }

  private entry(node: Node, kind: DynamicKind, method: string, reason: string, via: string[], causes: Entry[] = []): Entry {
    let e = this.entries.get(node);
    if (!e) {
      e = { node, kind, method, reason, via, causes, effects: [] };
      this.entries.set(node, e);
    }
    return e;
  }

  private methodName(fn: FunctionLike): string {
    const owner = fn.getFirstAncestor((a) => Node.isClassDeclaration(a)) as ClassDeclaration | undefined;
    if (Node.isMethodDeclaration(fn) || Node.isGetAccessorDeclaration(fn)) return `${owner?.getName() ?? '<class>'}.${fn.getName()}`;
    if (Node.isFunctionDeclaration(fn)) return fn.getName() ?? '<function>';
    const v = fn.getFirstAncestorByKind(SyntaxKind.VariableDeclaration);
    if (v) return v.getName();
    return owner ? `${owner.getName()}.<function>` : '<function>';
  }

  /** Functions a call may run (in this file): this.method(), this.field() (its constructor value or parameter default), helper(). */
  private callees(call: Node): { fn: FunctionLike; via: string[] }[] {
    if (!Node.isCallExpression(call)) return [];
    const callee = call.getExpression();
    const here = `${short(call.getText(), 40)} (line ${lineOf(call)})`;
    if (Node.isPropertyAccessExpression(callee) && Node.isThisExpression(callee.getExpression())) {
      return this.thisMember(callee.getName()).map((c) => ({ fn: c.fn, via: [here, ...c.via] }));
    }
    if (Node.isIdentifier(callee)) return this.resolveFunction(callee, new Set()).map((c) => ({ fn: c.fn, via: [here, ...c.via] }));
    return [];
  }

  /** The functions `this.name` may be: a method or getter of the class chain, or a field's value. */
  private thisMember(name: string): { fn: FunctionLike; via: string[] }[] {
    for (const c of this.chain) {
      const m = c.getInstanceMethod(name);
      if (m) return m.getBody() ? [{ fn: m, via: [] }] : [];
      const g = c.getGetAccessor(name);
      if (g) return [{ fn: g, via: [] }];
    }
    const out: { fn: FunctionLike; via: string[] }[] = [];
    for (const c of this.chain) {
      const prop = c.getInstanceProperty(name);
      if (prop && Node.isPropertyDeclaration(prop)) {
        const init = prop.getInitializer();
        if (init) out.push(...this.resolveValue(init, new Set()));
      }
      for (const ctor of c.getConstructors()) {
        for (const bin of ctor.getDescendantsOfKind(SyntaxKind.BinaryExpression)) {
          const left = bin.getLeft();
          if (bin.getOperatorToken().getKind() !== SyntaxKind.EqualsToken) continue;
          if (!Node.isPropertyAccessExpression(left) || !Node.isThisExpression(left.getExpression()) || left.getName() !== name) continue;
          out.push(...this.resolveValue(bin.getRight(), new Set()));
        }
        // A parameter property (`constructor(readonly f = helper)`).
        const pp = ctor.getParameters().find((p) => p.isParameterProperty() && p.getName() === name);
        const init = pp?.getInitializer();
        if (pp && init) out.push(...this.resolveValue(init, new Set()).map((r) => ({ fn: r.fn, via: defaultVia(name, init, lineOf(pp), r.via) })));
      }
    }
    return out;
  }

  /** The function an expression evaluates to, when it is one written in this file. */
  private resolveValue(e: Node, seen: Set<Node>): { fn: FunctionLike; via: string[] }[] {
    if (seen.has(e)) return [];
    seen.add(e);
    if (Node.isParenthesizedExpression(e) || Node.isAsExpression(e) || Node.isSatisfiesExpression(e) || Node.isNonNullExpression(e)) return this.resolveValue(e.getExpression(), seen);
    if (Node.isArrowFunction(e) || Node.isFunctionExpression(e)) return [{ fn: e, via: [] }];
    if (Node.isIdentifier(e)) return this.resolveFunction(e, seen);
    return [];
  }

  private resolveFunction(id: Node, seen: Set<Node>): { fn: FunctionLike; via: string[] }[] {
    const decls = id.getSymbol()?.getDeclarations() ?? [];
    const out: { fn: FunctionLike; via: string[] }[] = [];
    for (const d of decls) {
      if (d.getSourceFile() !== this.fa.sf) continue;
      if (Node.isFunctionDeclaration(d) && d.getBody()) out.push({ fn: d, via: [`${d.getName()} (line ${lineOf(d)})`] });
      else if (Node.isVariableDeclaration(d)) {
        const init = d.getInitializer();
        if (init) out.push(...this.resolveValue(init, seen).map((r) => ({ fn: r.fn, via: Node.isArrowFunction(init) || Node.isFunctionExpression(init) ? [`${d.getName()} (line ${lineOf(d)})`] : r.via })));
      } else if (Node.isParameterDeclaration(d)) {
        // A constructor parameter stored in a field: its default value is what runs unless the caller passes another.
        const init = d.getInitializer();
        if (init) out.push(...this.resolveValue(init, seen).map((r) => ({ fn: r.fn, via: defaultVia(d.getName(), init, lineOf(d), r.via) })));
      }
    }
    return out;
  }

  /** Visits a function: records its dynamic constructs; returns every dynamic source it (transitively) reaches. */
  private visit(fn: FunctionLike, via: string[], method?: string): Set<Entry> {
    const cached = this.cache.get(fn);
    if (cached) return cached;
    const result = new Set<Entry>();
    this.cache.set(fn, result); // recursion sees an empty set
    const body = bodyOf(fn);
    if (!body) return result;
    const name = method ?? this.methodName(fn);
    const fa = this.fa;
    /** Roots carried by individual nodes (sources, and calls of dynamic functions). */
    const nodeRoots = new Map<Node, Set<Entry>>();
    const add = (n: Node, roots: Iterable<Entry>) => {
      let s = nodeRoots.get(n);
      if (!s) nodeRoots.set(n, (s = new Set()));
      for (const r of roots) { s.add(r); result.add(r); }
    };

    const nodes: Node[] = [];
    body.forEachDescendant((n, traversal) => {
      if (Node.isClassDeclaration(n) || Node.isClassExpression(n)) return traversal.skip();
      nodes.push(n);
      return undefined;
    });
    if (Node.isExpression(body)) nodes.unshift(body); // an arrow function's expression body

    for (const n of nodes) {
      if (Node.isCallExpression(n)) {
        const callee = n.getExpression();
        const text = short(n.getText());
        if (Node.isPropertyAccessExpression(callee) && callee.getExpression().getText() === 'Math' && callee.getName() === 'random') {
          add(n, [this.entry(n, 'random', name, 'draws a random number (Math.random)', via)]);
        } else if (Node.isPropertyAccessExpression(callee) && VALUE_READS.has(callee.getName()) && n.getArguments().length === 0 && (fa.isTensor(callee.getExpression()) || (!fa.typesResolved && callee.getName() !== 'data'))) {
          add(n, [this.entry(n, 'value-read', name, `reads a tensor's values on the host (.${callee.getName()}())`, via)]);
        } else if (Node.isIdentifier(callee) && callee.getText() === 'Number' && n.getArguments().length === 1 && fa.isTensor(n.getArguments()[0])) {
          add(n, [this.entry(n, 'to-number', name, `converts a tensor to a number (${text})`, via)]);
        } else {
          for (const c of this.callees(n)) {
            const roots = this.visit(c.fn, [...via, ...c.via]);
            if (roots.size) add(n, roots);
          }
        }
      } else if (Node.isPrefixUnaryExpression(n)) {
        const op = n.getOperatorToken();
        if ((op === SyntaxKind.PlusToken || op === SyntaxKind.MinusToken) && fa.isTensor(n.getOperand())) {
          add(n, [this.entry(n, 'to-number', name, `converts a tensor to a number (unary ${op === SyntaxKind.PlusToken ? '+' : '-'})`, via)]);
        }
      } else if (Node.isBinaryExpression(n)) {
        const op = n.getOperatorToken().getKind();
        const l = n.getLeft();
        const r = n.getRight();
        const lt = fa.isTensor(l);
        const rt = fa.isTensor(r);
        if (!lt && !rt) continue;
        if (COMPARISONS.has(op) || (LOOSE_EQUALITY.has(op) && !(lt && rt))) {
          add(n, [this.entry(n, 'to-number', name, `compares a tensor's value (\`${short(n.getText(), 40)}\` converts the tensor to a number)`, via)]);
        } else if (ARITHMETIC.has(op)) {
          // Also `'n=' + t`: `+` converts with the 'default' hint, which reads the value (only a template literal asks for a string).
          add(n, [this.entry(n, 'to-number', name, `JavaScript arithmetic on a tensor (\`${short(n.getText(), 40)}\` converts the tensor to a number; use tensor ops)`, via)]);
        }
      } else if (Node.isPropertyAccessExpression(n) && Node.isThisExpression(n.getExpression()) && !Node.isCallExpression(n.getParent())) {
        // A getter of the class runs on read.
        for (const c of this.chain) {
          const g = c.getGetAccessor(n.getName());
          if (g) {
            const roots = this.visit(g, [...via, `this.${n.getName()} (line ${lineOf(n)})`]);
            if (roots.size) add(n, roots);
            break;
          }
        }
      }
    }

    // Data flow: variables assigned (const/let/=/op=) from dynamic values are dynamic, to a fixed point.
    const varRoots = new Map<MorphSymbol, Set<Entry>>();
    const rootsOf = (e: Node): Set<Entry> => {
      const out = new Set<Entry>();
      const take = (x: Node) => {
        for (const r of nodeRoots.get(x) ?? []) out.add(r);
        if (Node.isIdentifier(x)) {
          const sym = x.getSymbol();
          for (const r of (sym && varRoots.get(sym)) ?? []) out.add(r);
        }
      };
      take(e);
      e.forEachDescendant(take);
      return out;
    };
    const bind = (name: Node, roots: Set<Entry>): boolean => {
      let changed = false;
      const ids = Node.isIdentifier(name) ? [name] : name.getDescendantsOfKind(SyntaxKind.Identifier);
      for (const id of ids) {
        const sym = id.getSymbol();
        if (!sym) continue;
        let s = varRoots.get(sym);
        if (!s) varRoots.set(sym, (s = new Set()));
        for (const r of roots) if (!s.has(r)) { s.add(r); changed = true; }
      }
      return changed;
    };
    const assignments: { target: Node; value: Node }[] = [];
    for (const n of nodes) {
      if (Node.isVariableDeclaration(n)) {
        const init = n.getInitializer();
        if (init) assignments.push({ target: n.getNameNode(), value: init });
        const loop = n.getParent()?.getParent();
        if (loop && (Node.isForOfStatement(loop) || Node.isForInStatement(loop))) assignments.push({ target: n.getNameNode(), value: loop.getExpression() });
      } else if (Node.isBinaryExpression(n) && n.getOperatorToken().getKind() >= SyntaxKind.FirstAssignment && n.getOperatorToken().getKind() <= SyntaxKind.LastAssignment) {
        const left = n.getLeft();
        if (Node.isIdentifier(left) || Node.isArrayLiteralExpression(left) || Node.isObjectLiteralExpression(left)) assignments.push({ target: left, value: n.getRight() });
      }
    }
    for (let pass = 0, changed = true; changed && pass < 20; pass++) {
      changed = false;
      for (const a of assignments) {
        const roots = rootsOf(a.value);
        if (roots.size && bind(a.target, roots)) changed = true;
      }
    }

    // Control flow whose condition is dynamic.
    for (const n of nodes) {
      const cond = conditionOf(n);
      if (!cond) continue;
      if (Node.isBinaryExpression(n) && inCondition(n)) continue;
      const roots = rootsOf(cond);
      if (!roots.size) continue;
      const e = this.entry(n, 'control-flow', name, `${Node.isForStatement(n) || Node.isWhileStatement(n) || Node.isDoStatement(n) ? 'the loop condition' : Node.isForOfStatement(n) || Node.isForInStatement(n) ? 'what the loop iterates over' : 'the condition'} \`${short(cond.getText(), 50)}\` depends on a dynamic value`, via, [...roots]);
      const effect = effectOf(n);
      for (const r of roots) if (!r.effects.includes(effect)) r.effects.push(effect);
      void e;
    }
    return result;
  }
}

function displayPathOf(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

/** Statically analyses a model file (nothing in it runs): its Module classes, what makes their forward dynamic, its exports, its errors. */
export function analyzeModelFile(path: string): ModelFileReport {
  const t0 = performance.now();
  const { project: p, root, entry } = project();
  const file = resolve(path);
  const displayPath = displayPathOf(file);
  const old = p.getSourceFile(file);
  if (old) p.removeSourceFile(old);
  const sf = p.addSourceFileAtPath(file);
  try {
    const errors: ModelFileError[] = [];
    const program = p.getProgram().compilerObject;
    const tsFile = program.getSourceFile(sf.getFilePath()) ?? sf.compilerNode;
    for (const d of program.getSyntacticDiagnostics(tsFile)) {
      const pos = d.start !== undefined ? tsFile.getLineAndCharacterOfPosition(d.start) : undefined;
      errors.push({
        kind: 'syntax',
        message: ts.flattenDiagnosticMessageText(d.messageText, '\n'),
        ...(pos ? { line: pos.line + 1, column: pos.character + 1 } : {}),
      });
    }

    const fa = new FileAnalysis(sf, root, entry);
    const exported = sf.getExportedDeclarations();
    const exportedNodes = new Set([...exported.values()].flat());
    const modules: ModuleInfo[] = [];
    const dynamic: DynamicConstruct[] = [];
    const toLoc = (n: Node): SourceLocation => ({ ...locOf(n), text: short(conditionOf(n) !== undefined ? headerText(n) : n.getText()) });

    for (const cls of sf.getClasses()) {
      if (!fa.isModuleClass(cls)) continue;
      const name = cls.getName() ?? '<anonymous>';
      const chain = classChain(cls);
      const ctor = chain.map((c) => c.getConstructors().find((k) => k.getBody()) ?? c.getConstructors()[0]).find((k) => k);
      const forward = chain.map((c) => c.getInstanceMethod('forward')).find((m) => m);
      modules.push({
        name,
        line: cls.getStartLineNumber(),
        base: cls.getExtends()?.getText() ?? '',
        exported: exportedNodes.has(cls),
        constructorParams: ctor ? ctor.getParameters().map(paramInfo) : [],
        forwardParams: forward ? forward.getParameters().map(paramInfo) : undefined,
        ...(forward ? { forwardLine: forward.getStartLineNumber() } : {}),
      });
      if (!forward) continue;
      const entries = new ForwardAnalysis(fa, cls).run(forward);
      entries.sort((a, b) => a.node.getStart() - b.node.getStart() || b.node.getEnd() - a.node.getEnd()); // the enclosing construct first
      for (const e of entries) {
        dynamic.push({
          ...toLoc(e.node),
          module: name,
          method: e.method,
          kind: e.kind,
          reason: e.reason,
          via: e.via,
          causes: e.causes.map((c) => toLoc(c.node)),
          effects: e.effects,
        });
      }
    }

    const hasModelSpec = exported.has('modelSpec');
    const exportedModules = modules.filter((m) => m.exported).map((m) => m.name);
    if (!modules.length) errors.push({ kind: 'no-module', message: `no nn.Module subclass in ${displayPath}` });
    else if (!exportedModules.length) {
      errors.push({ kind: 'module-not-exported', message: `${displayPath} does not export its Module subclass (${modules.map((m) => m.name).join(', ')})`, line: modules[0].line });
    }
    if (!hasModelSpec) {
      errors.push({
        kind: 'no-model-spec',
        message: `${displayPath} has no \`modelSpec\` export (the model-file convention: a model file exports its Module subclass and \`export const modelSpec: ModelSpec = { name, create, inputs, target, loss, optim, data }\`, with \`import type { ModelSpec } from 'kiln'\`, so that the kiln CLI can build the model and feed it)`,
      });
    }
    return {
      file,
      displayPath,
      modules,
      dynamic,
      exports: { modelSpec: hasModelSpec, modules: exportedModules },
      errors,
      typesResolved: fa.typesResolved,
      ms: performance.now() - t0,
    };
  } finally {
    // Keep the project to Kiln's sources: the next call re-reads this file from disk.
    p.removeSourceFile(sf);
  }
}

const GRAPH_BREAK = 'kiln compile will run it eagerly with its submodules compiled (a graph break)';

/** A short human-readable account: one line per dynamic source and per error (verbose: modules, every construct, exports). */
export function formatReport(report: ModelFileReport, opts: { verbose?: boolean } = {}): string {
  const lines: string[] = [];
  const at = (line?: number, column?: number) => `${report.displayPath}${line !== undefined ? `:${line}${column !== undefined ? `:${column}` : ''}` : ''}`;
  for (const e of report.errors) lines.push(`${at(e.line, e.column)}: error: ${e.message}`);
  for (const m of report.modules) {
    const own = report.dynamic.filter((d) => d.module === m.name);
    if (opts.verbose) {
      const params = (ps: readonly ParamInfo[]) => ps.map((p) => `${p.rest ? '...' : ''}${p.name}${p.optional && p.default === undefined && !p.rest ? '?' : ''}${p.type ? `: ${p.type}` : ''}${p.default !== undefined ? ` = ${p.default}` : ''}`).join(', ');
      lines.push(`${at(m.line)}: ${m.exported ? 'exported ' : ''}class ${m.name} extends ${m.base}; constructor(${params(m.constructorParams)}); ${m.forwardParams ? `forward(${params(m.forwardParams)})` : 'no forward'}`);
    }
    if (!m.forwardParams) continue;
    if (!own.length) {
      lines.push(`${at(m.forwardLine)}: ${m.name}.forward is static — kiln compile traces it as one graph`);
      continue;
    }
    for (const d of own) {
      if (d.kind === 'control-flow' && !opts.verbose) continue;
      const via = d.via.length ? ` via ${d.via.map((v) => (opts.verbose ? v : v.replace(/ \([^()]*\)$/, ''))).join(' → ')}` : '';
      const why = d.kind === 'control-flow'
        ? `${d.reason}: ${d.causes.map((c) => `${c.text} (line ${c.line})`).join(', ')}`
        : d.effects.length ? d.effects.join('; ') : d.reason;
      lines.push(`${at(d.line, d.column)}: ${m.name}.forward is dynamic: ${d.text}${via} (${why}) — ${GRAPH_BREAK}`);
    }
  }
  if (opts.verbose) {
    lines.push(`${report.displayPath}: exports ${report.exports.modules.length ? report.exports.modules.join(', ') : 'no Module'}${report.exports.modelSpec ? ' and modelSpec' : ', no modelSpec'}; analysed in ${report.ms.toFixed(0)} ms${report.typesResolved ? '' : " (types of 'kiln' unresolved: tensors recognised syntactically)"}`);
  }
  return lines.join('\n');
}
