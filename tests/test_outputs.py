"The committed `cpu` outputs honour the results contract: produced from a clean commit of this history, with computed claims."
import json, subprocess
import pandas as pd
import pytest
from shortcut_nb.report import check_claims
from shortcut_nb.runner import paper_names

PAPERS = paper_names()


def _in_git(project_root) -> bool:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_root, capture_output=True).returncode == 0


@pytest.mark.parametrize("name", PAPERS)
def test_committed_cpu_outputs_come_from_a_clean_ancestor(project_root, name):
    out = project_root / "outputs" / name / "cpu"
    assert (out / "run.json").exists(), f"no committed cpu outputs for {name}"
    commit = json.loads((out / "run.json").read_text())["code"]["git_commit"]
    assert commit and not commit.endswith("+dirty"), f"{name}: produced from a dirty tree ({commit})"
    if not _in_git(project_root): pytest.skip("not a git checkout")
    r = subprocess.run(["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=project_root, capture_output=True)
    assert r.returncode == 0, f"{name}: run.json names {commit}, which is not an ancestor of HEAD"


@pytest.mark.parametrize("name", PAPERS)
def test_committed_cpu_outputs_have_claims_and_regime(project_root, name):
    out = project_root / "outputs" / name / "cpu"
    claims = check_claims(out / "claims.csv")
    metrics = json.loads((out / "metrics.json").read_text())
    assert any(k.startswith("regime_ok") for k in metrics)
    if name != "template": assert (out / "findings.md").exists(), "findings generated from claims.csv"
    # every table row with runs reports its regime where the paper's table comes from trained models
    for t in (out / "tables").glob("*.csv"):
        df = pd.read_csv(t)
        run = df[df.n > 0]
        if "regime_ok" in df.columns and len(run):
            assert run["fit_pct"].notna().any(), t
    assert len(claims) >= 1
