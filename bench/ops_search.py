"""OPS search on the full CIFAR-10 training set: shortcut_nb's moment-based search vs a brute force, in one process.

Baseline (a straightforward vectorised brute force): for every class and every boundary colour ξ, build the
per-image score map s = Σ_j |x_j − ξ_j| (n_k × H × W) over the class's images and take its mean and variance
arrays; keep the best (position, colour) per class — 10 classes × 8 colours passes over the class's pixels.
Ours: `shortcut_nb.pixel.ops_search`, which needs only per-class first and second pixel moments (one pass).
Both must return identical positions and colours; the script checks that before printing the ratio.

    python bench/ops_search.py [--repeats 3] [--threads N]
"""
import argparse
import torch
from _timing import best_time
from shortcut_nb.data import load_images
from shortcut_nb.pixel import ops_search, boundary_colors


def brute_force(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    "Per class: argmax over (colour, position) of mean/var of Σ_j |x_j − ξ_j| — arrays over the class's images."
    K, (C, H, W) = int(y.max()) + 1, x.shape[1:]
    cols = boundary_colors(C)
    pos, best_col = torch.zeros(K, 2, dtype=torch.long), torch.zeros(K, C)
    for k in range(K):
        xk = x[y == k].double() / 255                                   # n_k × C × H × W
        best = -1.0
        for v in cols:
            s = (xk - v.double()[None, :, None, None]).abs().sum(1)     # n_k × H × W
            g = s.mean(0) / s.var(0, unbiased=False).clamp(min=1e-12)
            val, i = g.flatten().max(0)
            if val > best: best, pos[k], best_col[k] = float(val), torch.tensor([i // W, i % W]), v
    return pos, best_col


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3); ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    train = load_images("cifar10", "train")
    print(f"{len(train)} images {tuple(train.image_shape)}, torch threads {torch.get_num_threads()}, source: {train.source}")
    ours, t_ours = best_time(lambda: ops_search(train), a.repeats)
    (pos_b, col_b), t_base = best_time(lambda: brute_force(train.x, train.y), max(1, a.repeats - 2))
    same_pos = torch.equal(ours.positions[:, 0], pos_b); same_col = torch.equal(ours.colors[:, 0], col_b)
    print(f"identical positions: {same_pos}, identical colours: {same_col}")
    if not (same_pos and same_col): raise SystemExit("the two searches disagree — not timing a wrong answer")
    print(f"brute force {t_base:.2f} s | ops_search {t_ours:.3f} s | ratio {t_base / t_ours:.1f}x (best of runs)")
