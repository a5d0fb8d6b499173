// The `kiln` command line: compile, train, run, inspect. Errors in how it is called, in a model
// file, or in a model that cannot be compiled are printed plainly with a non-zero exit code; a
// stack trace only with --verbose.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as kiln from '../../index.js';
import type { ModelSpec } from '../../runtime/model-spec.js';
import { parseArgs, shapes, str, num, UsageError, type Parsed } from './args.js';

const USAGE = `kiln — PyTorch-style models in TypeScript, compiled

  kiln compile <model.ts> [-o out.js] [--device cpu|webgpu] [--input 64x1000] [--weights inline|file]
               [--train [--loss mse|mse-sum|cross-entropy] [--optim sgd|adam|adamw] [--lr 1e-4] [--momentum 0.9]]
  kiln train   <model.ts> [--data mnist|random] [--epochs N] [--batch B] [--lr X] [--device cpu|webgpu] [--eager] [--out dir] [--train-size N] [--test-size N] [--seed N] [--schedule cosine]
  kiln run     <bundle.js> [--input inputs.json | inputs.safetensors | 64x1000]
  kiln inspect <model.ts> [--input 64x1000] [--passes]

A model file exports its nn.Module subclass and \`modelSpec\` (README: "The model-file convention").
Add --verbose to see stack traces.`;

const FLAGS = ['train', 'eager', 'passes', 'verbose', 'help', 'no-progress'];

export async function main(argv: string[]): Promise<number> {
  let parsed: Parsed | undefined;
  try {
    parsed = parseArgs(argv, FLAGS);
    const [command, file] = parsed.positionals;
    if (!command || parsed.options.has('help')) {
      console.log(USAGE);
      return command || parsed.options.has('help') ? 0 : 1;
    }
    switch (command) {
      case 'compile': return await compileCommand(need(file, 'compile'), parsed);
      case 'train': return await trainCommand(need(file, 'train'), parsed);
      case 'run': return await runCommand(need(file, 'run'), parsed);
      case 'inspect': return await inspectCommand(need(file, 'inspect'), parsed);
      default: throw new UsageError(`unknown command '${command}'\n\n${USAGE}`);
    }
  } catch (e) {
    const err = e as Error;
    console.error(`kiln: ${err.message}`);
    if (parsed?.options.has('verbose') && !(e instanceof UsageError)) console.error(err.stack);
    return 1;
  }
}

function need(file: string | undefined, command: string): string {
  if (!file) throw new UsageError(`${command} needs a file: kiln ${command} <model.ts>`);
  const path = resolve(file);
  if (!existsSync(path)) throw new UsageError(`no such file: ${file}`);
  return path;
}

/** Analyses a model file before running it, then imports it and returns its modelSpec. */
export async function loadModelFile(path: string, p: Parsed): Promise<{ spec: ModelSpec; dynamicNote?: string }> {
  const { analyzeModelFile, formatReport } = await import('../analyze.js');
  const report = analyzeModelFile(path);
  if (report.errors.length) throw new Error(formatReport(report, { verbose: p.options.has('verbose') }));
  const mod = (await import(pathToFileURL(path).href)) as { modelSpec?: ModelSpec };
  if (!mod.modelSpec) throw new Error(`${path} has no \`modelSpec\` export (see the model-file convention in the README)`);
  let spec = mod.modelSpec;
  const input = str(p, 'input');
  if (input) {
    const given = shapes(input);
    spec = { ...spec, inputs: spec.inputs.map((x, i) => ({ ...x, shape: given[i] ?? x.shape })) };
    // The target follows the new batch size (its first dimension is the batch).
    if (spec.target && given[0]) spec = { ...spec, target: { ...spec.target, shape: [given[0][0], ...spec.target.shape.slice(1)] } };
  }
  return { spec, dynamicNote: report.dynamic.length ? formatReport(report) : undefined };
}

function exampleInputs(spec: ModelSpec, device: string): kiln.Tensor[] {
  return spec.inputs.map((x) => (x.dtype === 'int32' ? kiln.randint(x.high ?? 10, [...x.shape]) : kiln.randn([...x.shape], { dtype: x.dtype ?? 'float32' })).to(device));
}

