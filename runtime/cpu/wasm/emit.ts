// A small WebAssembly binary emitter: just what Kiln's hand-written kernels need.
//
// `FuncBuilder` appends instructions to one function body (typed helpers for the opcodes we use,
// SIMD ones included); `emitModule` wraps functions into a module with one linear memory (its own,
// exported as "memory", or imported: see `ImportedMemory`) and exports every function by name. Opcode numbers follow the WebAssembly
// core spec (binary format, section 5.4) and the SIMD (0xfd prefix, LEB128 sub-opcode) and relaxed
// SIMD proposals.

/** Value types (binary encoding). */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof V128;

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  if (n < 0 || !Number.isInteger(n)) throw new Error(`uleb: ${n} is not a non-negative integer`);
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (for i32.const). */
export function sleb(n: number): number[] {
  if (!Number.isInteger(n)) throw new Error(`sleb: ${n} is not an integer`);
  n |= 0;
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

function utf8(s: string): number[] {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
}

/** A vector of items: its count, then the items. */
function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

// Core opcodes.
const OP = {
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  br_if: 0x0d,
  return: 0x0f,
  call: 0x10,
  select: 0x1b,
  local_get: 0x20,
  local_set: 0x21,
  local_tee: 0x22,
  i32_load: 0x28,
  f32_load: 0x2a,
  i32_store: 0x36,
  f32_store: 0x38,
  f32_const: 0x43,
  i32_const: 0x41,
  i32_eqz: 0x45,
  i32_eq: 0x46,
  i32_ne: 0x47,
  i32_lt_s: 0x48,
  i32_gt_s: 0x4a,
  i32_le_s: 0x4c,
  i32_ge_s: 0x4e,
  i32_add: 0x6a,
  i32_sub: 0x6b,
  i32_mul: 0x6c,
  i32_div_u: 0x6e,
  i32_and: 0x71,
  i32_shr_u: 0x76,
  f32_add: 0x92,
  f32_mul: 0x94,
} as const;

// SIMD opcodes (after the 0xfd prefix, as LEB128).
const SIMD = {
  v128_load: 0x00,
  v128_load32_splat: 0x09,
  v128_store: 0x0b,
  v128_const: 0x0c,
  f32x4_extract_lane: 0x1f,
  f32x4_add: 0xe4,
  f32x4_mul: 0xe6,
  f32x4_relaxed_madd: 0x105, // relaxed SIMD: a * b + c, fused or not
} as const;

/** Lane-wise SIMD instructions without immediates (sub-opcodes after 0xfd), for `simdOp`. */
export const SIMD_LANEWISE = {
  'i32x4.splat': 0x11, 'f32x4.splat': 0x13,
  'i32x4.eq': 0x37, 'i32x4.ne': 0x38, 'i32x4.lt_s': 0x39, 'i32x4.gt_s': 0x3b, 'i32x4.le_s': 0x3d, 'i32x4.ge_s': 0x3f,
  'f32x4.eq': 0x41, 'f32x4.ne': 0x42, 'f32x4.lt': 0x43, 'f32x4.gt': 0x44, 'f32x4.le': 0x45, 'f32x4.ge': 0x46,
  'v128.not': 0x4d, 'v128.and': 0x4e, 'v128.andnot': 0x4f, 'v128.or': 0x50, 'v128.xor': 0x51, 'v128.bitselect': 0x52,
  'i8x16.narrow_i16x8_u': 0x66, 'f32x4.ceil': 0x67, 'f32x4.floor': 0x68, 'f32x4.trunc': 0x69,
  'i16x8.narrow_i32x4_u': 0x86, 'i16x8.extend_low_i8x16_u': 0x89,
  'i32x4.abs': 0xa0, 'i32x4.neg': 0xa1, 'i32x4.extend_low_i16x8_u': 0xa9, 'i32x4.shl': 0xab, 'i32x4.shr_s': 0xac,
  'i32x4.add': 0xae, 'i32x4.sub': 0xb1, 'i32x4.mul': 0xb5, 'i32x4.min_s': 0xb6, 'i32x4.max_s': 0xb8,
  'f32x4.abs': 0xe0, 'f32x4.neg': 0xe1, 'f32x4.sqrt': 0xe3, 'f32x4.add': 0xe4, 'f32x4.sub': 0xe5,
  'f32x4.mul': 0xe6, 'f32x4.div': 0xe7, 'f32x4.min': 0xe8, 'f32x4.max': 0xe9,
  'i32x4.trunc_sat_f32x4_s': 0xf8, 'f32x4.convert_i32x4_s': 0xfa,
  'f32x4.demote_f64x2_zero': 0x5e, 'f64x2.promote_low_f32x4': 0x5f, 'f64x2.add': 0xf0,
} as const;
export type SimdLanewise = keyof typeof SIMD_LANEWISE;

const BLOCK_VOID = 0x40;

/** Instructions of one function body. Locals are numbered params first, then `local()`s in order. */
export class FuncBuilder {
  readonly bytes: number[] = [];
  private readonly locals: ValType[] = [];

  constructor(
    readonly name: string,
    readonly params: ValType[],
    readonly results: ValType[] = [],
  ) {}

  /** Declares a new local and returns its index. */
  local(type: ValType): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }

  private op(...b: number[]): this {
    this.bytes.push(...b);
    return this;
  }
  private simd(op: number, ...imm: number[]): this {
    return this.op(0xfd, ...uleb(op), ...imm);
  }
  /** memarg: alignment as log2 of bytes, then a constant byte offset added to the address. */
  private mem(alignLog2: number, offset: number): number[] {
    return [...uleb(alignLog2), ...uleb(offset)];
  }

  // Control. Every block/loop/if is void-typed (values go through locals).
  /** A block's label is its end: br/brIf to it jumps forward, out of the block. */
  block(): this { return this.op(OP.block, BLOCK_VOID); }
  loop(): this { return this.op(OP.loop, BLOCK_VOID); }
  if(): this { return this.op(OP.if, BLOCK_VOID); }
  else(): this { return this.op(OP.else); }
  end(): this { return this.op(OP.end); }
  /** Branch, if the i32 on the stack is nonzero, to the label `depth` levels out (0 = innermost; a loop's label is its start). */
  brIf(depth: number): this { return this.op(OP.br_if, ...uleb(depth)); }
  br(depth: number): this { return this.op(OP.br, ...uleb(depth)); }
  return(): this { return this.op(OP.return); }
  /** Calls function `index` of the module (its position in emitModule's list; no function imports). */
  call(index: number): this { return this.op(OP.call, ...uleb(index)); }
  /** [a, b, cond] -> cond ? a : b */
  select(): this { return this.op(OP.select); }

  // Locals.
  get(i: number): this { return this.op(OP.local_get, ...uleb(i)); }
  set(i: number): this { return this.op(OP.local_set, ...uleb(i)); }
  tee(i: number): this { return this.op(OP.local_tee, ...uleb(i)); }

  // i32 arithmetic.
  i32Const(n: number): this { return this.op(OP.i32_const, ...sleb(n)); }
  i32Add(): this { return this.op(OP.i32_add); }
  i32Sub(): this { return this.op(OP.i32_sub); }
  i32Mul(): this { return this.op(OP.i32_mul); }
  i32Eqz(): this { return this.op(OP.i32_eqz); }
  i32Ne(): this { return this.op(OP.i32_ne); }
  i32Eq(): this { return this.op(OP.i32_eq); }
  i32LtS(): this { return this.op(OP.i32_lt_s); }
  i32GtS(): this { return this.op(OP.i32_gt_s); }
  i32GeS(): this { return this.op(OP.i32_ge_s); }
  i32DivU(): this { return this.op(OP.i32_div_u); }
  i32ShrU(): this { return this.op(OP.i32_shr_u); }
  i32And(): this { return this.op(OP.i32_and); }
  /** local[i] += n */
  incr(i: number, n: number): this { return this.get(i).i32Const(n).i32Add().set(i); }
  /** local[dst] = min(local[total] - local[at], cap): what is left of an extent, at most one block. */
  remaining(dst: number, total: number, at: number, cap: number): this {
    this.get(total).get(at).i32Sub().set(dst);
    return this.get(dst).i32Const(cap).i32GtS().if().i32Const(cap).set(dst).end();
  }

  /** local acc += local a * local b (f32x4): one relaxed_madd (fused where the engine fuses), or mul then add. */
  madd(acc: number, a: number, b: number, relaxed: boolean): this {
    if (relaxed) return this.get(a).get(b).get(acc).f32x4RelaxedMadd().set(acc);
    return this.get(acc).get(a).get(b).f32x4Mul().f32x4Add().set(acc);
  }

  /** `while (local i < local end) { body() }`: a block around a loop, the test first (signed). */
  whileLess(i: number, end: number, body: () => void): this {
    this.block().loop();
    this.get(i).get(end).i32GeS().brIf(1);
    body();
    return this.br(0).end().end();
  }

  // Scalar memory.
  i32Load(offset = 0): this { return this.op(OP.i32_load, ...this.mem(2, offset)); }
  i32Store(offset = 0): this { return this.op(OP.i32_store, ...this.mem(2, offset)); }
  f32Load(offset = 0): this { return this.op(OP.f32_load, ...this.mem(2, offset)); }
  f32Store(offset = 0): this { return this.op(OP.f32_store, ...this.mem(2, offset)); }
  f32Const(x: number): this { return this.op(OP.f32_const, ...new Uint8Array(new Float32Array([x]).buffer)); }
  f32Add(): this { return this.op(OP.f32_add); }
  f32Mul(): this { return this.op(OP.f32_mul); }

  // SIMD.
  v128Load(offset = 0): this { return this.simd(SIMD.v128_load, ...this.mem(4, offset)); }
  v128Store(offset = 0): this { return this.simd(SIMD.v128_store, ...this.mem(4, offset)); }
  /** Loads one 32-bit value and copies it to all four lanes. */
  v128Load32Splat(offset = 0): this { return this.simd(SIMD.v128_load32_splat, ...this.mem(2, offset)); }
  /** A v128 with all sixteen bytes zero. */
  v128Zero(): this { return this.simd(SIMD.v128_const, ...new Array<number>(16).fill(0)); }
  f32x4Add(): this { return this.simd(SIMD.f32x4_add); }
  f32x4Mul(): this { return this.simd(SIMD.f32x4_mul); }
  /** [v] -> f32 lane `lane` (0-3) of v. */
  f32x4ExtractLane(lane: number): this { return this.simd(SIMD.f32x4_extract_lane, lane); }
  /** [a, b, c] -> a * b + c (relaxed SIMD: fused or not, the engine decides). */
  f32x4RelaxedMadd(): this { return this.simd(SIMD.f32x4_relaxed_madd); }
  /** [a, b] -> the 32-bit lanes `lanes` (0-3 from a, 4-7 from b): i8x16.shuffle with the matching byte indices. */
  i32x4Shuffle(lanes: readonly [number, number, number, number]): this {
    return this.simd(0x0d, ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]));
  }

  // SIMD for generated elementwise kernels (runtime/cpu/wasm/elementwise-simd.ts).
  /** A lane-wise SIMD instruction without immediates, by name (see SIMD_LANEWISE). */
  simdOp(name: SimdLanewise): this { return this.simd(SIMD_LANEWISE[name]); }
  /** A v128 constant from its sixteen bytes (little-endian lanes). */
  v128Const(bytes: ArrayLike<number>): this { return this.simd(SIMD.v128_const, ...Array.from(bytes)); }
  /** Loads one byte and copies it to all sixteen lanes. */
  v128Load8Splat(offset = 0): this { return this.simd(0x07, ...this.mem(0, offset)); }
  /** Loads 32 bits into lane 0 and zeroes the rest. */
  v128Load32Zero(offset = 0): this { return this.simd(0x5c, ...this.mem(0, offset)); }
  /** [addr, v] -> v with 32-bit lane `lane` loaded from addr. */
  v128Load32Lane(lane: number, offset = 0): this { return this.simd(0x56, ...this.mem(0, offset), lane); }
  /** [addr, v] -> stores byte lane `lane` of v. */
  v128Store8Lane(lane: number, offset = 0): this { return this.simd(0x58, ...this.mem(0, offset), lane); }
  /** [addr, v] -> stores 32-bit lane `lane` of v. */
  v128Store32Lane(lane: number, offset = 0): this { return this.simd(0x5a, ...this.mem(0, offset), lane); }
  /** v128.load without an alignment promise (operands may start at any element). */
  v128LoadUnaligned(offset = 0): this { return this.simd(SIMD.v128_load, ...this.mem(0, offset)); }
  v128StoreUnaligned(offset = 0): this { return this.simd(SIMD.v128_store, ...this.mem(0, offset)); }

  /** The code-section entry: locals (grouped in runs of one type), body, end. */
  encode(): number[] {
    const groups: number[][] = [];
    for (let i = 0; i < this.locals.length; ) {
      let j = i;
      while (j < this.locals.length && this.locals[j] === this.locals[i]) j++;
      groups.push([...uleb(j - i), this.locals[i]]);
      i = j;
    }
    const body = [...vec(groups), ...this.bytes, OP.end];
    return [...uleb(body.length), ...body];
  }
}

