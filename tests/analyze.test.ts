// compiler/analyze.ts: the static analysis of model files (ts-morph, nothing runs) — the model-file
// convention in models/, what makes a forward dynamic (with exact source positions), and errors.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { nn, type InputSpec, type ModelSpec, type Tensor } from 'kiln';
import { analyzeModelFile, formatReport, type ModelFileReport } from '../compiler/analyze.js';

const MODELS = fileURLToPath(new URL('../models/', import.meta.url));
/** Files in models/ that hold an autograd Function rather than a model (models/README.md allows them). */
const NOT_MODELS = new Set(['my-relu.ts']);
const modelFiles = readdirSync(MODELS).filter((f) => f.endsWith('.ts') && !NOT_MODELS.has(f)).sort();

/** 1-based line and column of the only occurrence of `needle` in `text`. */
function position(text: string, needle: string): { line: number; column: number } {
  const at = text.indexOf(needle);
  expect(at, `${needle} occurs in the file`).toBeGreaterThanOrEqual(0);
  expect(text.indexOf(needle, at + 1), `${needle} occurs once`).toBe(-1);
  const before = text.slice(0, at).split('\n');
  return { line: before.length, column: before[before.length - 1].length + 1 };
}

function exampleInput(spec: InputSpec): Tensor {
  if (spec.dtype === 'int32') return kiln.randint(spec.high ?? 10, [...spec.shape]);
  return kiln.randn([...spec.shape], { dtype: spec.dtype ?? 'float32' });
}

describe('models/ follow the model-file convention', () => {
  it('finds the model files', () => {
    expect(modelFiles).toEqual(expect.arrayContaining(['dynamic-net.ts', 'mnist-convnet.ts', 'rnn.ts', 'two-layer-net.ts']));
  });

  it.each(modelFiles)('%s: a Module, a modelSpec export, no errors; create() builds a Module whose forward takes the spec inputs', async (file) => {
    const report = analyzeModelFile(join(MODELS, file));
    expect(report.errors).toEqual([]);
    expect(report.typesResolved).toBe(true);
    expect(report.modules.length).toBeGreaterThan(0);
    expect(report.exports.modelSpec).toBe(true);
    expect(report.exports.modules.length).toBeGreaterThan(0);

    const mod = (await import(join(MODELS, file))) as { modelSpec: ModelSpec };
    const spec = mod.modelSpec;
    const model = spec.create();
    expect(model).toBeInstanceOf(nn.Module);
    const info = report.modules.find((m) => model.constructor.name === m.name);
    expect(info, `${file} exports the class create() builds`).toBeDefined();
    expect(report.exports.modules).toContain(info!.name);
    // The static view of forward agrees with the spec: one input per parameter.
    expect(info!.forwardParams?.length).toBe(spec.inputs.length);

    kiln.manualSeed(0);
    const inputs = spec.inputs.map(exampleInput);
    const out = (model as unknown as (...xs: Tensor[]) => unknown)(...inputs);
    const target = spec.target ? exampleInput(spec.target) : undefined;
    if (typeof spec.loss === 'function') {
      // rnn.ts: forward returns [hidden, output]; its loss function picks the output.
      const loss = spec.loss(out, target);
      expect(loss.shape).toEqual([]);
      expect(Number.isFinite(loss.itemSync())).toBe(true);
    } else {
      const y = out as Tensor;
      expect(y).toBeInstanceOf(kiln.Tensor);
      if (spec.loss === 'cross-entropy') {
        expect(y.shape).toEqual([spec.target!.shape[0], spec.target!.high]);
        expect(Number.isFinite(nn.functional.crossEntropy(y, target!).itemSync())).toBe(true);
      } else {
        expect(y.shape).toEqual([...spec.target!.shape]);
      }
    }
  });

  it('rnn: forward returns [hidden, output] and the spec trains the output against the target', async () => {
    const { modelSpec } = await import('../models/rnn.js');
    const [hidden, output] = modelSpec.create()(...(modelSpec.inputs.map(exampleInput) as [Tensor, Tensor]));
    expect(hidden.shape).toEqual([...modelSpec.inputs[1].shape]);
    expect(output.shape).toEqual([...modelSpec.target!.shape]);
  });

  it('my-relu.ts holds an autograd Function, not a model: the analyzer says there is no Module', () => {
    const report = analyzeModelFile(join(MODELS, 'my-relu.ts'));
    expect(report.modules).toEqual([]);
    expect(report.errors.map((e) => e.kind)).toEqual(['no-module', 'no-model-spec']);
  });

  it('reports constructor and forward parameters', () => {
    const dyn = analyzeModelFile(join(MODELS, 'dynamic-net.ts')).modules[0];
    expect(dyn.name).toBe('DynamicNet');
    expect(dyn.base).toBe('nn.Module');
    expect(dyn.constructorParams).toEqual([
      { name: 'dIn', type: 'number', default: undefined, optional: false },
      { name: 'h', type: 'number', default: undefined, optional: false },
      { name: 'dOut', type: 'number', default: undefined, optional: false },
      { name: 'sampleDepth', type: '() => number', default: 'randomDepth', optional: true },
    ]);
    expect(dyn.forwardParams).toEqual([{ name: 'x', type: 'Tensor', default: undefined, optional: false }]);
    const rnn = analyzeModelFile(join(MODELS, 'rnn.ts')).modules[0];
    expect(rnn.constructorParams.map((p) => p.name)).toEqual(['dataSize', 'hiddenSize', 'outputSize']);
    expect(rnn.forwardParams!.map((p) => `${p.name}: ${p.type}`)).toEqual(['data: Tensor', 'lastHidden: Tensor']);
  });
});

