import os
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT

@pytest.fixture(scope="session")
def shared_data() -> Path:
    "The shared data root; tests that need real data are skipped without it."
    d = os.environ.get("SHORTCUT_NB_DATA") or (ROOT.parent / "shared" / "data")
    d = Path(d).resolve()
    if not (d / "MD5SUMS").exists():
        pytest.skip(f"no shared data root at {d} (set SHORTCUT_NB_DATA)")
    os.environ["SHORTCUT_NB_DATA"] = str(d)
    return d


@pytest.fixture(scope="session")
def smoke_run(shared_data, tmp_path_factory):
    """`smoke_run(name)`: the outputs folder of paper `name` run at smoke scale (papermill, its own kernel process,
    a fresh cache). Each paper runs once per session: the results-contract tests and the two-process determinism
    test share that run."""
    from shortcut_nb.runner import run_paper
    runs: dict = {}
    def run(name: str) -> Path:
        if name not in runs:
            base = tmp_path_factory.mktemp(f"smoke-{name}")
            old = os.environ.get("SHORTCUT_NB_CACHE")
            os.environ["SHORTCUT_NB_CACHE"] = str(base / "cache")    # a fresh cache: every number is computed
            try:
                runs[name] = run_paper(name, "smoke", out_root=base / "outputs", progress=False)
            except Exception as e:                                    # fail every user of the run, without rerunning it
                runs[name] = e
            finally:
                if old is None: os.environ.pop("SHORTCUT_NB_CACHE", None)
                else: os.environ["SHORTCUT_NB_CACHE"] = old
        if isinstance(runs[name], Exception): raise runs[name]
        return runs[name]
    return run


def pytest_configure(config):
    config.addinivalue_line("markers", "smoke_paper(name): the test reads paper `name`'s session smoke run")


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test`: two workers, `--dist loadgroup`), every test that reads a paper's smoke run goes to
    the worker that ran it: one xdist group per paper (the parametrized `name`, or the test's `smoke_paper` mark), so each
    paper still runs once per session. Without xdist the groups are inert."""
    for item in items:
        if "smoke_run" not in getattr(item, "fixturenames", ()): continue
        mark = item.get_closest_marker("smoke_paper")
        paper = mark.args[0] if mark else getattr(getattr(item, "callspec", None), "params", {}).get("name")
        if paper is None:
            raise pytest.UsageError(f"{item.nodeid} reads a smoke run: parametrize it by `name` or mark it smoke_paper(<paper>)")
        item.add_marker(pytest.mark.xdist_group(f"smoke-{paper}"))
