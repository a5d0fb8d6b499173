// The training loop behind `kiln train` (compiler/cli/train.ts) and its data (compiler/cli/data.ts):
// real MNIST digits from the `mnist` package, random data from a model spec, batching, the
// weights file and the loss curve.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as kiln from 'kiln';
import { afterAll, describe, expect, it } from 'vitest';
import { batchCount, batches, loadMnist, MNIST_MEAN, MNIST_STD, randomData } from '../compiler/cli/data.js';
import { evaluateAccuracy, lossCurveHtml, trainModel } from '../compiler/cli/train.js';
import { MNISTConvNet, modelSpec as convNetSpec } from '../models/mnist-convnet.js';
import { modelSpec as twoLayerSpec } from '../models/two-layer-net.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-train-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('MNIST data', () => {
  it('splits the package deterministically into disjoint, normalised, balanced sets', () => {
    const a = loadMnist({ train: 100, test: 50, seed: 1 });
    const b = loadMnist({ train: 100, test: 50, seed: 1 });
    expect(a.train.count).toBe(100);
    expect(a.test.count).toBe(50);
    expect(a.train.images.length).toBe(100 * 784);
    expect(a.train.images).toEqual(b.train.images);
    expect(a.test.labels).toEqual(b.test.labels);
    // Ten of each digit in the training set, five in the test set.
    const counts = (l: Int32Array) => Array.from({ length: 10 }, (_, d) => l.filter((v) => v === d).length);
    expect(counts(a.train.labels)).toEqual(Array(10).fill(10));
    expect(counts(a.test.labels)).toEqual(Array(10).fill(5));
    // Pixels were in [0, 1]: normalised they lie in [-mean/std, (1-mean)/std], background at the bottom.
    const min = Math.min(...a.train.images), max = Math.max(...a.train.images);
    expect(min).toBeCloseTo(-MNIST_MEAN / MNIST_STD, 5);
    expect(max).toBeLessThanOrEqual((1 - MNIST_MEAN) / MNIST_STD + 1e-5);
    // No test image is a training image.
    const key = (x: Float32Array, k: number) => x.subarray(k * 784, (k + 1) * 784).join(',');
    const trainKeys = new Set(Array.from({ length: 100 }, (_, k) => key(a.train.images, k)));
    for (let k = 0; k < 50; k++) expect(trainKeys.has(key(a.test.images, k))).toBe(false);
    // Another seed: the same images in another order.
    const c = loadMnist({ train: 100, test: 50, seed: 2 });
    expect(c.train.labels).not.toEqual(a.train.labels);
    expect(counts(c.train.labels)).toEqual(counts(a.train.labels));
  });

  it('by default uses all 10,000 digits: 8,000 to train, the rest to test', () => {
    const { train, test } = loadMnist();
    expect(train.count).toBe(8000);
    expect(test.count).toBe(2000);
  });

  it('batches as [B, 1, 28, 28] float32 and int32 [B], dropping the last partial batch unless told not to', () => {
    const { train } = loadMnist({ train: 70, test: 10 });
    const bs = [...batches(train, 32, { shuffle: true, seed: 3 })];
    expect(bs.length).toBe(2);
    expect(batchCount(train, 32)).toBe(2);
    expect(bs[0].x.shape).toEqual([32, 1, 28, 28]);
    expect(bs[0].x.dtype).toBe('float32');
    expect(bs[0].y.shape).toEqual([32]);
    expect(bs[0].y.dtype).toBe('int32');
    const all = [...batches(train, 32, { dropLast: false })];
    expect(all.map((b) => b.x.shape[0])).toEqual([32, 32, 6]);
    // Shuffling keeps each image with its label.
    const first = bs[0].x.select(0, 0).reshape(784).dataSync() as Float32Array;
    const label = bs[0].y.dataSync()[0];
    const k = Array.from({ length: 70 }, (_, i) => i).find((i) => train.images.subarray(i * 784, (i + 1) * 784).every((v, p) => v === first[p]))!;
    expect(train.labels[k]).toBe(label);
  });

  it('makes random data shaped by a spec', () => {
    const d = randomData(twoLayerSpec, 10, 5);
    expect(d.sampleShape).toEqual([1000]);
    expect(d.labelShape).toEqual([10]);
    expect(d.images.length).toBe(10_000);
    expect(d.labels).toBeInstanceOf(Float32Array);
    expect(randomData(twoLayerSpec, 10, 5).images).toEqual(d.images);
  });
});

