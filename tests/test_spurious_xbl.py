"Class-wise decoys and the patch-exchange / MC-dropout / RRR method (shortcut_nb.decoy, shortcut_nb.xbl)."
import pytest
import torch
from torch import nn
from shortcut_nb.config import generator
from shortcut_nb.data import ImageSet, load_images, subset
from shortcut_nb.decoy import add_decoys, decoy_regions, grid_cell
from shortcut_nb.models import MODELS, make_model
from shortcut_nb.train import TrainConfig, fit
from shortcut_nb.xbl import (XBLNet, mc_probs, mc_probs_loop, patch_exchange, patch_masks, exchange_patches, grad_cam,
                             rrr_loss, rrr_finetune, contribution_cam)

CLASSES = [str(i) for i in range(10)]


def noise_set(n: int, labels, seed: int = 0, high: int = 80) -> ImageSet:
    g = generator(seed)
    return ImageSet(torch.randint(0, high, (n, 1, 28, 28), generator=g, dtype=torch.uint8), torch.as_tensor(labels).long(), CLASSES, "noise")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    "Tiny tensors: one torch thread is faster, and far faster on a shared, busy CPU; restored afterwards."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def model():
    return make_model("xbl_cnn", 1, 10, seed=0)


# ---- decoys ---------------------------------------------------------------------------------

def test_decoy_mask_is_exactly_the_painted_pixels():
    ds = noise_set(40, torch.arange(40) % 10, high=256)
    before = ds.x.clone()
    d = add_decoys(ds)
    dec, mask, regions = d.data, d.mask, d.regions
    assert torch.equal(ds.x, before), "the input must not be mutated"
    changed = (dec.x != ds.x)[:, 0]
    assert torch.equal(changed, mask & (ds.x[:, 0] != 255)), "changed pixels = mask minus pixels that were already white"
    assert (dec.x[:, 0][mask] == 255).all() and mask.sum((1, 2)).eq(16).all()


def test_decoy_same_region_within_a_class_and_distinct_across():
    ds = noise_set(50, torch.arange(50) % 10)
    d = add_decoys(ds)
    mask, regions = d.mask, d.regions
    for k in range(10):
        mk = mask[ds.y == k]
        assert (mk == mk[0]).all(), f"class {k}: every image's decoy in the same place"
    firsts = torch.stack([mask[ds.y == k][0] for k in range(10)])
    assert (firsts.sum(0) <= 1).all(), "no two classes share a pixel"
    assert grid_cell(regions[7]) == 42                            # Sneaker at the paper's perturbation 43


def test_decoy_seeded():
    ds = noise_set(60, torch.arange(60) % 10)
    a, b, c = (add_decoys(ds, p=0.5, seed=s, regions=decoy_regions(layout="random", seed=s)) for s in (3, 3, 4))
    assert torch.equal(a.data.x, b.data.x) and torch.equal(a.mask, b.mask)
    assert not torch.equal(a.mask, c.mask)
    assert torch.equal(add_decoys(ds).data.x, add_decoys(ds, seed=99).data.x), "p = 1 and fixed regions: nothing random"


@pytest.mark.parametrize("kwargs,msg", [({"regions": torch.zeros(2, 2)}, "num_classes×2"), ({"p": -0.1}, "fraction"),
                                        ({"value": 300}, "uint8"), ({"regions": torch.full((10, 2), 25)}, "must fit")])
def test_decoy_bad_input(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        add_decoys(noise_set(10, torch.arange(10)), **kwargs)


# ---- bad inputs to the method ------------------------------------------------------------------

@pytest.mark.parametrize("patch", [3, 5, 0, 6])
def test_patch_must_divide_image(model, patch):
    src, tgt = noise_set(2, [7, 7]), noise_set(3, [6, 6, 6], seed=1)
    with pytest.raises(ValueError, match="must divide"):
        patch_exchange(model, src, tgt, 7, 6, patch=patch, passes=2)


def test_targets_of_wrong_class_or_shape(model):
    src = noise_set(2, [7, 7])
    with pytest.raises(ValueError, match="target class '6'"):
        patch_exchange(model, src, noise_set(3, [6, 5, 6]), 7, 6, passes=2)
    with pytest.raises(ValueError, match="must match"):
        patch_exchange(model, src, ImageSet(torch.zeros(3, 1, 32, 32, dtype=torch.uint8), torch.full((3,), 6), CLASSES), 7, 6, passes=2)
    with pytest.raises(ValueError, match="source image must be of class"):
        patch_exchange(model, noise_set(2, [7, 1]), noise_set(3, [6, 6, 6]), 7, 6, passes=2)
    with pytest.raises(ValueError, match="another class"):
        patch_exchange(model, src, src, 7, 7, passes=2)
    with pytest.raises(ValueError, match="shaped like"):
        exchange_patches(src.x[0], torch.zeros(3, 3, 28, 28, dtype=torch.uint8))


@pytest.mark.parametrize("passes", [0, -3, 2.5, True])
def test_mc_passes_must_be_positive_int(model, passes):
    with pytest.raises(ValueError, match="mc_passes"):
        mc_probs(model, torch.rand(2, 1, 28, 28), passes=passes)
    with pytest.raises(ValueError, match="mc_passes"):
        patch_exchange(model, noise_set(1, [7]), noise_set(2, [6, 6]), 7, 6, passes=passes)


@pytest.mark.parametrize("net", [nn.Sequential(nn.Flatten(), nn.Linear(784, 10)),
                                 nn.Sequential(nn.Flatten(), nn.Dropout(0.0), nn.Linear(784, 10)),
                                 XBLNet(p_drop=0.0)])
def test_model_without_dropout_is_refused(net):
    with pytest.raises(ValueError, match="deterministic"):
        mc_probs(net, torch.rand(2, 1, 28, 28), passes=3)
    with pytest.raises(ValueError, match="deterministic"):
        patch_exchange(net, noise_set(1, [7]), noise_set(2, [6, 6]), 7, 6, passes=3)


def test_explanation_inputs(model):
    x, y = torch.rand(4, 1, 28, 28), torch.arange(4)
    with pytest.raises(ValueError, match="one annotation per image"):
        rrr_loss(model, x, y, torch.zeros(3, 28, 28, dtype=torch.bool))
    with pytest.raises(ValueError, match="gradcam, contrib"):
        rrr_loss(model, x, y, torch.zeros(4, 28, 28, dtype=torch.bool), explainer="shap")
    with pytest.raises(TypeError, match="features"):
        grad_cam(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), x, 0)


