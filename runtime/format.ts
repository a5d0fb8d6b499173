// PyTorch-compatible tensor printing: a port of `torch/_tensor_str.py` (dense, strided, real
// dtypes) with PyTorch's default print options. The goal is byte-for-byte the same text as
// `repr(tensor)` for the same values; tests/format.test.ts holds expectations taken from PyTorch.

export type FormatDType = 'float32' | 'float64' | 'float16' | 'int32' | 'bool';

/** PyTorch's default print options (`torch.set_printoptions(profile='default')`, sci_mode=None). */
const PRECISION = 4;
const THRESHOLD = 1000;
const EDGEITEMS = 3;
const LINEWIDTH = 80;

/** `len('tensor(')`: PyTorch's indent for a plain tensor's contents and suffixes. */
const PREFIX = 'tensor(';

// ---------------------------------------------------------------------------------------------
// Exact decimal formatting of doubles, matching Python's `'{:.Nf}'` / `'{:.Ne}'`.
// JavaScript's toFixed / toExponential break exact ties upwards ((0.03125).toFixed(4) is
// '0.0313'), Python rounds them half to even ('0.0312'), so the digits are computed exactly.
// ---------------------------------------------------------------------------------------------

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** |x| = mant * 2^exp exactly, for finite x. */
function decompose(x: number): { mant: bigint; exp: number } {
  f64[0] = x;
  const hi = u32[LITTLE_ENDIAN ? 1 : 0]!;
  const lo = u32[LITTLE_ENDIAN ? 0 : 1]!;
  const biased = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exp: number;
  if (biased === 0) {
    exp = -1074;
  } else {
    mant |= 1n << 52n;
    exp = biased - 1075;
  }
  return { mant, exp };
}

function pow10(n: number): bigint {
  return 10n ** BigInt(n);
}

/** round(|x| * 10^scale) to an integer, ties to even; exact. */
function scaledRound(x: number, scale: number): bigint {
  const { mant, exp } = decompose(x);
  if (mant === 0n) return 0n;
  // value = mant * 2^exp * 10^scale = num / den
  let num = mant;
  let den = 1n;
  if (exp >= 0) num <<= BigInt(exp);
  else den <<= BigInt(-exp);
  if (scale >= 0) num *= pow10(scale);
  else den *= pow10(-scale);
  const q = num / den;
  const r2 = (num % den) * 2n;
  if (r2 > den || (r2 === den && (q & 1n) === 1n)) return q + 1n;
  return q;
}

function signOf(x: number): string {
  return x < 0 || Object.is(x, -0) ? '-' : '';
}

function nonFinite(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  return x > 0 ? 'inf' : '-inf';
}

/** Python's `'{:.<p>f}'.format(x)`. */
export function pyFixed(x: number, p: number): string {
  if (!Number.isFinite(x)) return nonFinite(x);
  const digits = scaledRound(x, p).toString();
  let body: string;
  if (p === 0) {
    body = digits;
  } else {
    const padded = digits.padStart(p + 1, '0');
    body = padded.slice(0, padded.length - p) + '.' + padded.slice(padded.length - p);
  }
  return signOf(x) + body;
}

/** Python's `'{:.<p>e}'.format(x)`. */
export function pyExp(x: number, p: number): string {
  if (!Number.isFinite(x)) return nonFinite(x);
  let e = 0;
  let digits: string;
  if (x === 0) {
    digits = '0'.repeat(p + 1);
  } else {
    // Estimate the decimal exponent, then correct it so that 10^p <= round(|x| * 10^(p-e)) < 10^(p+1).
    e = Math.floor(Math.log10(Math.abs(x)));
    let n = scaledRound(x, p - e);
    const lo = pow10(p);
    const hi = pow10(p + 1);
    for (let guard = 0; guard < 4 && (n < lo || n >= hi); guard++) {
      e += n < lo ? -1 : 1;
      n = scaledRound(x, p - e);
    }
    digits = n.toString();
  }
  const mantissa = p > 0 ? digits[0] + '.' + digits.slice(1) : digits;
  const expSign = e < 0 ? '-' : '+';
  const expDigits = String(Math.abs(e)).padStart(2, '0');
  return signOf(x) + mantissa + 'e' + expSign + expDigits;
}

// ---------------------------------------------------------------------------------------------
// Value preparation
// ---------------------------------------------------------------------------------------------

