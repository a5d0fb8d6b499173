// The op table: every primitive op Kiln has, by name.
import type { OpDef } from '../op.js';
import * as conv from './conv.js';
import * as creation from './creation.js';
import * as elementwise from './elementwise.js';
import * as indexing from './indexing.js';
import * as linalg from './linalg.js';
import * as movement from './movement.js';
import * as reduce from './reduce.js';

export { conv, creation, elementwise, indexing, linalg, movement, reduce };

function collect(...modules: object[]): Record<string, OpDef> {
  const table: Record<string, OpDef> = {};
  for (const m of modules) {
    for (const v of Object.values(m)) {
      if (v && typeof v === 'object' && 'lowering' in v && 'infer' in v) table[(v as OpDef).name] = v as OpDef;
    }
  }
  return table;
}

export const OPS: Readonly<Record<string, OpDef>> = collect(conv, creation, elementwise, indexing, linalg, movement, reduce);
