// Deferred unfolds: conv as implicit GEMM without a compiler change, used only with
// `backend.implicitGemm = true` (off by default). The backend records an unfold instead of running
// it; a matmul that reads its columns as stored (conv's forward product) reads them through
// unfold's index map from the unfold's input (matmul-kernel.ts), so the [N, C*K, L] columns are
// never written. Any other use, transposed columns included (a weight gradient's product),
// materialises them first, at that point in the command stream, which is where the unfold would
// have run as far as any reader can tell: it still reads its input's old contents, because a kernel
// that is about to overwrite that input materialises every deferred unfold reading it before it is
// recorded.
//
// Invariants: the deferred columns' buffer and the input's contents are exactly what they were at
// the unfold, for as long as the unfold is deferred. The backend keeps them by calling
// `beforeKernel` before every kernel or copy, `recycled` when a buffer returns to the pool, and
// `materialise` before reading a buffer back.
//
// The limit of doing this in the backend: it cannot know when columns are dead. A compiled plan's
// slots are never freed, so columns deferred by the previous run are materialised for nothing when
// a step before the unfold overwrites the input's slot (the compiled MNISTConvNet forward still
// runs conv2's unfold each call; its training step, where the slots fall differently, runs neither).
// A compiler pass that gives matmul the unfold's input directly (liveness then keeps the input,
// and no slot holds the columns) would not have this limit.
import type { UnfoldAttrs } from '../../ir/ops/conv.js';
import type { View } from '../backend.js';

export interface DeferredUnfold {
  /** The unfold's input, as it was viewed when the unfold was recorded. */
  readonly x: View;
  readonly attrs: UnfoldAttrs;
  /** The columns: contiguous from offset 0, the whole of their storage. */
  readonly out: View;
}

type BufferOf = (v: View) => GPUBuffer;

export class DeferredUnfolds {
  private readonly byColumns = new Map<GPUBuffer, DeferredUnfold>();

  /** `run` records the unfold for real (its kernel is dispatched through beforeKernel like any other). */
  constructor(private readonly bufferOf: BufferOf, private readonly run: (d: DeferredUnfold) => void) {}

  /** The deferred unfold whose columns live in `buffer`, if any. */
  get(buffer: GPUBuffer): DeferredUnfold | undefined {
    return this.byColumns.get(buffer);
  }

  /** Records `d` in place of running it (after beforeKernel for its output, like any kernel). */
  defer(d: DeferredUnfold): void {
    this.byColumns.set(this.bufferOf(d.out), { ...d, x: { ...d.x }, out: { ...d.out } });
  }

  /** Runs the deferred unfold of `buffer`, if any. */
  materialise(buffer: GPUBuffer): void {
    const d = this.byColumns.get(buffer);
    if (!d) return;
    this.byColumns.delete(buffer);
    this.run(d);
  }

  /**
   * Before a kernel that reads `inputs` and writes `out` (`covers`: all of it) is recorded:
   * deferred columns it reads are materialised; so are deferred unfolds of `out`'s old contents;
   * deferred columns it overwrites whole without reading them are forgotten (nobody can read them
   * any more). An undefined input is one read through `out`'s own binding (an in-place op).
   */
  beforeKernel(out: GPUBuffer, covers: boolean, inputs: readonly (GPUBuffer | undefined)[]): void {
    if (this.byColumns.size === 0) return;
    for (const b of inputs) this.materialise(b ?? out);
    for (const [columns, d] of [...this.byColumns]) if (this.bufferOf(d.x) === out) this.materialise(columns);
    if (this.byColumns.has(out)) {
      if (covers) this.byColumns.delete(out);
      else this.materialise(out);
    }
  }

  /** A buffer no tensor views any more: its deferred columns are dead; unfolds reading it run now, before it is reused. */
  recycled(buffer: GPUBuffer): void {
    if (this.byColumns.size === 0) return;
    this.byColumns.delete(buffer);
    for (const [columns, d] of [...this.byColumns]) if (this.bufferOf(d.x) === buffer) this.materialise(columns);
  }
}