/** Round a double to the nearest float16 value (ties to even), returned as a double. */
function roundToFloat16(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  if (a >= 65520) return x > 0 ? Infinity : -Infinity; // 65504 + half a ulp rounds to inf
  let quantum: number;
  if (a < 2 ** -14) {
    quantum = 2 ** -24; // subnormals
  } else {
    let e = Math.floor(Math.log2(a));
    if (2 ** e > a) e -= 1;
    else if (2 ** (e + 1) <= a) e += 1;
    quantum = 2 ** (e - 10);
  }
  const y = a / quantum; // exact: division by a power of two
  const f = Math.floor(y);
  const d = y - f;
  const r = d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
  const out = r * quantum;
  return x < 0 ? -out : out;
}

function prepareValues(values: ArrayLike<number>, count: number, dtype: FormatDType): number[] {
  const out = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    const v = Number(values[i]);
    switch (dtype) {
      case 'float32':
        out[i] = Math.fround(v);
        break;
      case 'float16':
        out[i] = roundToFloat16(v);
        break;
      case 'float64':
        out[i] = v;
        break;
      case 'int32':
        out[i] = Math.trunc(v) | 0;
        break;
      case 'bool':
        out[i] = v ? 1 : 0;
        break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// _Formatter
// ---------------------------------------------------------------------------------------------

interface Formatter {
  width: number;
  format(value: number): string;
}

function makeFormatter(vals: readonly number[], dtype: FormatDType): Formatter {
  if (dtype === 'bool') {
    let width = 1;
    for (const v of vals) width = Math.max(width, v ? 4 : 5);
    return { width, format: (v) => (v ? 'True' : 'False').padStart(width, ' ') };
  }
  if (dtype === 'int32') {
    let width = 1;
    for (const v of vals) width = Math.max(width, String(v).length);
    return { width, format: (v) => String(v).padStart(width, ' ') };
  }

  let intMode = true;
  let sciMode = false;
  let maxWidth = 1;
  const nz = vals.filter((v) => Number.isFinite(v) && v !== 0);
  if (nz.length > 0) {
    let min = Infinity;
    let max = 0;
    for (const v of nz) {
      const a = Math.abs(v);
      if (a < min) min = a;
      if (a > max) max = a;
    }
    for (const v of nz) {
      if (v !== Math.ceil(v)) {
        intMode = false;
        break;
      }
    }
    if (intMode) {
      if (max / min > 1000.0 || max > 1.0e8) {
        sciMode = true;
        for (const v of nz) maxWidth = Math.max(maxWidth, pyExp(v, PRECISION).length);
      } else {
        for (const v of nz) maxWidth = Math.max(maxWidth, pyFixed(v, 0).length + 1);
      }
    } else if (max / min > 1000.0 || max > 1.0e8 || min < 1.0e-4) {
      sciMode = true;
      for (const v of nz) maxWidth = Math.max(maxWidth, pyExp(v, PRECISION).length);
    } else {
      for (const v of nz) maxWidth = Math.max(maxWidth, pyFixed(v, PRECISION).length);
    }
  }

  const width = maxWidth;
  const format = (v: number): string => {
    let ret: string;
    if (sciMode) {
      ret = pyExp(v, PRECISION);
    } else if (intMode) {
      ret = pyFixed(v, 0);
      if (Number.isFinite(v)) ret += '.';
    } else {
      ret = pyFixed(v, PRECISION);
    }
    return ret.padStart(width, ' ');
  };
  return { width, format };
}

// ---------------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------------

function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d]!;
  }
  return strides;
}

/** The indices kept along a dimension of size n: all of them, or edgeitems from each end. */
function keptIndices(n: number, summarize: boolean): number[] {
  if (summarize && n > 2 * EDGEITEMS) {
    const idx: number[] = [];
    for (let i = 0; i < EDGEITEMS; i++) idx.push(i);
    for (let i = n - EDGEITEMS; i < n; i++) idx.push(i);
    return idx;
  }
  return Array.from({ length: n }, (_, i) => i);
}

/** `get_summarized_data`: the values the formatter sees (edge items of every dim when summarizing). */
function summarizedValues(vals: readonly number[], shape: readonly number[], strides: readonly number[], summarize: boolean): number[] {
  if (shape.length === 0) return [vals[0]!];
  const out: number[] = [];
  const walk = (dim: number, offset: number): void => {
    const idx = keptIndices(shape[dim]!, summarize);
    if (dim === shape.length - 1) {
      for (const i of idx) out.push(vals[offset + i * strides[dim]!]!);
      return;
    }
    for (const i of idx) walk(dim + 1, offset + i * strides[dim]!);
  };
  walk(0, 0);
  return out;
}

