"Bias makers and the reconstruction library behind papers/recovered_samples.ipynb: invariants and bad inputs."
import warnings
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from shortcut_nb.data import ImageSet
from shortcut_nb.bias import add_trigger, contrast_bias, class_positions, CIFAR_TRIGGER_VALUES
from shortcut_nb.reconstruct import (homogeneous_mlp, homogeneity_problems, to_model_space, train_homogeneous, NotConverged,
                                     TrainReport, reconstruct, functional_forward, weighted_gradient, kkt_residual,
                                     reconstruction_score, to_unit_range, no_reference_score)


def toy_set(n=20, c=3, size=16, seed=0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    return ImageSet(torch.randint(20, 230, (n, c, size, size), generator=g, dtype=torch.uint8),
                    torch.arange(n) % 2, ["vehicle", "animal"])


# ---- bias makers -------------------------------------------------------------------------------

def test_level1_trigger_is_top_left_with_class_values():
    ds = toy_set(); before = ds.x.clone()
    b = add_trigger(ds, 1, CIFAR_TRIGGER_VALUES, size=4)
    assert torch.equal(ds.x, before), "input mutated"
    for i in range(len(ds)):
        v = 0 if ds.y[i] == 0 else 255
        assert (b.data.x[i, :, :4, :4] == v).all()
        assert torch.equal(b.data.x[i, :, 4:, :], ds.x[i, :, 4:, :]) and torch.equal(b.data.x[i, :, :4, 4:], ds.x[i, :, :4, 4:])
    assert torch.equal(b.data.y, ds.y)


@pytest.mark.parametrize("level,per_class", [(2, 3), (3, 5)])
def test_random_levels_use_their_class_positions(level, per_class):
    ds = toy_set(n=40, size=32)
    b = add_trigger(ds, level, size=4, seed=3)
    assert b.class_positions.shape == (2, per_class, 2)
    assert len({tuple(p) for p in b.class_positions.view(-1, 2).tolist()}) == 2 * per_class   # 6 / 10 distinct squares
    for i in range(len(ds)):
        r, c = b.positions[i].tolist()
        assert any((b.class_positions[ds.y[i]] == b.positions[i]).all(1))
        assert (b.data.x[i, :, r:r + 4, c:c + 4] == (0 if ds.y[i] == 0 else 255)).all()
        changed = (b.data.x[i] != ds.x[i]).any(0)
        assert not changed[~b.mask[i]].any(), "pixels outside the trigger changed"
    used = {tuple(p) for p in b.positions.tolist()}
    assert len(used) > 2, "images should spread over several positions"


def test_trigger_is_seeded():
    ds = toy_set(n=30, size=32)
    a, b, c = add_trigger(ds, 3, seed=1), add_trigger(ds, 3, seed=1), add_trigger(ds, 3, seed=2)
    assert torch.equal(a.data.x, b.data.x) and torch.equal(a.positions, b.positions)
    assert not torch.equal(a.class_positions, c.class_positions)


def test_trigger_bad_inputs():
    ds = toy_set()
    with pytest.raises(ValueError, match="level"): add_trigger(ds, 0)
    with pytest.raises(ValueError, match="one trigger value per class"): add_trigger(ds, 1, values=(0.0, 0.5, 1.0))
    with pytest.raises(ValueError, match="trigger size"): add_trigger(ds, 1, size=17)
    with pytest.raises(ValueError, match="do not fit"): class_positions(2, 5, (8, 8), size=4)


def test_contrast_bias_is_pure_and_classwise():
    ds = toy_set(); before = ds.x.clone()
    cb = contrast_bias(ds, (0.5, 2.0))
    assert torch.equal(ds.x, before)
    assert cb.factors.tolist() == [0.5 if y == 0 else 2.0 for y in ds.y.tolist()]
    s_in, s_out = ds.x.float().flatten(1).std(1), cb.data.x.float().flatten(1).std(1)
    assert (s_out[ds.y == 0] < s_in[ds.y == 0]).all() and (s_out[ds.y == 1] > s_in[ds.y == 1]).all()
    assert torch.equal(contrast_bias(ds, (1.0, 1.0)).data.x, ds.x)
    with pytest.raises(ValueError, match="≥ 0"): contrast_bias(ds, (-1.0, 1.0))


# ---- reconstruction ------------------------------------------------------------------------------

def test_non_binary_labels_rejected():
    ds = ImageSet(torch.zeros(3, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1, 2]), ["a", "b", "c"])
    with pytest.raises(ValueError, match="binary"): to_model_space(ds)
    x = torch.randn(4, 16); m = homogeneous_mlp(16, (8, 8))
    with pytest.raises(ValueError, match="±1"): train_homogeneous(m, x, torch.tensor([0., 1., 0., 1.]))