describe('dynamic forwards in models/', () => {
  it('DynamicNet: Math.random() at its exact line and column, and the loop that depends on it', () => {
    const path = join(MODELS, 'dynamic-net.ts');
    const text = readFileSync(path, 'utf8');
    const report = analyzeModelFile(path);
    const random = report.dynamic.filter((d) => d.kind === 'random');
    expect(random).toHaveLength(1);
    expect(random[0]).toMatchObject({ module: 'DynamicNet', text: 'Math.random()', ...position(text, 'Math.random()') });
    expect(random[0].via[0]).toMatch(/^this\.sampleDepth\(\)/);
    expect(random[0].effects).toEqual([expect.stringMatching(/^the number of middleLinear applications depends on it/)]);

    const loops = report.dynamic.filter((d) => d.kind === 'control-flow');
    expect(loops).toHaveLength(1);
    expect(loops[0]).toMatchObject({ module: 'DynamicNet', method: 'DynamicNet.forward', text: 'for (let i = 0; i < depth; i++)', ...position(text, 'for (let i = 0; i < depth; i++)') });
    expect(loops[0].causes).toEqual([{ ...position(text, 'Math.random()'), text: 'Math.random()' }]);
    expect(report.dynamic).toHaveLength(2);

    const { line, column } = position(text, 'Math.random()');
    const printed = formatReport(report);
    expect(printed).toContain(
      `dynamic-net.ts:${line}:${column}: DynamicNet.forward is dynamic: Math.random() via this.sampleDepth() → randomDepth (the number of middleLinear applications depends on it`,
    );
    expect(printed).toContain('kiln compile will run it eagerly with its submodules compiled (a graph break)');
    expect(printed.split('\n')).toHaveLength(1);
    expect(formatReport(report, { verbose: true })).toMatch(/for \(let i = 0; i < depth; i\+\+\)/);
  });

  it.each(['two-layer-net.ts', 'mnist-convnet.ts', 'rnn.ts'])('%s is static', (file) => {
    const report = analyzeModelFile(join(MODELS, file));
    expect(report.dynamic).toEqual([]);
    expect(formatReport(report)).toMatch(/forward is static/);
  });
});

