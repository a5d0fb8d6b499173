// `kiln.nn`: Modules, containers, layers, losses, and `nn.functional`.
export { Module, type StateDict, type LoadResult } from './module.js';
export { Parameter } from './parameter.js';
export * from './containers.js';
export * from './layers/linear.js';
export * from './layers/conv.js';
export * from './layers/pooling.js';
export * from './layers/activation.js';
export * from './layers/normalization.js';
export * from './layers/misc.js';
export * from './layers/loss.js';
export * as functional from './functional/index.js';
export * as init from './init.js';
export * as utils from './utils.js';
export * from './layers/recurrent.js';
export * from './layers/attention.js';
