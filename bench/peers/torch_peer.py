# PyTorch's side of the peer bench (run by run.mjs with /usr/bin/python3, one thread, OpenBLAS).
#   python3 bench/peers/torch_peer.py --data DIR [--only w1,w2] [--scale F]
#   python3 bench/peers/torch_peer.py --data DIR --info         (versions and the BLAS in use, as JSON)
#   python3 bench/peers/torch_peer.py --data DIR --export-onnx  (writes DIR/mlp.onnx and DIR/mm.onnx for onnxruntime)
# Prints RESULT lines (JSON), as the JS peers do. Same workloads, sizes and initial weights as kiln.ts.
import argparse
import ctypes
import json
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)
torch.set_num_interop_threads(1)

ap = argparse.ArgumentParser()
ap.add_argument('--data', required=True)
ap.add_argument('--only', default='')
ap.add_argument('--scale', type=float, default=1.0)
ap.add_argument('--info', action='store_true')
ap.add_argument('--export-onnx', action='store_true')
args = ap.parse_args()
ONLY = [w for w in args.only.split(',') if w]
PEER = 'pytorch'

# Must match REPS in data.mjs
REPS = {
    'mlp-train': {'steps': 500, 'warmup': 20},
    'convnet-train': {'warmup': 3, 'runs': 10},
    'matmul': {'warmup': 2, 'runs': 6},
    'mlp-infer-64': {'warmup': 30, 'runs': 200},
    'mlp-infer-4096': {'warmup': 3, 'runs': 12},
    'rnn-train': {'warmup': 50, 'runs': 300},
}


def scaled(n):
    return max(1, round(n * args.scale))


with open(os.path.join(args.data, 'manifest.json')) as f:
    MANIFEST = json.load(f)


def T(name):
    m = MANIFEST[name]
    with open(os.path.join(args.data, m['file']), 'rb') as f:
        buf = bytearray(f.read())
    dtype = torch.int32 if m['dtype'] == 'int32' else torch.float32
    t = torch.frombuffer(buf, dtype=dtype).reshape(m['shape']).clone()
    return t.long() if dtype == torch.int32 else t


def state_of(prefix):
    return {k[len(prefix):]: T(k) for k in MANIFEST if k.startswith(prefix) and ('weight' in k or 'bias' in k)}


def report(obj):
    sys.stdout.write('RESULT ' + json.dumps(obj) + '\n')
    sys.stdout.flush()


def blas_info():
    libs = sorted({line.split()[-1] for line in open('/proc/self/maps') if ('blas' in line or 'lapack' in line) and '/' in line})
    core = None
    for p in libs:
        if 'openblas' in p:
            try:
                lib = ctypes.CDLL(p)
                lib.openblas_get_corename.restype = ctypes.c_char_p
                lib.openblas_get_config.restype = ctypes.c_char_p
                core = {'corename': lib.openblas_get_corename().decode(), 'config': lib.openblas_get_config().decode(),
                        'threads': lib.openblas_get_num_threads()}
                break
            except (OSError, AttributeError):
                pass
    return {'libs': libs, 'openblas': core}


class TwoLayerNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear1 = nn.Linear(1000, 100)
        self.linear2 = nn.Linear(100, 10)

    def forward(self, x):
        return self.linear2(self.linear1(x).clamp(min=0))


class MNISTConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 10, 5)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv2 = nn.Conv2d(10, 20, 5)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.fc1 = nn.Linear(320, 50)
        self.fc2 = nn.Linear(50, 10)

    def forward(self, x):
        x = self.pool1(F.relu(self.conv1(x)))
        x = self.pool2(F.relu(self.conv2(x)))
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        return F.relu(self.fc2(x))


class RNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.i2h = nn.Linear(70, 20)
        self.h2o = nn.Linear(20, 10)

    def forward(self, data, last_hidden):
        hidden = self.i2h(torch.cat((data, last_hidden), 1))
        return hidden, self.h2o(hidden)


def now():
    return time.perf_counter() * 1000.0


def timed(fn):
    t0 = now()
    fn()
    return now() - t0


def selected(name):
    return not ONLY or name in ONLY


def guarded(name, fn):
    if not selected(name):
        return
    try:
        fn()
    except Exception as e:  # report and go on with the next workload
        report({'peer': PEER, 'workload': name, 'error': str(e).split('\n')[0][:200]})


