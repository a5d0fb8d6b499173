// kiln.optim: optimizers (torch.optim) and learning-rate schedulers (torch.optim.lr_scheduler).
export { Optimizer, type BaseOptions, type OptimizerStateDict, type ParamGroup, type ParamGroupInput, type ParamState, type StateValue } from './optimizer.js';
export { SGD, type SGDOptions } from './sgd.js';
export { Adam, type AdamOptions } from './adam.js';
export { AdamW, type AdamWOptions } from './adamw.js';
export { Adagrad, type AdagradOptions } from './adagrad.js';
export { RMSprop, type RMSpropOptions } from './rmsprop.js';
export * as lrScheduler from './lr-scheduler.js';
