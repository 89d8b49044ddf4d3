"""Cross-check of `shortcut_nb.topology` against the neuron definition Be Persistent cites (Zheng et al. 2021).

`zheng_activations` below re-implements, from the description of Zheng et al.'s public extractor
(TopoXLab/TopoTrojDetection, `topological_feature_extractor.py`), the steps that define the neurons: walk the
network's Conv2d and Linear modules in definition order; keep what flows *into* each one (a forward hook on its
input); reduce a conv input over space by its maximum, one neuron per input channel; standardise each neuron over
the inputs; distance 1 − Pearson ρ; Vietoris–Rips H0/H1. It shares no code with the library (numpy, torch and
ripser only), so a change in where `collect_activations` reads a layer, or in how neurons are ordered, reduced or
sampled, shows up here. The network has fewer than 1,500 such neurons, so every neuron is used on both sides."""
import warnings
import numpy as np
import pytest
import torch
from torch import nn
from ripser import ripser
from shortcut_nb.models import make_model
from shortcut_nb.topology import neuron_activations, neuron_diagrams, correlation_distance, rips_diagrams

N_IMAGES = 96


def zheng_activations(model: nn.Module, images: torch.Tensor) -> np.ndarray:
    "Neurons × images: every Conv2d/Linear input channel, spatial max, standardised per neuron (unbiased std)."
    captured = []
    def keep_input(module, inputs, output):
        captured.append(inputs[0].detach())
    handles = [m.register_forward_hook(keep_input) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(images)
    for h in handles:
        h.remove()
    rows = []
    for t in captured:
        per_channel = t.amax(dim=(2, 3)) if t.ndim == 4 else t          # images × channels
        a = per_channel.T.double()                                        # channels × images
        rows.append((a - a.mean(1, keepdim=True)) / (a.std(1, keepdim=True) + 1e-30))
    return torch.cat(rows).numpy()     # a neuron constant over the images (a dead ReLU channel) is a row of zeros


def varying(acts: np.ndarray) -> np.ndarray:
    "The rows whose correlation is defined: both sides leave out neurons that are constant over the images."
    return acts.std(1) > 1e-12


def zheng_diagrams(acts: np.ndarray) -> list[np.ndarray]:
    d = 1 - np.corrcoef(acts)
    np.fill_diagonal(d, 0)
    return ripser(np.clip((d + d.T) / 2, 0, 2), maxdim=1, distance_matrix=True)["dgms"]


def standardised(a: np.ndarray) -> np.ndarray:
    return (a - a.mean(1, keepdims=True)) / a.std(1, ddof=1, keepdims=True)


@pytest.fixture(scope="module")
def net_and_images():
    model = make_model("small_cnn_w16", 3, 10, seed=3)       # BN + ReLU conv net: 3 + 16 + 32 + 64 + 128 inputs < 1,500
    g = torch.Generator().manual_seed(0)
    base = torch.rand(N_IMAGES, 3, 1, 1, generator=g)          # images with per-image colour and texture, in [0, 1]
    images = (base + 0.3 * torch.rand(N_IMAGES, 3, 32, 32, generator=g)).clamp(0, 1)
    return model, (images * 255).round().to(torch.uint8)


def ours(model, x, site):
    return neuron_activations(model, x, n_neurons=1500, seed=0, site=site)


def test_same_neurons_as_the_cited_extractor(net_and_images):
    model, x = net_and_images
    ref = zheng_activations(model, x.float() / 255)
    assert len(ref) < 1500
    na = ours(model, x, "input")
    assert na.acts.shape == ref.shape
    keep = varying(na.acts)
    assert (keep == varying(ref)).all() and keep.mean() > 0.9
    np.testing.assert_allclose(standardised(na.acts[keep]), ref[keep], atol=1e-9)


def test_same_diagrams_with_exact_rips(net_and_images):
    model, x = net_and_images
    ref_acts = zheng_activations(model, x.float() / 255)
    ref = zheng_diagrams(ref_acts[varying(ref_acts)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                         # the same dead channels are dropped, with a warning
        mine = neuron_diagrams(ours(model, x, "input").acts, backend="ripser")
    for a, b in zip(mine, ref):
        assert a.shape == b.shape
        np.testing.assert_allclose(np.sort(a, axis=0), np.sort(b, axis=0), atol=1e-9)


def test_the_output_site_is_another_graph(net_and_images):
    "The check above is not vacuous: reading the layers' outputs gives other neurons, and the comparison fails."
    model, x = net_and_images
    ref = zheng_activations(model, x.float() / 255)
    out = ours(model, x, "output").acts
    same_shape = out.shape == ref.shape
    keep = varying(out)
    assert not (same_shape and np.allclose(standardised(out[keep]), ref[keep], atol=1e-6))


def test_sparse_filtration_within_its_bound(net_and_images):
    "ε-sparse Rips (as Zheng et al. compute theirs, ε = 0.1): H1 points within a factor 1/(1 − ε) of the exact ones."
    model, x = net_and_images
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d, _ = correlation_distance(ours(model, x, "input").acts)
    exact = rips_diagrams(d, 1, backend="ripser")
    persim = pytest.importorskip("persim")
    for eps in (0.05, 0.1, 0.2):
        sparse = rips_diagrams(d, 1, approx=eps)
        h1e, h1s = exact[1], sparse[1]
        assert len(h1e) and (h1e[:, 0] > 0).all() and (h1s[:, 0] > 0).all()
        log_gap = persim.bottleneck(np.log(h1e), np.log(h1s))
        assert log_gap <= np.log(1 / (1 - eps)) + 1e-9, (eps, log_gap)
