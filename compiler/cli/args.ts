// A small argument parser: `--flag`, `--key value`, `--key=value`, `-o value`, positionals.
export interface Parsed {
  readonly positionals: string[];
  readonly options: Map<string, string | true>;
}

const SHORT: Record<string, string> = { o: 'out', v: 'verbose', h: 'help' };

export function parseArgs(argv: readonly string[], flags: readonly string[]): Parsed {
  const positionals: string[] = [];
  const options = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--') || (a.startsWith('-') && a.length === 2)) {
      let key = a.startsWith('--') ? a.slice(2) : SHORT[a.slice(1)] ?? a.slice(1);
      let value: string | true | undefined;
      const eq = key.indexOf('=');
      if (eq >= 0) {
        value = key.slice(eq + 1);
        key = key.slice(0, eq);
      } else if (flags.includes(key)) {
        value = true;
      } else {
        value = argv[++i];
        if (value === undefined) throw new UsageError(`option --${key} needs a value`);
      }
      options.set(key, value);
    } else {
      positionals.push(a);
    }
  }
  return { positionals, options };
}

/** An error in how the command was called: printed without a stack trace. */
export class UsageError extends Error {}

export function str(p: Parsed, key: string, fallback?: string): string | undefined {
  const v = p.options.get(key);
  return v === undefined ? fallback : v === true ? fallback : v;
}

export function num(p: Parsed, key: string, fallback?: number): number | undefined {
  const v = str(p, key);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${key} expects a number, got ${JSON.stringify(v)}`);
  return n;
}

/** `64x1000` or `64x1x28x28,10` (several inputs separated by commas). */
export function shapes(text: string): number[][] {
  return text.split(',').map((s) => {
    const dims = s.split('x').map(Number);
    if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw new UsageError(`--input expects shapes like 64x1000, got ${JSON.stringify(text)}`);
    return dims;
  });
}
