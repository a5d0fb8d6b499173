// Eager dispatch overhead: microseconds per op on tiny tensors, where the kernel itself is a few
// nanoseconds, so what is timed is Kiln's per-op work (shape/dtype inference, dispatch, storage
// allocation, the autograd node when a grad is needed).
//   npx tsx --conditions=kiln-source bench/eager-overhead.ts
import * as kiln from 'kiln';
import type { Tensor } from 'kiln';

const N = 20_000;
function usPerOp(name: string, fn: () => unknown, opsPerCall = 1): string {
  for (let i = 0; i < 2000; i++) fn();
  const times: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) fn();
    times.push(((performance.now() - t0) * 1000) / N / opsPerCall);
  }
  times.sort((a, b) => a - b);
  return `| ${name} | ${times[3].toFixed(2)} | ${times[0].toFixed(2)} |`;
}

const a = kiln.randn(4), b = kiln.randn(4);
const ag = kiln.randn(4).requiresGrad_(), bg = kiln.randn(4).requiresGrad_();
const m = kiln.randn(8, 8);
const rows: string[] = [];
rows.push(usPerOp('a.add(b), 4 elements', () => a.add(b)));
rows.push(usPerOp('a.mul(2), 4 elements', () => a.mul(2)));
rows.push(usPerOp('a.exp(), 4 elements', () => a.exp()));
rows.push(usPerOp('a.sum(), 4 elements', () => a.sum()));
rows.push(usPerOp('m.matmul(m), 8x8', () => m.matmul(m)));
rows.push(usPerOp('m.t(), a view', () => m.t()));
rows.push(usPerOp('ag.add(bg), requires grad (records a node)', () => ag.add(bg)));
rows.push(usPerOp('chain of 5 ops with grad, then backward (per op)', () => {
  const y = ag.mul(bg).add(ag).relu().mul(3).sum() as Tensor;
  y.backward();
}, 6));
console.log(`# eager overhead: ${new Date().toISOString().slice(0, 10)}, node ${process.version}\n`);
console.log('| op | µs/op (median of 7 runs) | best |\n|---|---:|---:|');
console.log(rows.join('\n'));
