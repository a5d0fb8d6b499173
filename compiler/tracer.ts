// The tracing interpreter: installed by kiln.compile while it runs a function once on symbolic
// tensors. Each op appends a node to the graph and returns a symbolic tensor (shape and dtype, no
// values); concrete tensors the function touches (parameters, buffers, optimizer state, captured
// constants) become graph inputs read at call time; in-place writes to them become updates.
import { coversWhole, Graph, numel, type DType, type OpDef, type Value } from '../ir/index.js';
import type { Interpreter } from '../runtime/dispatch.js';
import { DynamicTraceError, moduleStack, userSourceLine } from '../runtime/dynamic.js';
import { record } from '../runtime/eager.js';
import type { HostArray } from '../runtime/backend.js';
import { Tensor } from '../runtime/tensor.js';

interface Symbol_ {
  readonly tracer: Tracer;
  readonly id: number;
}

/** Where a trace failed: the op, the module whose forward ran it, and the source line. */
export class TraceError extends Error {
  constructor(message: string, readonly where: string) {
    super(message);
    this.name = 'TraceError';
  }
}

export class Tracer implements Interpreter {
  readonly graph = new Graph();
  /** Concrete tensors read by the function, in the order of their capture inputs. */
  readonly captures: Tensor[] = [];
  private readonly captureIds = new Map<object, number>();
  /** The value a captured tensor holds now (after in-place writes). */
  private readonly latest = new Map<object, number>();
  private readonly names = new Map<object, string>();
  private device: string | undefined;

  /** Names a concrete tensor's capture input (`linear1.weight`), for printouts. */
  nameCapture(t: Tensor, name: string): void {
    if (t._view) this.names.set(captureKey(t), name);
  }

  /** A new argument input of the graph, as a symbolic tensor. */
  argument(meta: { shape: readonly number[]; dtype: DType; device: string }, name: string): Tensor {
    this.checkDevice(meta.device);
    return this.symbolic(this.graph.addInput(meta.shape, meta.dtype, 'arg', name), meta.device);
  }

  /** The graph value a tensor stands for now (capturing a concrete tensor on first use). */
  valueOf(t: Tensor): number {
    const s = t._symbol as Symbol_ | undefined;
    if (s) {
      if (s.tracer !== this) throw new Error('a symbolic tensor from another kiln.compile trace was used here; tensors cannot leak out of a traced function');
      return s.id;
    }
    if (!t._view) throw new Error('internal: tensor has neither values nor a symbol');
    const key = captureKey(t);
    const now = this.latest.get(key);
    if (now !== undefined) return now;
    let id = this.captureIds.get(key);
    if (id === undefined) {
      this.checkDevice(t.device);
      const name = this.names.get(key) ?? `capture${this.captures.length}`;
      id = this.graph.addInput(t.shape, t.dtype, 'capture', name).id;
      this.captureIds.set(key, id);
      this.captures.push(t);
    }
    return id;
  }

  bind(op: OpDef, inputs: readonly Tensor[], attrs: unknown): Tensor {
    const ids = inputs.map((t) => this.valueOf(t));
    let meta;
    try {
      meta = op.infer(inputs.map((t) => ({ shape: t.shape, dtype: t.dtype })), attrs as never);
    } catch (e) {
      throw this.located(e as Error);
    }
    const device = inputs[0]?.device ?? (attrs as { device: string }).device;
    for (const t of inputs) {
      if (t.device !== device) throw this.located(new Error(`${op.name}: expected all tensors to be on the same device, but found at least two devices, ${device} and ${t.device}`));
    }
    const v = this.graph.addNode(op.name, ids, attrs, meta.shape, meta.dtype);
    const out = this.symbolic(v, device);
    return record(op, inputs, attrs, out);
  }

  constant(values: HostArray, shape: readonly number[], dtype: DType, device: string): Tensor {
    if (values.length !== numel(shape)) throw new Error(`tensor: ${values.length} values cannot fill shape [${shape.join(', ')}]`);
    return this.symbolic(this.graph.addConstant(shape, dtype, Array.from(values)), device);
  }

  assign(target: Tensor, value: Tensor): void {
    const id = this.valueOf(value);
    const s = target._symbol as Symbol_ | undefined;
    if (s) {
      if (target._base && target._base !== target) throw this.located(new Error('an in-place write into a view of a traced tensor is not supported by kiln.compile; write out of place instead'));
      target._symbol = { tracer: this, id };
      return;
    }
    const key = captureKey(target);
    if (key === target && target._base) throw this.located(new Error('an in-place write into part of a captured tensor is not supported by kiln.compile'));
    this.valueOf(target);
    this.latest.set(key, id);
  }

  /** The in-place writes to captured tensors: (capture input, final value). */
  updates(): { input: number; value: number }[] {
    const out: { input: number; value: number }[] = [];
    for (const [key, value] of this.latest) out.push({ input: this.captureIds.get(key)!, value });
    return out;
  }

  /** The value a captured tensor holds at the end of the trace, if the function wrote it. */
  finalValueOf(t: Tensor): number | undefined {
    return t._view ? this.latest.get(captureKey(t)) : undefined;
  }

  symbolic(v: Value, device: string): Tensor {
    const t = new Tensor(v.shape, v.dtype, device);
    t._symbol = { tracer: this, id: v.id } satisfies Symbol_;
    return t;
  }

  /** Adds the module and the user's source line to an error raised while tracing. */
  located(e: Error): Error {
    if (e instanceof TraceError || e instanceof DynamicTraceError) return e;
    const where = userSourceLine(e.stack) || userSourceLine(new Error().stack);
    const path = (e as { kilnModules?: string[] }).kilnModules ?? moduleStack;
    const mod = path.length ? `${path.join(' > ')}.forward` : 'the traced function';
    return new TraceError(`${e.message} (in ${mod}${where ? ` at ${where}` : ''})`, where);
  }

  private checkDevice(device: string): void {
    this.device ??= device;
    if (device !== this.device) throw new Error(`kiln.compile: a traced function mixes devices ${this.device} and ${device}`);
  }
}

/** Tensors covering a whole contiguous storage are identified by the storage (so `p` and `p.detach()` are one input). */
function captureKey(t: Tensor): object {
  const v = t._view!;
  return coversWhole(v, v.storage.length) ? v.storage : t;
}
