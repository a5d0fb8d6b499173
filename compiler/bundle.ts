// `kiln compile`: a model file becomes one standalone ES module. The model's forward (or, with
// `train`, its whole training step) is traced, optimised and planned here (export-plan.ts); the
// bundle carries that plan as JSON, the weights as safetensors (inline, base64, or in a file next
// to it), and the runtime that runs plans (runtime/bundle/entry.ts: the executor, the CPU backend,
// or WebGPU) — none of the compiler. esbuild bundles it; running the bundle with `node` makes a
// smoke run that prints its timing.
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { full } from '../runtime/creation.js';
import { noGrad } from '../runtime/autograd/grad-mode.js';
import { encodeProgram, type BundleProgram } from '../runtime/bundle/entry.js';
import { serializeSafetensorsAsync } from '../runtime/io/safetensors.js';
import type { InputSpec, LossSpec, ModelSpec, OptimSpec } from '../runtime/model-spec.js';
import * as nn from '../runtime/nn/index.js';
import type { Module } from '../runtime/nn/module.js';
import * as optim from '../runtime/optim/index.js';
import { Tensor } from '../runtime/tensor.js';
import { exportForward, exportTrainStep, type ExportedPlan } from './export-plan.js';

export interface BundleOptions {
  /** The bundle's path (`.js` or `.mjs`); a `.safetensors` file of the same name goes next to it with `weights: 'file'`. */
  out: string;
  /** Bundle a training step (`trainStep(x, y) -> loss`) instead of the forward. */
  train?: boolean;
  /** Default 'cpu'. A WebGPU bundle initialises WebGPU when imported (`webgpu`, Dawn's binding, stays an external import). */
  device?: 'cpu' | 'webgpu';
  /** Default 'inline' (base64 in the bundle). */
  weights?: 'inline' | 'file';
  /** The loss of a training bundle (default the spec's). */
  lossName?: LossSpec;
  /** The optimizer of a training bundle (default the spec's). */
  optim?: OptimSpec;
  /** The model to bundle (with trained weights, say); default `spec.create()`. */
  model?: Module;
  /** Minify the bundle (default false). */
  minify?: boolean;
  /** Calls of the smoke run `node <out>` makes after its first (default 10). */
  smokeRuns?: number;
}

export interface BundleResult {
  /** The bundle's absolute path. */
  out: string;
  /** The bundle's size in bytes (without a weights file). */
  bytes: number;
  /** The weights file, with `weights: 'file'`. */
  weightsFile?: string;
  weightsBytes: number;
  kernels: number;
  peakBytes: number;
  /** The optimised graph, printed. */
  graphText: string;
}

/** The folder holding ir/, runtime/ and compiler/ (the sources, or dist/ when built). */
const KILN_ROOT = fileURLToPath(new URL('..', import.meta.url));

