"""Same seed, same numbers — in any process.

Every architecture in the registry, every maker and diagnostic that draws random numbers, and every paper notebook
(at smoke scale) runs in two separate fresh processes; their weights, outputs, metrics and tables must agree bit for
bit, and a different seed must change them. Inside each process the global RNGs (torch, numpy, `random`) are put in
a state no other process shares before every call, so anything that leans on the global RNG instead of its own seed
shows up as a mismatch. The probe runs as `python -c` in a fresh interpreter; its code is the `probe_*` functions
below (plain Python, imported by the child process from this file).
"""
import hashlib
import inspect
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

# ------------------------------------------------------------------------------------------------------------------
# The probe: runs in the child process.

# The smallest input each architecture takes (8×8 unless listed), and two batches of 4 images (of 2, in NCHW, for
# networks over BIG_PARAMS parameters: a wide ResNet's backward pass dominates the cost): cheap on 2 CPU cores.
ARCH_SIZE = {"lenet5": 16}
BIG_PARAMS = 5_000_000


def _scramble():
    "Put the global RNGs in a state no other process shares: a result that depends on it differs between processes."
    import numpy as np, torch
    s = int.from_bytes(os.urandom(4), "little")
    torch.manual_seed(s); np.random.seed(s); random.seed(s)


def _digest(obj) -> str:
    "sha256 of tensors, arrays, numbers, strings and (nested) lists/tuples/dicts, bit-exact."
    import numpy as np, torch
    h = hashlib.sha256()
    def feed(o):
        if isinstance(o, torch.Tensor):
            o = o.detach().cpu().contiguous()
            h.update(f"T{o.dtype}{tuple(o.shape)}".encode())
            h.update((o.view(torch.int16) if o.dtype == torch.bfloat16 else o).numpy().tobytes())
        elif isinstance(o, np.ndarray):
            h.update(f"A{o.dtype}{o.shape}".encode()); h.update(np.ascontiguousarray(o).tobytes())
        elif isinstance(o, dict):
            for k in sorted(o, key=str): h.update(f"K{k!r}".encode()); feed(o[k])
        elif isinstance(o, (list, tuple)):
            h.update(f"L{len(o)}".encode())
            for v in o: feed(v)
        elif isinstance(o, float):
            h.update(f"F{float(o).hex() if math.isfinite(o) else o}".encode())
        elif isinstance(o, (int, str, bool)) or o is None:
            h.update(f"V{o!r}".encode())
        else:
            raise TypeError(f"cannot digest {type(o).__name__}")
    feed(obj)
    return h.hexdigest()[:16]


def _state_digest(model) -> str:
    "Hash of every parameter and buffer (BatchNorm running statistics included)."
    return _digest(dict(model.state_dict()))


def _toy(n: int, channels: int, size: int, classes: int = 2, seed: int = 1234):
    "Tiny images from a fixed generator (independent of the run's seed), every class present."
    import torch
    from shortcut_nb.data import ImageSet
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)
    y = torch.arange(n) % classes
    return ImageSet(x, y, [f"c{k}" for k in range(classes)], "toy")


def _history(res) -> list:
    "The run's numbers without its wall-clock fields."
    return [{k: v for k, v in row.items() if k != "seconds"} for row in res.history] + [res.fit_acc, res.epochs_run]


def probe_archs(seed: int) -> dict:
    "One epoch of two batches for every registered architecture: {arch: {weights, metrics}}."
    import torch
    from shortcut_nb.models import MODELS, make_model, n_params
    from shortcut_nb.train import TrainConfig, fit
    out = {}
    for name in sorted(MODELS):
        size = ARCH_SIZE.get(name, 8)
        extra = {"image_size": size} if "image_size" in inspect.signature(MODELS[name]).parameters else {}
        _scramble()
        model = make_model(name, 3, 3, seed=seed, **extra)
        big = n_params(model) > BIG_PARAMS   # wide ResNets: NCHW backward is ~3× faster on the CPU than channels_last
        ds = _toy(4 if big else 8, 3, size, classes=3)
        cfg = TrainConfig(epochs=1, batch_size=2 if big else 4, lr=0.01, seed=seed, augment="crop_flip",
                          channels_last=not big, name=name)
        _scramble()
        res = fit(model, ds, cfg, test=ds, progress=False, device="cpu")
        out[name] = {"weights": _state_digest(res.model), "metrics": _digest(_history(res))}
        del model, res
    return out


