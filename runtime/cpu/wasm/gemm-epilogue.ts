// A matmul's fused epilogue (bias, ReLU, a ReLU gradient's mask: an Expr of the product `$0` and
// extra operands `$1...`, from compiler/passes/fuse.ts rule 5) applied by the Wasm GEMMs as they
// store C: to the register tile's accumulators (f32x4), or to one element of an edge tile (lane 0),
// through the same lane-wise code as the elementwise kernels (./simd-lanes.ts). The product never
// makes a second trip through memory, and a small matmul needs no second kernel call.
//
// The GEMM functions take the epilogue's operands as a block in memory: per extra, the byte
// address of its element at C(0, 0) of the call, and its byte strides along C's rows and columns
// (EXTRA_WORDS i32s each). Their address param is 0 when no epilogue is due yet (the GEMMs sum K
// in blocks into C, and the epilogue belongs to the last).
import type { DType, Expr } from '../../../ir/index.js';
import { I32, V128, type FuncBuilder } from './emit.js';
import { kindOf, Lanes, Unsupported, type LaneInput } from './simd-lanes.js';

/** How an extra lies along C's rows: 'v' contiguous, 's' a fixed step apart, 'r' one value per row (splat). */
export type ExtraMode = 'v' | 's' | 'r';

export interface GemmEpilogue {
  /** $0 the product (float32), $1... the extras. */
  readonly expr: Expr;
  readonly extras: readonly { readonly dtype: DType; readonly mode: ExtraMode }[];
}

/** i32 words per extra in the block: address, row stride, column stride (bytes). */
export const EXTRA_WORDS = 3;

/** The mode an extra of column stride `colStride` (elements) is read in. */
export const extraMode = (colStride: number): ExtraMode => (colStride === 1 ? 'v' : colStride === 0 ? 'r' : 's');

/**
 * Emits into a GEMM driver: local `into` = the epilogue block `epi` when the block of K starting at
 * `pc`, `kc` long, is the last of K's (the one whose sums are final), else 0. All are locals/params.
 */
export function epilogueWithLastBlock(f: FuncBuilder, epi: number, pc: number, kc: number, K: number, into: number): void {
  f.get(epi).i32Const(0).get(pc).get(kc).i32Add().get(K).i32GeS().select().set(into);
}

/** A key naming the epilogue's code (the GEMM module is built once per key). */
export const epilogueKey = (e: GemmEpilogue, exprKey: string): string => `${exprKey}|${e.extras.map((x) => `${x.dtype}:${x.mode}`).join(',')}`;

/**
 * The epilogue's code in one GEMM function. `init` reads the block into locals; the function then
 * keeps, per extra, an address (`at[j]`, a local it moves like its C pointer) and emits `apply`
 * wherever it stores C.
 */
export class EpilogueCode {
  /** Per extra: the address local the function moves with its tiles, and its byte strides along C's rows and columns. */
  readonly at: number[];
  readonly rs: number[];
  readonly cs: number[];
  /** Per extra: the address of the row being stored (rowStart, nextRow). */
  private readonly rowAt: number[];
  private readonly lanes: Lanes;
  private readonly addr: number;

  constructor(private readonly f: FuncBuilder, readonly spec: GemmEpilogue) {
    for (const x of spec.extras) {
      kindOf(x.dtype); // throws Unsupported for a dtype the lanes cannot hold
      if (x.dtype === 'bool' && x.mode === 's') throw new Unsupported('a strided bool epilogue operand');
    }
    this.at = spec.extras.map(() => f.local(I32));
    this.rs = spec.extras.map(() => f.local(I32));
    this.cs = spec.extras.map(() => f.local(I32));
    this.rowAt = spec.extras.map(() => f.local(I32));
    this.addr = f.local(I32);
    this.lanes = new Lanes(f);
  }

  /** Starts a tile's stores at its first row (at[]). */
  rowStart(): void {
    this.spec.extras.forEach((_, j) => this.f.get(this.at[j]).set(this.rowAt[j]));
  }

  /** Moves the stores on to the tile's next row. */
  nextRow(): void {
    this.spec.extras.forEach((_, j) => this.f.get(this.rowAt[j]).get(this.rs[j]).i32Add().set(this.rowAt[j]));
  }

  /**
   * Leaves on the stack the epilogue of the f32x4 in local `value` for the four C elements at
   * column `col` (a constant) of the current row (rowStart, nextRow): the tiles' full-width
   * stores. Contiguous extras take their column offset as a constant, not a multiply.
   */
  applyRow(value: number, col: number): void {
    const f = this.f;
    this.expr(value, true, (x, j) => {
      f.get(this.rowAt[j]);
      if (x.mode === 'v' && col > 0) f.i32Const(col * (x.dtype === 'bool' ? 1 : 4)).i32Add();
      if (x.mode === 's' && col > 0) f.get(this.cs[j]).i32Const(col).i32Mul().i32Add();
    });
  }

  /**
   * Scalar f32 on the stack -> its epilogue (f32) on the stack, for C's element `row` rows and
   * `col` columns from where at[] points: each a constant, or a local holding the count.
   */
  applyScalar(row: number | { local: number }, col: number | { local: number }): void {
    const f = this.f;
    const v = f.local(V128);
    f.simdOp('f32x4.splat').set(v);
    this.expr(v, false, (_, j) => {
      f.get(this.at[j]);
      for (const [n, stride] of [[row, this.rs[j]], [col, this.cs[j]]] as const) {
        if (typeof n !== 'number') f.get(stride).get(n.local).i32Mul().i32Add();
        else if (n !== 0) f.get(stride).i32Const(n).i32Mul().i32Add();
      }
    });
    f.f32x4ExtractLane(0);
  }

  /**
   * The epilogue of the product in local `value` (four lanes, or lane 0 when !vector) onto the
   * stack, each extra read from the address `place(extra, j)` pushes.
   */
  private expr(value: number, vector: boolean, place: (x: GemmEpilogue['extras'][number], j: number) => void): void {
    const f = this.f, lanes = this.lanes;
    const inputs: LaneInput[] = [
      { dtype: 'float32', push: () => void f.get(value) },
      ...this.spec.extras.map((x, j): LaneInput => ({
        dtype: x.dtype,
        push: () => {
          place(x, j);
          f.set(this.addr);
          if (!vector || x.mode === 'v') lanes.load(x.dtype, vector, this.addr);
          else if (x.mode === 's') lanes.loadStepped(true, this.addr, this.cs[j]);
          else {
            f.get(this.addr);
            lanes.loadSplat(x.dtype);
          }
        },
      })),
    ];
    lanes.expr(this.spec.expr, inputs, vector, 'f');
  }

  /** Reads the block at local `block` into the locals, each address moved to C's element (row, col), locals holding element indices. */
  init(block: number, row: number, col: number): void {
    const f = this.f;
    this.spec.extras.forEach((_, j) => {
      const base = 4 * EXTRA_WORDS * j;
      f.get(block).i32Load(base + 4).set(this.rs[j]);
      f.get(block).i32Load(base + 8).set(this.cs[j]);
      f.get(block).i32Load(base).get(row).get(this.rs[j]).i32Mul().i32Add().get(col).get(this.cs[j]).i32Mul().i32Add().set(this.at[j]);
    });
  }

  /** at[j] += n row strides for every extra: the function moved n rows of C on. */
  nextRows(n: number): void {
    const f = this.f;
    this.spec.extras.forEach((_, j) => f.get(this.at[j]).get(this.rs[j]).i32Const(n).i32Mul().i32Add().set(this.at[j]));
  }
}
