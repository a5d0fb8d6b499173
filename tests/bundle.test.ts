// `kiln compile` bundles: a model becomes one standalone ES module that plain `node` runs in an
// empty folder (no node_modules), computes what eager Kiln computes (forward, and 20 training steps
// equal to eager and to kiln.compileTrainStep), carries none of the compiler, and prints a timing
// line when run directly.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import { nn, optim, type ModelSpec, type OptimSpec, type Tensor } from 'kiln';
import { bundleModel } from '../compiler/bundle.js';
import { exportForward, exportTrainStep } from '../compiler/export-plan.js';
import { DynamicNet } from '../models/dynamic-net.js';
import { MNISTConvNet } from '../models/mnist-convnet.js';
import { TwoLayerNet } from '../models/two-layer-net.js';
import { expectClose } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'kiln-bundle-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Copies the bundle (and its weights file) into a new empty folder and runs `node` there on `script` (or on the bundle itself). */
function runIsolated(files: string[], script?: string, data?: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-bundle-run-'));
  try {
    for (const f of files) copyFileSync(f, join(dir, basename(f)));
    if (data !== undefined) writeFileSync(join(dir, 'data.json'), JSON.stringify(data));
    if (script) writeFileSync(join(dir, 'run.mjs'), script);
    const r = spawnSync(process.execPath, [script ? 'run.mjs' : basename(files[0])], { cwd: dir, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
    if (r.status !== 0) throw new Error(`node exited with ${r.status}:\n${r.stderr}`);
    return r.stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A bundle carries the runtime only: no compiler, no ts-morph, no imports but Node's built-ins. */
function expectRuntimeOnly(file: string): void {
  const text = readFileSync(file, 'utf8');
  expect(text).not.toMatch(/ts-morph|Tracer|partition/);
  expect(text).not.toMatch(/\bfrom\s*["'](?!node:)[^"']+["']/);
  expect(text).not.toMatch(/\bimport\(\s*["'](?!node:)/);
}

const values = (t: Tensor) => Array.from(t.dataSync());

describe('kiln compile: forward bundles', () => {
  const cases: [string, ModelSpec, 'inline' | 'file', () => Tensor][] = [
    ['TwoLayerNet', { name: 'two-layer-net', create: () => new TwoLayerNet(50, 20, 5), inputs: [{ shape: [16, 50] }] }, 'inline', () => kiln.randn(16, 50)],
    ['MNISTConvNet', { name: 'mnist-convnet', create: () => new MNISTConvNet(), inputs: [{ shape: [2, 1, 28, 28] }] }, 'file', () => kiln.randn(2, 1, 28, 28)],
  ];
  for (const [name, spec, weights, input] of cases) {
    it(`${name} (weights ${weights}) runs under plain node and equals eager`, async () => {
      kiln.manualSeed(3);
      const model = spec.create();
      const x = input();
      const ref = kiln.noGrad(() => model(x)) as Tensor;
      const out = join(work, `${spec.name}.js`);
      const r = await bundleModel(spec, { out, weights, model, minify: weights === 'file' });
      expect(r.out).toBe(out);
      expect(r.bytes).toBe(readFileSync(out).length);
      expect(r.kernels).toBeGreaterThan(0);
      expect(r.peakBytes).toBeGreaterThan(0);
      expectRuntimeOnly(out);
      const files = r.weightsFile ? [out, r.weightsFile] : [out];
      expect(files.length).toBe(weights === 'file' ? 2 : 1);
      const stdout = runIsolated(files, `
        import { readFileSync } from 'node:fs';
        import { forward, program } from './${basename(out)}';
        const { x } = JSON.parse(readFileSync('data.json', 'utf8'));
        const y = forward(Float32Array.from(x));
        console.log(JSON.stringify({ kind: program.kind, shape: y.shape, data: Array.from(y.dataSync()) }));
      `, { x: values(x) });
      const got = JSON.parse(stdout);
      expect(got.kind).toBe('forward');
      expect(got.shape).toEqual([...ref.shape]);
      expectClose(got.data, values(ref));
      // Run directly, the bundle makes a smoke run on random inputs and prints its timing.
      expect(runIsolated(files)).toMatch(new RegExp(`kiln bundle ${spec.name}: forward on cpu, \\d+ kernels: first call [\\d.]+ ms, then [\\d.]+ ms/call over 10 calls; output float32\\[${ref.shape.join(', ')}\\]`));
    });
  }
});

describe('kiln compile: training-step bundles', () => {
  const optimizers: [string, OptimSpec, (p: nn.Parameter[]) => optim.Optimizer<any>][] = [
    ['SGD momentum', { name: 'sgd', lr: 1e-4, momentum: 0.9 }, (p) => new optim.SGD(p, { lr: 1e-4, momentum: 0.9 })],
    ['Adam', { name: 'adam', lr: 1e-3 }, (p) => new optim.Adam(p, { lr: 1e-3 })],
  ];
  for (const [optName, optSpec, makeOpt] of optimizers) {
    it(`TwoLayerNet with ${optName}: 20 bundled steps equal eager and kiln.compileTrainStep`, async () => {
      kiln.manualSeed(11);
      const spec: ModelSpec = { name: `two-layer-net-${optSpec.name}`, create: () => new TwoLayerNet(50, 20, 5), inputs: [{ shape: [16, 50] }], target: { shape: [16, 5] }, loss: 'mse-sum', optim: optSpec };
      const eager = spec.create();
      const compiled = spec.create();
      const bundled = spec.create();
      compiled.loadStateDict(eager.stateDict());
      bundled.loadStateDict(eager.stateDict());
      const x = kiln.randn(16, 50);
      const y = kiln.randn(16, 5);
      const out = join(work, `${spec.name}.js`);
      const r = await bundleModel(spec, { out, train: true, model: bundled });
      expectRuntimeOnly(out);
      const stdout = runIsolated([out], `
        import { readFileSync } from 'node:fs';
        import { trainStep } from './${basename(out)}';
        const { x, y } = JSON.parse(readFileSync('data.json', 'utf8'));
        const [xs, ys] = [Float32Array.from(x), Float32Array.from(y)];
        const losses = [];
        for (let t = 0; t < 20; t++) losses.push(trainStep(xs, ys).dataSync()[0]);
        const weights = Object.fromEntries(Object.entries(trainStep.weights).map(([k, t]) => [k, Array.from(t.dataSync())]));
        console.log(JSON.stringify({ losses, weights }));
      `, { x: values(x), y: values(y) });
      const got = JSON.parse(stdout) as { losses: number[]; weights: Record<string, number[]> };

      const lossFn = new nn.MSELoss({ reduction: 'sum' });
      const o1 = makeOpt(eager.parameters());
      const step = kiln.compileTrainStep(compiled, lossFn, makeOpt(compiled.parameters()), { log: () => {} });
      const eagerLosses: number[] = [];
      const compiledLosses: number[] = [];
      for (let t = 0; t < 20; t++) {
        o1.zeroGrad();
        const loss = lossFn(eager(x), y);
        loss.backward();
        o1.step();
        eagerLosses.push(loss.itemSync());
        compiledLosses.push(step(x, y).itemSync());
      }
      expect(got.losses).toHaveLength(20);
      expectClose(got.losses, compiledLosses);
      expectClose(got.losses, eagerLosses);
      for (const [n, p] of eager.namedParameters()) expectClose(got.weights[n], values(p));
      // The optimizer state travels with the parameters (`optim.<param>.<key>`).
      const stateKey = optSpec.name === 'sgd' ? 'momentum_buffer' : 'exp_avg';
      expect(Object.keys(got.weights)).toContain(`optim.linear1.weight.${stateKey}`);
      expect(runIsolated([out])).toMatch(new RegExp(`kiln bundle ${spec.name}: trainStep on cpu, ${r.kernels} kernels: .* ms/call over 10 calls; loss [\\d.e+-]+ -> [\\d.e+-]+`));
    });
  }
});

describe('kiln compile: exporting plans', () => {
  it('names the plan inputs: arguments, then parameters', () => {
    const e = exportForward(new TwoLayerNet(5, 4, 3), [kiln.randn(2, 5)]);
    expect(e.inputNames).toEqual(['arg0', 'linear1.weight', 'linear1.bias', 'linear2.weight', 'linear2.bias']);
    expect(e.captures.map((c) => c.name)).toEqual(e.inputNames.slice(1));
    expect(e.kernels).toBe(e.plan.steps.length);
    expect(e.graphText).toContain('matmul');
  });

  it('refuses a dynamic model with the reason', () => {
    expect(() => exportForward(new DynamicNet(4, 3, 2), [kiln.randn(2, 4)])).toThrow(/DynamicNet\.forward cannot be compiled to one graph: it is dynamic \(Math\.random\(\) called while tracing at .*dynamic-net\.ts/);
  });

  it('refuses SGD with dampening (its first step differs from the others)', () => {
    const m = new TwoLayerNet(5, 4, 3);
    const o = new optim.SGD(m.parameters(), { lr: 0.1, momentum: 0.9, dampening: 0.5 });
    expect(() => exportTrainStep(m, new nn.MSELoss(), o, [kiln.randn(2, 5)], kiln.randn(2, 3))).toThrow(/SGD with dampening 0.5 cannot be compiled/);
  });
});
