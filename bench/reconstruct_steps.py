"""Reconstruction steps/s: the batched KKT residual of `shortcut_nb.reconstruct` vs a per-candidate loop, in one process.

Batched (ours): Σ_j λ_j y_j ∇_θ Φ(θ; x_j) is ONE backward pass of the weighted sum Σ_j λ_j y_j Φ(θ; x_j)
with create_graph=True, then one double-backward to the candidates (`shortcut_nb.reconstruct.kkt_residual`).
Baseline: the same residual built from m separate gradients ∇_θ Φ(θ; x_j) (one backward per candidate,
each with create_graph=True), summed with their weights. Same model, candidates, optimiser step; the
two losses are checked to agree before timing. Prints steps/s of each and the ratio.

    python bench/reconstruct_steps.py [--dim 3072] [--hidden 256] [--m 100] [--steps 10] [--threads 1]
"""
import argparse, time
import torch
from shortcut_nb.reconstruct import homogeneous_mlp, functional_forward, kkt_residual, HAIM_CIFAR


def per_sample_residual(model, f, x, lam, y):
    "‖θ − (1/m) Σ_j λ_j y_j ∇_θΦ(x_j)‖² from m separate gradients (the loop we avoid)."
    params = list(model.parameters()); m = len(x)
    acc = [torch.zeros_like(p) for p in params]
    for j in range(m):
        g = torch.autograd.grad(f(x[j:j + 1]).sum(), params, create_graph=True)
        acc = [a + (lam[j] * y[j] / m) * gj for a, gj in zip(acc, g)]
    return sum((p.detach() - a).pow(2).sum() for p, a in zip(params, acc))


def timed_steps(residual, model, f, x0, lam0, y, steps, lr):
    x = x0.clone().requires_grad_(True); lam = lam0.clone().requires_grad_(True)
    opt = torch.optim.SGD([x, lam], lr=lr, momentum=0.9)
    def step():
        loss = residual(model, f, x, lam, y)
        opt.zero_grad(); loss.backward(inputs=[x, lam]); opt.step()
        return loss.item()
    step()  # warm-up
    t = time.perf_counter()
    for _ in range(steps): step()
    return steps / (time.perf_counter() - t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=3072); ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--m", type=int, default=100); ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--loop-steps", type=int, default=2); ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = homogeneous_mlp(a.dim, (a.hidden, a.hidden), first_init=1e-2, seed=0)
    f = functional_forward(model, HAIM_CIFAR["relu_alpha"])
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(a.m, a.dim, generator=g) * 0.1; lam0 = torch.rand(a.m, generator=g)
    y = torch.ones(a.m); y[: a.m // 2] = -1
    lb = kkt_residual(model, f, x0, lam0, y).item(); ll = per_sample_residual(model, f, x0, lam0, y).item()
    assert abs(lb - ll) <= 1e-4 * abs(lb), (lb, ll)
    batched = timed_steps(kkt_residual, model, f, x0, lam0, y, a.steps, 1e-3)
    loop = timed_steps(per_sample_residual, model, f, x0, lam0, y, a.loop_steps, 1e-3)
    print(f"d={a.dim} hidden={a.hidden} m={a.m} threads={a.threads} torch={torch.__version__}")
    print(f"residual check: batched {lb:.6g} vs loop {ll:.6g}")
    print(f"per-candidate loop: {loop:.2f} steps/s")
    print(f"batched (ours):     {batched:.2f} steps/s")
    print(f"ratio: {batched / loop:.1f}x")


if __name__ == "__main__":
    main()
