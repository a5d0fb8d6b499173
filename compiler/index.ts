// The compiler's public face: kiln.compile and kiln.compileTrainStep.
export { compile, type CompileOptions, type Compiled } from './compile.js';
export { optimize, PIPELINE } from './passes/index.js';
export { buildPlan } from './plan.js';
export { compileTrainStep, type TrainStep } from './train-step.js';
