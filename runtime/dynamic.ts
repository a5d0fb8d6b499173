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

// Frames inside Kiln itself (and Node's internals) are skipped to find the user's line.
const INTERNAL = /[\\/](ir|runtime|compiler)[\\/][^\\/]+\.(ts|js)|[\\/]node_modules[\\/]|node:internal|\(native\)|[\\/]dist[\\/]/;

/** `file:line:col` of the first stack frame outside Kiln: the model code that called in. */
export function userSourceLine(stack: string | undefined): string {
  for (const line of (stack ?? '').split('\n').slice(1)) {
    const m = line.match(/\(?((?:file:\/\/)?[^()\s]+:\d+:\d+)\)?\s*$/);
    if (m && !INTERNAL.test(m[1])) return m[1].replace(/^file:\/\//, '');
  }
  return '';
}

/** The module whose forward is running (innermost first), kept by module-call.ts for error messages. */
export const moduleStack: string[] = [];
