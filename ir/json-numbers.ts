// JSON for graphs and plans: numbers JSON cannot hold (infinities, NaN, -0) travel as
// `{ "$num": "-Infinity" }`, typed arrays as arrays. Used by the IR's JSON form and by bundles.

export function encodeNumbers(x: unknown): unknown {
  if (typeof x === 'number') return Number.isFinite(x) && !Object.is(x, -0) ? x : { $num: Object.is(x, -0) ? '-0' : String(x) };
  if (ArrayBuffer.isView(x)) return Array.from(x as unknown as ArrayLike<number>, encodeNumbers);
  if (Array.isArray(x)) return x.map(encodeNumbers);
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).filter(([, v]) => v !== undefined).map(([k, v]) => [k, encodeNumbers(v)]));
  return x;
}

export function decodeNumbers(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(decodeNumbers);
  if (x && typeof x === 'object') {
    if ('$num' in x && Object.keys(x).length === 1) return Number((x as { $num: string }).$num);
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, decodeNumbers(v)]));
  }
  return x;
}
