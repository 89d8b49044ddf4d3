"""The `paper` path exercised without a GPU: every paper notebook at `paper` scale — its real models, data paths, sweeps and
published tables — with every loop capped (SHORTCUT_NB_DRY_RUN: a few images per class, one training step, two runs per
condition, two attack/poison/reconstruction iterations). A wrong shape, a missing parameter or a CPU-only assumption
fails here in minutes rather than after hours on a rented GPU. Only that it runs and writes the results contract is
checked: a dry run's numbers mean nothing."""
import os
import pytest

pytestmark = pytest.mark.skipif(os.environ.get("SHORTCUT_NB_TEST_PAPER_DRY", "") in ("", "0"),
                                reason="paper-scale dry runs take minutes per paper: `make test-paper-dry` runs them")
from shortcut_nb.config import DRY_RUN_ENV, CACHE_ENV
from shortcut_nb.report import check_claims
from shortcut_nb.runner import paper_names, run_paper


@pytest.mark.parametrize("name", paper_names())
def test_paper_scale_dry_run(shared_data, tmp_path, monkeypatch, name):
    monkeypatch.setenv(DRY_RUN_ENV, "1")                        # the kernel inherits this process's environment
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    out = run_paper(name, "paper", run="dry", out_root=tmp_path / "outputs", progress=False)
    assert (out / "run.json").exists() and (out / f"{name}.ipynb").exists()
    assert len(check_claims(out / "claims.csv")) >= 1
