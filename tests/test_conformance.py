"""Conformance suite (in the spirit of scikit-learn's check_estimator): every shortcut maker in
`shortcut_nb.conformance.MAKER_CHECKS` and every diagnostic in `DIAGNOSTIC_CHECKS` gets the same checks — bad inputs
fail with a message that names the problem, inputs are never mutated, seeds fix the output, budgets hold,
released images are uint8 and shaped like the input. A new registry entry is checked automatically."""
import re
import warnings
import numpy as np
import pytest
import torch
from shortcut_nb.conformance import (MAKER_CHECKS, DIAGNOSTIC_CHECKS, BAD_INPUTS, SIZE, conformance_data, with_class_count,
                                     numbers, spoil, forge)
from shortcut_nb.data import ImageSet

MAKER_NAMES, DIAG_NAMES = sorted(MAKER_CHECKS), sorted(DIAGNOSTIC_CHECKS)
ROUNDING = 0.5 / 255 + 1e-6     # uint8 rounding of the released images, in [0, 1] pixel units


@pytest.fixture(autouse=True)
def _quiet():
    "Tiny untrained models trip expected warnings (constant neurons, small k); they are not what is tested here."
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.fixture(scope="module")
def runs():
    "A cache of adapter runs on valid data: (kind, name, channels, seed) → (clean data, output)."
    cache = {}
    def run(kind, name, channels=None, seed=0):
        e = (MAKER_CHECKS if kind == "maker" else DIAGNOSTIC_CHECKS)[name]
        c = channels or e.channels[0]
        key = (kind, name, c, seed)
        if key not in cache:
            ds = conformance_data(c, e.num_classes)
            out = e.call(ds, seed) if kind == "maker" else e.call(e.model(c, e.num_classes, SIZE), ds, seed)
            cache[key] = (ds, out)
        return cache[key]
    return run


def _raises_naming(fn, pattern: str):
    with pytest.raises((ValueError, TypeError)) as err:
        fn()
    msg = str(err.value).lower()
    assert re.search(pattern, msg), f"the error does not name the problem ({pattern!r}): {err.value!r}"


def _snapshot(ds: ImageSet):
    return ds.x.clone(), ds.y.clone(), list(ds.classes)


def _unchanged(ds: ImageSet, snap):
    x, y, classes = snap
    assert torch.equal(ds.x, x) and torch.equal(ds.y, y) and ds.classes == classes, "the input was mutated"


# ---------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("bad", [b for b in BAD_INPUTS if b.in_constructor], ids=lambda b: b.name)
def test_imageset_constructor_rejects(bad):
    "What ImageSet(...) rejects, no maker can ever receive through a freshly built set."
    ds = conformance_data(1)
    x, y = spoil(bad, ds)
    _raises_naming(lambda: ImageSet(x, y, ds.classes), bad.match)


def _maker_cases():
    return [(m, b) for m in MAKER_NAMES for b in BAD_INPUTS]


@pytest.mark.parametrize("name,bad", _maker_cases(), ids=[f"{m}-{b.name}" for m, b in _maker_cases()])
def test_maker_bad_imageset(name, bad):
    "An ImageSet spoiled after construction (or an empty one) → a clear ValueError/TypeError from the maker itself."
    e = MAKER_CHECKS[name]
    ds = conformance_data(e.channels[0], e.num_classes)
    _raises_naming(lambda: e.call(forge(ds, *spoil(bad, ds)), 0), bad.match)


def test_maker_rejects_non_imageset():
    for name in MAKER_NAMES:
        e = MAKER_CHECKS[name]
        ds = conformance_data(e.channels[0], e.num_classes)
        _raises_naming(lambda: e.call(ds.x, 0), r"imageset")


RAW_MAKERS = [m for m in MAKER_NAMES if MAKER_CHECKS[m].raw is not None]


@pytest.mark.parametrize("name,bad", [(m, b) for m in RAW_MAKERS for b in BAD_INPUTS],
                         ids=[f"{m}-{b.name}" for m in RAW_MAKERS for b in BAD_INPUTS])
def test_maker_bad_raw_tensors(name, bad):
    "Makers that also take raw (x, y) tensors check them as strictly as an ImageSet."
    e = MAKER_CHECKS[name]
    ds = conformance_data(e.channels[0], e.num_classes)
    if bad.name in ("float64_0_255", "float_out_of_range"):   # float images are allowed here, but only in [0, 1]
        pattern = r"range \[0, 1\]"
    else:
        pattern = bad.match
    _raises_naming(lambda: e.raw(*spoil(bad, ds), 0), pattern)


