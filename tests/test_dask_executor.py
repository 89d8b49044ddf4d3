"Sweeps on Dask distributed: the same results as the local executor, worker deaths retried, finished runs never rerun."
import json, os, shutil, uuid
from pathlib import Path
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed", reason="DaskExecutor needs the `distributed` package (a dev requirement: pip install distributed)")

from shortcut_nb.sweep import (EXECUTOR_ENV, DaskExecutor, LocalExecutor, ResultStore, config_hash, executor_from_env,
                               run_sweep)

GRID = [{"seed": s, "lr": lr} for s in range(4) for lr in (0.05, 0.2)]   # 8 configs


def make_tiny_fit(calls: Path, kill_once: Path | None = None):
    """A tiny seeded torch regression; every call leaves a file in `calls`. With `kill_once`, the run of seed 3, lr 0.05
    SIGKILLs its own (worker) process the first time, as a crashed node would."""
    def tiny_fit(cfg: dict) -> dict:
        import os, signal, uuid, torch
        (calls / f"{cfg['seed']}-{cfg['lr']}-{uuid.uuid4().hex}").touch()
        if kill_once is not None and (cfg["seed"], cfg["lr"]) == (3, 0.05) and not kill_once.exists():
            kill_once.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        g = torch.Generator().manual_seed(cfg["seed"])
        x = torch.randn(64, 3, generator=g)
        y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.1 * torch.randn(64, generator=g)
        w = torch.zeros(3, requires_grad=True)
        opt = torch.optim.SGD([w], lr=cfg["lr"])
        for _ in range(25):
            opt.zero_grad(); loss = ((x @ w - y) ** 2).mean(); loss.backward(); opt.step()
        return {"loss": loss.item(), "w": w.detach().tolist(), "fit": {"w0": w[0].item()}, "pid": os.getpid()}
    return tiny_fit


def n_calls(calls: Path) -> int: return len(list(calls.iterdir()))


@pytest.fixture(scope="module")
def cluster():
    "One local Dask cluster (two single-threaded worker processes) that tests reach by its address."
    import logging
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=logging.CRITICAL) as c:
        yield c


@pytest.fixture
def calls(tmp_path) -> Path:
    d = tmp_path / "calls"; d.mkdir()
    return d


def stored(store_dir: Path) -> dict:
    "config hash → (config, result) of every stored record, without pids (which process ran it is not a result)."
    out = {}
    for p in store_dir.glob("*.json"):
        rec = json.loads(p.read_text())
        out[config_hash(rec["config"])] = (rec["config"], {k: v for k, v in rec["result"].items() if k != "pid"})
    return out


def test_dask_gives_the_local_results(tmp_path, calls, cluster):
    "The same sweep on LocalExecutor and on a LocalCluster of two worker processes: identical rows and result files."
    fn = make_tiny_fit(calls)
    local = run_sweep(fn, GRID, tmp_path / "local", executor=LocalExecutor(progress=False))
    with DaskExecutor(cluster.scheduler_address, progress=False) as ex:
        assert len(set(ex._client.run(os.getpid).values()) - {os.getpid()}) == 2, "two worker processes"
        dask = run_sweep(fn, GRID, tmp_path / "dask", executor=ex)
    assert n_calls(calls) == 16
    assert set(dask["pid"]).isdisjoint({os.getpid()}), "the Dask runs ran in worker processes"
    drop = ["seconds", "pid"]
    pd.testing.assert_frame_equal(local.drop(columns=drop), dask.drop(columns=drop), check_exact=True)
    assert stored(tmp_path / "local") == stored(tmp_path / "dask") and len(stored(tmp_path / "dask")) == 8
    assert not list((tmp_path / "dask").glob("*.lock")), "every claim taken on a worker was released"


def test_killed_worker_is_retried(tmp_path, calls):
    "A worker SIGKILLed mid-run: Dask reruns its task on a live worker and the sweep completes with every result."
    marker = tmp_path / "killed"
    df = run_sweep(make_tiny_fit(calls, kill_once=marker), GRID, tmp_path / "store", executor=DaskExecutor(n_workers=2, progress=False))
    assert marker.exists(), "the run did kill its worker"
    killed_pid = int(marker.read_text())
    assert len(df) == 8 and df["loss"].notna().all()
    rerun = df[(df["seed"] == 3) & (df["lr"] == 0.05)]
    assert rerun["pid"].item() != killed_pid, "the killed run's result came from another worker process"
    assert len(list(calls.glob("3-0.05-*"))) == 2, "the killed run ran twice: killed, then retried"
    assert len(stored(tmp_path / "store")) == 8 and not list((tmp_path / "store").glob("*.lock"))
    (tmp_path / "calls2").mkdir()
    expected = run_sweep(make_tiny_fit(tmp_path / "calls2"), GRID, tmp_path / "local", executor=LocalExecutor(progress=False))
    pd.testing.assert_frame_equal(expected.drop(columns=["seconds", "pid"]), df.drop(columns=["seconds", "pid"]))


