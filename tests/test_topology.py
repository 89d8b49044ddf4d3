"Topological diagnostic: public entry point, constant neurons, real models, population statistics."
import warnings
import numpy as np
import pytest
import torch
from shortcut_nb.models import make_model
from shortcut_nb.topology import (neuron_diagrams, neuron_activations, diagram_summary, diagram_distance, welch_ttest,
                                  top_cycles, correlation_distance)
from shortcut_nb.train import toy_images


def circle_acts(n_neurons=30, n_samples=60, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    phase = np.linspace(0, 2 * np.pi, n_neurons, endpoint=False)
    s = np.linspace(0, 2 * np.pi, n_samples)
    return np.cos(phase[:, None] - s[None]) + noise * rng.normal(size=(n_neurons, n_samples))


def test_entry_point_shapes_and_cycle():
    h0, h1 = neuron_diagrams(circle_acts(), corr="pearson", maxdim=1)
    assert h0.shape[1] == 2 and h1.shape[1] == 2
    assert (h1[:, 1] - h1[:, 0]).max() > 0.5


def test_noise_has_shorter_cycles_than_structure():
    ring = diagram_summary(neuron_diagrams(circle_acts(noise=0.05)))["top5_pd1"]
    noise = diagram_summary(neuron_diagrams(np.random.default_rng(1).normal(size=(30, 60))))["top5_pd1"]
    assert ring > 2 * noise


def test_constant_neurons_are_dropped_with_warning():
    a = np.vstack([circle_acts(), np.ones((3, 60))])
    with pytest.warns(UserWarning, match="constant"):
        d, keep = correlation_distance(a)
    assert keep.sum() == 30 and np.isfinite(d).all()


@pytest.mark.parametrize("arch", ["small_cnn", "lenet5", "resnet18"])
def test_real_models(arch):
    toy = toy_images(48, size=32)
    model = make_model(arch, num_classes=2, seed=0)
    na = neuron_activations(model, toy.x, n_neurons=120, seed=0)
    assert na.acts.shape[1] == 48 and 100 <= len(na.acts) <= 140
    assert set(na.layer) <= set(na.layer_sizes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dg = neuron_diagrams(na.acts)
        cyc = top_cycles(na, k=3)
    assert diagram_summary(dg)["n_pd1"] >= 0 and len(cyc) <= 3


def test_population_statistics():
    a = [diagram_summary(neuron_diagrams(circle_acts(noise=0.05, seed=s)))["avg_pd1"] for s in range(6)]
    b = [diagram_summary(neuron_diagrams(np.random.default_rng(s).normal(size=(30, 60))))["avg_pd1"] for s in range(6)]
    t, p = welch_ttest(a, b)
    assert p < 0.05
    d1, d2 = neuron_diagrams(circle_acts(seed=0))[1], neuron_diagrams(circle_acts(noise=0.3, seed=1))[1]
    assert diagram_distance(d1, d1) == 0 and diagram_distance(d1, d2) > 0
