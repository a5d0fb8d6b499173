#!/usr/bin/env node
// The `kiln` command. Runs the built CLI (dist/) when there is one; otherwise the TypeScript
// sources through tsx, with the `kiln-source` condition so model files' `import ... from 'kiln'`
// resolves to the same sources.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const built = `${root}dist/compiler/cli/main.js`;
if (existsSync(built) && !process.env.KILN_FROM_SOURCE) {
  const { main } = await import(pathToFileURL(built).href);
  process.exitCode = await main(process.argv.slice(2));
} else {
  const tsx = `${root}node_modules/tsx/dist/cli.mjs`;
  if (!existsSync(tsx)) {
    console.error('kiln: neither a build (npm run build) nor tsx (npm install) is available');
    process.exit(1);
  }
  const r = spawnSync(process.execPath, [tsx, '--conditions=kiln-source', `${root}compiler/cli/run.ts`, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
