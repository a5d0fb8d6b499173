// TEMPORARY placeholder (lead): replaced by the blocked kernel.
export type MatArray = Float32Array | Float64Array | Int32Array;
export interface MatOperand { data: MatArray; offset: number; rowStride: number; colStride: number }
export function matmulNaive(M: number, N: number, K: number, a: MatOperand, b: MatOperand, out: MatArray, outOffset: number): void {
  const int = out instanceof Int32Array;
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
    let acc = 0;
    for (let k = 0; k < K; k++) {
      const x = a.data[a.offset + i * a.rowStride + k * a.colStride], y = b.data[b.offset + k * b.rowStride + j * b.colStride];
      acc = int ? (acc + Math.imul(x, y)) | 0 : acc + x * y;
    }
    out[outOffset + i * N + j] = acc;
  }
}
export const matmul = matmulNaive;
