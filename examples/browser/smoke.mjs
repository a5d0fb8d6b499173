// The browser smoke run (manual, not part of the test suite): serves examples/browser/ on
// 127.0.0.1, opens index.html in headless Chromium with WebGPU forced on (software Vulkan when
// there is no GPU), waits for the page to POST its result, prints it, and exits non-zero if WebGPU
// was unavailable or the WebGPU results disagree with the CPU's.
//   node examples/browser/build.mjs && node examples/browser/smoke.mjs [--timeout 120] [--verbose]
// Chromium: $CHROMIUM, else /usr/bin/chromium (Debian: `apt-get install -y chromium`; root
// installs it when missing). Nothing is downloaded but Debian's package.
//
// Each variant of Chromium's flags is tried in turn until one gives the page a WebGPU adapter; the
// first is the one that worked on the machine this was written on (see README.md). The result
// travels back by a plain `fetch('/result')` from the page, so no DevTools-protocol client is needed.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const argValue = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : dflt;
};
const timeoutS = Number(argValue('--timeout', '120'));
const verbose = args.includes('--verbose');
const only = argValue('--variant'); // run one variant by name

if (!existsSync(join(here, 'dist', 'page.js'))) {
  console.error('examples/browser/dist/page.js is missing: run `node examples/browser/build.mjs` first');
  process.exit(2);
}

// ---- Chromium ----------------------------------------------------------------------------------
function findChromium() {
  const candidates = [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean);
  for (const c of candidates) if (existsSync(c)) return c;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && existsSync('/usr/bin/apt-get')) {
    console.log('Chromium is missing: apt-get install -y chromium (Debian package)');
    const r = spawnSync('apt-get', ['install', '-y', 'chromium'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.status === 0 && existsSync('/usr/bin/chromium')) return '/usr/bin/chromium';
  }
  console.error('No Chromium: set $CHROMIUM, or on Debian `apt-get install -y chromium` (as root).');
  process.exit(2);
}
const chromium = findChromium();

const common = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-extensions',
  '--disable-dev-shm-usage',
  '--enable-unsafe-webgpu',
  '--ignore-gpu-blocklist',
  '--enable-logging=stderr',
  '--v=0',
];
/** Flag sets that can give WebGPU an adapter without a GPU, most likely first. */
const variants = [
  { name: 'vulkan-swiftshader', flags: ['--enable-features=Vulkan', '--use-angle=vulkan', '--use-vulkan=swiftshader'] },
  { name: 'webgpu-adapter-swiftshader', flags: ['--enable-features=Vulkan', '--use-angle=swiftshader', '--use-webgpu-adapter=swiftshader'] },
  { name: 'vulkan-native (lavapipe)', flags: ['--enable-features=Vulkan', '--use-angle=vulkan', '--use-vulkan=native', '--disable-vulkan-surface'] },
  { name: 'vulkan-swiftshader-no-surface', flags: ['--enable-features=Vulkan', '--use-angle=vulkan', '--use-vulkan=swiftshader', '--disable-vulkan-surface'] },
].filter((v) => !only || v.name === only);

// ---- a bounded static server ------------------------------------------------------------------
const types = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.map': 'application/json', '.json': 'application/json' };
let onResult = () => {};
const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  if (req.method === 'POST' && url.pathname === '/result') {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => {
      body += c;
      if (body.length > 1 << 20) req.destroy();
    });
    req.on('end', () => {
      res.writeHead(204).end();
      onResult(body);
    });
    return;
  }
  const rel = normalize(decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname)).replace(/^([/\\])+/, '');
  const file = join(here, rel);
  if (req.method !== 'GET' || !(file + sep).startsWith(here + sep) || rel.includes('..') || !existsSync(file)) {
    res.writeHead(404).end('not found');
    return;
  }
  try {
    res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(readFileSync(file));
  } catch {
    res.writeHead(404).end('not found');
  }
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = server.address().port;
const pageUrl = `http://127.0.0.1:${port}/index.html`;
// The whole run is bounded: nothing outlives it.
const overall = setTimeout(() => {
  console.error('smoke: overall time limit reached');
  process.exit(3);
}, (timeoutS * variants.length + 30) * 1000);
overall.unref();

