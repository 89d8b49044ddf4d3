"be_persistent_cases at smoke: the regime flags follow their stated rule, Tables 1 and 3 stand beside every published row, and every claim of §4.2 and Appendix B has a computed row."
import json
import pandas as pd
import pytest
from shortcut_nb.backdoor import BACKDOORS
from shortcut_nb.fairness import CELEBA_TARGETS
from shortcut_nb.report import check_claims, load_published

NAME = "be_persistent_cases"
ATTACKS = [a.upper() for a in BACKDOORS]
pytestmark = pytest.mark.smoke_paper(NAME)   # under xdist, on the worker that ran that smoke run


@pytest.fixture(scope="module")
def out(smoke_run):
    return smoke_run(NAME)   # the session's smoke run, shared with tests/test_papers.py


def _flags(s: pd.Series) -> set:
    "regime_ok values of a csv column (True/False/empty) as a set of Python bools, empties dropped."
    return {str(v) == "True" for v in s.dropna()}


def test_backdoor_regime_is_fit_and_attack_success(out):
    "Carrying the backdoor always gates; the fit gates where the budget buys it (`fit_gates`), else it is shown and flagged under its bar."
    m = json.loads((out / "metrics.json").read_text())
    t3 = pd.read_csv(out / "tables" / "table3.csv")
    fit = t3[t3.metric == "test_acc_pct"].set_index("attack")["fit_pct"]
    asr = t3[t3.metric == "backdoor_acc_pct"].set_index("attack")["ours"]
    shown_fit = t3[t3.metric == "train_acc_pct"].set_index("attack")["ours"]
    assert set(fit.index) == {"BENIGN", *ATTACKS}
    bar = m["regime_threshold_pct"] if m["fit_gates"] else m["fit_flag_pct"]
    for cond in fit.index:
        fits = bool(fit[cond] >= bar)
        assert m[f"fit_flag.backdoor.{cond}"] is (not fits), cond
        assert abs(shown_fit[cond] - fit[cond]) < 1e-6, cond                    # the fit is a column of Table 3
        expected = (fits or not m["fit_gates"]) and (cond == "BENIGN" or bool(asr[cond] >= m["asr_threshold_pct"]))
        assert m[f"regime_ok.backdoor.{cond}"] is expected, cond
        assert _flags(t3[t3.attack == cond]["regime_ok"]) == {expected}, cond   # the table's ⚠ says the same


def test_bias_regime_is_fit(out):
    m = json.loads((out / "metrics.json").read_text())
    for model in ("BIASED", "UNBIASED"):
        assert m[f"regime_ok.bias.{model}"] is (m[f"fit_acc_pct.bias.{model}"] >= m["regime_threshold_pct"])


def test_tables_stand_beside_every_published_row(out):
    for table, keys in (("table3", ["arch", "attack"]), ("table1", ["target_attribute", "model"])):
        pub = load_published("be_persistent", table)
        ours = pd.read_csv(out / "tables" / f"{table}.csv")
        ran = ours[ours.n > 0]
        missing = set(map(tuple, pub[keys].astype(str).values)) - set(map(tuple, ran[keys].astype(str).values))
        assert not missing, f"{table}: published rows without ours: {sorted(missing)}"
    assert "PROXY FOR CELEBA" in (out / "tables" / "table1.md").read_text()   # offline: the substitution is said in the table
    assert "proxy for CelebA" in (out / "findings.md").read_text()


def test_every_claim_has_a_row_and_out_of_regime_attacks_are_flagged(out):
    c = check_claims(out / "claims.csv").set_index("claim_id")
    m = json.loads((out / "metrics.json").read_text())
    need = {f"T3_{a}_{k}" for a in ATTACKS for k in ("top5", "asr", "clean_acc")}
    need |= {f"T1_{t.replace(' ', '_')}_top5" for t in CELEBA_TARGETS}
    need |= {"B_pooled_top5_all", "B_pooled_top5_in_regime", "F8_biased_top5", "T1_all_targets_top5", "F9_threshold_loo",
             "F9_worst_group_corr", "T1_std_corr"}
    need |= {f"T1_bpa_{k}" for k in ("unbiased_acc", "worst_group_acc", "unbiased_acc_group_std", "eo_disparity", "average_odds")}
    assert need <= set(c.index), sorted(need - set(c.index))
    for a in ATTACKS:   # a top-5 claim resting on an attack outside the regime is never reported as in it
        if not (m[f"regime_ok.backdoor.{a}"] and m["regime_ok.backdoor.BENIGN"]):
            assert str(c.loc[f"T3_{a}_top5", "regime_ok"]) == "False", a


def test_second_bias_proxy_runs_the_same_protocol_on_a_texture(out):
    "The second proxy (stripes on CIFAR-10): both proxies side by side, its own premise and claim, and the findings say which sign won."
    run = json.loads((out / "run.json").read_text())
    t = pd.read_csv(out / "tables" / "bias_second_proxy.csv")
    assert set(t.proxy) == {"coloured MNIST", "stripes on CIFAR-10"} and set(t.model) == {"BIASED", "UNBIASED"}
    second = t[(t.proxy == "stripes on CIFAR-10") & (t.metric == "top5_pd1_x1e-1")]
    assert (second.n == run["params"]["second_bias_models"] * run["params"]["n_targets"]).all()
    c = check_claims(out / "claims.csv").set_index("claim_id")
    assert c.loc["B2_biased_top5", "premise"] == "B2_bpa_worst_group_acc"
    m = json.loads((out / "metrics.json").read_text())
    assert {"second_proxy_biased_minus_unbiased_top5_x1e-1", "second_proxy_top5_welch_p", "regime_ok.bias_second.BIASED"} <= set(m)
    assert "Second proxy (stripes on CIFAR-10" in (out / "findings.md").read_text()
    assert any("cifar" in d["source"].lower() for d in run["datasets"])