# ---- MC dropout and patch exchange: batched = loop --------------------------------------------

def test_mc_batched_equals_loop(model):
    x = noise_set(6, [0] * 6, high=256).x
    batched = mc_probs(model, x, passes=9, seed=5, batch_size=4, max_weights=4 * 10 * 25088)   # chunks images and passes
    assert torch.allclose(batched, mc_probs_loop(model, x, passes=9, seed=5), atol=1e-6)
    assert not torch.allclose(batched, mc_probs(model, x, passes=9, seed=6), atol=1e-6), "the seed matters"
    eval_soft = model.eval()(x.float() / 255).softmax(-1)
    assert not torch.allclose(batched, eval_soft, atol=1e-4), "dropout was on"


def test_local_patch_exchange_equals_materialised(model):
    src, tgt = noise_set(2, [7, 7], high=256), noise_set(4, [6] * 4, seed=1, high=256)
    fast = patch_exchange(model, src, tgt, 7, 6, passes=6, seed=1)
    full = patch_exchange(model, src, tgt, 7, 6, passes=6, seed=1, local=False)
    assert torch.allclose(fast.certainty, full.certainty, atol=1e-5) and torch.allclose(fast.baseline, full.baseline, atol=1e-5)
    pert = exchange_patches(src.x[1], tgt.x).flatten(0, 1)[:5]
    assert torch.allclose(fast.certainty[1].flatten()[:5], mc_probs_loop(model, pert, passes=6, seed=1)[:, 7], atol=1e-5)


# ---- the detector finds a decoy ------------------------------------------------------------------

def _adam(epochs, seed=0):
    return TrainConfig(epochs=epochs, batch_size=32, optimizer="adam", lr=1e-3, weight_decay=0.0, schedule="cosine",
                       augment="none", seed=seed)


def test_decoy_model_top_patch_is_the_decoy_synthetic():
    "Noise images whose only class evidence is the decoy: the most damaging patch must be the decoy's."
    ds = noise_set(320, torch.arange(320) % 2)
    ds = ImageSet(ds.x, ds.y, ["a", "b"], "noise")
    regions = decoy_regions(2, layout="random", seed=1)
    d = add_decoys(ds, regions=regions)
    dec, mask = d.data, d.mask
    model = fit(make_model("xbl_cnn", 1, 2, seed=0), dec, _adam(3), progress=False).model
    src = dec.take((dec.y == 0).nonzero().flatten()[:4])
    tgt = ImageSet(noise_set(10, [1] * 10, seed=7).x, torch.ones(10, dtype=torch.long), ["a", "b"], "noise")  # clean class-b images
    r = patch_exchange(model, src, tgt, 0, 1, passes=20)
    assert (r.top_patch == grid_cell(regions[0])).all()
    assert (r.drop > 0.2).all()


def test_decoy_model_top_patch_is_the_decoy_fashion(shared_data):
    "The paper's setting in miniature: Fashion-MNIST with class-wise decoys, Sneaker vs Shirt."
    train = subset(load_images("fashion_mnist"), 150, seed=0)
    test = load_images("fashion_mnist", "test")
    d = add_decoys(train)
    dec, mask, regions = d.data, d.mask, d.regions
    model = fit(make_model("xbl_cnn", 1, 10, seed=0), dec, _adam(2), progress=False).model
    dtest = add_decoys(test).data
    src = dtest.take((dtest.y == 7).nonzero().flatten()[:4]); tgt = test.take((test.y == 6).nonzero().flatten()[:20])
    r = patch_exchange(model, src, tgt, "Sneaker", "Shirt", passes=30)
    assert (r.top_patch == 42).all(), r.top_patch


def test_registry_and_contribution_cam_is_faithful():
    assert "xbl_cnn" in MODELS
    m = make_model("xbl_cnn", 1, 10, seed=3).eval()
    x = torch.rand(3, 1, 28, 28)
    assert torch.allclose(contribution_cam(m, x).flatten(2).sum(2) + m.fc.bias, m(x), atol=1e-4)


def test_rrr_finetune_is_pure_and_differentiable():
    ds = noise_set(64, torch.arange(64) % 10)
    d = add_decoys(ds)
    dec, mask = d.data, d.mask
    m = make_model("xbl_cnn", 1, 10, seed=0)
    w0 = m.fc.weight.detach().clone()
    res = rrr_finetune(m, dec, mask, _adam(1), explainer="gradcam")
    assert torch.equal(m.fc.weight, w0), "the original model is left as it was"
    assert not torch.equal(res.model.fc.weight, w0) and res.history[0]["train_expl"] >= 0
