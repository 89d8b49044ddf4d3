"Unlearnable makers on real CIFAR-10 images: budgets, purity, determinism, and that EM really minimises the loss."
import pytest
import torch
from shortcut_nb.data import load_images, subset
from shortcut_nb.unlearnable import em_noise, rem_noise, tap_noise, shr_noise, ar_noise, ntga_noise, within_budget


@pytest.fixture(scope="module")
def small(shared_data):
    return subset(load_images("cifar10"), 12, seed=0)


@pytest.mark.parametrize("make", [
    lambda d: shr_noise(d, seed=1), lambda d: ar_noise(d, seed=1),
    lambda d: em_noise(d, pgd_steps=2, train_steps=2, max_rounds=1, batch_size=60),
    lambda d: rem_noise(d, pgd_steps=1, adv_steps=1, train_steps=1, max_rounds=1, batch_size=60),
    lambda d: tap_noise(d, pgd_steps=2, surrogate_epochs=1, batch_size=60),
    lambda d: ntga_noise(d, steps=2, block=60, n_target=60)])
def test_budget_and_purity(small, make):
    before = small.x.clone()
    p = make(small)
    assert torch.equal(small.x, before), "maker mutated its input"
    assert within_budget(small, p)
    assert torch.equal(p.data.y, small.y) and p.data.x.dtype == torch.uint8
    assert (p.data.x != small.x).any(), "no perturbation at all"


def test_budget_check_can_fail(small):
    p = shr_noise(small, eps=8 / 255, seed=0)
    p.eps = 2 / 255  # claim a tighter budget than the noise respects
    assert not within_budget(small, p)


def test_em_lowers_surrogate_loss(small):
    p = em_noise(small, pgd_steps=10, train_steps=10, max_rounds=10, step=2 / 255, batch_size=60, seed=0)
    # error-minimising: the surrogate finds the noisy images far easier than the same images without noise
    assert p.info["surrogate_loss_noisy"] < 0.7 * p.info["surrogate_loss_clean"], p.info


def test_deterministic(small):
    assert torch.equal(ar_noise(small, seed=3).data.x, ar_noise(small, seed=3).data.x)
    assert not torch.equal(ar_noise(small, seed=3).data.x, ar_noise(small, seed=4).data.x)