def test_killed_worker_beyond_allowed_failures_is_an_error(tmp_path):
    "A run that kills every worker it lands on is given up after `allowed_failures` reruns (here none), not retried forever."
    def always_dies(cfg):
        import os, signal
        if cfg["x"] == 1: os.kill(os.getpid(), signal.SIGKILL)
        return {"x": cfg["x"]}
    with pytest.raises(distributed.KilledWorker):
        run_sweep(always_dies, [{"x": 0}, {"x": 1}], tmp_path, executor=DaskExecutor(n_workers=2, progress=False, allowed_failures=0))
    assert len(list(tmp_path.glob("*.json"))) == 1, "the run that finished was stored"
    assert not list(tmp_path.glob("*.lock")), "a failed sweep leaves no claim behind to block other processes"


def test_finished_runs_are_never_recomputed(tmp_path, calls, cluster):
    "A second sweep over the same store calls the run function 0 times; a half-done store only runs the rest."
    fn, store = make_tiny_fit(calls), tmp_path / "store"
    first = run_sweep(fn, GRID, store, executor=DaskExecutor(cluster.scheduler_address, progress=False))
    assert n_calls(calls) == 8
    again = run_sweep(fn, GRID, store, executor=DaskExecutor(cluster.scheduler_address, progress=False))
    assert n_calls(calls) == 8, "nothing was recomputed"
    pd.testing.assert_frame_equal(first, again)
    run_sweep(fn, GRID[:5], tmp_path / "half", executor=LocalExecutor(progress=False))      # 5 done locally …
    run_sweep(fn, GRID, tmp_path / "half", executor=DaskExecutor(cluster.scheduler_address, progress=False))
    assert n_calls(calls) == 8 + 5 + 3, "… Dask ran only the other 3"


def test_executor_from_environment(tmp_path, calls, cluster, monkeypatch):
    "SHORTCUT_NB_EXECUTOR: unset/local → LocalExecutor, dask → local cluster, an address → that scheduler, else ValueError."
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    assert isinstance(executor_from_env(), LocalExecutor)
    monkeypatch.setenv(EXECUTOR_ENV, "local")
    assert isinstance(executor_from_env(), LocalExecutor)
    for spec, address in [("dask", None), ("tcp://10.1.2.3:8786", "tcp://10.1.2.3:8786"), ("dask://head:8786", "tcp://head:8786")]:
        monkeypatch.setenv(EXECUTOR_ENV, spec)
        ex = executor_from_env(progress=False)
        assert isinstance(ex, DaskExecutor) and ex.address == address and ex.n_workers == 2
    for bad in ("ray", "slurm", "dask:/head", "tcp://"):
        monkeypatch.setenv(EXECUTOR_ENV, bad)
        with pytest.raises(ValueError, match="unknown executor"): executor_from_env()
        with pytest.raises(ValueError, match="SHORTCUT_NB_EXECUTOR"): run_sweep(make_tiny_fit(calls), GRID, tmp_path / "bad")
    assert n_calls(calls) == 0, "a bad executor fails before any run"
    # run_sweep without an executor really runs on the scheduler the variable names
    monkeypatch.setenv(EXECUTOR_ENV, cluster.scheduler_address)
    df = run_sweep(make_tiny_fit(calls), GRID, tmp_path / "env", progress=False)
    with distributed.Client(cluster) as client: workers = set(client.run(os.getpid).values())
    assert set(df["pid"]) <= workers and os.getpid() not in set(df["pid"])


def test_workers_with_other_code_are_refused(tmp_path, cluster, monkeypatch):
    "Results are keyed by the code that made them: workers running another checkout must not fill this store."
    import shortcut_nb.sweep as sweep
    monkeypatch.setattr(sweep, "code_fingerprint", lambda *a, **k: "not-the-workers-code")   # here only; workers keep theirs
    with pytest.raises(RuntimeError, match="other shortcut_nb code"):
        run_sweep(lambda cfg: {"x": 1}, [{"x": 1}], tmp_path, executor=DaskExecutor(cluster.scheduler_address, progress=False), code=None)
    assert not list(tmp_path.glob("*.json"))


@pytest.mark.slow   # SLOW: two papermill runs of the template (≈ 1.5 min alone on 2 cores, ≈ 3 min on a busy machine)
def test_template_paper_on_dask_matches_local(shared_data, tmp_path, monkeypatch):
    """`papers/template.ipynb` at smoke scale through `--executor dask` (a local cluster started in the paper's kernel:
    the notebook's `train_one` closure and its data travel to the workers with cloudpickle) writes the same tables and
    metrics as the local run, and run.json names the executor. Most of its time is kernels and Dask workers importing torch."""
    from shortcut_nb.runner import main
    monkeypatch.setenv("SHORTCUT_NB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")          # the kernel's torch as single-threaded as the workers'
    monkeypatch.delenv(EXECUTOR_ENV, raising=False)
    outs = {}
    for ex in ("dask", "local"):
        shutil.rmtree(tmp_path / "cache" / "sweeps", ignore_errors=True)   # nothing reused from the other run (decoded data is)
        assert main(["paper", "template", "--scale", "smoke", "--executor", ex, "--run", ex, "--out-root", str(tmp_path / "out")]) == 0
        outs[ex] = tmp_path / "out" / "template" / ex
    tables = sorted(p.name for p in (outs["local"] / "tables").glob("*.csv"))
    assert tables and tables == sorted(p.name for p in (outs["dask"] / "tables").glob("*.csv"))
    for t in tables:
        pd.testing.assert_frame_equal(pd.read_csv(outs["local"] / "tables" / t), pd.read_csv(outs["dask"] / "tables" / t))
    metrics = [json.loads((outs[ex] / "metrics.json").read_text()) for ex in ("local", "dask")]
    assert metrics[0] == metrics[1]
    assert [json.loads((outs[ex] / "run.json").read_text())["executor"] for ex in ("local", "dask")] == ["local", "dask"]
    assert EXECUTOR_ENV not in os.environ, "the CLI's setting was for the kernel only"