export async function bundleModel(spec: ModelSpec, opts: BundleOptions): Promise<BundleResult> {
  const device = opts.device ?? 'cpu';
  const weightsMode = opts.weights ?? 'inline';
  const out = resolve(opts.out);
  const model = opts.model ?? spec.create();
  const example = (s: InputSpec) => full([...s.shape], 0, { dtype: s.dtype ?? 'float32', device: model.parameters()[0]?.device ?? 'cpu' });
  const inputs = spec.inputs.map(example);

  let exported: ExportedPlan;
  let target: InputSpec | undefined;
  // A forward is bundled in eval mode (inference), a training step in training mode.
  const wasTraining = model.training;
  try {
    if (opts.train) {
      const loss = lossFunction(opts.lossName ?? spec.loss, spec.name);
      const optimizer = makeOptimizer(opts.optim ?? spec.optim, model, spec.name);
      target = spec.target ?? mseTarget(opts.lossName ?? spec.loss, model, inputs, spec.name);
      model.train();
      exported = exportTrainStep(model, loss, optimizer, inputs, example(target));
    } else {
      model.eval();
      exported = exportForward(model, inputs);
    }
  } finally {
    model.train(wasTraining);
  }

  const plan = { ...exported.plan, device };
  if (device === 'webgpu') {
    const f64 = plan.slots.some((s) => s.dtype === 'float64');
    if (f64) throw new Error(`kiln bundle ${spec.name}: the plan computes in float64, which WebGPU does not have (Adam's bias correction on the CPU does); move the model to WebGPU before bundling, or bundle for the CPU`);
  }
  const argSpecs = [...spec.inputs, ...(target ? [target] : [])];
  let a = 0;
  const program: BundleProgram = {
    kind: opts.train ? 'train' : 'forward',
    name: spec.name,
    plan,
    inputs: exported.inputs.map((i) => {
      if (i.kind !== 'arg') return i;
      const high = argSpecs[a++]?.high;
      return high === undefined ? i : { ...i, high };
    }),
    template: exported.template,
  };
  const weights = await serializeSafetensorsAsync(new Map(exported.captures.map((c) => [c.name, c.tensor])), { model: spec.name, kind: program.kind });

  let weightsFile: string | undefined;
  let weightsExpr: string;
  mkdirSync(dirname(out), { recursive: true });
  if (weightsMode === 'file') {
    weightsFile = join(dirname(out), `${basename(out, extname(out))}.safetensors`);
    writeFileSync(weightsFile, weights);
    weightsExpr = `await weightsFromFile(${JSON.stringify(basename(weightsFile))}, import.meta.url)`;
  } else {
    weightsExpr = `weightsFromBase64(${JSON.stringify(Buffer.from(weights).toString('base64'))})`;
  }
  const create = opts.train ? 'createTrainStep' : 'createForward';
  const name = opts.train ? 'trainStep' : 'forward';
  const source = [
    `// ${spec.name}: a Kiln ${opts.train ? 'training step' : 'forward'} compiled for ${device} (${exported.kernels} kernels).`,
    `import { pathToFileURL } from 'node:url';`,
    `import { ${create}, decodeProgram, smokeRun, weightsFromBase64, weightsFromFile } from './runtime/bundle/entry.js';`,
    ...(device === 'webgpu' ? [`import { initWebGPU } from './runtime/webgpu/index.js';`, `await initWebGPU();`] : []),
    `export const program = decodeProgram(${JSON.stringify(encodeProgram(program))});`,
    `export const ${name} = ${create}(program, ${weightsExpr});`,
    `export default ${name};`,
    `if (typeof process !== 'undefined' && process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {`,
    `  await smokeRun(${name}, ${opts.smokeRuns ?? 10});`,
    `}`,
    '',
  ].join('\n');

  const result = await build({
    stdin: { contents: source, resolveDir: KILN_ROOT, sourcefile: `${spec.name}-bundle-entry.js`, loader: 'js' },
    outfile: out,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    minify: opts.minify ?? false,
    conditions: ['kiln-source'],
    external: device === 'webgpu' ? ['webgpu'] : [],
    logLevel: 'silent',
    legalComments: 'none',
    metafile: true,
    write: true,
  });
  const inputsBundled = Object.keys(result.metafile.inputs);
  const leaked = inputsBundled.filter((f) => /(^|\/)compiler\/|ts-morph|node_modules\/esbuild/.test(f));
  if (leaked.length) throw new Error(`kiln bundle ${spec.name}: the bundle would include ${leaked.join(', ')}; a bundle carries the runtime only`);
  const bytes = Object.values(result.metafile.outputs).reduce((s, o) => s + o.bytes, 0);
  return { out, bytes, weightsFile, weightsBytes: weights.length, kernels: exported.kernels, peakBytes: exported.peakBytes, graphText: exported.graphText };
}

function lossFunction(loss: LossSpec | undefined, name: string): (output: any, target: any) => Tensor {
  if (typeof loss === 'function') return loss;
  switch (loss) {
    case 'mse': return new nn.MSELoss();
    case 'mse-sum': return new nn.MSELoss({ reduction: 'sum' });
    case 'cross-entropy': return new nn.CrossEntropyLoss();
    case undefined: throw new Error(`kiln bundle ${name}: a training bundle needs a loss (the model spec's \`loss\`, or --loss)`);
    default: throw new Error(`kiln bundle ${name}: unknown loss '${String(loss)}' (mse, mse-sum or cross-entropy)`);
  }
}

function makeOptimizer(o: OptimSpec | undefined, model: Module, name: string): optim.Optimizer<any> {
  if (!o) throw new Error(`kiln bundle ${name}: a training bundle needs an optimizer (the model spec's \`optim\`, or --optim)`);
  const params = model.parameters();
  const wd = o.weightDecay === undefined ? {} : { weightDecay: o.weightDecay };
  switch (o.name) {
    case 'sgd': return new optim.SGD(params, { lr: o.lr, momentum: o.momentum ?? 0, ...wd });
    case 'adam': return new optim.Adam(params, { lr: o.lr, ...wd });
    case 'adamw': return new optim.AdamW(params, { lr: o.lr, ...wd });
    default: throw new Error(`kiln bundle ${name}: unknown optimizer '${String((o as { name: unknown }).name)}' (sgd, adam or adamw)`);
  }
}

/** Without a target spec, an MSE loss's target has the output's shape. */
function mseTarget(loss: LossSpec | undefined, model: Module, inputs: Tensor[], name: string): InputSpec {
  if (loss !== 'mse' && loss !== 'mse-sum') throw new Error(`kiln bundle ${name}: a training bundle needs the spec's \`target\` (its shape and dtype)`);
  const out = noGrad(() => model(...inputs)) as Tensor;
  return { shape: [...out.shape], dtype: out.dtype };
}
