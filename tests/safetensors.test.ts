// Weights on disk: the safetensors format (round trips, the bytes checked by hand, a file written
// from real PyTorch tensors, and every kind of corrupt file refused with its reason) and
// kiln.save / kiln.load.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';
import { parseSafetensors, safetensorsMetadata, serializeSafetensors, serializeSafetensorsAsync } from '../runtime/io/safetensors.js';
import { f16ToF32, f32ToF16 } from '../runtime/half.js';
import { load, loadAsync, save, saveAsync } from '../runtime/io/save-load.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/safetensors/${name}`, import.meta.url));

function sameTensor(got: Tensor, ref: Tensor): void {
  expect(got.dtype).toBe(ref.dtype);
  expect([...got.shape]).toEqual([...ref.shape]);
  expect(Array.from(got.dataSync())).toEqual(Array.from(ref.dataSync())); // toEqual tells -0 from 0 and matches NaN
}

describe('round trip', () => {
  it('keeps every dtype, 0-d and empty tensors, exactly', () => {
    const tensors: Record<string, Tensor> = {
      f32: kiln.tensor([[1.5, -0, NaN], [Infinity, -Infinity, 1e-45]]),
      f64: kiln.tensor([Math.PI, -1e-310, 1 / 3], { dtype: 'float64' }),
      i32: kiln.tensor([-2147483648, 0, 2147483647], { dtype: 'int32' }),
      mask: kiln.tensor([[true, false], [false, true]]),
      scalar: kiln.tensor(7, { dtype: 'float64' }),
      emptyF32: kiln.zeros([0, 3]),
      emptyBool: kiln.zeros([2, 0], { dtype: 'bool' }),
      '__proto__': kiln.tensor([1]),
    };
    const back = parseSafetensors(serializeSafetensors(tensors, { format: 'pt' }));
    expect(Object.keys(back).sort()).toEqual(Object.keys(tensors).sort());
    for (const k of Object.keys(tensors)) sameTensor(back[k], tensors[k]);
  });
  it('reads strided views by their logical values, and takes a Map', () => {
    const base = kiln.arange(6, { dtype: 'float32' }).reshape([2, 3]);
    const back = parseSafetensors(serializeSafetensors(new Map([['t', base.t()]])));
    expect(back.t.tolistSync()).toEqual([[0, 3], [1, 4], [2, 5]]);
  });
  it('serializeSafetensorsAsync gives the same bytes', async () => {
    const tensors = { a: kiln.tensor([1, 2]), b: kiln.tensor([3], { dtype: 'int32' }) };
    expect(await serializeSafetensorsAsync(tensors)).toEqual(serializeSafetensors(tensors));
  });
  it('returns tensors that own their memory (not views of the file buffer)', () => {
    const bytes = serializeSafetensors({ a: kiln.tensor([1, 2]) });
    const a = parseSafetensors(bytes).a;
    bytes.fill(0);
    expect(a.tolistSync()).toEqual([1, 2]);
  });
});

describe('the bytes written, checked by hand', () => {
  it('has the u64 length, compact JSON, 8-byte padding, size-then-name order and little-endian data', () => {
    const bytes = serializeSafetensors(
      { b: kiln.tensor([1, 2]), c: kiln.tensor(true), a: kiln.tensor([7], { dtype: 'int32' }), d: kiln.tensor([-2], { dtype: 'float64' }) },
      { k: 'v' },
    );
    const json = '{"__metadata__":{"k":"v"},' +
      '"d":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},' +
      '"a":{"dtype":"I32","shape":[1],"data_offsets":[8,12]},' +
      '"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]},' +
      '"c":{"dtype":"BOOL","shape":[],"data_offsets":[20,21]}}';
    const n = Math.ceil(json.length / 8) * 8;
    expect(n % 8).toBe(0);
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    expect(dv.getBigUint64(0, true)).toBe(BigInt(n));
    expect(new TextDecoder().decode(bytes.subarray(8, 8 + n))).toBe(json + ' '.repeat(n - json.length));
    expect(bytes.length).toBe(8 + n + 21);
    expect([...bytes.subarray(8 + n)]).toEqual([
      0, 0, 0, 0, 0, 0, 0, 0xc0, // -2 as f64
      7, 0, 0, 0, // 7 as i32
      0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, // 1, 2 as f32
      1, // true
    ]);
  });
  it('writes an empty file as just the header', () => {
    const bytes = serializeSafetensors({});
    expect(bytes.length).toBe(16);
    expect(new TextDecoder().decode(bytes.subarray(8))).toBe('{}      ');
    expect(parseSafetensors(bytes)).toEqual({});
  });
  it('refuses what it cannot write', () => {
    expect(() => serializeSafetensors({ __metadata__: kiln.tensor([1]) })).toThrow(/"__metadata__" is reserved/);
    expect(() => serializeSafetensors({ x: [1, 2] as unknown as Tensor })).toThrow(/"x" is not a Tensor/);
    expect(() => serializeSafetensors({}, { n: 1 as unknown as string })).toThrow(/metadata "n" must be a string/);
  });
});