function vectorStr(
  vals: readonly number[],
  offset: number,
  n: number,
  indent: number,
  summarize: boolean,
  fmt: Formatter,
): string {
  const elementLength = fmt.width + 2;
  const elementsPerLine = Math.max(1, Math.floor((LINEWIDTH - indent) / elementLength));
  let data: string[];
  if (summarize && n > 2 * EDGEITEMS) {
    data = [];
    for (let i = 0; i < EDGEITEMS; i++) data.push(fmt.format(vals[offset + i]!));
    data.push(' ...');
    for (let i = n - EDGEITEMS; i < n; i++) data.push(fmt.format(vals[offset + i]!));
  } else {
    data = [];
    for (let i = 0; i < n; i++) data.push(fmt.format(vals[offset + i]!));
  }
  const lines: string[] = [];
  for (let i = 0; i < data.length; i += elementsPerLine) {
    lines.push(data.slice(i, i + elementsPerLine).join(', '));
  }
  return '[' + lines.join(',\n' + ' '.repeat(indent + 1)) + ']';
}

function tensorStrWithFormatter(
  vals: readonly number[],
  shape: readonly number[],
  strides: readonly number[],
  dim: number,
  offset: number,
  indent: number,
  summarize: boolean,
  fmt: Formatter,
): string {
  const rank = shape.length - dim;
  if (rank === 0) return fmt.format(vals[offset]!);
  if (rank === 1) return vectorStr(vals, offset, shape[dim]!, indent, summarize, fmt);

  const n = shape[dim]!;
  const sub = (i: number): string =>
    tensorStrWithFormatter(vals, shape, strides, dim + 1, offset + i * strides[dim]!, indent + 1, summarize, fmt);
  const slices: string[] = [];
  if (summarize && n > 2 * EDGEITEMS) {
    for (let i = 0; i < EDGEITEMS; i++) slices.push(sub(i));
    slices.push('...');
    for (let i = n - EDGEITEMS; i < n; i++) slices.push(sub(i));
  } else {
    for (let i = 0; i < n; i++) slices.push(sub(i));
  }
  return '[' + slices.join(',' + '\n'.repeat(rank - 1) + ' '.repeat(indent + 1)) + ']';
}

/** `_add_suffixes` (force_newline is false for dense tensors), including its `+ 1` quirk. */
function addSuffixes(tensorStr: string, suffixes: readonly string[], indent: number): string {
  const parts = [tensorStr];
  let lastLineLen = tensorStr.length - tensorStr.lastIndexOf('\n') + 1;
  for (const suffix of suffixes) {
    if (lastLineLen + suffix.length + 2 > LINEWIDTH) {
      parts.push(',\n' + ' '.repeat(indent) + suffix);
      lastLineLen = indent + suffix.length;
    } else {
      parts.push(', ' + suffix);
      lastLineLen += suffix.length + 2;
    }
  }
  parts.push(')');
  return parts.join('');
}

/**
 * PyTorch's `repr(tensor)` for the values of a tensor: `tensor([[ 0.1000, -1.5000], ...])`.
 * values: flat row-major (C order), length = product of shape; bool values are 0/1.
 * extras: already-formatted trailing fields, appended as PyTorch appends them, e.g.
 *   ['dtype=float64'] or ['requiresGrad=true'] or ['gradFn=<MmBackward>'] (the caller decides their text).
 *
 * Values are first rounded to the dtype (Math.fround for float32, nearest float16 for float16,
 * truncation for int32), as a PyTorch tensor of that dtype would hold them. For an empty tensor
 * of more than one dim, `size=(...)` is put before the extras, as PyTorch does.
 */
export function formatTensor(
  values: ArrayLike<number>,
  shape: readonly number[],
  dtype: FormatDType,
  extras: string[] = [],
): string {
  const indent = PREFIX.length;
  const numel = shape.reduce((a, b) => a * b, 1);
  const suffixes: string[] = [];
  let body: string;
  if (numel === 0) {
    if (shape.length !== 1) suffixes.push('size=(' + shape.join(', ') + ')');
    body = '[]';
  } else {
    if (values.length < numel) {
      throw new Error(`formatTensor: ${values.length} values for shape [${shape.join(', ')}]`);
    }
    const vals = prepareValues(values, numel, dtype);
    const strides = stridesOf(shape);
    const summarize = numel > THRESHOLD;
    const fmt = makeFormatter(summarize ? summarizedValues(vals, shape, strides, true) : vals, dtype);
    body = tensorStrWithFormatter(vals, shape, strides, 0, 0, indent, summarize, fmt);
  }
  suffixes.push(...extras);
  return addSuffixes(PREFIX + body, suffixes, indent);
}