// ---- one Chromium run --------------------------------------------------------------------------
function runVariant(variant) {
  return new Promise((resolve) => {
    const profile = mkdtempSync(join(tmpdir(), 'kiln-chromium-'));
    const flags = [...common, ...variant.flags, `--user-data-dir=${profile}`, pageUrl];
    const started = Date.now();
    const child = spawn(chromium, flags, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES } });
    let log = '';
    const keep = (chunk) => {
      log += chunk;
      if (log.length > 4 << 20) log = log.slice(-(2 << 20));
      if (verbose) process.stderr.write(chunk);
    };
    child.stdout.setEncoding('utf8').on('data', keep);
    child.stderr.setEncoding('utf8').on('data', keep);
    let done = false;
    const finish = (outcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      onResult = () => {};
      const exited = new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', r)));
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const hard = setTimeout(() => child.kill('SIGKILL'), 5000);
      exited.then(() => {
        clearTimeout(hard);
        try {
          // Chromium's helper processes can still be writing to the profile as the browser exits.
          rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
        } catch (e) {
          console.warn(`smoke: could not remove ${profile}: ${e.message}`);
        }
        resolve({ ...outcome, seconds: (Date.now() - started) / 1000, log });
      });
    };
    const timer = setTimeout(() => finish({ error: `no result within ${timeoutS} s` }), timeoutS * 1000);
    onResult = (body) => {
      try {
        finish({ result: JSON.parse(body) });
      } catch (e) {
        finish({ error: `unreadable result: ${e.message}` });
      }
    };
    child.on('exit', (code, signal) => finish({ error: `Chromium exited (${signal ?? code}) before the page reported` }));
    child.on('error', (e) => finish({ error: `cannot start Chromium: ${e.message}` }));
  });
}

/** The lines of Chromium's log worth showing when a variant fails: GPU, Vulkan, Dawn and console. */
function relevantLog(log) {
  return log
    .split('\n')
    .filter((l) => /gpu|vulkan|dawn|webgpu|adapter|CONSOLE|swiftshader|angle|error/i.test(l))
    .slice(-25)
    .join('\n');
}

const version = spawnSync(chromium, ['--version'], { encoding: 'utf8' }).stdout.trim();
console.log(`smoke: ${version} (${chromium}), page ${pageUrl}`);
let final = null;
for (const variant of variants) {
  console.log(`smoke: variant ${variant.name}: ${variant.flags.join(' ')}`);
  const out = await runVariant(variant);
  if (out.result?.adapter) {
    final = { variant, ...out };
    break;
  }
  const why = out.error ?? out.result?.error ?? 'no adapter';
  console.log(`smoke:   no WebGPU in the page (${out.seconds.toFixed(1)} s): ${why.split('\n')[0]}`);
  if (verbose || variant === variants.at(-1)) console.log(relevantLog(out.log));
}
server.close();
clearTimeout(overall);

if (!final) {
  console.error('smoke: FAILED: no variant of Chromium\'s flags gave the page a WebGPU adapter');
  process.exit(1);
}
const r = final.result;
console.log(`smoke: variant ${final.variant.name} gave WebGPU (${final.seconds.toFixed(1)} s with Chromium's start)`);
console.log(JSON.stringify(r, null, 2));
if (!r.ok) {
  console.error(`smoke: FAILED: ${r.error}`);
  process.exit(1);
}
console.log(
  `smoke: OK: Kiln ran on WebGPU in ${version} on ${r.adapter}; outputs within ${r.outputRelDiff.toExponential(2)}, ` +
    `losses within ${r.lossRelDiff.toExponential(2)} relative of the CPU's (tolerance ${r.tolerance})`,
);