def _diag_cases():
    out = []
    for d in DIAG_NAMES:
        e = DIAGNOSTIC_CHECKS[d]
        for b in BAD_INPUTS:
            for path in e.inputs:
                if path == "tensor" and b.labels and not e.raw_labels: continue   # labels not used on that path
                out.append((d, path, b))
    return out


@pytest.mark.parametrize("name,path,bad", _diag_cases(), ids=[f"{d}-{p}-{b.name}" for d, p, b in _diag_cases()])
def test_diagnostic_bad_input(name, path, bad):
    e = DIAGNOSTIC_CHECKS[name]
    c = e.channels[0]
    ds = conformance_data(c, e.num_classes)
    model = e.model(c, e.num_classes, SIZE)
    x, y = spoil(bad, ds)
    if path == "imageset":
        _raises_naming(lambda: e.call(model, forge(ds, x, y), 0), bad.match)
    else:
        pattern = r"range \[0, 1\]" if bad.name in ("float64_0_255", "float_out_of_range") else bad.match
        _raises_naming(lambda: e.raw(model, x, y, 0), pattern)


@pytest.mark.parametrize("name", [d for d in DIAG_NAMES if "imageset" in DIAGNOSTIC_CHECKS[d].inputs])
def test_diagnostic_rejects_non_imageset(name):
    e = DIAGNOSTIC_CHECKS[name]
    ds = conformance_data(e.channels[0], e.num_classes)
    _raises_naming(lambda: e.call(e.model(e.channels[0], e.num_classes, SIZE), ds.x, 0), r"imageset")


@pytest.mark.parametrize("name", [m for m in MAKER_NAMES if not MAKER_CHECKS[m].any_channels])
def test_maker_channel_mismatch(name):
    "Makers that need gray or RGB images say so for any other channel count."
    e = MAKER_CHECKS[name]
    for c in (c for c in (1, 2, 3, 4) if c not in e.channels):
        _raises_naming(lambda: e.call(conformance_data(c, e.num_classes), 0), r"channel")


# ---------------------------------------------------------------- small classes

@pytest.mark.parametrize("count", [0, 1], ids=["empty_class", "singleton_class"])
@pytest.mark.parametrize("name", MAKER_NAMES)
def test_maker_small_class(name, count):
    "A class with 0 or 1 images: works (and the output checks hold) or a ValueError naming the class (per `min_per_class`)."
    e = MAKER_CHECKS[name]
    ds = with_class_count(conformance_data(e.channels[0], e.num_classes), 0, count)
    if count < e.min_per_class:
        _raises_naming(lambda: e.call(ds, 0), r"class")
    else:
        out = e.call(ds, 0)
        assert out.data.x.dtype == torch.uint8 and len(out.data) == len(ds)
        if e.same_labels: assert torch.equal(out.data.y, ds.y)
        else: assert 0 <= int(out.data.y.min()) and int(out.data.y.max()) < len(out.data.classes)   # valid labels of the released classes


@pytest.mark.parametrize("count", [0, 1], ids=["empty_class", "singleton_class"])
@pytest.mark.parametrize("name", DIAG_NAMES)
def test_diagnostic_small_class(name, count):
    e = DIAGNOSTIC_CHECKS[name]
    ds = with_class_count(conformance_data(e.channels[0], e.num_classes), 0, count)
    model = e.model(e.channels[0], e.num_classes, SIZE)
    if count < e.min_per_class or ("patch_exchange" in (name, e.registry) and count == 0):   # no source images of class 0 at all
        _raises_naming(lambda: e.call(model, ds, 0), r"class")
    else:
        v = numbers(e.call(model, ds, 0))
        assert len(v) and np.isfinite(v).any()


# ---------------------------------------------------------------- outputs, purity, seeds, budgets

@pytest.mark.parametrize("name", MAKER_NAMES)
def test_maker_output_dtype_shape_labels(name, runs):
    e = MAKER_CHECKS[name]
    for c in e.channels:
        ds, out = runs("maker", name, c)
        x = out.data.x
        assert x.dtype == torch.uint8
        want = (len(ds), e.out_channels or c, SIZE, SIZE)
        assert tuple(x.shape) == want, f"released shape {tuple(x.shape)}, expected {want}"
        if e.same_labels: assert torch.equal(out.data.y, ds.y) and out.data.classes == ds.classes
        if x.shape == ds.x.shape: assert not torch.equal(x, ds.x), "the maker released the clean images unchanged"