TWO_DRIVERS = """
import os, sys, time
from shortcut_nb.sweep import DaskExecutor, run_sweep
root, log = sys.argv[1], sys.argv[2]
def work(cfg):
    with open(log, "a") as f: f.write(f"start {os.getpid()} {cfg['x']}\\n")
    time.sleep(0.3)
    return {"square": cfg["x"] ** 2}
if __name__ == "__main__":
    df = run_sweep(work, [{"x": x} for x in range(8)], root, executor=DaskExecutor(n_workers=2, progress=False), code=None)
    print(df["square"].tolist() == [x * x for x in range(8)])
"""


def test_two_sweeps_on_two_clusters_share_a_store_without_duplicating_runs(tmp_path):
    """Two processes, each with its own Dask cluster, on one store: the claims taken on the workers (for their sweep's
    process) make every run happen once, and both sweeps return every result."""
    import subprocess, sys
    (tmp_path / "driver.py").write_text(TWO_DRIVERS)
    procs = [subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(tmp_path / "store"), str(tmp_path / "log")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-1500:] for o in outs]
    assert [o[0].strip() for o in outs] == ["True", "True"]
    starts = [int(line.split()[2]) for line in (tmp_path / "log").read_text().splitlines()]
    assert sorted(starts) == list(range(8)), "no run started twice"
    assert not list((tmp_path / "store").glob("*.lock")) and not list((tmp_path / "store").glob("*.tmp"))


def test_memoised_notebook_helpers_travel_and_unloadable_functions_fail_clearly(tmp_path, cluster, monkeypatch):
    """A run function using `functools.lru_cache` helpers defined beside it (as paper notebooks do) runs on the workers;
    one the workers cannot load (a module only this process can import) fails the sweep with a clear error, not a hang."""
    import functools, sys
    @functools.lru_cache(maxsize=None)
    def scale() -> int: return 10
    def scaled(cfg): return {"y": cfg["x"] * scale()}
    ex = DaskExecutor(cluster.scheduler_address, progress=False)
    assert run_sweep(scaled, [{"x": x} for x in range(3)], tmp_path / "a", executor=ex, code=None)["y"].tolist() == [0, 10, 20]
    (tmp_path / "only_here.py").write_text("class Thing:\n    value = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import only_here
    thing = only_here.Thing()                          # pickled by reference: the workers cannot import only_here
    def uses_thing(cfg): return {"v": thing.value}
    with pytest.raises(RuntimeError, match="could not load the run function"):
        run_sweep(uses_thing, [{"x": 1}], tmp_path / "b", executor=ex, code=None)
    assert not list((tmp_path / "b").glob("*.lock"))
    sys.modules.pop("only_here", None)


def _malloc_trim_env():
    import os
    return os.environ.get("MALLOC_TRIM_THRESHOLD_")


def test_workers_start_without_dasks_malloc_trim_threshold(monkeypatch):
    "Dask sets MALLOC_TRIM_THRESHOLD_=65536 in its workers, which made training 2x slower here; our cluster unsets it."
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    with DaskExecutor(n_workers=1, progress=False) as ex:
        seen = ex._client.run(_malloc_trim_env)
    assert list(seen.values()) == [None]
    import dask
    assert dask.config.get("distributed.nanny.pre-spawn-environ")["MALLOC_TRIM_THRESHOLD_"] == 65536   # the default is still Dask's outside our cluster


def test_a_large_run_function_travels_once_without_a_large_graph_warning(tmp_path, cluster):
    "A run function that closes over tens of MiB (a notebook's datasets) is scattered to the workers, not put in every task."
    import warnings
    import numpy as np
    big = np.random.default_rng(0).random(4_000_000)                  # 32 MB, as a paper notebook's datasets
    def uses_big(cfg: dict) -> dict: return {"value": float(big[cfg["i"]])}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with DaskExecutor(cluster.scheduler_address, progress=False, check_code=False) as ex:
            res = run_sweep(uses_big, [{"i": i} for i in range(6)], tmp_path / "store", executor=ex, progress=False)
    assert sorted(res["value"]) == sorted(float(big[i]) for i in range(6))
    large = [str(w.message) for w in caught if "large graph" in str(w.message).lower()]
    assert not large, large
