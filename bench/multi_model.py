"""Training K models at once vs one at a time, in one process.

The sweeps train many small models with the same architecture. One way to use a CPU better is to fuse K
models into one network: every convolution becomes a grouped convolution (`groups=K`) over the K models'
stacked channels, every BatchNorm a K-times wider one (per channel, so still per model), the head a grouped
1×1 convolution. Forward + backward + SGD step of that network trains K independent models.

Baseline: one model (a plain 16-layer conv net with ResNet-18-w16's widths 16-32-64-128), K steps.
Fused: the same net with every layer grouped over K models, one step. Both on random batches of 128.
Prints model-images/s for each and the ratio fused/baseline.

    python bench/multi_model.py [--k 4 8] [--steps 6] [--threads 2]
"""
import argparse, time
import torch
import torch.nn.functional as F
from torch import nn


def conv_net(k: int, width: int = 16) -> nn.Sequential:
    "A 16-layer conv-BN-ReLU net; with k > 1, k independent copies fused by grouped convolutions."
    layers, cin = [nn.Conv2d(3 * k, width * k, 3, 1, 1, groups=k, bias=False), nn.BatchNorm2d(width * k), nn.ReLU()], width
    for stage in range(4):
        cout = width * 2 ** stage
        for block in range(4):
            stride = 2 if block == 0 and stage > 0 else 1
            layers += [nn.Conv2d(cin * k, cout * k, 3, stride, 1, groups=k, bias=False), nn.BatchNorm2d(cout * k), nn.ReLU()]
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin * k, 10 * k, 1, groups=k), nn.Flatten()]
    return nn.Sequential(*layers)


def images_per_second(k: int, batch: int, steps: int) -> float:
    "Model-images per second of SGD steps on the k-fused net (channels_last, as the trainer runs)."
    torch.manual_seed(0)
    model = conv_net(k).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.rand(batch, 3 * k, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch * k,))
    for i in range(steps + 2):
        if i == 2: t0 = time.perf_counter()           # two warm-up steps
        logits = model(x).view(batch, k, 10).reshape(batch * k, 10)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return batch * k * steps / (time.perf_counter() - t0)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    base = images_per_second(1, a.batch, a.steps)
    print(f"one model at a time: {base:8.0f} img/s ({a.threads} threads)")
    for k in a.k:
        fused = images_per_second(k, a.batch, a.steps)
        print(f"{k} models fused:     {fused:8.0f} model-img/s   ratio fused/one-at-a-time: {fused / base:.2f}x")