@pytest.mark.parametrize("name", MAKER_NAMES)
def test_maker_does_not_mutate(name):
    e = MAKER_CHECKS[name]
    ds = conformance_data(e.channels[0], e.num_classes); snap = _snapshot(ds)
    out = e.call(ds, 0)
    _unchanged(ds, snap)
    assert out.data.x.data_ptr() != ds.x.data_ptr(), "the released images share memory with the input"


@pytest.mark.parametrize("name", RAW_MAKERS)
def test_maker_raw_does_not_mutate(name):
    e = MAKER_CHECKS[name]
    ds = conformance_data(e.channels[0], e.num_classes)
    x, y = ds.floats(), ds.y.clone(); x0, y0 = x.clone(), y.clone()
    e.raw(x, y, 0)
    assert torch.equal(x, x0) and torch.equal(y, y0)


@pytest.mark.parametrize("name", MAKER_NAMES)
def test_maker_seeds(name, runs):
    "Same seed → identical release; for random makers a different seed → a different one."
    e = MAKER_CHECKS[name]
    ds, a = runs("maker", name)
    b = e.call(ds, 0)
    assert torch.equal(a.data.x, b.data.x), "the same seed gave different releases"
    _, c = runs("maker", name, seed=1)
    if e.random: assert not torch.equal(a.data.x, c.data.x), "a different seed gave the same release"
    else: assert torch.equal(a.data.x, c.data.x), "a deterministic maker depends on the seed"


@pytest.mark.parametrize("name", [m for m in MAKER_NAMES if MAKER_CHECKS[m].budget or MAKER_CHECKS[m].n_pixels])
def test_maker_budget(name, runs):
    e = MAKER_CHECKS[name]
    for c in e.channels:
        ds, out = runs("maker", name, c)
        d = (out.data.x.double() - ds.x.double()) / 255
        if e.budget == "linf":
            assert d.abs().max() <= e.eps + ROUNDING, f"ℓ∞ {d.abs().max() * 255:.2f}/255 > {e.eps * 255:.2f}/255"
        if e.budget == "l2":
            per = d.flatten(1).norm(dim=1)
            assert (per <= e.eps + ROUNDING * d[0].numel() ** 0.5).all(), f"ℓ2 up to {per.max():.4f} > {e.eps}"
        if e.n_pixels:
            changed = (out.data.x != ds.x).any(1)                       # N×H×W: pixels changed in any channel
            assert changed.flatten(1).sum(1).max() <= e.n_pixels
            if out.region is not None:
                assert out.region.flatten(1).sum(1).eq(e.n_pixels).all(), "the promised region is not n_pixels per image"
                assert not (changed & ~out.region).any(), "pixels outside the promised ones changed"


@pytest.mark.parametrize("name", DIAG_NAMES)
def test_diagnostic_output_and_purity(name, runs):
    "A finite measurement; images, labels and model untouched; same seed → same numbers; random ones vary with the seed."
    e = DIAGNOSTIC_CHECKS[name]
    c = e.channels[0]
    ds = conformance_data(c, e.num_classes); snap = _snapshot(ds)
    model = e.model(c, e.num_classes, SIZE)
    state = {k: v.clone() for k, v in model.state_dict().items()}; mode = model.training
    a = numbers(e.call(model, ds, 0))
    _unchanged(ds, snap)
    assert model.training == mode and all(torch.equal(v, model.state_dict()[k]) for k, v in state.items()), "the model was changed"
    assert len(a) and np.isfinite(a).any() and not np.isneginf(a).any()   # +inf is legitimate: an H0 class never dies
    b = numbers(e.call(e.model(c, e.num_classes, SIZE), ds, 0))
    assert np.array_equal(a, b, equal_nan=True), "the same seed gave different measurements"
    _, other = runs("diagnostic", name, seed=1)
    if e.random: assert not np.array_equal(a, numbers(other), equal_nan=True), "a different seed gave the same measurement"
    else: assert np.array_equal(a, numbers(other), equal_nan=True), "a deterministic diagnostic depends on the seed"


@pytest.mark.parametrize("name", [d for d in DIAG_NAMES if len(DIAGNOSTIC_CHECKS[d].channels) > 1])
def test_diagnostic_channels(name, runs):
    e = DIAGNOSTIC_CHECKS[name]
    for c in e.channels[1:]:
        assert len(numbers(runs("diagnostic", name, c)[1]))


# ---------------------------------------------------------------- models

def _model_input(name):
    "A matching input for a registered model: (in_channels, image side); 28-px gray for the XBL net."
    return (1, 28) if name == "xbl_cnn" else (3, 32)