def test_n_candidates_and_labels_checked():
    m = homogeneous_mlp(16, (8, 8))
    with pytest.raises(ValueError, match="n_candidates"): reconstruct(m, 0, (16,))
    with pytest.raises(ValueError, match="labels"): reconstruct(m, 3, (16,), labels=torch.tensor([1., 1.]))


def test_callback_sees_logged_candidates_and_can_stop_a_run():
    m = homogeneous_mlp(16, (8, 8), first_init=0.3, seed=1)
    kw = dict(iters=30, lr=0.05, init_scale=0.1, seed=0, log_every=10)
    plain = reconstruct(m, 4, (16,), **kw)
    f = functional_forward(m, 300.0); y = torch.tensor([-1., -1., 1., 1.])
    rec = reconstruct(m, 4, (16,), callback=lambda it, x, lam: {"kkt_again": kkt_residual(m, f, x, lam, y).item()}, **kw)
    assert torch.equal(rec.x, plain.x)                                    # observing does not change the run
    assert [r["iter"] for r in rec.history] == [0, 10, 20, 29]
    for r, p in zip(rec.history, plain.history):                          # the callback's x is the one the residual was taken at
        assert r["kkt"] == p["kkt"] and abs(r["kkt_again"] - r["kkt"]) <= 1e-5 * max(1.0, r["kkt"])
    class Stop(Exception): pass
    def stop_at_10(it, x, lam):
        if it >= 10: raise Stop
    with pytest.raises(Stop): reconstruct(m, 4, (16,), callback=stop_at_10, **kw)   # a budget stop propagates
    with pytest.raises(ValueError, match="log_every"): reconstruct(m, 4, (16,), iters=2, callback=stop_at_10)
    with pytest.raises(TypeError, match="callable"): reconstruct(m, 4, (16,), iters=2, log_every=1, callback="no")


def test_non_homogeneous_model_warns():
    bad = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1))  # biases everywhere
    assert homogeneity_problems(bad)
    with pytest.warns(UserWarning, match="theory does not hold"):
        reconstruct(bad, 4, (16,), iters=2)
    conv = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 1, bias=False))
    with pytest.warns(UserWarning, match="not a plain"):
        reconstruct(conv, 2, (1, 4, 4), iters=1)


def test_unconverged_training_is_reported_and_blocks_reconstruction():
    x = torch.ones(4, 16, dtype=torch.float64); y = torch.tensor([1., -1., 1., -1.], dtype=torch.float64)  # inseparable
    m = homogeneous_mlp(16, (8, 8), dtype=torch.float64)
    with pytest.raises(NotConverged, match="train error"): train_homogeneous(m, x, y, max_epochs=30)
    assert m.train_report is not None and not m.train_report.converged
    with pytest.raises(NotConverged, match="did not converge"): reconstruct(m, 4, (16,), iters=1)
    with pytest.warns(UserWarning, match="did not converge"):
        reconstruct(m, 4, (16,), iters=1, allow_unconverged=True)


