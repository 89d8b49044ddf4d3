"The committed outputs honour the results contract: produced from a clean commit of this history, with computed claims."
import json, pathlib, subprocess
import pandas as pd
import pytest
from shortcut_nb.report import check_claims
from shortcut_nb.runner import paper_names

PAPERS = paper_names()
ROOT = pathlib.Path(__file__).resolve().parents[1]
# every committed run folder: each paper's `cpu` run, plus supplementary runs (e.g. `cpu_archs`) made with `--run`
RUNS = sorted({(p, "cpu") for p in PAPERS} | {(d.parent.name, d.name) for d in (ROOT / "outputs").glob("*/*") if (d / "run.json").exists()})


def _in_git(project_root) -> bool:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_root, capture_output=True).returncode == 0


@pytest.mark.parametrize("name,run", RUNS)
def test_committed_outputs_come_from_a_clean_ancestor(project_root, name, run):
    out = project_root / "outputs" / name / run
    assert (out / "run.json").exists(), f"no committed {run} outputs for {name}"
    commit = json.loads((out / "run.json").read_text())["code"]["git_commit"]
    assert commit and not commit.endswith("+dirty"), f"{name}/{run}: produced from a dirty tree ({commit})"
    if not _in_git(project_root): pytest.skip("not a git checkout")
    r = subprocess.run(["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=project_root, capture_output=True)
    assert r.returncode == 0, f"{name}/{run}: run.json names {commit}, which is not an ancestor of HEAD"


@pytest.mark.parametrize("name,run", RUNS)
def test_committed_outputs_have_claims_and_regime(project_root, name, run):
    out = project_root / "outputs" / name / run
    claims = check_claims(out / "claims.csv")
    metrics = json.loads((out / "metrics.json").read_text())
    assert any(k.startswith("regime_ok") for k in metrics)
    if name != "template": assert (out / "findings.md").exists(), "findings generated from claims.csv"
    # every table row with runs reports its regime where the paper's table comes from trained models
    for t in (out / "tables").glob("*.csv"):
        df = pd.read_csv(t)
        run_rows = df[df.n > 0]
        if "regime_ok" in df.columns and len(run_rows):
            assert run_rows["fit_pct"].notna().any(), t
    assert len(claims) >= 1


def test_spurious_xbl_names_every_explanation_row_short_of_seeds(project_root):
    "A row of the explainers table with fewer values than seeds (an all-zero map has no share on the decoy) is named, not silent."
    out = project_root / "outputs" / "spurious_xbl" / "cpu"
    metrics = json.loads((out / "metrics.json").read_text())
    table = pd.read_csv(out / "tables" / "explainers.csv")
    short = table[table.n < metrics["n_seeds"]]
    assert metrics["n_blank_explanations"] == int((metrics["n_seeds"] - short.n).sum())
    note = (out / "tables" / "explainers.md").read_text()
    findings = (out / "findings.md").read_text()
    for row in short.itertuples():
        assert f"{row.method} of {row.model}, seed" in note and f"{row.method} of {row.model}, seed" in findings, row


def test_results_page_and_readme_table_are_up_to_date(project_root):
    "outputs/SUMMARY.md and the README's results table are what `shortcut-nb summary` makes from the committed run folders."
    from shortcut_nb.runner import write_summary, readme_results_table
    assert write_summary(project_root, check=True) == 0, "run: shortcut-nb summary && make readme"
    assert readme_results_table(project_root / "outputs") in (project_root / "README.md").read_text()
