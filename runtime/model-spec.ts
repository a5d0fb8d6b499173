// The model-file convention: a model file exports its Module subclass and, as `modelSpec`, what
// the `kiln` CLI needs to build it and feed it. Types only: model files import them from 'kiln'.
import type { DType } from '../ir/index.js';
import type { Module } from './nn/module.js';
import type { Tensor } from './tensor.js';

export interface InputSpec {
  /** Shape with the batch dimension first, e.g. [64, 1000] or [64, 1, 28, 28]. */
  readonly shape: readonly number[];
  readonly dtype?: DType;
  /** For integer inputs (class targets, token ids): values are drawn from [0, high). */
  readonly high?: number;
}

/** A named loss the CLI knows, or a function of (output, target). */
export type LossSpec = 'mse' | 'mse-sum' | 'cross-entropy' | ((output: any, target: any) => Tensor);

export interface OptimSpec {
  readonly name: 'sgd' | 'adam' | 'adamw';
  readonly lr: number;
  readonly momentum?: number;
  readonly weightDecay?: number;
}

export interface ModelSpec<M extends Module = Module> {
  /** A short name for printouts and output files. */
  readonly name: string;
  /** Builds the model with its default constructor arguments. */
  create(): M;
  /** Example inputs of `forward` (shapes include the batch dimension). */
  readonly inputs: readonly InputSpec[];
  /** The training target (what the loss compares the output with). */
  readonly target?: InputSpec;
  readonly loss?: LossSpec;
  readonly optim?: OptimSpec;
  /** The data set `kiln train` uses by default. */
  readonly data?: 'mnist' | 'random';
}
