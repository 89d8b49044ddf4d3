"""Error-minimising noise (EM) generation time at `cpu` scale, and its cost in units of surrogate training.

Runs `shortcut_nb.unlearnable.em_noise` as the One-Pixel-Shortcut notebook does at `cpu` scale (2,000 CIFAR-10
images, small-CNN surrogate, 10 PGD steps of 2/255 per round, ℓ∞ 8/255) for a fixed number of rounds (no early
stop), and in the same process times plain training of the same surrogate for one epoch over the same images.
The ratio says how many training epochs one EM round costs. The paper reports ~0.5 h for EM on CIFAR-10 with a
ResNet-18 generator on a GPU; a GPU row needs a GPU.

    python bench/em_generation.py [--rounds 3] [--n-per-class 200] [--threads N]
"""
import argparse, time
import torch
from shortcut_nb.config import get_device
from shortcut_nb.data import load_images, subset
from shortcut_nb.train import TrainConfig, train_model
from shortcut_nb.unlearnable import em_noise, within_budget

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3); ap.add_argument("--n-per-class", type=int, default=200)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    ds = subset(load_images("cifar10", "train"), a.n_per_class, seed=0)
    print(f"{len(ds)} images, device {get_device()}, torch threads {torch.get_num_threads()}")
    t0 = time.perf_counter()
    em = em_noise(ds, arch="small_cnn", max_rounds=a.rounds, stop_acc=1.01, pgd_steps=10, step=2 / 255, seed=0)
    t_em = time.perf_counter() - t0
    assert within_budget(ds, em)
    t0 = time.perf_counter(); train_model("small_cnn", ds, TrainConfig(epochs=1, seed=0), progress=False); t_epoch = time.perf_counter() - t0
    print(f"EM: {a.rounds} rounds in {t_em:.1f} s ({t_em / a.rounds:.1f} s per round; surrogate accuracy on the noisy data "
          f"{em.info['surrogate_acc']:.3f}) | one training epoch {t_epoch:.2f} s | one EM round = {t_em / a.rounds / t_epoch:.1f} epochs")
