"One-pixel shortcut invariants on real CIFAR-10 and on grayscale data."
import pytest
import torch
from shortcut_nb.data import load_images, subset
from shortcut_nb.pixel import ops_search, apply_shortcut, ops_position, ops_color, randpix, ops_fraction


def changed_locations(a, b):
    return (a.x != b.x).any(1).flatten(1)  # N × HW


@pytest.fixture(scope="module")
def cifar(shared_data):
    return subset(load_images("cifar10"), 100, seed=0)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_ops_changes_k_locations_same_within_class(cifar, k):
    before = cifar.x.clone()
    sc = ops_search(cifar, n_pixels=k)
    out = apply_shortcut(cifar, sc)
    assert torch.equal(cifar.x, before), "maker mutated its input"
    ch = changed_locations(cifar, out)
    assert (ch.sum(1) <= k).all()
    for c in range(10):
        pos = sc.positions[c]
        px = out.x[out.y == c][:, :, pos[:, 0], pos[:, 1]]          # n × C × k
        assert (px == (sc.colors[c].T * 255).round().to(torch.uint8)[None]).all()
    assert ch.any(1).float().mean() > 0.9  # nearly every image really changes


def test_grayscale_and_determinism(shared_data):
    mn = subset(load_images("mnist", "test"), 50, seed=1)
    sc = ops_search(mn)
    assert sc.colors.shape == (10, 1, 1) and sc.scores.shape == (10, 1)
    a, b = ops_position(mn, sc, seed=5), ops_position(mn, sc, seed=5)
    assert torch.equal(a.x, b.x) and not torch.equal(a.x, ops_position(mn, sc, seed=6).x)
    assert torch.equal(randpix(mn, 2).positions, randpix(mn, 2).positions)
    assert (changed_locations(mn, ops_color(mn)).sum(1) <= 1).all()


def test_fraction_search_and_noise_bound(cifar):
    made = ops_fraction(cifar, 0.1, noisy_upload=True, seed=0)
    out, sc = made.data, made.pattern
    diff = (out.x.int() - cifar.x.int()).abs()
    ops_px = torch.zeros_like(diff, dtype=torch.bool)
    pos = sc.positions[cifar.y, 0]
    ops_px[torch.arange(len(cifar)), :, pos[:, 0], pos[:, 1]] = True
    assert (diff[~ops_px] <= 8).all(), "Noisy-Upload noise exceeds 8/255 off the OPS pixel"


def test_bad_inputs(cifar):
    with pytest.raises(ValueError, match="n_pixels"):
        ops_search(cifar, n_pixels=5000)
    from shortcut_nb.data import select_classes
    five = select_classes(cifar, cifar.classes[:5])
    with pytest.raises(ValueError, match="classes"):
        apply_shortcut(cifar, ops_search(five))
