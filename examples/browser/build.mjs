// Bundles the browser smoke run's page script (examples/browser/page.ts) for the browser:
//   node examples/browser/build.mjs        # -> examples/browser/dist/page.js (+ page.js.map, meta.json)
// 'kiln' resolves to the TypeScript sources through the package's `kiln-source` export condition.
// The build fails if anything Node-only reaches the bundle: a node: builtin, Dawn's `webgpu` package,
// ts-morph, esbuild, or the compiler's Node-side files (bundle.ts, analyze.ts, cli/). No
// `define` or shim is needed: Kiln reads `process` only through `globalThis`.
import { build } from 'esbuild';
import { statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const outfile = join(here, 'dist', 'page.js');

const result = await build({
  entryPoints: [join(here, 'page.ts')],
  outfile,
  bundle: true,
  platform: 'browser',
  format: 'esm',
  conditions: ['kiln-source'],
  target: ['chrome113'], // WebGPU shipped in Chrome 113; `using` and friends are lowered
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
  absWorkingDir: root,
});

const inputs = Object.keys(result.metafile.inputs);
const nodeOnly = /^node:|(^|\/)node_modules\/(webgpu|ts-morph|esbuild|@ts-morph)\/|(^|\/)compiler\/(bundle|analyze)\.ts$|(^|\/)compiler\/cli\//;
const leaked = inputs.filter((f) => nodeOnly.test(f));
const externals = Object.values(result.metafile.outputs).flatMap((o) => o.imports.filter((i) => i.external).map((i) => i.path));
writeFileSync(join(here, 'dist', 'meta.json'), JSON.stringify(result.metafile, null, 1));

const bytes = statSync(outfile).size;
const fromNodeModules = inputs.filter((f) => f.includes('node_modules/'));
console.log(
  `${relative(process.cwd(), outfile)}: ${(bytes / 1024).toFixed(1)} KiB from ${inputs.length} inputs ` +
    `(${fromNodeModules.length} from node_modules${fromNodeModules.length ? `: ${fromNodeModules.join(', ')}` : ''})`,
);
if (externals.length) console.log(`left as imports (external): ${externals.join(', ')}`);
if (leaked.length) {
  console.error(`Node-only modules reached the browser bundle:\n  ${leaked.join('\n  ')}`);
  process.exit(1);
}
