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

  kiln compile <model.ts> [-o out.js] [--device cpu|webgpu] [--input 64x1000] [--train] [--weights inline|file]
  kiln train   <model.ts> [--data mnist|random] [--epochs N] [--batch B] [--lr X] [--device cpu|webgpu] [--eager] [--out dir] [--train-size N] [--test-size N] [--seed N]
  kiln run     <bundle.js> [--input 64x1000]
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
  const r = await bundleModel(spec, { out, train: p.options.has('train'), device, weights });
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
  });
  if (r.accuracy !== undefined) {
    const perEpoch = r.accuracies.map((a: number) => `${(a * 100).toFixed(2)}%`).join(', ');
    console.log(`held-out accuracy ${(r.accuracy * 100).toFixed(2)}% (after each epoch: ${perEpoch})`);
  }
  console.log(`trained in ${r.seconds.toFixed(1)} s; wrote ${r.files.join(', ')}`);
  return 0;
}

async function runCommand(path: string, p: Parsed): Promise<number> {
  const bundle = (await import(pathToFileURL(path).href)) as { forward?: (...xs: unknown[]) => unknown; inputShapes?: number[][] };
  if (!bundle.forward) throw new Error(`${path} is not a kiln bundle (it exports no forward)`);
  const given = str(p, 'input');
  const inputShapes = given ? shapes(given) : bundle.inputShapes ?? [];
  const inputs = inputShapes.map((s) => kiln.randn(s));
  const start = performance.now();
  const out = await bundle.forward(...inputs);
  const outs = (Array.isArray(out) ? out : [out]) as kiln.Tensor[];
  for (const o of outs) console.log(`output [${o.shape.join(', ')}]: ${String(o).split('\n').slice(0, 6).join('\n')}`);
  console.log(`ran in ${(performance.now() - start).toFixed(1)} ms`);
  return 0;
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
