// `kiln.autograd`: the public face of the autograd engine.
export { backward, grad, type BackwardOptions, type GradOptions } from './engine.js';
export { Function, Context } from './function.js';
export { gradcheck, type GradcheckOptions } from './gradcheck.js';
