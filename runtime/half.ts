// IEEE binary16 (half precision) conversions: used by safetensors I/O and by WebGPU's float16.
/** IEEE binary16 bits to a number (exact). */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** A number to IEEE binary16 bits, rounding to nearest even. */
export function f32ToF16(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // rounds past the largest half (65504)
  if (a < 2 ** -14) return sign | roundEven(a / 2 ** -24); // subnormal (may round up to the smallest normal)
  let exp = Math.floor(Math.log2(a));
  if (2 ** exp > a) exp--; // guard log2's rounding
  else if (2 ** (exp + 1) <= a) exp++;
  const m = roundEven((a / 2 ** exp - 1) * 1024); // 1024 carries into the exponent, as it should
  return sign | (((exp + 15) << 10) + m);
}

function roundEven(v: number): number {
  const f = Math.floor(v);
  const r = v - f;
  return r > 0.5 || (r === 0.5 && f % 2 === 1) ? f + 1 : f;
}
