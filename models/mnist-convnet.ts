// MNISTConvNet (seed 003): two conv + max-pool blocks and two fully connected layers.
import { nn, type Tensor } from 'kiln';
import type { ModelSpec } from 'kiln';

const F = nn.functional;

export class MNISTConvNet extends nn.Module {
  conv1: nn.Conv2d;
  pool1: nn.MaxPool2d;
  conv2: nn.Conv2d;
  pool2: nn.MaxPool2d;
  fc1: nn.Linear;
  fc2: nn.Linear;
  constructor() {
    super();
    this.conv1 = new nn.Conv2d(1, 10, 5);
    this.pool1 = new nn.MaxPool2d(2, 2);
    this.conv2 = new nn.Conv2d(10, 20, 5);
    this.pool2 = new nn.MaxPool2d(2, 2);
    this.fc1 = new nn.Linear(320, 50);
    this.fc2 = new nn.Linear(50, 10);
  }
  override forward(input: Tensor): Tensor {
    let x = this.pool1(F.relu(this.conv1(input)));
    x = this.pool2(F.relu(this.conv2(x)));
    x = x.view(x.size(0), -1);
    x = F.relu(this.fc1(x));
    x = F.relu(this.fc2(x));
    return x;
  }
}

/** MNIST batches of 64 one-channel 28x28 images; the target is the class index (0..9). */
export const modelSpec: ModelSpec<MNISTConvNet> = {
  name: 'mnist-convnet',
  create: () => new MNISTConvNet(),
  inputs: [{ shape: [64, 1, 28, 28], dtype: 'float32' }],
  target: { shape: [64], dtype: 'int32', high: 10 },
  loss: 'cross-entropy',
  optim: { name: 'sgd', lr: 0.01, momentum: 0.9 },
  data: 'mnist',
};
