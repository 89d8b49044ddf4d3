"""Fairness metrics on hand-computed confusion matrices, the biased proxy benchmark, BPA's pieces, and (slow) ERM vs
BPA on coloured MNIST."""
import numpy as np
import pytest
import torch
from shortcut_nb.config import generator
from shortcut_nb.data import ImageSet
from shortcut_nb.fairness import (fairness_report, table1_row, biased_benchmark, balanced_benchmark, proxy_targets,
                                  pseudo_attributes, ClusterLossWeights, bpa_train, evaluate_fairness, BiasedSet)
from shortcut_nb.train import TrainConfig


def from_confusion(cms):
    "pred, target, group arrays realising one confusion matrix [[TN, FP], [FN, TP]] per sensitive group."
    p, t, s = [], [], []
    for g, cm in cms.items():
        for y in (0, 1):
            for yhat in (0, 1):
                k = cm[y][yhat]
                p += [yhat] * k; t += [y] * k; s += [g] * k
    return np.array(p), np.array(t), np.array(s)


def test_hand_computed_confusion_matrices():
    # s = 0:  TN 40 FP 10 / FN 5 TP 45      s = 1:  TN 18 FP 2 / FN 12 TP 8
    r = fairness_report(*from_confusion({0: [[40, 10], [5, 45]], 1: [[18, 2], [12, 8]]}))
    # a(0,0) = 40/50 = .8, a(1,0) = 45/50 = .9, a(0,1) = 18/20 = .9, a(1,1) = 8/20 = .4
    assert r["group_acc"] == pytest.approx({"y=0,s=0": 0.8, "y=1,s=0": 0.9, "y=0,s=1": 0.9, "y=1,s=1": 0.4})
    assert r["group_n"] == {"y=0,s=0": 50, "y=1,s=0": 50, "y=0,s=1": 20, "y=1,s=1": 20}
    assert r["acc"] == pytest.approx((40 + 45 + 18 + 8) / 140)
    mean = (0.8 + 0.9 + 0.9 + 0.4) / 4                                  # 0.75
    assert r["unbiased_acc"] == pytest.approx(mean)
    assert r["worst_group_acc"] == pytest.approx(0.4)
    assert r["group_acc_std"] == pytest.approx(np.sqrt((0.05**2 + 0.15**2 + 0.15**2 + 0.35**2) / 4))
    # TPR: .9 vs .4 → gap .5; FPR: 10/50 = .2 vs 2/20 = .1 → gap .1
    assert r["eo_disparity"] == pytest.approx(0.5) and r["tpr_gap"] == pytest.approx(0.5)
    assert r["fpr_gap"] == pytest.approx(0.1)
    assert r["average_odds"] == pytest.approx(0.3) and r["eo_max"] == pytest.approx(0.5)
    row = table1_row(r)
    assert row["worst_group_acc_pct"] == pytest.approx(40.0) and row["average_odds_pct"] == pytest.approx(30.0)


def test_fpr_larger_gap_makes_ao_exceed_eo():
    "The reading of EO that Table 1 needs: with a larger FPR gap, AO > EO (TPR gap) while AO ≤ eo_max."
    r = fairness_report(*from_confusion({0: [[9, 1], [2, 8]], 1: [[3, 7], [3, 7]]}))   # TPR .8/.7, FPR .1/.7
    assert r["eo_disparity"] == pytest.approx(0.1) and r["fpr_gap"] == pytest.approx(0.6)
    assert r["average_odds"] == pytest.approx(0.35) and r["average_odds"] > r["eo_disparity"]
    assert r["eo_max"] == pytest.approx(0.6) and r["average_odds"] <= r["eo_max"]


def test_symmetric_in_group_labels_and_input_types():
    p, t, s = from_confusion({0: [[40, 10], [5, 45]], 1: [[18, 2], [12, 8]]})
    a = fairness_report(p, t, s)
    b = fairness_report(torch.tensor(p), torch.tensor(t), torch.tensor(7 - 5 * s))     # ids 7 and 2, swapped order
    for k in ("unbiased_acc", "worst_group_acc", "group_acc_std", "eo_disparity", "average_odds"):
        assert a[k] == pytest.approx(b[k])


