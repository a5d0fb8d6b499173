// The optimisation pipeline. Each pass rewrites the graph in place; with KILN_VERIFY=1 (the test
// suite sets it) the verifier runs after every pass, and KILN_DEBUG=passes prints the IR after each.
import { verifyGraph, type Graph } from '../../ir/index.js';
import { convLayouts } from './conv-layout.js';
import { cse } from './cse.js';
import { dce } from './dce.js';
import { fold } from './fold.js';
import { fuse } from './fuse.js';
import { simplify } from './simplify.js';

export const PIPELINE: readonly [string, (g: Graph) => Graph][] = [
  ['fold', fold],
  ['simplify', simplify],
  ['cse', cse],
  ['dce', dce],
  ['conv-layout', convLayouts],
  ['fuse', fuse],
  ['dce', dce],
];

export interface OptimizeOptions {
  /** Stop before fusion and the layout rewrites that serve it (to compare kernel counts, or to debug a fused kernel). */
  fuse?: boolean;
}

export function optimize(g: Graph, opts: OptimizeOptions = {}): Graph {
  // Read through globalThis: a browser has no `process`.
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};
  const verify = env.KILN_VERIFY === '1';
  const debug = (env.KILN_DEBUG ?? '').split(',').includes('passes');
  if (debug) console.error(`-- traced --\n${g}`);
  for (const [name, pass] of PIPELINE) {
    if ((name === 'fuse' || name === 'conv-layout') && opts.fuse === false) continue;
    pass(g);
    if (verify) {
      try {
        verifyGraph(g);
      } catch (e) {
        throw new Error(`after pass ${name}: ${(e as Error).message}\n${g}`);
      }
    }
    if (debug) console.error(`-- after ${name} --\n${g}`);
  }
  return g;
}
