"""Persistence diagrams of a 1,500-neuron activation matrix: ripser.py's default call vs shortcut_nb's path, in one process.

Activations: ResNet-18 (CIFAR stem; `--weights` to load trained ones, else its seeded initialisation) on 500 clean
CIFAR-10 test images, spatial max per conv channel, 1,500 neurons sampled across layers; distance 1 − Pearson ρ.
Baseline: `ripser(d, maxdim=1, distance_matrix=True)` (ripser.py). Ours: `shortcut_nb.topology.rips_diagrams`
(giotto-ph's parallel Ripser on the float32 matrix). The script checks the H0 and H1 diagrams agree (to 1e-6)
before printing the ratio, then times one model end to end (activations + distance + diagrams) for two models.

    python bench/topology_diagrams.py [--repeats 3] [--threads N]
"""
import argparse, warnings
import numpy as np
import torch
from _timing import best_time
from ripser import ripser
from shortcut_nb.data import load_images, subset
from shortcut_nb.models import make_model
from shortcut_nb.topology import neuron_activations, correlation_distance, rips_diagrams


def same_diagrams(a: list, b: list, atol: float = 1e-6) -> bool:
    for x, y in zip(a, b):
        if x.shape != y.shape: return False
        xs, ys = np.sort(x, 0), np.sort(y, 0)
        fin = np.isfinite(xs)
        if not (np.array_equal(fin, np.isfinite(ys)) and np.allclose(xs[fin], ys[fin], atol=atol)): return False
    return True


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3); ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--weights", default=""); ap.add_argument("--n-neurons", type=int, default=1500)
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    x = subset(load_images("cifar10", "test"), 50, seed=2).x
    model = make_model("resnet18", seed=0)
    if a.weights: model.load_state_dict(torch.load(a.weights, map_location="cpu"))
    na = neuron_activations(model, x, n_neurons=a.n_neurons, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore"); d, keep = correlation_distance(na.acts)
    print(f"distance matrix {d.shape} from {len(x)} images; torch threads {torch.get_num_threads()}")
    base, t_base = best_time(lambda: ripser(d, maxdim=1, distance_matrix=True)["dgms"], a.repeats)
    ours, t_ours = best_time(lambda: rips_diagrams(d, 1, backend="giotto"), a.repeats)
    ok = same_diagrams(base, ours)
    print(f"identical diagrams (H0 {len(base[0])} points, H1 {len(base[1])} points): {ok}")
    if not ok: raise SystemExit("the diagrams differ — not timing a wrong answer")
    print(f"ripser.py {t_base:.2f} s | rips_diagrams (giotto-ph) {t_ours:.2f} s | ratio {t_base / t_ours:.2f}x (best of {a.repeats})")
    for arch in ("small_cnn", "resnet18"):
        m = make_model(arch, seed=0)
        def end_to_end():
            n = neuron_activations(m, x, n_neurons=a.n_neurons, seed=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore"); dd, _ = correlation_distance(n.acts)
            return rips_diagrams(dd, 1), len(dd)
        (dg, nn_), t = best_time(end_to_end, 1)
        print(f"end to end, {arch}: {nn_} neurons, activations + diagrams {t:.2f} s")
