import { createSimdMatmul, DEFAULT_CONFIG, relaxedSimdAvailable } from '../runtime/cpu/wasm/matmul-simd.js';
import { wasmHeap } from '../runtime/cpu/wasm/heap.js';
const shapes: [number, number, number][] = JSON.parse(process.env.SHAPES ?? '[[20,4096,250],[10,36864,25],[250,4096,20],[64,320,50],[100,1000,64],[512,512,512]]');
const heap = wasmHeap()!; const owner = {};
const alloc = (n: number) => heap.allocArray('float32', n, owner) as Float32Array;
const mm = createSimdMatmul({ ...DEFAULT_CONFIG, relaxed: relaxedSimdAvailable() });
for (const [M, N, K] of shapes) {
  const a = alloc(M * K), b = alloc(K * N + 64), c = alloc(M * N);
  a.forEach((_, i) => (a[i] = Math.random())); b.forEach((_, i) => (b[i] = Math.random()));
  const A = { data: a, offset: 0, rowStride: K, colStride: 1 };
  const B = { data: b, offset: 0, rowStride: N, colStride: 1 };
  let best = Infinity;
  for (let round = 0; round < 9; round++) {
    const reps = Math.max(3, Math.round(1e8 / (2 * M * N * K)));
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) mm.matmul(M, N, K, A, B, c, 0);
    best = Math.min(best, (performance.now() - t0) / reps);
  }
  console.log(`${M}x${N}x${K}: ${(best * 1000).toFixed(0)}us ${((2 * M * N * K) / best / 1e6).toFixed(1)} GF`);
}