describe('a file written from real PyTorch tensors', () => {
  const expected = JSON.parse(readFileSync(fixture('torch_state.json'), 'utf8'));
  it('loads every tensor: Linear and BatchNorm1d state dicts (int64 num_batches_tracked), F16, BF16, empty, 0-d', () => {
    const got = load(fixture('torch_state.safetensors'));
    expect(Object.keys(got).sort()).toEqual(Object.keys(expected.tensors).sort());
    for (const [name, ref] of Object.entries(expected.tensors) as [string, { dtype: string; shape: number[]; data: (number | boolean)[] }][]) {
      expect(got[name].dtype, name).toBe(ref.dtype);
      expect([...got[name].shape], name).toEqual(ref.shape);
      const values = Array.from(got[name].dataSync(), (v) => (ref.dtype === 'bool' ? v === 1 : v));
      expect(values, name).toEqual(ref.dtype === 'float32' ? ref.data.map((v) => Math.fround(v as number)) : ref.data);
    }
    expect(got['bn.num_batches_tracked'].itemSync()).toBe(2);
  });
  it('reads its metadata', () => {
    expect(safetensorsMetadata(readFileSync(fixture('torch_state.safetensors')))).toEqual(expected.metadata);
  });
});

describe('kiln.save / kiln.load', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-st-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  it('writes a state dict and reads it back (sync and async)', async () => {
    const sd = { 'fc.weight': kiln.randn([4, 3]), 'fc.bias': kiln.zeros([4]), steps: kiln.tensor(3, { dtype: 'int32' }) };
    save(sd, join(dir, 'a.safetensors'));
    await saveAsync(sd, join(dir, 'b.safetensors'));
    expect(readFileSync(join(dir, 'a.safetensors'))).toEqual(readFileSync(join(dir, 'b.safetensors')));
    const back = load(join(dir, 'a.safetensors'));
    for (const k of Object.keys(sd)) sameTensor(back[k], sd[k as keyof typeof sd]);
    const backAsync = await loadAsync(join(dir, 'b.safetensors'));
    sameTensor(backAsync['fc.weight'], sd['fc.weight']);
  });
});

// ---- corrupt files: each refused with its reason ----

const enc = (s: string) => new TextEncoder().encode(s);