describe('synthetic model files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-analyze-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const SPEC = `export const modelSpec: ModelSpec = { name: 'net', create: () => new Net(), inputs: [{ shape: [2, 4] }] };\n`;
  const HEAD = `import * as kiln from 'kiln';\nimport { nn, type Tensor, type ModelSpec } from 'kiln';\n`;
  let n = 0;
  function analyze(source: string): { report: ModelFileReport; text: string } {
    const path = join(dir, `model-${n++}.ts`);
    writeFileSync(path, source);
    return { report: analyzeModelFile(path), text: source };
  }
  const net = (forward: string, extra = '') => `${HEAD}
export class Net extends nn.Module {
  lin: nn.Linear;
  depth: number;
  constructor(depth = 2) {
    super();
    this.lin = new nn.Linear(4, 4);
    this.depth = depth;
  }
${extra}  override forward(x: Tensor): Tensor {
${forward}
  }
}
${SPEC}`;

  it('if (x.sum().item() > 0): the value read and the branch', () => {
    const { report, text } = analyze(net(`    if (x.sum().item() > 0) return this.lin(x);\n    return x;`));
    expect(report.errors).toEqual([]);
    expect(report.typesResolved).toBe(true);
    expect(report.dynamic.map((d) => [d.kind, d.text, d.line, d.column])).toEqual([
      ['control-flow', 'if (x.sum().item() > 0)', position(text, 'if (').line, position(text, 'if (').column],
      ['value-read', 'x.sum().item()', position(text, 'x.sum().item()').line, position(text, 'x.sum().item()').column],
    ]);
    expect(report.dynamic[1].effects).toEqual([expect.stringMatching(/^which branch runs at line \d+ depends on it/)]);
    expect(formatReport(report)).toMatch(/model-\d+\.ts:\d+:\d+: Net\.forward is dynamic: x\.sum\(\)\.item\(\) \(which branch runs/);
  });

  it('while (h.norm() < 10): a comparison of a tensor (the type checker knows h.norm() is a Tensor)', () => {
    const { report, text } = analyze(net(`    let h = this.lin(x);\n    while (h.norm() < 10) h = h.mul(2);\n    return h;`));
    expect(report.errors).toEqual([]);
    const loop = report.dynamic.find((d) => d.kind === 'control-flow')!;
    expect(loop).toMatchObject({ text: 'while (h.norm() < 10)', ...position(text, 'while (') });
    const cmp = report.dynamic.find((d) => d.kind === 'to-number')!;
    expect(cmp).toMatchObject({ text: 'h.norm() < 10', ...position(text, 'h.norm() < 10') });
    expect(loop.causes.map((c) => c.text)).toEqual(['h.norm() < 10']);
    expect(report.dynamic).toHaveLength(2);
  });

  it('const n = Math.floor(Math.random() * 3); for (let i = 0; i < n; i++): the loop bound follows the data flow', () => {
    const { report, text } = analyze(net(`    const n = Math.floor(Math.random() * 3);\n    for (let i = 0; i < n; i++) x = this.lin(x);\n    return x;`));
    expect(report.dynamic.map((d) => d.kind)).toEqual(['random', 'control-flow']);
    expect(report.dynamic[0]).toMatchObject({ text: 'Math.random()', ...position(text, 'Math.random()'), via: [] });
    expect(report.dynamic[1]).toMatchObject({ text: 'for (let i = 0; i < n; i++)', ...position(text, 'for (') });
    expect(report.dynamic[0].effects[0]).toMatch(/^the number of lin applications depends on it/);
  });

  it('this.training, constructor fields and shapes are static', () => {
    const { report } = analyze(net([
      '    if (this.training) x = x.mul(0.5);',
      '    for (let i = 0; i < this.depth; i++) x = this.lin(x);',
      '    const k = this.depth > 1 ? 2 : 1;',
      '    while (x.shape[0] > 100 && this.training) x = x.narrow(0, 0, 50);',
      '    return x.size(0) > 2 ? x.mul(k) : x.neg();',
    ].join('\n')));
    expect(report.errors).toEqual([]);
    expect(report.dynamic).toEqual([]);
    expect(formatReport(report)).toMatch(/Net\.forward is static/);
  });

  it("follows methods called on this and Number(t); Kiln's random numbers are static (compiled as random ops)", () => {
    const extra = `  noise(x: Tensor): Tensor {\n    return x.add(kiln.randnLike(x));\n  }\n  scale(x: Tensor): number {\n    return Number(x.amax());\n  }\n`;
    const { report, text } = analyze(net(`    const s = this.scale(x);\n    const y = s > 1 ? this.noise(x) : x;\n    return y;`, extra));
    expect(report.dynamic.map((d) => [d.kind, d.method, d.text])).toEqual([
      ['to-number', 'Net.scale', 'Number(x.amax())'],
      ['control-flow', 'Net.forward', 's > 1 ? … : …'],
    ]);
    expect(report.dynamic[0]).toMatchObject({ ...position(text, 'Number(x.amax())'), via: [expect.stringMatching(/^this\.scale\(x\) \(line \d+\)$/)] });
    expect(report.dynamic[1].causes.map((c) => c.text)).toEqual(['Number(x.amax())']);
  });

  it('JavaScript arithmetic on a tensor converts it; a template literal and `&&` on static values do not', () => {
    const { report } = analyze(net([
      '    const label = `x is ${x}`;',
      '    const y = this.training && label.length > 0 ? x.mul(2) : x;',
      '    const z = y.mul(2) * 3;',
      '    const ok = y.sum().itemSync() > 0 && this.lin(y);',
      '    return y;',
    ].join('\n')));
    expect(report.dynamic.map((d) => [d.kind, d.text])).toEqual([
      ['to-number', 'y.mul(2) * 3'],
      ['control-flow', 'y.sum().itemSync() > 0 && …'],
      ['value-read', 'y.sum().itemSync()'],
    ]);
  });

  it('a Module through an in-file base class and through kiln.nn.Module', () => {
    const { report } = analyze(`import * as kiln from 'kiln';
import type { Tensor, ModelSpec } from 'kiln';
class Base extends kiln.nn.Module {
  constructor(readonly width: number, scale?: number) { super(); }
  override forward(x: Tensor, y?: Tensor): Tensor { return x; }
}
export class Child extends Base {}
export class NotAModule {}
export const modelSpec: ModelSpec = { name: 'child', create: () => new Child(3), inputs: [{ shape: [2] }] };
`);
    expect(report.errors).toEqual([]);
    expect(report.modules.map((m) => [m.name, m.base, m.exported])).toEqual([['Base', 'kiln.nn.Module', false], ['Child', 'Base', true]]);
    expect(report.modules[1].constructorParams).toEqual([
      { name: 'width', type: 'number', default: undefined, optional: false },
      { name: 'scale', type: 'number', default: undefined, optional: true },
    ]);
    expect(report.modules[1].forwardParams!.map((p) => p.name)).toEqual(['x', 'y']);
    expect(report.exports).toEqual({ modelSpec: true, modules: ['Child'] });
  });

  it('a syntax error is reported with its line', () => {
    const { report } = analyze(`${HEAD}\nexport class Net extends nn.Module {\n  override forward(x: Tensor): Tensor {\n    const y = ;\n    return x;\n  }\n}\n${SPEC}`);
    const syntax = report.errors.filter((e) => e.kind === 'syntax');
    expect(syntax).toHaveLength(1);
    expect(syntax[0]).toMatchObject({ line: 6, message: 'Expression expected.' });
    expect(formatReport(report)).toMatch(/model-\d+\.ts:6:\d+: error: Expression expected\./);
  });

  it('a file with no Module', () => {
    const { report } = analyze(`${HEAD}\nexport function helper(x: Tensor): Tensor { return x; }\nexport const modelSpec = {};\n`);
    expect(report.modules).toEqual([]);
    expect(report.errors).toEqual([{ kind: 'no-module', message: `no nn.Module subclass in ${report.displayPath}` }]);
  });

  it('a file without modelSpec', () => {
    const { report } = analyze(`${HEAD}\nexport class Net extends nn.Module {\n  override forward(x: Tensor): Tensor { return x; }\n}\n`);
    expect(report.modules.map((m) => m.name)).toEqual(['Net']);
    expect(report.exports).toEqual({ modelSpec: false, modules: ['Net'] });
    expect(report.errors).toHaveLength(1);
    expect(report.errors[0].kind).toBe('no-model-spec');
    expect(report.errors[0].message).toMatch(/^\S+model-\d+\.ts has no `modelSpec` export \(the model-file convention: /);
  });

  it('is fast once Kiln\'s types are loaded', () => {
    const report = analyzeModelFile(join(MODELS, 'two-layer-net.ts'));
    expect(report.ms).toBeLessThan(2000);
  });
});
