// Kiln's functional ops: each is `bind` of a primitive from the op table or a composite of them.
export * from './elementwise.js';
export * from './reduce.js';
export * from './shape.js';
export * from './linalg.js';
export * from './indexing.js';
export * from './convert.js';
export * from './inplace.js';
export * from './special.js';
export { lift, liftPair, scalarTensor, type Scalar, type TensorLike } from './lift.js';
