// The kiln command line, run as a user runs it (node bin/kiln.js ...): plain errors with a
// non-zero exit code, the analysis's explanation for dynamic models, inspect and compile.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const kilnBin = new URL('../bin/kiln.js', import.meta.url).pathname;
const cwd = new URL('..', import.meta.url).pathname;

function kiln(...args: string[]) {
  const r = spawnSync(process.execPath, [kilnBin, ...args], { cwd, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('the kiln CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-cli-'));

  it('explains why DynamicNet cannot be bundled, with the line, and exits non-zero', () => {
    const r = kiln('compile', 'models/dynamic-net.ts', '-o', join(dir, 'dyn.js'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/models\/dynamic-net\.ts:\d+:\d+: DynamicNet\.forward is dynamic: Math\.random\(\)/);
    expect(r.err).not.toMatch(/\n\s+at /);
  });

  it('reports a syntax error, a file without a Module, a missing export and a missing file plainly', () => {
    const bad = join(dir, 'bad.ts');
    writeFileSync(bad, 'class X {\n');
    let r = kiln('inspect', bad);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/bad\.ts:2:1: error: '}' expected/);
    expect(r.err).toMatch(/no nn\.Module subclass/);
    expect(r.err).not.toMatch(/\n\s+at /);
    const noSpec = join(dir, 'no-spec.ts');
    writeFileSync(noSpec, "import { nn, type Tensor } from 'kiln';\nexport class M extends nn.Module {\n  override forward(x: Tensor): Tensor { return x; }\n}\n");
    r = kiln('compile', noSpec);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/has no `modelSpec` export/);
    r = kiln('compile', join(dir, 'missing.ts'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/no such file/);
    r = kiln('frobnicate');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/unknown command 'frobnicate'/);
  });

  it('inspect prints the IR before and after the passes, the fused kernels and the memory plan', () => {
    const r = kiln('inspect', 'models/two-layer-net.ts', '--input', '8x1000');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/== two-layer-net: traced, 10 ops ==/);
    expect(r.out).toMatch(/== optimised ==[\s\S]*matmul\(%0, %2, %4, %15\) select\(lt\(add\(\$0, \$1\), \$2\), \$2, add\(\$0, \$1\)\)/);
    expect(r.out).toMatch(/== 2 fused kernels ==/);
    expect(r.out).toMatch(/== memory plan ==\n {2}2 kernels, \d+ storage slots, planned peak [\d.]+ KiB/);
  });

  it('train runs end to end on a tiny MNIST subset and beats chance', () => {
    const out = join(dir, 'runs');
    const r = kiln('train', 'models/mnist-convnet.ts', '--train-size', '512', '--test-size', '256', '--batch', '32', '--out', out, '--no-progress');
    expect(r.code).toBe(0);
    const acc = Number(r.out.match(/held-out accuracy ([\d.]+)%/)![1]);
    expect(acc).toBeGreaterThan(20);
    expect(r.out).toMatch(/wrote .*mnist-convnet\.safetensors, .*mnist-convnet-loss\.html/);
  });

  it('compile writes a bundle and reports its size, kernels and planned memory', () => {
    const out = join(dir, 'tln.js');
    const r = kiln('compile', 'models/two-layer-net.ts', '-o', out, '--input', '4x1000');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/tln\.js: [\d.]+ KiB, 2 kernels, planned peak memory [\d.]+ KiB/);
    const run = spawnSync(process.execPath, [out], { cwd: dir, encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/forward on cpu, 2 kernels: first call [\d.]+ ms/);
    // kiln run feeds it inputs from a JSON file, and refuses a shape it was not compiled for.
    const inputs = join(dir, 'inputs.json');
    writeFileSync(inputs, JSON.stringify([Array.from({ length: 4 }, () => Array.from({ length: 1000 }, (_, i) => Math.sin(i)))]));
    const ran = kiln('run', out, '--input', inputs);
    expect(ran.code).toBe(0);
    expect(ran.out).toMatch(/output \[4, 10\]: tensor\(\[\[/);
    writeFileSync(inputs, JSON.stringify([[Array(1000).fill(0)]]));
    const refused = kiln('run', out, '--input', inputs);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/input arg0 has shape \[1, 1000\], the bundle was compiled for float32\[4, 1000\]/);
  });

  it('compile --train with --optim and --lr writes a training bundle', () => {
    const out = join(dir, 'tln-train.js');
    const r = kiln('compile', 'models/two-layer-net.ts', '-o', out, '--input', '4x1000', '--train', '--optim', 'adam', '--lr', '0.001');
    expect(r.code).toBe(0);
    const run = spawnSync(process.execPath, [out], { cwd: dir, encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/train/);
    expect(kiln('compile', 'models/two-layer-net.ts', '--train', '--optim', 'lbfgs').err).toMatch(/--optim is sgd, adam or adamw/);
  });
});
