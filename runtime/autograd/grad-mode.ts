// Whether ops record the autograd graph (PyTorch's grad mode).
let enabled = true;

export function isGradEnabled(): boolean {
  return enabled;
}

function withGradMode<R>(mode: boolean, fn: () => R): R {
  const prev = enabled;
  enabled = mode;
  let result: R;
  try {
    result = fn();
  } catch (e) {
    enabled = prev;
    throw e;
  }
  if (result instanceof Promise) {
    // An async body keeps the mode until it settles (do not interleave other work meanwhile).
    return result.finally(() => (enabled = prev)) as R;
  }
  enabled = prev;
  return result;
}

/** Runs `fn` without recording gradients (`with torch.no_grad():`). */
export function noGrad<R>(fn: () => R): R {
  return withGradMode(false, fn);
}

/** Runs `fn` recording gradients even inside `noGrad`. */
export function enableGrad<R>(fn: () => R): R {
  return withGradMode(true, fn);
}

export function setGradEnabled(mode: boolean): void {
  enabled = mode;
}