/** A file by hand: `header` (object, raw string or raw bytes), unpadded, then `data`. */
function file(header: unknown, data: number[] | Uint8Array = [], opts: { length?: bigint } = {}): Uint8Array {
  const h = header instanceof Uint8Array ? header : enc(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, opts.length ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}
const f32 = (offsets: [number, number], shape = [1]) => ({ dtype: 'F32', shape, data_offsets: offsets });

describe('corrupt files are refused, never read as garbage', () => {
  const good = file({ a: f32([0, 4]) }, [0, 0, 0x80, 0x3f]);
  it('a well-formed hand-written file (unpadded header) reads', () => {
    expect(parseSafetensors(good).a.tolistSync()).toEqual([1]);
  });
  const cases: [string, Uint8Array, RegExp][] = [
    ['fewer than 8 bytes', new Uint8Array([1, 0, 0]), /truncated: 3 bytes, fewer than the 8-byte header length/],
    ['a header length beyond the file', file({ a: f32([0, 4]) }, [0, 0, 0x80, 0x3f], { length: 1000n }), /header length 1000 goes beyond the end of the file/],
    ['a huge u64 header length', file('{}', [], { length: 0xffffffffffffffffn }), /header length 18446744073709551615 goes beyond/],
    ['a truncated data section', good.subarray(0, good.length - 1), /tensor "a": data_offsets \[0, 4\] go beyond the end of the data \(3 bytes\)/],
    ['bad JSON', file('{"a": {"dtype": "F32",'), /header is not valid JSON/],
    ['a header that is not an object', file('[1, 2]  '), /not a JSON object \(it must start with "{"\)/],
    ['invalid UTF-8', file(new Uint8Array([0x7b, 0xff, 0x7d])), /header is not valid UTF-8/],
    ['an unsupported dtype', file({ a: { dtype: 'I16', shape: [2], data_offsets: [0, 4] } }, [0, 0, 0, 0]), /tensor "a": unsupported dtype "I16"/],
    ['a missing dtype', file({ a: { shape: [1], data_offsets: [0, 4] } }, [0, 0, 0, 0]), /tensor "a": "dtype" is missing/],
    ['a bad shape', file({ a: f32([0, 4], [-1]) }, [0, 0, 0, 0]), /tensor "a": "shape" must be an array of non-negative integers/],
    ['bad data_offsets', file({ a: { dtype: 'F32', shape: [1], data_offsets: [0] } }, [0, 0, 0, 0]), /tensor "a": "data_offsets" must be two non-negative integers/],
    ['offsets that end before they begin', file({ a: f32([4, 0], [0]) }, [0, 0, 0, 0]), /tensor "a": data_offsets \[4, 0\] end before they begin/],
    ['offsets out of range', file({ a: f32([4, 8]) }, [0, 0, 0, 0]), /tensor "a": data_offsets \[4, 8\] go beyond the end of the data \(4 bytes\)/],
    ['offsets not matching dtype x shape', file({ a: f32([0, 4], [2]) }, [0, 0, 0, 0]), /tensor "a": data_offsets \[0, 4\] hold 4 bytes, but dtype F32 and shape \[2\] need 8/],
    ['overlapping tensors', file({ a: f32([0, 4]), b: f32([2, 6]) }, new Uint8Array(6)), /tensor "b": data_offsets \[2, 6\] overlap tensor "a"/],
    ['the same bytes twice', file({ a: f32([0, 4]), b: f32([0, 4]) }, new Uint8Array(4)), /overlap tensor "a"/],
    ['a gap between tensors', file({ a: f32([0, 4]), b: f32([8, 12]) }, new Uint8Array(12)), /bytes 4 to 8 of the data belong to no tensor \(a gap before tensor "b"\)/],
    ['a gap at the start', file({ a: f32([4, 8]) }, new Uint8Array(8)), /bytes 0 to 4 of the data belong to no tensor/],
    ['trailing bytes', file({ a: f32([0, 4]) }, new Uint8Array(6)), /bytes 4 to 6 of the data belong to no tensor \(2 trailing bytes\)/],
    ['non-string metadata', file({ __metadata__: { n: 1 } }), /metadata "n" must be a string/],
    ['an I64 that does not fit int32', file({ n: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, [5, 0, 0, 0, 0, 0, 0, 0, 0, 0xf2, 0x05, 0x2a, 1, 0, 0, 0]),
      /tensor "n": I64 value 5000000000 at element 1 does not fit in int32/],
    ['a BOOL byte other than 0 or 1', file({ m: { dtype: 'BOOL', shape: [2], data_offsets: [0, 2] } }, [1, 2]), /tensor "m": BOOL byte 2 at element 1 is neither 0 nor 1/],
  ];
  for (const [what, bytes, message] of cases) {
    it(what, () => expect(() => parseSafetensors(bytes)).toThrow(message));
  }
  it('reads negative I64 values that fit', () => {
    const t = parseSafetensors(file({ n: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0x80, 0xff, 0xff, 0xff, 0xff])).n;
    expect(t.dtype).toBe('int32');
    expect(t.tolistSync()).toEqual([-1, -2147483648]);
  });
  it('load() names a missing file', () => {
    expect(() => load('/nonexistent/kiln.safetensors')).toThrow(/ENOENT/);
  });
});

describe('half precision conversion', () => {
  it('f16ToF32 then f32ToF16 gives back every non-NaN bit pattern', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = f16ToF32(h);
      if (Number.isNaN(v)) continue;
      if (f32ToF16(v) !== h) throw new Error(`0x${h.toString(16)} -> ${v} -> 0x${f32ToF16(v).toString(16)}`);
    }
  });
  it('rounds to nearest even and overflows to infinity', () => {
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // halfway, to even (down)
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // halfway, to even (up)
    expect(f32ToF16(65519)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00);
    expect(f32ToF16(2 ** -25)).toBe(0); // halfway to the smallest subnormal, to even
    expect(f32ToF16(-(2 ** -24) * 1.5)).toBe(0x8002);
  });
});
