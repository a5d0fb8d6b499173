// The benchmarks run in the suite in a short mode (a few steps each, Kiln only), so they cannot rot:
// bench/peers/run.mjs --smoke runs Kiln compiled and eager on every peer workload and exits 1 when a
// workload gives no figure or fails; bench/compile.ts --quick runs eager against compiled on the
// seed models. Their timings are not asserted (timings belong in bench/RESULTS.md).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSX = `${ROOT}node_modules/.bin/tsx`;

describe('benchmarks, short mode', () => {
  it('bench/peers --smoke: Kiln gives a figure for every workload, and compiled and eager agree', () => {
    const r = spawnSync(process.execPath, ['run.mjs', '--smoke'], { cwd: `${ROOT}bench/peers`, encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr + r.stdout).not.toMatch(/smoke run failed/);
    expect(r.status).toBe(0);
    for (const w of ['TwoLayerNet train loop', 'MNISTConvNet train step', 'matmul 1024^3', 'inference, batch 64', 'inference, batch 4096', 'RNN loop']) {
      expect(r.stdout).toContain(w);
    }
    // The agreement lines: every Kiln column starts from the same weights, so the first losses match.
    for (const line of r.stdout.split('\n').filter((l) => l.startsWith('- '))) {
      for (const m of line.matchAll(/kiln-(?:compiled|eager) ([0-9.e+-]+)/g)) expect(Number(m[1])).toBeLessThan(1e-4);
    }
  }, 150_000);

  it('bench/compile.ts --quick: eager and compiled run side by side on the seed models', () => {
    const r = spawnSync(TSX, ['--conditions=kiln-source', 'bench/compile.ts', '--quick'], { cwd: ROOT, encoding: 'utf8', timeout: 150_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/TwoLayerNet train/);
    expect(r.stdout).toMatch(/MNISTConvNet train/);
    expect(r.stdout).not.toMatch(/^(WARNING|ERROR):/m);
  }, 180_000);
});
