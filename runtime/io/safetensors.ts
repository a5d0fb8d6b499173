// The safetensors format, bytes <-> tensors, with no file system (so it runs in a browser too).
// Layout: an 8-byte little-endian u64 N, an N-byte JSON header (padded with spaces so the data
// starts 8-byte aligned) mapping each name to { dtype, shape, data_offsets: [begin, end] } relative
// to the first data byte, an optional "__metadata__" of strings, then the tensors' bytes,
// little-endian, packed with no gaps or overlaps. A file that breaks any rule is refused with an
// error naming the problem (and the tensor), never read as garbage.
import { fmtShape, numel, type DType } from '../../ir/index.js';
import type { HostArray } from '../backend.js';
import { constant } from '../dispatch.js';
import { Tensor } from '../tensor.js';
import { f16ToF32, f32ToF16 } from '../half.js';

/** Bytes per element of each dtype Kiln reads. */
const ITEM_SIZE: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, BOOL: 1 };
const WRITTEN: Record<DType, string> = { float64: 'F64', float32: 'F32', float16: 'F16', int32: 'I32', bool: 'BOOL' };
/** The reference implementation's cap on the header, which also stops a hostile length early. */
const MAX_HEADER = 100_000_000;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

const fail = (msg: string): never => {
  throw new Error(`safetensors: ${msg}`);
};

// ---- writing ----

/** The bytes of a safetensors file holding `tensors` (read synchronously; see serializeSafetensorsAsync for WebGPU). */
export function serializeSafetensors(tensors: Record<string, Tensor> | Map<string, Tensor>, metadata?: Record<string, string>): Uint8Array {
  const entries = checkEntries(tensors);
  return encode(entries.map(([name, t]) => [name, t, t.dataSync()]), metadata);
}

/** As serializeSafetensors, reading the values with `await data()` (works on every device). */
export async function serializeSafetensorsAsync(tensors: Record<string, Tensor> | Map<string, Tensor>, metadata?: Record<string, string>): Promise<Uint8Array> {
  const entries = checkEntries(tensors);
  const values = await Promise.all(entries.map(([, t]) => t.data()));
  return encode(entries.map(([name, t], i) => [name, t, values[i]]), metadata);
}

function checkEntries(tensors: Record<string, Tensor> | Map<string, Tensor>): [string, Tensor][] {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  for (const [name, t] of entries) {
    if (!(t instanceof Tensor)) fail(`"${name}" is not a Tensor`);
    if (name === '__metadata__') fail('"__metadata__" is reserved for metadata and cannot name a tensor');
  }
  return entries;
}

function encode(entries: [string, Tensor, HostArray][], metadata?: Record<string, string>): Uint8Array {
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) if (typeof v !== 'string') fail(`metadata "${k}" must be a string, got ${typeof v}`);
  }
  // Largest elements first, then by name, as the reference writer does: every tensor then starts
  // at a multiple of its element size, so a reader can view the bytes in place.
  const sorted = [...entries].sort(([an, at], [bn, bt]) => ITEM_SIZE[WRITTEN[bt.dtype]] - ITEM_SIZE[WRITTEN[at.dtype]] || (an < bn ? -1 : an > bn ? 1 : 0));
  const header: Record<string, unknown> = Object.create(null); // so a tensor may be named "__proto__"
  if (metadata !== undefined) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of sorted) {
    const size = t.numel() * ITEM_SIZE[WRITTEN[t.dtype]];
    header[name] = { dtype: WRITTEN[t.dtype], shape: [...t.shape], data_offsets: [offset, offset + size] };
    offset += size;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  let at = 8 + padded;
  for (const [, t, values] of sorted) {
    writeValues(view, out, at, t.dtype, values);
    at += t.numel() * ITEM_SIZE[WRITTEN[t.dtype]];
  }
  return out;
}

function writeValues(view: DataView, out: Uint8Array, at: number, dtype: DType, values: HostArray): void {
  if (dtype === 'float16') {
    for (let i = 0; i < values.length; i++) view.setUint16(at + 2 * i, f32ToF16(values[i]), true);
  } else if (LITTLE_ENDIAN) {
    out.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), at);
  } else {
    const size = ITEM_SIZE[WRITTEN[dtype]];
    for (let i = 0; i < values.length; i++) {
      const p = at + size * i;
      if (dtype === 'float64') view.setFloat64(p, values[i], true);
      else if (dtype === 'float32') view.setFloat32(p, values[i], true);
      else if (dtype === 'int32') view.setInt32(p, values[i], true);
      else view.setUint8(p, values[i]);
    }
  }
}

// ---- reading ----

/** The header's `__metadata__` (empty when there is none). */
export function safetensorsMetadata(bytes: Uint8Array): Record<string, string> {
  return (readHeader(bytes).header.__metadata__ as Record<string, string> | undefined) ?? {};
}