describe('trainModel', () => {
  it('trains the MNIST ConvNet (compiled, CPU) above chance and writes weights that load back', async () => {
    const lines: string[] = [];
    const out = join(dir, 'mnist');
    const r = await trainModel(convNetSpec, { limit: { train: 512, test: 256 }, batch: 32, epochs: 1, device: 'cpu', out, log: (l) => lines.push(l) });
    expect(r.losses.length).toBe(16);
    expect(r.losses.every(Number.isFinite)).toBe(true);
    expect(r.accuracy).toBeGreaterThan(0.3);
    expect(r.seconds).toBeGreaterThan(0);
    expect(r.files).toEqual([join(out, 'mnist-convnet.safetensors'), join(out, 'mnist-convnet-loss.html')]);
    expect(lines.some((l) => /epoch 1\/1 step \d+\/16 loss [\d.]+ \d+ samples\/s ETA/.test(l))).toBe(true);
    expect(lines.some((l) => l.includes('held-out accuracy'))).toBe(true);

    // The weights load into a fresh model and classify the same held-out images as well.
    const fresh = new MNISTConvNet();
    fresh.loadStateDict(kiln.load(r.files[0]));
    const { test } = loadMnist({ train: 512, test: 256 });
    const acc = await evaluateAccuracy(fresh, kiln.compile<(x: kiln.Tensor) => kiln.Tensor>(fresh), test, 32);
    expect(acc).toBe(r.accuracy);

    const html = readFileSync(r.files[1], 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('<polyline');
    expect(html).not.toMatch(/(src|href)=/);
  });

  it('trains TwoLayerNet on random data and its loss falls', async () => {
    const lines: string[] = [];
    const r = await trainModel(twoLayerSpec, { out: join(dir, 'two'), log: (l) => lines.push(l) });
    expect(r.accuracy).toBeUndefined();
    expect(r.steps).toBe(100);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(r.losses.slice(-10))).toBeLessThan(0.75 * mean(r.losses.slice(0, 10)));
    expect(existsSync(r.files[0])).toBe(true);
    expect(readFileSync(r.files[1], 'utf8')).toContain('<svg');
  });

  it('trains eagerly too, to the same losses as the compiled step within float tolerance', async () => {
    const opts = { limit: { train: 128 }, epochs: 2, progress: false, log: () => {} } as const;
    const compiled = await trainModel(twoLayerSpec, { ...opts, out: join(dir, 'c') });
    const eager = await trainModel(twoLayerSpec, { ...opts, eager: true, out: join(dir, 'e') });
    expect(eager.losses.length).toBe(compiled.losses.length);
    eager.losses.forEach((l, i) => expect(Math.abs(l - compiled.losses[i])).toBeLessThan(1e-3 * Math.abs(compiled.losses[i]) + 1e-4));
  });

  it('a cosine schedule anneals the learning rate per epoch, compiled and eager alike', async () => {
    const opts = { limit: { train: 128 }, epochs: 4, schedule: 'cosine', progress: false, log: () => {} } as const;
    const compiled = await trainModel(twoLayerSpec, { ...opts, out: join(dir, 'cc') });
    const eager = await trainModel(twoLayerSpec, { ...opts, eager: true, out: join(dir, 'ce') });
    eager.losses.forEach((l, i) => expect(Math.abs(l - compiled.losses[i])).toBeLessThan(1e-3 * Math.abs(compiled.losses[i]) + 1e-4));
    const constant = await trainModel(twoLayerSpec, { ...opts, schedule: 'constant', out: join(dir, 'cn') });
    // Same first epoch (full lr), then different steps once the rate has been annealed.
    expect(constant.losses.slice(0, 2)).toEqual(compiled.losses.slice(0, 2));
    expect(constant.losses[constant.losses.length - 1]).not.toBe(compiled.losses[compiled.losses.length - 1]);
  });
});

describe('lossCurveHtml', () => {
  it('is a self-contained page with an inline SVG, a log axis for losses spanning decades', () => {
    const html = lossCurveHtml([1000, 100, 10, 1, 0.5], { title: 'a <b>', stepsPerEpoch: 2, accuracies: [0.5, 0.9] });
    expect(html).toContain('<svg');
    expect(html).toContain('log scale');
    expect(html).toContain('a &lt;b&gt;');
    expect(html).toContain('epoch 2: 90.00%');
    expect(lossCurveHtml([])).toContain('no finite losses');
  });
});