async function deviceOf(p: Parsed): Promise<'cpu' | 'webgpu'> {
  const device = str(p, 'device', 'cpu');
  if (device !== 'cpu' && device !== 'webgpu') throw new UsageError(`--device is cpu or webgpu, got ${JSON.stringify(device)}`);
  if (device === 'webgpu') await kiln.initWebGPU();
  return device;
}

const kib = (bytes: number) => (bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(2)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`);

async function compileCommand(path: string, p: Parsed): Promise<number> {
  const { spec, dynamicNote } = await loadModelFile(path, p);
  if (dynamicNote) throw new Error(`${dynamicNote}\nA standalone bundle holds one static graph, so this model cannot be bundled.`);
  const device = await deviceOf(p);
  const { bundleModel } = await import('../bundle.js');
  const out = resolve(str(p, 'out', `dist/${spec.name}.js`)!);
  const weights = str(p, 'weights', 'inline') as 'inline' | 'file';
  const loss = str(p, 'loss') as 'mse' | 'mse-sum' | 'cross-entropy' | undefined;
  if (loss && !['mse', 'mse-sum', 'cross-entropy'].includes(loss)) throw new UsageError(`--loss is mse, mse-sum or cross-entropy, got ${JSON.stringify(loss)}`);
  const optimName = str(p, 'optim') as 'sgd' | 'adam' | 'adamw' | undefined;
  if (optimName && !['sgd', 'adam', 'adamw'].includes(optimName)) throw new UsageError(`--optim is sgd, adam or adamw, got ${JSON.stringify(optimName)}`);
  const base = spec.optim ?? { name: 'sgd' as const, lr: 1e-3 };
  const optim = optimName || p.options.has('lr') || p.options.has('momentum')
    ? { ...base, name: optimName ?? base.name, lr: num(p, 'lr', base.lr)!, momentum: num(p, 'momentum', base.momentum) }
    : undefined;
  const r = await bundleModel(spec, { out, train: p.options.has('train'), device, weights, lossName: loss, optim });
  console.log(`${out}: ${kib(r.bytes)}, ${r.kernels} kernels, planned peak memory ${kib(r.peakBytes)}`);
  return 0;
}

async function trainCommand(path: string, p: Parsed): Promise<number> {
  const { spec, dynamicNote } = await loadModelFile(path, p);
  if (dynamicNote) console.log(dynamicNote);
  const device = await deviceOf(p);
  const { trainModel } = await import('./train.js');
  const r = await trainModel(spec, {
    data: str(p, 'data') as 'mnist' | 'random' | undefined,
    epochs: num(p, 'epochs'),
    batch: num(p, 'batch'),
    lr: num(p, 'lr'),
    device,
    eager: p.options.has('eager') || !!dynamicNote,
    out: str(p, 'out', 'runs'),
    progress: !p.options.has('no-progress'),
    limit: { train: num(p, 'train-size'), test: num(p, 'test-size') },
    seed: num(p, 'seed'),
    schedule: scheduleOf(p),
  });
  if (r.accuracy !== undefined) {
    const perEpoch = r.accuracies.map((a: number) => `${(a * 100).toFixed(2)}%`).join(', ');
    console.log(`held-out accuracy ${(r.accuracy * 100).toFixed(2)}% (after each epoch: ${perEpoch})`);
  }
  console.log(`trained in ${r.seconds.toFixed(1)} s; wrote ${r.files.join(', ')}`);
  return 0;
}

function scheduleOf(p: Parsed): 'constant' | 'cosine' | undefined {
  const s = str(p, 'schedule');
  if (s !== undefined && s !== 'constant' && s !== 'cosine') throw new UsageError(`--schedule is constant or cosine, got ${JSON.stringify(s)}`);
  return s;
}

async function runCommand(path: string, p: Parsed): Promise<number> {
  // A bundle needs neither Kiln nor TypeScript: it runs in a plain node process, as a user runs it.
  const text = (await import('node:fs')).readFileSync(path, 'utf8');
  if (!/export\s*\{[^}]*\bforward\b/.test(text) && !text.includes('createForward(')) throw new Error(`${path} is not a kiln forward bundle (it exports no forward)`);
  const given = str(p, 'input');
  // Without --input, the child draws random inputs of the shapes the bundle was compiled for.
  const inputs = given ? await bundleInputs(given, { program: undefined }) : [];
  const payload = await Promise.all(inputs.map(async (t) => ({ shape: [...t.shape], data: Array.from(await t.data()) })));
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const inputFile = resolve(mkdtempSync(resolve(tmpdir(), 'kiln-run-')), 'inputs.json');
  writeFileSync(inputFile, JSON.stringify(payload));
  const script = `
    const b = await import(${JSON.stringify(pathToFileURL(path).href)});
    const { readFileSync } = await import('node:fs');
    let inputs = JSON.parse(readFileSync(${JSON.stringify(inputFile)}, 'utf8')).map((x) => ({ shape: x.shape, dataSync: () => x.data }));
    if (!inputs.length) inputs = b.program.inputs.filter((i) => i.kind === 'arg').map((i) => {
      const n = i.shape.reduce((a, d) => a * d, 1);
      return { shape: i.shape, dataSync: () => Array.from({ length: n }, () => (i.dtype === 'int32' ? Math.floor(Math.random() * (i.high ?? 10)) : Math.random() * 2 - 1)) };
    });
    const start = performance.now();
    let out;
    try { out = await b.forward(...inputs); } catch (e) { console.error('kiln: ' + e.message); process.exit(1); }
    const ms = performance.now() - start;
    for (const o of [out].flat()) console.log('output [' + o.shape.join(', ') + ']: ' + String(o).split('\\n').slice(0, 6).join('\\n'));
    console.log('ran in ' + ms.toFixed(1) + ' ms');`;
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' });
  return r.status ?? 1;
}

/**
 * The inputs of `kiln run`: a JSON file (an array with one nested array per input), a safetensors
 * file (its tensors in order), shapes like 64x1000 (random values), or the bundle's own shapes.
 */
async function bundleInputs(given: string | undefined, bundle: { program?: { inputs?: { kind: string; shape: number[] }[] } }): Promise<kiln.Tensor[]> {
  if (given && existsSync(given)) {
    if (given.endsWith('.safetensors')) return Object.values(await kiln.loadAsync(given));
    const { readFileSync } = await import('node:fs');
    const json = JSON.parse(readFileSync(given, 'utf8')) as unknown;
    if (!Array.isArray(json)) throw new UsageError(`${given}: expected a JSON array with one (nested) array per input`);
    return json.map((x) => kiln.tensor(x as number[]));
  }
  const argShapes = given ? shapes(given) : (bundle.program?.inputs ?? []).filter((i) => i.kind === 'arg').map((i) => i.shape);
  if (!argShapes.length) throw new UsageError('kiln run needs --input: a JSON file (one nested array per input), a safetensors file, or shapes like 64x1000');
  return argShapes.map((s) => kiln.randn(s));
}

async function inspectCommand(path: string, p: Parsed): Promise<number> {
  const { spec, dynamicNote } = await loadModelFile(path, p);
  if (dynamicNote) {
    console.log(dynamicNote);
    return 0;
  }
  const { traceFunction } = await import('../trace-function.js');
  const { PIPELINE } = await import('../passes/index.js');
  const { buildPlan } = await import('../plan.js');
  const model = spec.create();
  model.eval();
  const inputs = exampleInputs(spec, 'cpu');
  const names = [...model.namedParameters(), ...model.namedBuffers()].map(([n, t]) => [t, n] as [kiln.Tensor, string]);
  const trace = kiln.noGrad(() => traceFunction((...xs: unknown[]) => model.forward(...xs), inputs, { names }));
  const g = trace.graph;
  console.log(`== ${spec.name}: traced, ${g.nodes.length} ops ==\n${g}`);
  for (const [name, pass] of PIPELINE) {
    pass(g);
    kiln.verifyGraph(g);
    if (p.options.has('passes')) console.log(`\n== after ${name} ==\n${g}`);
  }
  if (!p.options.has('passes')) console.log(`\n== optimised ==\n${g}`);
  const fused = g.nodes.filter((n) => n.expr);
  console.log(`\n== ${fused.length} fused kernels ==`);
  for (const n of fused) console.log(`  %${n.output} = ${n.op}: ${kiln.printGraph(g).split('\n').find((l) => l.trim().startsWith(`%${n.output}:`))?.split(' = ')[1] ?? ''}`);
  const plan = buildPlan(g, 'cpu');
  console.log(`\n== memory plan ==\n  ${plan.steps.length} kernels, ${plan.slots.length - plan.inputSlots.length} storage slots, planned peak ${kib(plan.peakBytes)}`);
  return 0;
}