def _all_models():
    from shortcut_nb.models import MODELS
    return sorted(MODELS)


@pytest.mark.parametrize("name", _all_models())
def test_model_builds_and_runs(name):
    """Every registered model builds and maps a matching batch to N×classes logits. Models over 3M parameters
    (ResNet-18, DenseNet-121, WRN-28-k for k ≥ 4, CVT/CCT-7) build and run on the `meta` device: shapes and
    wiring are checked without allocating or computing (a WRN-28-20 has 145M parameters)."""
    from shortcut_nb.models import MODELS, make_model, n_params
    c, s = _model_input(name)
    with torch.device("meta"):
        big = n_params(MODELS[name](in_channels=c, num_classes=7)) > 3_000_000
    dev = torch.device("meta") if big else torch.device("cpu")
    with dev:
        m = make_model(name, c, 7, seed=0) if not big else MODELS[name](in_channels=c, num_classes=7)
        out = m.eval()(torch.rand(2, c, s, s))
    assert tuple(out.shape) == (2, 7)
    if not big: assert torch.isfinite(out).all()


# ---------------------------------------------------------------- the registries themselves

KNOWN_MAKERS = ["ops_search", "ops_position", "ops_color", "randpix", "ops_fraction", "add_decoys", "add_trigger", "contrast_bias",
                "colorize_by_class", "biased_benchmark", "em_noise", "rem_noise", "tap_noise", "shr_noise", "ar_noise", "ntga_noise",
                "shuffle_perturbations", "badnets", "blended", "physical_ba", "label_consistent", "refool", "issba", "iad", "wanet"]
KNOWN_DIAGNOSTICS = ["neuron_activations", "neuron_diagrams", "diagram_summary", "probe_cluster_diagnostic", "patch_exchange",
                     "grad_cam", "contribution_cam", "reconstruct", "reconstruction_score", "linear_probe"]


def test_registries_cover_every_maker_and_diagnostic():
    "Removing an entry (and with it all of its checks) is a visible change, not a silent one."
    for f in KNOWN_MAKERS: assert any(n == f or n.startswith(f + "_") for n in MAKER_CHECKS), f"no MAKER_CHECKS entry for {f}"
    for f in KNOWN_DIAGNOSTICS: assert f in DIAGNOSTIC_CHECKS, f"no DIAGNOSTIC_CHECKS entry for {f}"
    assert all(m.channels for m in MAKER_CHECKS.values()) and all(m.budget in (None, "linf", "l2") for m in MAKER_CHECKS.values())


def test_every_registered_maker_is_checked_and_returns_made():
    "Each name in the library's maker registry has a conformance entry, and each entry's maker returns a `Made`."
    from shortcut_nb.makers import MAKERS as REGISTRY, make
    from shortcut_nb.made import Made
    covered = {m.registry for m in MAKER_CHECKS.values()}
    assert set(REGISTRY) <= covered, f"registered makers without a conformance entry: {sorted(set(REGISTRY) - covered)}"
    assert covered <= set(REGISTRY), f"conformance entries naming no registered maker: {sorted(covered - set(REGISTRY))}"
    ds = conformance_data(1, 3)
    out = make("trigger", ds, seed=0, level=1, values=(0.0, 0.5, 1.0), size=2)
    assert isinstance(out, Made) and out.info["level"] == 1
    with pytest.raises(ValueError, match="unknown shortcut maker"):
        make("no_such_maker", ds)


def test_every_registered_diagnostic_is_checked_and_returns_a_diagnosis():
    "Each name in the library's diagnostic registry has a conformance entry; `diagnose` returns a Diagnosis with a flat summary."
    from shortcut_nb.diagnostics import DIAGNOSTICS as REGISTRY, Diagnosis, diagnose
    covered = {d.registry for d in DIAGNOSTIC_CHECKS.values() if d.registry}
    assert covered == set(REGISTRY), f"registered diagnostics without a conformance entry: {sorted(set(REGISTRY) - covered)}"
    e = DIAGNOSTIC_CHECKS["diagnose_linear_probe"]
    out = diagnose("linear_probe", e.model(1, 3, SIZE), conformance_data(1, 3), max_iter=200)
    assert isinstance(out, Diagnosis) and set(out.summary()) == {"accuracy"} and 0 <= out.summary()["accuracy"] <= 1
    with pytest.raises(ValueError, match="unknown diagnostic"):
        diagnose("no_such_diagnostic", e.model(1, 3, SIZE), conformance_data(1, 3))
