#!/usr/bin/env node
// The `kiln` command. Model files are TypeScript, so it runs the CLI's sources through tsx (with
// the `kiln-source` condition, so model files' `import ... from 'kiln'` resolves to the same
// sources); only where tsx is not installed does it use the build (dist/), for .js model files.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

// Relaxed SIMD gives the Wasm matmul a fused multiply-add (about 20 % faster here). Node 20 has it
// only behind a V8 flag, so the CLI's own process turns it on where this node accepts the flag and
// does not already have it; Kiln probes for it and falls back without it.
const RELAXED = '--experimental-wasm-relaxed-simd';
function relaxedSimdFlag() {
  // A module whose one function is f32x4.relaxed_madd of three zero vectors (emitted by runtime/cpu/wasm/emit.ts).
  const probe = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 5, 3, 1, 0, 1, 7, 14, 2,
    6, 109, 101, 109, 111, 114, 121, 2, 0, 1, 102, 0, 0, 10, 61, 1, 59, 0, ...[0, 1, 2].flatMap(() => [253, 12, ...new Array(16).fill(0)]), 253, 133, 2, 11]);
  if (WebAssembly.validate(probe)) return [];
  return spawnSync(process.execPath, [RELAXED, '-e', '0']).status === 0 ? [RELAXED] : [];
}

const built = `${root}dist/compiler/cli/main.js`;
// tsx as an import hook in one process (its CLI would start a second node, without our V8 flag).
const tsx = `${root}node_modules/tsx/dist/loader.mjs`;
if (existsSync(tsx)) {
  const args = [...relaxedSimdFlag(), '--conditions=kiln-source', '--import', pathToFileURL(tsx).href, `${root}compiler/cli/run.ts`, ...process.argv.slice(2)];
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  process.exit(r.status ?? 1);
} else if (existsSync(built)) {
  const { main } = await import(pathToFileURL(built).href);
  process.exitCode = await main(process.argv.slice(2));
} else {
  console.error('kiln: neither tsx (npm install) nor a build (npm run build) is available');
  process.exit(1);
}
