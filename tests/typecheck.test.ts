// The whole project (library, compiler, tests, benches, examples) type-checks under its strict
// tsconfig: vitest strips types without checking them, so without this a type error in a test or
// a bench would pass CI.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

it('tsc --noEmit -p . reports no errors', () => {
  const r = spawnSync(process.execPath, [`${ROOT}node_modules/typescript/bin/tsc`, '--noEmit', '-p', '.'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  expect(r.stdout + r.stderr).toBe('');
  expect(r.status).toBe(0);
}, 130_000);
