export * from './dtype.js';
export * from './shape.js';
export * from './expr.js';
export * from './op.js';
export * from './kiln-ops.js';
export * from './autodiff.js';
export { OPS } from './ops/index.js';
export * as ops from './ops/index.js';
export { isContiguous } from './ops/movement.js';
