#!/usr/bin/env node
// The `kiln` command. Model files are TypeScript, so it runs the CLI's sources through tsx (with
// the `kiln-source` condition, so model files' `import ... from 'kiln'` resolves to the same
// sources); only where tsx is not installed does it use the build (dist/), for .js model files.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

const built = `${root}dist/compiler/cli/main.js`;
// tsx as an import hook (its own CLI would start yet another node process).
const tsx = `${root}node_modules/tsx/dist/loader.mjs`;
if (existsSync(tsx)) {
  const args = ['--conditions=kiln-source', '--import', pathToFileURL(tsx).href, `${root}compiler/cli/run.ts`, ...process.argv.slice(2)];
  const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
  process.exit(r.status ?? 1);
} else if (existsSync(built)) {
  const { main } = await import(pathToFileURL(built).href);
  process.exitCode = await main(process.argv.slice(2));
} else {
  console.error('kiln: neither tsx (npm install) nor a build (npm run build) is available');
  process.exit(1);
}