@pytest.mark.parametrize("args,match", [
    (([0, 1, 1], [0, 1], [0, 1, 1]), "length mismatch"),
    (([], [], []), "empty"),
    (([0, 2], [0, 1], [0, 1]), "binary"),
    (([0, 1], [0, 3], [0, 1]), "binary"),
    ((np.zeros((2, 2), dtype=int), [0, 1], [0, 1]), "argmax"),
    (([0.0, 1.0], [0, 1], [0, 1]), "integer"),
    (([0, 1], [0, 1], [1, 1]), "≥ 2 sensitive"),
    ((None, [0, 1], [0, 1]), "tensor, array or list"),
])
def test_bad_inputs(args, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fairness_report(*args)


def test_empty_group_rule():
    p, t, s = from_confusion({0: [[5, 1], [1, 3]], 1: [[0, 0], [2, 4]]})               # no negative example with s = 1
    with pytest.raises(ValueError, match=r"\(target=0, sensitive=1\)"):
        fairness_report(p, t, s)
    r = fairness_report(p, t, s, empty="nan")
    for k in ("unbiased_acc", "worst_group_acc", "group_acc_std", "fpr_gap", "average_odds", "eo_max"):
        assert np.isnan(r[k]), k
    assert r["tpr_gap"] == pytest.approx(3 / 4 - 4 / 6)                                 # defined without the empty group
    with pytest.raises(ValueError, match="empty must be"):
        fairness_report(p, t, s, empty="drop")


def _gray(n_per_class=30, k=4, seed=0):
    x = torch.randint(0, 256, (n_per_class * k, 1, 8, 8), generator=generator(seed), dtype=torch.uint8)
    return ImageSet(x, torch.arange(k).repeat(n_per_class), [f"c{i}" for i in range(k)])


@pytest.mark.parametrize("corr", [0.0, 0.5, 0.8, 0.95, 1.0])
def test_benchmark_exact_alignment(corr):
    ds = _gray()
    b = biased_benchmark(ds, ["c1", "c3"], correlation=corr, seed=3)
    for v in (0, 1):
        n = int((b.data.y == v).sum())
        assert int(b.aligned[b.data.y == v].sum()) == round(corr * n)
    assert torch.equal(b.data.y, (ds.y % 2 == 1).long()) and b.data.x.shape == (120, 3, 8, 8)
    assert isinstance(b, BiasedSet) and len(b) == 120


def test_benchmark_colour_encodes_sensitive():
    "The attribute is readable from the image: the red channel carries the strokes iff s = 0."
    ds = _gray()
    b = biased_benchmark(ds, [0], correlation=0.9, seed=0)
    red_energy, green_energy = b.data.x[:, 0].float().sum((1, 2)), b.data.x[:, 1].float().sum((1, 2))
    assert torch.equal((green_energy > red_energy).long(), b.sensitive)


def test_balanced_and_splits():
    bt = balanced_benchmark(_gray(40), ["c0", "c2"], seed=1)
    sizes = {(y, v): int(((bt.data.y == y) & (bt.sensitive == v)).sum()) for y in (0, 1) for v in (0, 1)}
    assert len(set(sizes.values())) == 1 and min(sizes.values()) > 0
    sp = proxy_targets([str(i) for i in range(10)], n=10, seed=0)
    assert len({frozenset(v) for v in sp.values()}) == 10


def test_cluster_loss_weights_follow_loss_over_size():
    cw = ClusterLossWeights(torch.tensor([0] * 6 + [1] * 2), momentum=0.0)            # momentum 0: the batch's own means
    w = cw(torch.tensor([0, 1, 6]), torch.tensor([0.5, 1.5, 3.0]))                     # L̂ = (1, 3); raw (1/6, 3/2)
    raw = torch.tensor([1 / 6, 1 / 6, 3 / 2])
    assert torch.allclose(w, raw / raw.mean())
    with pytest.raises(ValueError, match="one id"):
        ClusterLossWeights(torch.tensor([-1, 0]))


def test_pseudo_attributes_find_the_colour_of_a_colour_model():
    "Features that encode the sensitive attribute → clusters that separate bias-conflicting images."
    b = biased_benchmark(_gray(40), ["c1", "c2"], correlation=0.8, seed=0)
    feats = torch.stack([b.data.x[:, 0].float().mean((1, 2)), b.data.x[:, 1].float().mean((1, 2))], 1).numpy()
    pa = pseudo_attributes(feats, b.data.y, k=2, seed=0)
    for c in np.unique(pa):
        frac = b.conflicting.numpy()[pa == c].mean()
        assert frac in (0.0, 1.0), (c, frac)


def test_bpa_train_smoke():
    b = biased_benchmark(_gray(16), ["c0", "c1"], correlation=0.75, seed=0)
    r = bpa_train("small_cnn", b.data, TrainConfig(epochs=1, batch_size=16, augment="none"), k=3, progress=False)
    assert r.clusters.shape == (64,) and torch.equal(r.clusters // 3, b.data.y)
    assert r.weights.steps == 4
    rep = evaluate_fairness(r.debiased.model, balanced_benchmark(_gray(16, seed=1), ["c0", "c1"]))
    assert 0 <= rep["worst_group_acc"] <= rep["unbiased_acc"] <= 1


@pytest.mark.slow
def test_bpa_beats_erm_worst_group_on_coloured_mnist(shared_data):
    from shortcut_nb.data import load_images, subset
    target = proxy_targets([str(i) for i in range(10)])["T1"]
    train = biased_benchmark(subset(load_images("mnist", "train"), 200, seed=0), target, correlation=0.95, seed=0)
    test = balanced_benchmark(subset(load_images("mnist", "test"), 100, seed=0), target, seed=0)
    r = bpa_train("small_cnn", train.data, TrainConfig(epochs=6, batch_size=64, lr=0.05, augment="none"), k=4, progress=False)
    erm, bpa = evaluate_fairness(r.biased.model, test), evaluate_fairness(r.debiased.model, test)
    assert erm["worst_group_acc"] < 0.3                      # the colour shortcut is taken
    assert bpa["worst_group_acc"] > erm["worst_group_acc"] + 0.3
    assert bpa["eo_disparity"] < erm["eo_disparity"]