def test_training_reaches_zero_error_and_loss_threshold():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 8, generator=g, dtype=torch.float64); y = torch.sign(x[:, 0])
    m = homogeneous_mlp(8, (32, 32), first_init=1e-2, dtype=torch.float64)
    rep = train_homogeneous(m, x, y, lr=0.05, max_epochs=5000)
    assert rep.converged and rep.train_error == 0 and rep.final_loss < 1e-5 and rep.epoch_zero_error <= rep.epochs
    assert F.softplus(-y * m(x)[:, 0]).mean().item() < 1e-5


def test_batched_weighted_gradient_equals_per_sample_sum():
    m = homogeneous_mlp(12, (6, 5), first_init=0.5, seed=2, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 12, generator=g, dtype=torch.float64); c = torch.randn(7, generator=g, dtype=torch.float64)
    for alpha in (None, 30.0):
        f = functional_forward(m, alpha)
        batched = weighted_gradient(m, f, x, c, create_graph=False)
        per = [torch.autograd.grad(f(x[j:j + 1]).sum(), list(m.parameters())) for j in range(7)]
        for i, b in enumerate(batched):
            torch.testing.assert_close(b, sum(c[j] * per[j][i] for j in range(7)), rtol=1e-10, atol=1e-12)
    # and the candidates' gradient of the residual (double backprop) matches finite differences
    # (exact ReLU: with the smoothed derivative the "gradient" is a surrogate by design)
    f = functional_forward(m, None)
    xs = x.clone().requires_grad_(True); lam = torch.rand(7, generator=g, dtype=torch.float64); y = torch.sign(c)
    kkt_residual(m, f, xs, lam, y).backward(inputs=[xs])
    e = torch.zeros_like(x); e[2, 3] = 1e-6
    fd = (kkt_residual(m, f, x + e, lam, y) - kkt_residual(m, f, x - e, lam, y)).item() / 2e-6
    assert abs(fd - xs.grad[2, 3].item()) <= 1e-5 * max(1.0, abs(fd))


def test_ssim_score_sanity():
    g = torch.Generator().manual_seed(0)
    imgs = to_unit_range(torch.rand(12, 3, 16, 16, generator=g, dtype=torch.float64))
    same = reconstruction_score(imgs, imgs[torch.randperm(12, generator=g)], k=10)
    assert abs(same.best_k - 1.0) < 1e-9
    smooth = F.interpolate(torch.rand(12, 3, 4, 4, generator=g, dtype=torch.float64), size=16, mode="bilinear")
    noise = torch.rand(24, 3, 16, 16, generator=g, dtype=torch.float64)
    low = reconstruction_score(to_unit_range(smooth), noise, k=10)
    assert low.best_k < 0.3 and (low.ssim[:-1] >= low.ssim[1:]).all()          # sorted best first
    # the mean is added back before rescaling: reconstructions in model space still score 1
    mean = imgs.mean(0, keepdim=True)
    assert abs(reconstruction_score(imgs, imgs - mean, mean, k=5).best_k - 1.0) < 1e-9
    assert 0 <= no_reference_score(noise) <= 1


# ---- the paper notebook: a diverged reconstruction is a failed run, reported and not scored -----------------

def test_paper_reports_a_diverged_reconstruction(shared_data, tmp_path, monkeypatch):
    import json
    import pandas as pd
    from shortcut_nb.runner import run_paper
    monkeypatch.setenv("SHORTCUT_NB_CACHE", str(tmp_path / "cache"))
    out = run_paper("recovered_samples", "smoke", run="diverge", params={"rec_lr_mult_mnist": 1e5},
                    out_root=tmp_path / "outputs", progress=False)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_reconstructions_diverged"] >= 1                 # the MNIST step is far past stable
    claims = pd.read_csv(out / "claims.csv")
    moved = claims.set_index("claim_id").loc["T1_moved_mnist"]
    assert moved.verdict == "not run" and moved.n == 0                # no score from a diverged run
    assert "Diverged reconstructions (not scored): 1" in (out / "findings.md").read_text()
