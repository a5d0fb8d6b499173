// The dispatcher: every public op calls `bind(op, inputs, attrs)`, and the active interpreter
// decides what that means. The eager interpreter (eager.ts) runs the kernel now and records
// autograd; the compiler installs a tracing interpreter that builds IR instead. Nothing here
// imports the compiler.
import type { DType, OpDef } from '../ir/index.js';
import type { HostArray } from './backend.js';
import type { Tensor } from './tensor.js';

export interface Interpreter {
  bind(op: OpDef, inputs: readonly Tensor[], attrs: unknown): Tensor;
  /** A tensor holding host values (kiln.tensor, arange, eye, ...). */
  constant(values: HostArray, shape: readonly number[], dtype: DType, device: string): Tensor;
  /** Makes `target` hold `value`'s values (the write of an in-place op; both already checked to fit). */
  assign(target: Tensor, value: Tensor): void;
  /**
   * Runs an elementwise op with `target` (its first input) as the output, where that needs no old
   * values and overwrites nothing else anything reads (the eager interpreter: see eager.ts);
   * returns false, having done nothing, otherwise. Optional: an interpreter without it declines.
   */
  bindInto?(op: OpDef, inputs: readonly Tensor[], attrs: unknown, target: Tensor): boolean;
}

let current: Interpreter | undefined;
let eagerInterpreter: Interpreter | undefined;

export function setEagerInterpreter(i: Interpreter): void {
  eagerInterpreter = i;
  current ??= i;
}

export function bind(op: OpDef, inputs: readonly Tensor[], attrs: unknown = {}): Tensor {
  return (current ?? eagerInterpreter!).bind(op, inputs, attrs);
}

/** Runs `fn` with `interp` handling every op. */
export function withInterpreter<R>(interp: Interpreter, fn: () => R): R {
  const prev = current;
  current = interp;
  try {
    return fn();
  } finally {
    current = prev;
  }
}

/** `Interpreter.bindInto` of the active interpreter: true when it wrote the op's result into `target`. */
export function bindInto(op: OpDef, inputs: readonly Tensor[], attrs: unknown, target: Tensor): boolean {
  return (current ?? eagerInterpreter!).bindInto?.(op, inputs, attrs, target) ?? false;
}

export function constant(values: HostArray, shape: readonly number[], dtype: DType, device: string): Tensor {
  return (current ?? eagerInterpreter!).constant(values, shape, dtype, device);
}

export function assign(target: Tensor, value: Tensor): void {
  (current ?? eagerInterpreter!).assign(target, value);
}
