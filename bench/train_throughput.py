"""Training throughput: shortcut_nb's on-device trainer vs a classic torchvision pipeline, in one process.

Baseline: a Dataset that turns each uint8 image into a PIL image and applies per-image
torchvision transforms (RandomCrop(padding) + RandomHorizontalFlip + ToTensor), batched by a
DataLoader, then the usual training loop — what torchvision.datasets.CIFAR10 + DataLoader does.
Ours: `shortcut_nb.train.fit` (uint8 tensors on the device, per-image augmentation on whole batches).
Same model, same images, same optimiser, same number of steps. Prints images/s and the ratio.

Against the machine's own limit: the same process also times a dense float32 matmul (the best a
CPU or GPU does per second) and counts the model's FLOPs per training image (forward + backward,
torch's FlopCounterMode), and reports the trainer's achieved GFLOP/s as a fraction of that limit.

    python bench/train_throughput.py [--arch small_cnn] [--n 5000] [--epochs 2] [--workers 0]
"""
import argparse, time
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T
from shortcut_nb.config import get_device
from shortcut_nb.data import load_images, subset
from shortcut_nb.models import make_model
from shortcut_nb.train import TrainConfig, fit


class PILImages(Dataset):
    "Per-image PIL pipeline, as torchvision's CIFAR10 dataset serves images."
    def __init__(self, x: np.ndarray, y: np.ndarray, transform):
        self.x, self.y, self.transform = x, y, transform  # x: N×H×W×C uint8
    def __len__(self): return len(self.y)
    def __getitem__(self, i): return self.transform(Image.fromarray(self.x[i])), int(self.y[i])


def baseline_epoch(model, loader, opt, device):
    model.train()
    for xb, yb in loader:
        xb, yb = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
        with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
            loss = F.cross_entropy(model(xb).float(), yb)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    if device.type == "cuda": torch.cuda.synchronize()


def matmul_gflops(device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    "Dense float32 matmul GFLOP/s on `device` (best of `repeats`): the machine's practical compute limit."
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    best = float("inf")
    for _ in range(repeats + 1):
        if device.type == "cuda": torch.cuda.synchronize()
        t0 = time.perf_counter(); a @ b
        if device.type == "cuda": torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


def train_flops_per_image(arch: str, batch: int, device: torch.device) -> float:
    "FLOPs of one training step (forward + backward) per image, counted by torch."
    from torch.utils.flop_counter import FlopCounterMode
    m = make_model(arch, seed=0).to(device)
    x, y = torch.rand(batch, 3, 32, 32, device=device), torch.randint(0, 10, (batch,), device=device)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(m(x), y).backward()
    return counter.get_total_flops() / batch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="small_cnn"); ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--epochs", type=int, default=2); ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--workers", type=int, default=0)
    a = ap.parse_args()
    device = get_device()
    ds = load_images("cifar10", "train")
    if a.n < len(ds): ds = subset(ds, a.n // 10, seed=0)
    n = len(ds); steps = n // a.batch
    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor()])
    loader = DataLoader(PILImages(ds.x.permute(0, 2, 3, 1).numpy(), ds.y.numpy(), tf), batch_size=a.batch, shuffle=True,
                        drop_last=True, num_workers=a.workers, pin_memory=device.type == "cuda")

    # warm-up both paths once (cuDNN autotune, allocator), then time
    cfg = TrainConfig(epochs=1, batch_size=a.batch, lr=0.05, schedule="constant", eval_train=False, name="bench")
    fit(make_model(a.arch, seed=0), ds, cfg, progress=False, device=device)
    m = make_model(a.arch, seed=0).to(device); opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    baseline_epoch(m, loader, opt, device)

    t0 = time.perf_counter()
    for _ in range(a.epochs): baseline_epoch(m, loader, opt, device)
    t_base = time.perf_counter() - t0
    t0 = time.perf_counter()
    fit(make_model(a.arch, seed=0), ds, TrainConfig(**{**cfg.to_dict(), "epochs": a.epochs}), progress=False, device=device)
    if device.type == "cuda": torch.cuda.synchronize()
    t_ours = time.perf_counter() - t0

    imgs = steps * a.batch * a.epochs
    peak = matmul_gflops(device)
    achieved = imgs / t_ours * train_flops_per_image(a.arch, a.batch, device) / 1e9
    print(f"device={device} ({torch.cuda.get_device_name(0) if device.type == 'cuda' else f'{torch.get_num_threads()} CPU threads'}) "
          f"arch={a.arch} images={n} epochs={a.epochs} batch={a.batch} loader_workers={a.workers}")
    print(f"baseline (PIL + per-image transforms + DataLoader): {imgs / t_base:8.0f} img/s  ({t_base / a.epochs:.2f} s/epoch)")
    print(f"shortcut_nb fit (on-device batches):                {imgs / t_ours:8.0f} img/s  ({t_ours / a.epochs:.2f} s/epoch)")
    print(f"ratio ours/baseline: {t_base / t_ours:.2f}x")
    print(f"trainer: {achieved:.1f} GFLOP/s = {achieved / peak:.0%} of this machine's dense matmul ({peak:.1f} GFLOP/s, same process)")


if __name__ == "__main__":
    main()
