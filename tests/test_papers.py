"Every paper notebook runs at smoke scale through papermill and honours the results contract."
import json
import nbformat
import pandas as pd
import pytest
from shortcut_nb.report import VERDICTS, check_claims
from shortcut_nb.runner import paper_names

PAPERS = paper_names()
TABLE_COLUMNS = {"metric", "published", "ours", "ours_std", "n"}


@pytest.mark.parametrize("name", PAPERS)
def test_notebook_has_parameters_and_kernelspec(project_root, name):
    nb = nbformat.read(project_root / "papers" / f"{name}.ipynb", as_version=4)
    assert nb.metadata["kernelspec"]["language"] == "python"
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one papermill parameters cell"
    for p in ("scale", "run", "seed", "out_dir"):
        assert f"\n{p}:" in "\n" + params[0].source, f"parameter {p} missing"


@pytest.mark.parametrize("name", PAPERS)
def test_smoke_run_writes_results_contract(smoke_run, name):
    out = smoke_run(name)   # run once per session (fresh cache), shared with tests/test_determinism.py
    assert out.name == "smoke" and out.parent.name == name and out.is_absolute()
    assert (out / f"{name}.ipynb").exists()
    tables = sorted((out / "tables").glob("*.csv"))
    assert tables, "at least one table"
    for t in tables:
        df = pd.read_csv(t)
        assert TABLE_COLUMNS <= set(df.columns), t
        assert t.with_suffix(".md").exists()
    assert list((out / "figures").glob("*.png")), "at least one figure"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics and all(not isinstance(v, (dict, list)) for v in metrics.values())
    run = json.loads((out / "run.json").read_text())
    assert run["params"]["scale"] == "smoke" and run["datasets"] and "torch" in run["packages"]
    # computed claims: every paper writes claims.csv with stated rules and verdicts from the allowed set
    claims = check_claims(out / "claims.csv")
    assert len(claims) >= 1
    assert {k for k in metrics if k.startswith("claims_")} == {f"claims_{v.replace(' ', '_')}" for v in VERDICTS}
    assert sum(metrics[f"claims_{v.replace(' ', '_')}"] for v in VERDICTS) == len(claims)
    # the regime check: every trained condition reports whether its models fit their training set
    assert any(k.startswith("regime_ok") for k in metrics), "metrics.json reports the regime per condition"
    assert all(d["files"] for d in run["datasets"]), "md5s of every dataset file recorded"
    det = run["determinism"]   # whether a rerun is expected to give the same bits, and the settings that decide it
    assert {"device", "deterministic_algorithms", "cudnn_deterministic", "cudnn_benchmark", "bitwise_reproducible"} <= set(det)
    assert det["device"] in ("cpu", "cuda", "mps") and isinstance(det["deterministic_algorithms"], bool)


def test_override_reaches_the_config_and_run_json(shared_data, tmp_path, monkeypatch):
    "A -p override of one setting changes that setting only, and run.json records the resolved config."
    from shortcut_nb.runner import run_paper
    monkeypatch.setenv("SHORTCUT_NB_CACHE", str(tmp_path / "cache"))
    out = run_paper("template", "smoke", run="override", params={"n_seeds": 1, "n_per_class": 12},
                    out_root=tmp_path / "outputs", progress=False)
    params = json.loads((out / "run.json").read_text())["params"]
    assert params["n_seeds"] == 1 and params["n_per_class"] == 12 and params["epochs"] == 1   # epochs: the smoke value
    assert json.loads((out / "metrics.json").read_text())["n_models"] == 1


@pytest.mark.parametrize("name", PAPERS)
def test_every_saved_figure_is_displayed(project_root, name):
    "A paper notebook shows each figure it saves: `save_figure` is a cell's last expression, returned, or wrapped in display()."
    nb = nbformat.read(project_root / "papers" / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code": continue
        lines = cell.source.rstrip().splitlines()
        for i, line in enumerate(lines):
            hidden = "save_figure(" in line and "import" not in line and "display(" not in line and "return " not in line
            assert not (hidden and i != len(lines) - 1), f"cell {cell.get('id')}: {line.strip()} saves a figure it does not show"


def test_be_persistent_fills_table2_blocks_by_family(project_root, shared_data, tmp_path):
    "Each model fills its own family's Table 2 block: a model of neither family, or two for one block, is refused before any work."
    import os, subprocess, sys
    from pathlib import Path
    env = {**os.environ, "SHORTCUT_NB_CACHE": str(tmp_path / "cache")}
    cli = [Path(sys.executable).parent / "shortcut-nb", "paper", "be_persistent", "--scale", "smoke", "--out-root", str(tmp_path / "outputs")]
    for archs, message in (("[small_cnn]", "'small_cnn' is neither a ResNet nor a DenseNet"),
                           ("[resnet18_w16, resnet18]", "one model per Table 2 block")):
        r = subprocess.run(cli + ["-p", "archs", archs], capture_output=True, text=True, cwd=project_root, env=env, timeout=300)
        assert r.returncode == 1 and message in r.stderr, r.stderr[-2000:]


@pytest.mark.smoke_paper("be_persistent")
def test_be_persistent_checks_each_poison_on_the_surrogate_architecture(smoke_run):
    "Evidence beside Table 2: every condition is also trained on the network EMN/REM/TAP are made against, and said in the findings."
    out = smoke_run("be_persistent")
    table = pd.read_csv(out / "tables" / "surrogate_check.csv")
    run = json.loads((out / "run.json").read_text())
    surrogate_rows = table[~table.dataset.str.contains(" · ")]
    assert set(surrogate_rows.dataset) == {"CLEAN", *run["params"]["poisons"]}
    assert (surrogate_rows.n == run["params"]["surrogate_models"]).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert {f"surrogate_{d}_test_acc_pct" for d in surrogate_rows.dataset} <= set(metrics)
    assert "The same training on the small CNN" in (out / "findings.md").read_text()


@pytest.mark.smoke_paper("be_persistent")
def test_be_persistent_scale_ladder_spans_the_sizes_and_flags_what_does_not_act(smoke_run):
    "The scale ladder: one row per (size, poison) from the smaller sets up to the main run, gaps with standard errors, flags by rule."
    out = smoke_run("be_persistent")
    run = json.loads((out / "run.json").read_text())
    p = run["params"]
    table = pd.read_csv(out / "tables" / "scale_ladder.csv")
    sizes = sorted(10 * k for k in [*p["ladder"], p["n_per_class"]])
    assert sorted(table.train_images.unique()) == sizes
    assert set(table.poison) == {q for q in p["ladder_poisons"] if q in p["poisons"]}
    assert table[["avg_pd1_gap_se", "wsd_gap_se"]].notna().all().all()
    main = table[table.train_images == 10 * p["n_per_class"]]
    assert (main.n_clean == p["n_models"]).all()
    assert (table[table.train_images < 10 * p["n_per_class"]].n_clean == p["ladder_models"]).all()
    # the rule: a poison acts when it removes at least half of the clean accuracy above chance (never at a clean model at chance)
    drop = table.clean_test_acc_pct - table.poisoned_test_acc_pct
    expected = (table.clean_test_acc_pct > 10) & (drop >= 0.5 * (table.clean_test_acc_pct - 10))
    assert (table.poison_acts == expected).all()
    assert (table.poisoned_fit_ok == (table.poisoned_fit_pct >= 95)).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert any(k.startswith("ladder.") for k in metrics) and "poisons_acting.resnet9_w8" in metrics
    assert (out / "figures" / "scale_ladder.png").exists()
