"Trainer determinism and failure modes; sweep resumption."
import pytest
import torch
from shortcut_nb.models import MODELS, make_model
from shortcut_nb.train import TrainConfig, TrainingDiverged, train_model, toy_images, evaluate
from shortcut_nb.sweep import run_sweep


def test_same_seed_same_metrics():
    toy = toy_images(128, size=16)
    cfg = TrainConfig(epochs=2, batch_size=32, seed=7)
    h1 = train_model("lenet5", toy, cfg, test=toy, progress=False).history
    h2 = train_model("lenet5", toy, cfg, test=toy, progress=False).history
    assert [(r["train_loss"], r["test_acc"]) for r in h1] == [(r["train_loss"], r["test_acc"]) for r in h2]
    h3 = train_model("lenet5", toy, TrainConfig(epochs=2, batch_size=32, seed=8), test=toy, progress=False).history
    assert h3[0]["train_loss"] != h1[0]["train_loss"]


BIG = {"wrn28_4", "wrn28_8", "wrn28_10", "wrn28_16", "wrn28_20"}  # same code as wrn28_1/2, too heavy for a CPU test


@pytest.mark.parametrize("arch", sorted(set(MODELS) - BIG))
def test_every_model_trains_one_step(arch):
    toy = toy_images(32, size=32)
    r = train_model(arch, toy, TrainConfig(epochs=1, batch_size=16, augment="none"), progress=False)
    assert r.history[0]["train_loss"] > 0 and 0 <= evaluate(r.model, toy)["acc"] <= 1


def test_nan_names_the_run():
    with pytest.raises(TrainingDiverged, match="my-run"):
        train_model("small_cnn", toy_images(64), TrainConfig(epochs=3, lr=1e15, batch_size=16, name="my-run"), progress=False)


@pytest.mark.parametrize("bad", [dict(optimizer="rmsprop"), dict(schedule="exp"), dict(augment="cutmix9")])
def test_bad_config(bad):
    with pytest.raises(ValueError):
        train_model("small_cnn", toy_images(32), TrainConfig(epochs=1, **bad), progress=False)


def test_unknown_model():
    with pytest.raises(ValueError, match="resnet18"):
        make_model("resnet1000")


def test_sweep_resumes(tmp_path):
    ran = []
    def fn(cfg):
        ran.append(cfg["seed"])
        if cfg["seed"] == 2 and ran.count(2) == 1: raise KeyboardInterrupt  # the machine went away
        return {"acc": cfg["seed"] / 10}
    grid = [{"seed": s} for s in range(5)]
    with pytest.raises(KeyboardInterrupt):
        run_sweep(fn, grid, tmp_path, progress=False)
    df = run_sweep(fn, grid, tmp_path, progress=False)
    assert ran == [0, 1, 2, 2, 3, 4] and df["acc"].tolist() == [0, 0.1, 0.2, 0.3, 0.4]
    assert df["run_id"].nunique() == 5


TRAIN_IN_A_FRESH_PROCESS = """
import sys, torch
from shortcut_nb.train import TrainConfig, train_model, toy_images
torch.manual_seed(int(sys.argv[2]))            # a different global RNG state in every process
toy = toy_images(96, size=28)
toy = toy.with_x(toy.x[:, :1])                 # one channel, as xbl_cnn expects
r = train_model("xbl_cnn", toy, TrainConfig(epochs=2, batch_size=32, seed=int(sys.argv[1]), augment="flip"), progress=False)
print(repr([round(float(p.double().sum()), 12) for p in r.model.parameters()]))
"""