def probe_makers(seed: int) -> dict:
    "Every maker and diagnostic that draws random numbers, on tiny inputs: {name: digest of what it returned}."
    import torch
    from torch import nn
    from shortcut_nb.adversarial import adversarial_training, pgd
    from shortcut_nb.augment import chain, cutout, mixup, randaugment
    from shortcut_nb.bias import add_trigger, class_positions
    from shortcut_nb.clusters import (cluster_probes, pca_embed, probe_cluster_diagnostic, probe_probabilities,
                                      square_probes, train_vae, vae_embed)
    from shortcut_nb.color import solid_color_images
    from shortcut_nb.data import subset
    from shortcut_nb.decoy import add_decoys, decoy_regions
    from shortcut_nb.models import make_model
    from shortcut_nb.pixel import ops_fraction, ops_position, ops_search, randpix
    from shortcut_nb.reconstruct import homogeneous_mlp, reconstruct, sample_hparams
    from shortcut_nb.topology import neuron_activations, neuron_diagrams, patch_stimuli
    from shortcut_nb.train import TrainConfig, fit
    from shortcut_nb.unlearnable import ar_noise, em_noise, ntga_noise, rem_noise, shr_noise, shuffle_perturbations, tap_noise
    from shortcut_nb.xbl import mc_probs, patch_exchange, rrr_finetune

    ds = _toy(20, 3, 16, classes=5)         # 4 images per class
    gray = _toy(8, 1, 8, classes=2)
    tc = lambda **kw: TrainConfig(**{"epochs": 1, "batch_size": 4, "lr": 0.01, "seed": seed, **kw})
    small = lambda: make_model("small_cnn", 3, ds.num_classes, seed=seed)
    dropout_net = lambda: make_model("cvt2_4_d64", 3, ds.num_classes, seed=seed, image_size=16)  # dropout 0.1
    poison = lambda p: [p.data.x, p.delta if hasattr(p, "delta") else None]

    def trained_xbl():
        return fit(make_model("xbl_cnn", 1, 2, seed=seed, channels=4, image_size=8), gray, tc(augment="none"), progress=False).model

    makers = {
        "subset": lambda: subset(ds, 2, seed=seed).x,
        "class_positions": lambda: class_positions(5, 3, (16, 16), 4, seed=seed),
        "add_trigger_level3": lambda: add_trigger(ds, 3, (0.1, 0.3, 0.5, 0.7, 0.9), size=2, seed=seed).data.x,
        "decoy_regions_random": lambda: decoy_regions(5, 16, 4, layout="random", seed=seed),
        "add_decoys_fraction": lambda: add_decoys(ds, decoy_regions(5, 16, 4, layout="random", seed=0), p=0.5, seed=seed).data.x,
        "randpix": lambda: [randpix(ds, seed=seed).positions, randpix(ds, seed=seed).colors],
        "ops_position": lambda: ops_position(ds, ops_search(ds), seed=seed).x,
        "ops_fraction_noisy": lambda: ops_fraction(ds, 0.5, noisy_upload=True, seed=seed).data.x,
        "solid_color_images": lambda: solid_color_images(8, 8, seed=seed).x,
        "square_probes": lambda: list(square_probes(8, 8, 4, seed=seed)[0].x.unbind()) + [square_probes(8, 8, 4, seed=seed)[1]],
        "em_noise": lambda: poison(em_noise(ds, max_rounds=1, train_steps=2, pgd_steps=2, batch_size=8, seed=seed)),
        "em_noise_dropout_surrogate": lambda: poison(em_noise(ds, arch="xbl_cnn", max_rounds=1, train_steps=2, pgd_steps=1,
                                                              batch_size=8, seed=seed)),
        "rem_noise": lambda: poison(rem_noise(ds, max_rounds=1, train_steps=1, pgd_steps=1, adv_steps=1, batch_size=8, seed=seed)),
        "tap_noise": lambda: poison(tap_noise(ds, pgd_steps=2, batch_size=8, seed=seed, surrogate_config=tc())),
        "shr_noise": lambda: poison(shr_noise(ds, patch=4, seed=seed)),
        "ar_noise": lambda: poison(ar_noise(ds, seed=seed)),
        "ntga_noise": lambda: poison(ntga_noise(ds, steps=2, block=10, n_target=5, seed=seed)),
        "shuffle_perturbations": lambda: shuffle_perturbations(ds, shr_noise(ds, patch=4, seed=0).data, seed=seed).x,
        "pgd_random_start": lambda: pgd(small(), ds.floats(), ds.y, steps=1, seed=seed),
        "fit_adversarial_training": lambda: _state_digest(fit(small(), ds, tc(augment="none"), progress=False,
                                                              perturb=adversarial_training(steps=1, seed=seed)).model),
        "fit_randaugment_cutout": lambda: _state_digest(fit(small(), ds, tc(), augment=chain(randaugment(), cutout),
                                                            progress=False).model),
        "fit_mixup": lambda: _state_digest(fit(small(), ds, tc(), augment=mixup(ds.num_classes), progress=False).model),
        "fit_dropout_net": lambda: _state_digest(fit(dropout_net(), ds, tc(optimizer="adamw"), progress=False).model),
        "train_vae": lambda: vae_embed(train_vae(solid_color_images(16, 8, seed=0), 2, epochs=2, batch_size=8, seed=seed)[0],
                                       solid_color_images(16, 8, seed=0)),
        "pca_embed_randomized": lambda: pca_embed(_toy(600, 3, 16), 2, seed=seed),  # > 500×500: scikit-learn's randomized SVD
        "cluster_probes": lambda: cluster_probes(pca_embed(ds, 2), probe_probabilities(small(), ds), seed=seed).centres,
        "probe_cluster_diagnostic": lambda: [(d := probe_cluster_diagnostic(small(), ds, vae_epochs=1, seed=seed))["clusters"].centres,
                                              d["embedding"], d["decoded"]],
        "patch_stimuli": lambda: patch_stimuli(ds.x, 4, seed=seed),
        "neuron_activations": lambda: neuron_activations(small(), ds.x, n_neurons=12, seed=seed).acts,
        "neuron_diagrams": lambda: neuron_diagrams(neuron_activations(small(), ds.x, n_neurons=12, seed=seed).acts),
        "homogeneous_mlp": lambda: _state_digest(homogeneous_mlp(48, (8, 8), seed=seed)),
        "reconstruct": lambda: [reconstruct(homogeneous_mlp(48, (8, 8), seed=0), 4, (3, 4, 4), iters=3, seed=seed).x],
        "sample_hparams": lambda: [sorted(h.items()) for h in sample_hparams(3, seed=seed)],
        "mc_probs_xbl": lambda: mc_probs(trained_xbl(), gray.x, passes=4, seed=seed),
        "mc_probs_dropout_net": lambda: mc_probs(dropout_net(), ds.x, passes=4, seed=seed),
        "patch_exchange": lambda: patch_exchange(trained_xbl(), gray.take(gray.y == 0), gray.take(gray.y == 1), 0, 1,
                                                 patch=4, passes=4, seed=seed).certainty,
        "rrr_finetune": lambda: _state_digest(rrr_finetune(trained_xbl(), gray, torch.zeros(8, 8, 8), tc(augment="none", optimizer="adam"),
                                                           progress=False).model),
    }
    out = {}
    for name, fn in makers.items():
        _scramble()
        out[name] = _digest(fn())
    return out


