"""Training throughput: shortcut_nb's on-device trainer vs a classic torchvision pipeline, in one process.

Baseline: a Dataset that turns each uint8 image into a PIL image and applies per-image
torchvision transforms (RandomCrop(padding) + RandomHorizontalFlip + ToTensor), batched by a
DataLoader, then the usual training loop — what torchvision.datasets.CIFAR10 + DataLoader does.
Ours: `shortcut_nb.train.fit` (uint8 tensors on the device, per-image augmentation on whole batches).
Same model, same images, same optimiser, same number of steps. Prints images/s and the ratio.

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
    cfg = TrainConfig(epochs=1, batch_size=a.batch, lr=0.05, schedule="constant", name="bench")
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
    print(f"device={device} ({torch.cuda.get_device_name(0) if device.type == 'cuda' else f'{torch.get_num_threads()} CPU threads'}) "
          f"arch={a.arch} images={n} epochs={a.epochs} batch={a.batch} loader_workers={a.workers}")
    print(f"baseline (PIL + per-image transforms + DataLoader): {imgs / t_base:8.0f} img/s  ({t_base / a.epochs:.2f} s/epoch)")
    print(f"shortcut_nb fit (on-device batches):                {imgs / t_ours:8.0f} img/s  ({t_ours / a.epochs:.2f} s/epoch)")
    print(f"ratio ours/baseline: {t_base / t_ours:.2f}x")


if __name__ == "__main__":
    main()
