"Per-image randomness of batch augmentations (the torchvision v2 pitfall) and the registry."
import pytest
import torch
from shortcut_nb.config import generator
from shortcut_nb.train import get_augment, TrainConfig, train_model, toy_images


def distinct_outputs(name, n=32):
    img = torch.rand(1, 3, 32, 32).repeat(n, 1, 1, 1)   # the same image n times
    out, _ = get_augment(name)(img, torch.zeros(n, dtype=torch.long), generator(0))
    return len({out[i].numpy().tobytes() for i in range(n)})


@pytest.mark.parametrize("name", ["crop_flip", "cutout", "randaugment", "randaugment_cutout"])
def test_identical_images_get_different_augmentations(name):
    assert distinct_outputs(name) > 16


@pytest.mark.parametrize("name", ["cutout", "randaugment"])
def test_seeded(name):
    x = torch.rand(8, 3, 32, 32); y = torch.zeros(8, dtype=torch.long)
    a, _ = get_augment(name)(x, y, generator(5)); b, _ = get_augment(name)(x, y, generator(5))
    assert torch.equal(a, b)


def test_strategy_by_name_trains():
    r = train_model("small_cnn", toy_images(32, size=32), TrainConfig(epochs=1, batch_size=16, augment="randaugment_cutout"), progress=False)
    assert r.history[0]["train_loss"] > 0
    with pytest.raises(ValueError, match="randaugment"):
        get_augment("autoaugment")