def _child_main():
    "Entry point of the child process: print the probe's JSON on the last line."
    import torch
    torch.set_num_threads(1)
    what, seed = sys.argv[1], int(sys.argv[2])
    res = {"archs": probe_archs, "makers": probe_makers}[what](seed)
    print(json.dumps(res, sort_keys=True))


# ------------------------------------------------------------------------------------------------------------------
# The tests: run the probe in fresh processes.

def _run_probe(what: str, seed: int, hash_seed: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": "1"}
    code = f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_determinism as t; t._child_main()"
    p = subprocess.run([sys.executable, "-c", code, what, str(seed)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, f"probe {what} (seed {seed}) failed:\n{p.stderr[-4000:]}"
    return json.loads(p.stdout.strip().splitlines()[-1])


def _mismatches(a: dict, b: dict) -> list[str]:
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


@pytest.fixture(scope="module", params=["archs", "makers"])
def probe_runs(request):
    "The probe at seed 0 in two processes (different hash seeds) and at seed 1 in a third."
    what = request.param
    return what, _run_probe(what, 0, "1"), _run_probe(what, 0, "2"), _run_probe(what, 1, "3")


def test_same_seed_same_numbers_in_two_processes(probe_runs):
    what, a, b, _ = probe_runs
    assert a, f"the {what} probe returned nothing"
    assert not _mismatches(a, b), f"{what} that differ between two processes with the same seed: {_mismatches(a, b)}"


def test_different_seed_different_numbers(probe_runs):
    what, a, _, c = probe_runs
    key = lambda v: v["weights"] if isinstance(v, dict) else v     # an architecture: its weights must change
    same = sorted(k for k in a if k in c and key(a[k]) == key(c[k]))
    assert not same, f"{what} that ignore the seed (same result for seeds 0 and 1): {same}"


@pytest.mark.parametrize("probe_runs", ["archs"], indirect=True)
def test_probe_covers_every_registered_architecture(probe_runs):
    what, a, _, _ = probe_runs
    import shortcut_nb.xbl  # noqa: F401
    from shortcut_nb.models import MODELS
    assert set(a) == set(MODELS) and "xbl_cnn" in a
    assert all(set(v) == {"weights", "metrics"} for v in a.values())


# ------------------------------------------------------------------------------------------------------------------
# Every paper at smoke scale, twice: the session's smoke run (shared with tests/test_papers.py, run by papermill in
# its own kernel) and a second run through the CLI in a fresh process with a fresh cache and another hash seed.

# Wall-clock fields: the only numbers allowed to differ between two runs (metrics.json keys, table columns, rows of
# a long table whose `metric` is a time, and claims about cost, e.g. spurious_xbl's S321_xbl_cost: "RRR costs more
# than classification training", measured in seconds per epoch). Found by reading every paper's run.json (wall_seconds,
# written, seconds_per_seed), metrics.json (one_pixel_shortcut's ops_search_seconds, em_seconds), tables and claims.
WALL_CLOCK = ("seconds", "wall", "written", "timestamp", "duration", "minutes", "elapsed", "_cost")


def _is_wall_clock(name) -> bool:
    return any(w in str(name).lower() for w in WALL_CLOCK)


def _same_number(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b): return True
    return a == b and type(a) is type(b)


def _wall_clock_verdicts(run: Path) -> dict:
    "Verdicts of the claims about time in `run`'s claims.csv."
    import pandas as pd
    f = run / "claims.csv"
    if not f.exists(): return {}
    c = pd.read_csv(f)
    return {r.claim_id: r.verdict for r in c.itertuples() if _is_wall_clock(r.claim_id) or _is_wall_clock(r.statement)}


def _compare_outputs(first: Path, second: Path) -> list[str]:
    "Differences between two runs' metrics.json, claims.csv and tables/*.csv, wall-clock fields left out."
    import pandas as pd
    diffs = []
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (first, second))
    keys = sorted(k for k in m1.keys() | m2.keys() if not _is_wall_clock(k))
    timed = [_wall_clock_verdicts(d) for d in (first, second)]
    if timed[0] != timed[1]:   # a claim about time changed its verdict: the claims_* counts may differ by that alone
        keys = [k for k in keys if not k.startswith("claims_")]   # (every other claim's row is compared below)
    diffs += [f"metrics.json[{k!r}]: {m1.get(k)!r} vs {m2.get(k)!r}" for k in keys if not _same_number(m1.get(k), m2.get(k))]
    t1, t2 = (sorted(p.relative_to(d).as_posix() for p in [*d.glob("tables/*.csv"), d / "claims.csv"] if p.exists())
              for d in (first, second))
    if t1 != t2: diffs.append(f"different tables: {t1} vs {t2}")
    for rel in sorted(set(t1) & set(t2)):
        a, b = pd.read_csv(first / rel), pd.read_csv(second / rel)
        a, b = (df[[c for c in df.columns if not _is_wall_clock(c)]] for df in (a, b))
        for col in ("metric", "claim_id", "statement"):   # a row about time (a metric in seconds, a claim about cost)
            if col in a.columns and col in b.columns:
                a, b = (df[~df[col].map(_is_wall_clock)].reset_index(drop=True) for df in (a, b))
        try:
            pd.testing.assert_frame_equal(a, b, check_exact=True)
        except AssertionError as e:
            diffs.append(f"{rel}: {str(e).strip().splitlines()[0:6]}")
    return diffs


def _second_smoke_run(name: str, root: Path) -> Path:
    "Run paper `name` at smoke through the CLI in a fresh process, with a fresh cache and a fixed hash seed."
    env = {**os.environ, "SHORTCUT_NB_CACHE": str(root / "cache"), "PYTHONHASHSEED": "12345",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cli = Path(sys.executable).parent / "shortcut-nb"
    r = subprocess.run([str(cli), "paper", name, "--scale", "smoke", "--out-root", str(root / "outputs")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"second smoke run of {name} failed:\n{r.stderr[-3000:]}"
    return root / "outputs" / name / "smoke"


def _paper_names() -> list[str]:
    from shortcut_nb.runner import paper_names
    return paper_names(ROOT)


def test_wall_clock_filter():
    assert _is_wall_clock("ops_search_seconds") and _is_wall_clock("wall_seconds") and _is_wall_clock("seconds_per_seed")
    assert _is_wall_clock("S321_xbl_cost")
    assert not _is_wall_clock("test_acc_pct") and not _is_wall_clock("second_shortcut_decoy")


def test_compare_outputs_finds_a_changed_number(tmp_path):
    """The comparison is not vacuous: a changed table cell, claim or metric is reported; wall-clock fields, and a claim
    about time whose verdict flips (with the claims_* counts it moves), are not."""
    import pandas as pd
    runs = {"a": (0.5, 1.0, "same direction"), "b": (0.5, 0.9, "not reproduced"), "c": (0.25, 1.0, "same direction")}
    for d, (acc, ratio, cost_verdict) in runs.items():
        (tmp_path / d / "tables").mkdir(parents=True)
        verdicts = ["reproduced", cost_verdict]
        (tmp_path / d / "metrics.json").write_text(json.dumps(
            {"acc": acc, "n": 3, "em_seconds": ratio, "x": float("nan"),
             "claims_reproduced": verdicts.count("reproduced"), "claims_not_reproduced": verdicts.count("not reproduced")}))
        pd.DataFrame({"metric": ["acc", "train_seconds"], "ours": [acc, ratio]}).to_csv(tmp_path / d / "tables" / "t.csv", index=False)
        pd.DataFrame({"claim_id": ["T1_acc", "S1_xbl_cost"], "statement": ["acc is high", "RRR is slower (seconds per epoch)"],
                      "ours": [acc, ratio], "verdict": verdicts}).to_csv(tmp_path / d / "claims.csv", index=False)
    assert _compare_outputs(tmp_path / "a", tmp_path / "b") == []
    diffs = _compare_outputs(tmp_path / "a", tmp_path / "c")
    assert [x.split(":")[0] for x in diffs] == ["metrics.json['acc']", "claims.csv", "tables/t.csv"], diffs


@pytest.mark.slow
@pytest.mark.parametrize("name", _paper_names())
def test_paper_smoke_same_numbers_in_two_processes(smoke_run, tmp_path, name):
    first = smoke_run(name)
    second = _second_smoke_run(name, tmp_path)
    diffs = _compare_outputs(first, second)
    assert not diffs, f"{name} at smoke gave different numbers in two processes:\n" + "\n".join(diffs)
