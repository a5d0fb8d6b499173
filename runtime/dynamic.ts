// What makes a traced function dynamic: reading a tensor's values, converting a tensor to a number
// (a comparison or a branch on it), or drawing random numbers while kiln.compile traces it. The
// tracer lets this error stop the trace, then refuses or breaks the graph, naming the reason and
// the line of the model's source that did it.

export class DynamicTraceError extends Error {
  readonly where: string;
  constructor(readonly reason: string, where?: string) {
    const at = where ?? userSourceLine(new Error().stack);
    super(`${reason}${at ? ` at ${at}` : ''}`);
    this.name = 'DynamicTraceError';
    this.where = at;
  }
}

// Frames inside Kiln itself (its ir/, runtime/ and compiler/ folders, wherever the package lives)
// and Node's internals are skipped to find the user's line.
const KILN_ROOT = new URL('..', import.meta.url).pathname;
const KILN_DIRS = ['ir/', 'runtime/', 'compiler/'].map((d) => KILN_ROOT + d);
const isInternal = (file: string) => KILN_DIRS.some((d) => file.startsWith(d)) || /node:internal|[\\/]node_modules[\\/]|\(native\)/.test(file);

/** `file:line:col` of the first stack frame outside Kiln: the model code that called in. */
export function userSourceLine(stack: string | undefined): string {
  for (const line of (stack ?? '').split('\n').slice(1)) {
    const m = line.match(/\(?((?:file:\/\/)?[^()\s]+:\d+:\d+)\)?\s*$/);
    const file = m?.[1].replace(/^file:\/\//, '');
    if (file && !isInternal(file)) return file;
  }
  return '';
}

/** The module whose forward is running (innermost first), kept by module-call.ts for error messages. */
export const moduleStack: string[] = [];

/** Records, on an error escaping a module's forward, which modules it passed through (innermost last). */
export function noteModulePath(e: unknown): void {
  if (e && typeof e === 'object' && !('kilnModules' in e)) Object.defineProperty(e, 'kilnModules', { value: [...moduleStack], enumerable: false });
}