/**
 * A memory the module imports as `env.memory` instead of owning one (the CPU backend's shared heap,
 * runtime/cpu/wasm/heap.ts). A shared memory must declare a maximum; the importer's memory must
 * have at least `minPages` and, when `maxPages` is given, a maximum no larger.
 */
export interface ImportedMemory {
  minPages: number;
  maxPages?: number;
  shared: boolean;
}

/**
 * A module of `funcs` (each exported under its name) and one linear memory: given a page count,
 * its own memory of that many 64 KiB pages, exported as "memory" (growable from JS with
 * memory.grow); given an ImportedMemory, the memory imported as "env"."memory".
 */
export function emitModule(funcs: FuncBuilder[], memory: number | ImportedMemory): Uint8Array<ArrayBuffer> {
  const types = funcs.map((f) => [0x60, ...vec(f.params.map((t) => [t])), ...vec(f.results.map((t) => [t]))]);
  const exports = funcs.map((f, i) => [...utf8(f.name), 0x00, ...uleb(i)]);
  let memorySections: number[];
  if (typeof memory === 'number') {
    memorySections = section(5, vec([[0x00, ...uleb(memory)]])); // memory: min pages, no max
    exports.unshift([...utf8('memory'), 0x02, 0x00]);
  } else {
    if (memory.shared && memory.maxPages === undefined) throw new Error('emitModule: a shared memory import needs maxPages');
    // Limits flags: bit 0 = has a maximum, bit 1 = shared.
    const flags = (memory.maxPages !== undefined ? 1 : 0) | (memory.shared ? 2 : 0);
    const limits = [flags, ...uleb(memory.minPages), ...(memory.maxPages !== undefined ? uleb(memory.maxPages) : [])];
    memorySections = section(2, vec([[...utf8('env'), ...utf8('memory'), 0x02, ...limits]])); // import
  }
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, // "\0asm"
    0x01, 0x00, 0x00, 0x00, // version 1
    ...section(1, vec(types)), // type: one signature per function
    ...(typeof memory === 'number' ? [] : memorySections), // import (section 2 precedes 3)
    ...section(3, vec(funcs.map((_, i) => uleb(i)))), // function: its type index
    ...(typeof memory === 'number' ? memorySections : []), // memory (section 5)
    ...section(7, vec(exports)), // export
    ...section(10, vec(funcs.map((f) => f.encode()))), // code
  ];
  return new Uint8Array(bytes);
}