def mlp_train():
    r = REPS['mlp-train']
    x, y = T('mlp.x'), T('mlp.y')
    init = state_of('mlp.')
    model = TwoLayerNet()
    model.load_state_dict(init)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4)
    mse = nn.MSELoss(reduction='sum')

    def step():
        opt.zero_grad()
        loss = mse(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(r['warmup']):
        step()
    model.load_state_dict(init)
    losses = []
    t0 = now()
    for _ in range(r['steps']):
        losses.append(step())
    ms = now() - t0
    report({'peer': PEER, 'workload': 'mlp-train', 'ms': ms / r['steps'], 'totalMs': ms, 'firstLoss': losses[0], 'lastLoss': losses[-1]})


def convnet_train():
    r = REPS['convnet-train']
    img, labels = T('conv.img'), T('conv.labels')
    model = MNISTConvNet()
    model.load_state_dict(state_of('conv.'))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    ce = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss = ce(model(img), labels)
        loss.backward()
        opt.step()
        return loss.item()

    first = None
    for i in range(r['warmup']):
        v = step()
        if i == 0:
            first = v
    times = [timed(step) for _ in range(scaled(r['runs']))]
    report({'peer': PEER, 'workload': 'convnet-train', 'ms': statistics.median(times), 'best': min(times), 'firstLoss': first})


def matmul():
    r = REPS['matmul']
    a, b = T('mm.a'), T('mm.b')
    for _ in range(r['warmup']):
        a.mm(b)
    out = {}

    def run():
        out['c'] = a.mm(b)

    times = [timed(run) for _ in range(scaled(r['runs']))]
    ms = statistics.median(times)
    report({'peer': PEER, 'workload': 'matmul', 'ms': ms, 'best': min(times), 'gflops': 2 * 1024 ** 3 / (ms * 1e6), 'check': out['c'][0, 0].item()})


def mlp_infer(batch):
    name = f'mlp-infer-{batch}'
    r = REPS[name]
    model = TwoLayerNet()
    model.load_state_dict(state_of('mlp.'))
    model.eval()
    x = T('mlp.x' if batch == 64 else 'mlp.x4096')
    out = {}

    def run():
        with torch.no_grad():
            out['y'] = model(x)

    for _ in range(r['warmup']):
        run()
    times = [timed(run) for _ in range(scaled(r['runs']))]
    report({'peer': PEER, 'workload': name, 'ms': statistics.median(times), 'best': min(times), 'check': out['y'][0, 0].item()})


def rnn_train():
    r = REPS['rnn-train']
    batch, h0, target = T('rnn.batch'), torch.zeros(10, 20), torch.zeros(10, 10)
    rnn = RNN()
    rnn.load_state_dict(state_of('rnn.'))
    opt = torch.optim.SGD(rnn.parameters(), lr=0.01)
    mse = nn.MSELoss()

    def step():
        opt.zero_grad()
        hidden = h0
        loss = torch.zeros(())
        for _ in range(5):
            hidden, output = rnn(batch, hidden)
            loss = loss + mse(output, target)
        loss.backward()
        opt.step()
        return loss.item()

    first = None
    for i in range(r['warmup']):
        v = step()
        if i == 0:
            first = v
    times = [timed(step) for _ in range(scaled(r['runs']))]
    report({'peer': PEER, 'workload': 'rnn-train', 'ms': statistics.median(times), 'best': min(times), 'firstLoss': first})


def export_onnx():
    model = TwoLayerNet()
    model.load_state_dict(state_of('mlp.'))
    model.eval()
    torch.onnx.export(model, T('mlp.x'), os.path.join(args.data, 'mlp.onnx'), input_names=['x'], output_names=['y'],
                      dynamic_axes={'x': {0: 'n'}, 'y': {0: 'n'}}, opset_version=13)

    class MM(nn.Module):
        def forward(self, a, b):
            return a.mm(b)

    torch.onnx.export(MM(), (T('mm.a'), T('mm.b')), os.path.join(args.data, 'mm.onnx'), input_names=['a', 'b'], output_names=['c'], opset_version=13)


if args.info:
    torch.ones(8, 8).mm(torch.ones(8, 8))  # make sure the BLAS is loaded
    print(json.dumps({'torch': torch.__version__, 'python': sys.version.split()[0], 'threads': torch.get_num_threads(),
                      'blas': blas_info(), 'env': {k: os.environ.get(k) for k in ('LD_LIBRARY_PATH', 'OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE', 'OMP_NUM_THREADS')}}))
elif args.export_onnx:
    export_onnx()
else:
    guarded('mlp-train', mlp_train)
    guarded('convnet-train', convnet_train)
    guarded('matmul', matmul)
    guarded('mlp-infer-64', lambda: mlp_infer(64))
    guarded('mlp-infer-4096', lambda: mlp_infer(4096))
    guarded('rnn-train', rnn_train)
