// torch.nn.functional for Kiln: the functional forms of layers and losses, each a composite over
// the op table's primitives (unfold/fold included), so every one differentiates for free.
export * from './activation.js';
export * from './classification.js';
export { conv1d, conv2d, fold, unfold, type ConvOptions, type UnfoldOptions } from './conv.js';
export * from './distance.js';
export * from './linear.js';
export * from './loss.js';
export * from './normalization.js';
export * from './pooling.js';
export * from './sparse.js';
export * from './vision.js';
export type { IntOrTuple, Reduction } from './utils.js';
