"Clustered-probe diagnostic: bad inputs, determinism, and recovery of a planted colour rule."
import numpy as np
import pytest
import torch
from torch import nn
from shortcut_nb.color import solid_color_images, colorize_by_class
from shortcut_nb.clusters import probe_cluster_diagnostic, cluster_probes, probe_probabilities, VAE, square_probes


class GreenVsBlue(nn.Module):
    "A fixed 'classifier' that reads only colour: logit difference = mean blue − mean green."
    def forward(self, x):
        d = (x[:, 2] - x[:, 1]).mean((1, 2)) * 10
        return torch.stack([-d, d], 1)


def test_recovers_a_pure_colour_rule():
    probes = solid_color_images(400, 8, seed=0)
    out = probe_cluster_diagnostic(GreenVsBlue(), probes, "pixels", seed=0)
    assert out["average_cluster_probability"] > 0.75
    blind = probe_cluster_diagnostic(nn.Sequential(nn.Flatten(), nn.Linear(192, 2)).eval(), probes, "pixels", seed=0)
    assert out["average_cluster_probability"] > blind["average_cluster_probability"]


def test_deterministic():
    probes = solid_color_images(200, 8, seed=1)
    a = probe_cluster_diagnostic(GreenVsBlue(), probes, "vae", latent_dim=2, vae_epochs=2, seed=3)
    b = probe_cluster_diagnostic(GreenVsBlue(), probes, "vae", latent_dim=2, vae_epochs=2, seed=3)
    assert a["average_cluster_probability"] == b["average_cluster_probability"]
    assert torch.equal(a["decoded"], b["decoded"])


def test_bad_inputs():
    probes = solid_color_images(50, 8, seed=0)
    with pytest.raises(ValueError, match="C×H×W"):
        probe_probabilities(GreenVsBlue(), probes, input_shape=(3, 28, 28))
    with pytest.raises(ValueError, match="latent_dim"):
        probe_cluster_diagnostic(GreenVsBlue(), probes, "vae", latent_dim=0)
    with pytest.raises(ValueError, match="latent_dim"):
        VAE((3, 8, 8), latent_dim=-1)
    p = probe_probabilities(GreenVsBlue(), probes)
    with pytest.raises(ValueError, match="k_per_class"):
        cluster_probes(np.zeros((50, 2)), p, k_per_class=51)
    with pytest.raises(ValueError, match="probabilities"):
        cluster_probes(np.zeros((50, 2)), p * 3)
    with pytest.raises(ValueError, match="grayscale"):
        colorize_by_class(probes, {"probe": "green"})
    with pytest.raises(ValueError, match="dividing"):
        square_probes(10, 28, 5)