/** The tensors of a safetensors file, on the CPU. I64 becomes int32 (refused if a value does not fit); F16 and BF16 become float32. */
export function parseSafetensors(bytes: Uint8Array): Record<string, Tensor> {
  const { header, dataStart } = readHeader(bytes);
  const dataLength = bytes.length - dataStart;
  const entries: [string, SafetensorsEntry][] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name !== '__metadata__') entries.push([name, checkEntry(name, info, dataLength)]);
  }
  checkCoverage(entries, dataLength);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Record<string, Tensor> = {};
  for (const [name, e] of entries) {
    const [values, dtype] = decode(name, e, bytes, dv, dataStart + e.data_offsets[0]);
    Object.defineProperty(out, name, { value: constant(values, e.shape, dtype, 'cpu'), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function readHeader(bytes: Uint8Array): { header: Record<string, unknown>; dataStart: number } {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('safetensors: expected the file as a Uint8Array');
  if (bytes.length < 8) fail(`the file is truncated: ${bytes.length} bytes, fewer than the 8-byte header length`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(bytes.length - 8)) fail(`the header length ${n} goes beyond the end of the file (${bytes.length - 8} bytes after the length)`);
  if (n > BigInt(MAX_HEADER)) fail(`the header length ${n} is over the limit of ${MAX_HEADER} bytes`);
  const length = Number(n);
  let text = '';
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + length));
  } catch {
    fail('the header is not valid UTF-8');
  }
  if (!text.startsWith('{')) fail('the header is not a JSON object (it must start with "{")');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('the header is not a JSON object');
  const meta = (header as Record<string, unknown>).__metadata__;
  if (meta !== undefined) {
    if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) fail('"__metadata__" must be an object of strings');
    for (const [k, v] of Object.entries(meta as object)) if (typeof v !== 'string') fail(`metadata "${k}" must be a string, got ${JSON.stringify(v)}`);
  }
  return { header: header as Record<string, unknown>, dataStart: 8 + length };
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function checkEntry(name: string, info: unknown, dataLength: number): SafetensorsEntry {
  const where = `tensor "${name}"`;
  if (typeof info !== 'object' || info === null || Array.isArray(info)) return fail(`${where}: its header entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (typeof dtype !== 'string') fail(`${where}: "dtype" is missing or not a string`);
  if (!Array.isArray(shape) || !shape.every(isCount)) fail(`${where}: "shape" must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    fail(`${where}: "data_offsets" must be two non-negative integers, got ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  const d = dtype as string;
  if (!(d in ITEM_SIZE)) fail(`${where}: unsupported dtype "${d}" (Kiln reads F32, F64, F16, BF16, I64, I32 and BOOL)`);
  if (end < begin) fail(`${where}: data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataLength) fail(`${where}: data_offsets [${begin}, ${end}] go beyond the end of the data (${dataLength} bytes)`);
  const need = numel(shape as number[]) * ITEM_SIZE[d];
  if (end - begin !== need) {
    fail(`${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but dtype ${d} and shape ${fmtShape(shape as number[])} need ${need}`);
  }
  return { dtype: d, shape: shape as number[], data_offsets: [begin, end] };
}

/** The tensors must tile the data exactly: sorted by offset, each starts where the previous ended. */
function checkCoverage(entries: [string, SafetensorsEntry][], dataLength: number): void {
  const sorted = [...entries].sort(([, a], [, b]) => a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1]);
  let end = 0;
  let prev = '';
  for (const [name, e] of sorted) {
    const [b, f] = e.data_offsets;
    if (b < end) fail(`tensor "${name}": data_offsets [${b}, ${f}] overlap tensor "${prev}" (which ends at ${end})`);
    if (b > end) fail(`bytes ${end} to ${b} of the data belong to no tensor (a gap before tensor "${name}")`);
    end = f;
    prev = name;
  }
  if (end !== dataLength) fail(`bytes ${end} to ${dataLength} of the data belong to no tensor (${dataLength - end} trailing bytes)`);
}

function decode(name: string, e: SafetensorsEntry, bytes: Uint8Array, dv: DataView, at: number): [HostArray, DType] {
  const n = numel(e.shape);
  // A fresh, aligned copy (`new Uint8Array(view)` copies; Node Buffer's slice would not).
  const raw = () => new Uint8Array(bytes.subarray(at, at + e.data_offsets[1] - e.data_offsets[0])).buffer;
  switch (e.dtype) {
    case 'F64': return [LITTLE_ENDIAN ? new Float64Array(raw()) : Float64Array.from({ length: n }, (_, i) => dv.getFloat64(at + 8 * i, true)), 'float64'];
    case 'F32': return [LITTLE_ENDIAN ? new Float32Array(raw()) : Float32Array.from({ length: n }, (_, i) => dv.getFloat32(at + 4 * i, true)), 'float32'];
    case 'I32': return [LITTLE_ENDIAN ? new Int32Array(raw()) : Int32Array.from({ length: n }, (_, i) => dv.getInt32(at + 4 * i, true)), 'int32'];
    case 'F16': return [Float32Array.from({ length: n }, (_, i) => f16ToF32(dv.getUint16(at + 2 * i, true))), 'float32'];
    case 'BF16': {
      // bfloat16 is the top half of a float32, so this is exact.
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = dv.getUint16(at + 2 * i, true) << 16;
      return [out, 'float32'];
    }
    case 'I64': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const lo = dv.getInt32(at + 8 * i, true);
        const hi = dv.getInt32(at + 8 * i + 4, true);
        if (hi !== lo >> 31) fail(`tensor "${name}": I64 value ${dv.getBigInt64(at + 8 * i, true)} at element ${i} does not fit in int32 (Kiln has no int64)`);
        out[i] = lo;
      }
      return [out, 'int32'];
    }
    default: { // BOOL
      const out = new Uint8Array(bytes.subarray(at, at + n));
      const bad = out.findIndex((v) => v > 1);
      if (bad >= 0) fail(`tensor "${name}": BOOL byte ${out[bad]} at element ${bad} is neither 0 nor 1`);
      return [out, 'bool'];
    }
  }
}