def _weights_in_subprocess(seed: int, noise: int) -> str:
    import subprocess, sys
    out = subprocess.run([sys.executable, "-c", TRAIN_IN_A_FRESH_PROCESS, str(seed), str(noise)], capture_output=True, text=True,
                         env={**__import__("os").environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_dropout_model_same_weights_in_separate_processes():
    "Dropout, batch order and augmentation follow the config's seed: two fresh processes train identical weights."
    first, second = _weights_in_subprocess(3, 11), _weights_in_subprocess(3, 12)
    assert first == second
    assert _weights_in_subprocess(4, 11) != first      # and another seed gives another model


SWEEP_SCRIPT = """
import os, sys, time
from shortcut_nb.sweep import run_sweep
root, log, n, pause = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
def work(cfg):
    with open(log, "a") as f: f.write(f"start {os.getpid()} {cfg['x']}\\n")
    time.sleep(pause)
    return {"square": cfg["x"] ** 2}
df = run_sweep(work, [{"x": x} for x in range(n)], root, progress=False, code=None)
print(sorted(df["square"].tolist()) == [x * x for x in range(n)])
"""


def _sweep_proc(tmp_path, n: int, pause: float):
    import subprocess, sys
    script = tmp_path / "sweep.py"
    script.write_text(SWEEP_SCRIPT)
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / "store"), str(tmp_path / "log"), str(n), str(pause)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _starts(tmp_path) -> list[int]:
    log = tmp_path / "log"
    return [int(line.split()[2]) for line in log.read_text().splitlines()] if log.exists() else []


def test_two_processes_share_a_sweep_without_duplicating_runs(tmp_path):
    "Two processes on the same sweep: every run is done once, by one of them, and both return every result."
    procs = [_sweep_proc(tmp_path, 8, 0.3) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-1500:] for o in outs]
    assert [o[0].strip() for o in outs] == ["True", "True"]
    assert sorted(_starts(tmp_path)) == list(range(8))          # no run started twice
    assert not list((tmp_path / "store").glob("*.lock")) and not list((tmp_path / "store").glob("*.tmp"))


def test_sweep_killed_with_sigkill_resumes(tmp_path):
    "SIGKILL mid-sweep: the rerun keeps every finished run, breaks the dead process's claim and never reads a half-written result."
    import signal, time
    p = _sweep_proc(tmp_path, 6, 0.4)
    deadline = time.time() + 60
    while len(_starts(tmp_path)) < 3 and time.time() < deadline: time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    import json
    finished = {json.loads(f.read_text())["config"]["x"] for f in (tmp_path / "store").glob("*.json")}
    assert 1 <= len(finished) < 6 and list((tmp_path / "store").glob("*.lock"))   # killed mid-run, its claim left behind
    q = _sweep_proc(tmp_path, 6, 0.0)
    out, err = q.communicate(timeout=120)
    assert q.returncode == 0 and out.strip() == "True", err[-1500:]
    starts = _starts(tmp_path)
    assert sorted(set(starts)) == list(range(6))
    assert all(starts.count(x) == 1 for x in finished)           # no finished run was recomputed
    assert len(starts) <= 7                                      # only the run in flight at the kill ran twice
    assert not list((tmp_path / "store").glob("*.lock"))


def test_dry_run_caps_every_loop(monkeypatch, tmp_path):
    "SHORTCUT_NB_DRY_RUN: one training step of one epoch, two runs per condition, capped attack loops and neuron samples."
    from shortcut_nb.config import DRY_RUN_ENV
    from shortcut_nb.train import TrainConfig, train_model, toy_images
    from shortcut_nb.sweep import run_sweep
    from shortcut_nb.topology import neuron_activations
    monkeypatch.setenv(DRY_RUN_ENV, "1")
    toy = toy_images(64, size=16)
    r = train_model("small_cnn", toy, TrainConfig(epochs=30, batch_size=8), progress=False)
    assert r.epochs_run == 1
    seen = []
    res = run_sweep(lambda c: seen.append(c) or {"v": 1.0}, [{"arch": a, "seed": s} for a in ("x", "y") for s in range(5)],
                    tmp_path / "store", progress=False)
    assert len(res) == 4 and sorted({c["arch"] for c in seen}) == ["x", "y"]
    na = neuron_activations(train_model("small_cnn", toy, TrainConfig(epochs=1), progress=False).model, toy.x, n_neurons=1500)
    assert len(na.acts) <= 48 + len(na.layer_sizes) < sum(na.layer_sizes.values())   # 48, give or take one per layer's rounding
