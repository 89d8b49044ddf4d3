"""Patch-exchange certainty (Figure 3 of Hagos et al.): batched MC dropout vs a straightforward loop, in one process.

Workload: 4 source images × 49 patches (4×4 on 28×28) × 50 target images = 9,800 perturbed images
(+ the 4 unperturbed sources), each scored with 100 Monte Carlo dropout passes ≈ 980,000 forward passes.

- ours: `shortcut_nb.xbl.patch_exchange` — the source's logits for all 100 dropout masks once, then
  per patch only the features that the exchange changes (patch + conv radius) times the stacked masked
  weights: all passes of all perturbed images as large matrix products. Also timed: `local=False`,
  every perturbed image's full features through `mc_probs` (still batched over passes).
- baseline: `shortcut_nb.xbl.mc_probs_loop` — for every perturbed image, for every pass, a full forward
  pass (conv, dropout mask, linear), the way one writes it first. It uses the very same masks, so the
  two must agree; we check that on the timed subset.

The loop is too slow to run in full on a CPU, so it is timed on `--loop-images` perturbed images and
extrapolated linearly to the full workload (it is a loop of identical steps); the output says so.
Weights are random (timing does not depend on them). Real Fashion-MNIST images are used when
SHORTCUT_NB_DATA is set, random images otherwise.

    python bench/xbl_patch_exchange.py [--sources 4] [--targets 50] [--passes 100] [--loop-images 40]
"""
import argparse, os, time
import torch
from shortcut_nb.config import get_device
from shortcut_nb.data import ImageSet, load_images
from shortcut_nb.models import make_model
from shortcut_nb.xbl import exchange_patches, mc_probs_loop, patch_exchange


def images(n_src: int, n_tgt: int) -> tuple[ImageSet, ImageSet, str]:
    if os.environ.get("SHORTCUT_NB_DATA"):
        te = load_images("fashion_mnist", "test")
        src = te.take((te.y == 7).nonzero().flatten()[:n_src]); tgt = te.take((te.y == 6).nonzero().flatten()[:n_tgt])
        return src, tgt, te.source
    g = torch.Generator().manual_seed(0)
    classes = [str(i) for i in range(10)]
    src = ImageSet(torch.randint(0, 256, (n_src, 1, 28, 28), generator=g, dtype=torch.uint8), torch.full((n_src,), 7), classes, "random")
    tgt = ImageSet(torch.randint(0, 256, (n_tgt, 1, 28, 28), generator=g, dtype=torch.uint8), torch.full((n_tgt,), 6), classes, "random")
    return src, tgt, "random uint8 images"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", type=int, default=4); ap.add_argument("--targets", type=int, default=50)
    ap.add_argument("--passes", type=int, default=100); ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--loop-images", type=int, default=200, help="perturbed images the loop is timed on")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dev = get_device()
    model = make_model("xbl_cnn", 1, 10, seed=0).to(dev)
    src, tgt, data = images(a.sources, a.targets)
    n_pert = a.sources * (28 // a.patch) ** 2 * a.targets

    patch_exchange(model, src.take([0]), tgt.take(list(range(2))), 7, 6, a.patch, passes=a.passes)   # warm-up
    t0 = time.perf_counter()
    res = patch_exchange(model, src, tgt, 7, 6, a.patch, passes=a.passes)
    if dev.type == "cuda": torch.cuda.synchronize()
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    res_full = patch_exchange(model, src, tgt, 7, 6, a.patch, passes=a.passes, local=False)   # every perturbed image in full
    if dev.type == "cuda": torch.cuda.synchronize()
    t_full = time.perf_counter() - t0

    # the loop, on the first `loop_images` perturbed images of source 0 (+ a check that both agree)
    pert = exchange_patches(src.x[0], tgt.x, a.patch).flatten(0, 1)[: a.loop_images]
    mc_probs_loop(model, pert[:1], passes=2)                                                           # warm-up
    t0 = time.perf_counter()
    p_loop = mc_probs_loop(model, pert, passes=a.passes)[:, 7]
    if dev.type == "cuda": torch.cuda.synchronize()
    t_loop_sub = time.perf_counter() - t0
    n_sub = len(pert)
    t_loop = t_loop_sub / n_sub * (n_pert + a.sources)
    p_ours = res.certainty[0].flatten()[:n_sub]
    max_diff = (p_ours - p_loop).abs().max().item()

    fwd = (n_pert + a.sources) * a.passes
    who = torch.cuda.get_device_name(0) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} torch threads"
    print(f"device={dev} ({who}) data={data}")
    print(f"workload: {a.sources} sources × {(28 // a.patch) ** 2} patches × {a.targets} targets = {n_pert} perturbed images "
          f"× {a.passes} MC passes = {fwd:,} forward passes")
    print(f"batched patch_exchange (local):    {t_ours:8.2f} s  ({fwd / t_ours:,.0f} passes/s)")
    print(f"batched, every image in full:      {t_full:8.2f} s  (local=False: mc_probs on all perturbed images; "
          f"max diff to local {(res_full.certainty - res.certainty).abs().max().item():.1e})")
    print(f"loop over images and passes:       {t_loop:8.2f} s  (extrapolated from {n_sub} images × {a.passes} passes "
          f"timed at {t_loop_sub:.2f} s)")
    print(f"max |batched − loop| on the timed images: {max_diff:.2e}")
    print(f"ratio loop/batched: {t_loop / t_ours:.1f}x   (loop/batched-in-full: {t_loop / t_full:.1f}x)")


if __name__ == "__main__":
    main()
