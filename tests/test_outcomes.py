"""Outcome estimators against R (lm/glm + sandwich::vcovCL HC1 + coeftest df = G−1) and closed forms.

Golden values: tests/golden/outcomes_golden.json, made by tests/golden/outcomes_golden.R from
tests/golden/outcomes_golden_data.csv.
"""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from phb_eval import balance, outcomes
from phb_eval.contract import RESULT_COLUMNS
from phb_eval.errors import EstimationError

GOLDEN = Path(__file__).parent / "golden"
COVS = ["age", "sex", "condition"]


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(GOLDEN / "outcomes_golden_data.csv")


@pytest.fixture(scope="module")
def golden():
    doc = json.loads((GOLDEN / "outcomes_golden.json").read_text())
    return {c["case"]: c for c in doc["cases"]} | {"propensity": doc["propensity"]}


def _att(data):
    ps = balance.propensity_scores(data, COVS + ["y_t0"])
    return ps, balance.propensity_weights(ps, data["phb"], "att")


CASES = {
    "ancova_95": lambda d: outcomes.ancova(d, "y", COVS, variance="cr1").iloc[0],
    "ancova_90": lambda d: outcomes.ancova(d, "y", COVS, conf_level=0.90, variance="cr1").iloc[0],
    "did_95": lambda d: outcomes.did(d, "y", COVS, variance="cr1").iloc[0],
    "binary_rd_95": lambda d: outcomes.binary_effects(d, "b", COVS, variance="cr1").iloc[0],
    "binary_or_95": lambda d: outcomes.binary_effects(d, "b", COVS, variance="cr1").iloc[1],
    "mortality_rd_95": lambda d: outcomes.binary_effects(d, "mortality", COVS, variance="cr1").iloc[0],
    "mortality_or_95": lambda d: outcomes.binary_effects(d, "mortality", COVS, variance="cr1").iloc[1],
    "ipw_att_ancova_95": lambda d: outcomes.ancova(d, "y", COVS, weights=_att(d)[1], variance="cr1").iloc[0],
    "ipw_overlap_ancova_95": lambda d: outcomes.ancova(
        d, "y", COVS, weights=balance.propensity_weights(_att(d)[0], d["phb"], "overlap"), variance="cr1").iloc[0],
    "ipw_att_or_95": lambda d: outcomes.binary_effects(d, "b", COVS, weights=_att(d)[1], variance="cr1").iloc[1],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_r_cr1(case, data, golden):
    row, ref = CASES[case](data), golden[case]
    assert row["estimate"] == pytest.approx(ref["estimate"], rel=1e-8, abs=1e-12)
    assert row["se"] == pytest.approx(ref["se"], rel=1e-6)
    assert row["ci_low"] == pytest.approx(ref["ci_low"], rel=1e-6)
    assert row["ci_high"] == pytest.approx(ref["ci_high"], rel=1e-6)
    assert row["p_value"] == pytest.approx(ref["p_value"], rel=1e-6)
    assert (row["n_phb"], row["n_control"]) == (ref["n_phb"], ref["n_control"])
    assert (row["df"], row["n_clusters"]) == (ref["df"], ref["n_clusters"])


def test_method_names_and_layout(data):
    w = _att(data)[1]
    assert outcomes.ancova(data, "y", COVS, variance="cr1")["method"].tolist() == ["ancova_cr1_site"]
    assert outcomes.ancova(data, "y", COVS, weights=w, variance="cr1")["method"].tolist() == ["ancova_ipw_cr1_site"]
    assert outcomes.did(data, "y", COVS, variance="cr1")["method"].tolist() == ["did_cr1_site"]
    assert outcomes.binary_effects(data, "b", COVS, variance="cr1")["method"].tolist() == ["ancova_rd_cr1_site", "logit_or_cr1_site"]
    assert outcomes.binary_effects(data, "b", COVS, weights=w, variance="cr1")["method"].tolist() == [
        "ancova_ipw_rd_cr1_site", "logit_ipw_or_cr1_site"]
    out = outcomes.ancova(data, "y", COVS, stratum="condition=chc", variance="cr1")
    assert list(out.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert out["analysis"].iloc[0] == "outcome" and out["stratum"].iloc[0] == "condition=chc"


def test_weighted_arm_indicator_is_weighted_difference_of_means(data):
    """Closed form: WLS of y on the PHB indicator alone = difference of the arms' weighted means."""
    w = _att(data)[1]
    keep = data["y_t1"].notna() & w.notna()
    y, t, ww = data.loc[keep, "y_t1"], data.loc[keep, "phb"], w[keep]
    expected = np.average(y[t == 1], weights=ww[t == 1]) - np.average(y[t == 0], weights=ww[t == 0])
    row = outcomes.ancova(data, "y", [], baseline=False, weights=w, variance="cr1").iloc[0]
    assert row["estimate"] == pytest.approx(expected, rel=1e-12)
    unweighted = outcomes.ancova(data, "y", [], baseline=False, variance="cr1").iloc[0]
    obs = data.dropna(subset=["y_t1"])
    expected = obs.loc[obs.phb == 1, "y_t1"].mean() - obs.loc[obs.phb == 0, "y_t1"].mean()
    assert unweighted["estimate"] == pytest.approx(expected, rel=1e-12)


def test_cr1_closed_form_for_arm_indicator(data):
    """CR1 by hand for y on [1, phb]: G/(G−1)·(N−1)/(N−K)·(X'X)⁻¹ Σ_g X_g'e_g e_g'X_g (X'X)⁻¹."""
    d = data.dropna(subset=["y_t1"])
    X = np.column_stack([np.ones(len(d)), d["phb"]])
    y = d["y_t1"].to_numpy()
    beta = np.linalg.solve(X.T @ X, X.T @ y)
    e = y - X @ beta
    bread = np.linalg.inv(X.T @ X)
    meat = sum(np.outer(s, s) for s in (pd.DataFrame(X * e[:, None]).groupby(d["site"].to_numpy()).sum().to_numpy()))
    G, N, K = d["site"].nunique(), len(d), 2
    V = G / (G - 1) * (N - 1) / (N - K) * bread @ meat @ bread
    row = outcomes.ancova(data, "y", [], baseline=False, variance="cr1").iloc[0]
    assert row["se"] == pytest.approx(math.sqrt(V[1, 1]), rel=1e-10)
    q = stats.t.ppf(0.975, G - 1)
    assert row["ci_low"] == pytest.approx(beta[1] - q * math.sqrt(V[1, 1]), rel=1e-10)


def test_unadjusted_means_welch_and_hedges_g(data):
    rows = outcomes.unadjusted(data, "y").set_index("method")
    assert list(rows.index) == ["unadjusted_t0", "unadjusted_t1", "unadjusted_change", "hedges_g_t1"]
    x1 = data.loc[(data.phb == 1) & data.y_t1.notna(), "y_t1"].to_numpy()
    x0 = data.loc[(data.phb == 0) & data.y_t1.notna(), "y_t1"].to_numpy()
    t1 = rows.loc["unadjusted_t1"]
    assert t1["mean_phb"] == pytest.approx(x1.mean()) and t1["sd_control"] == pytest.approx(x0.std(ddof=1))
    assert t1["estimate"] == pytest.approx(x1.mean() - x0.mean(), rel=1e-12)
    welch = stats.ttest_ind(x1, x0, equal_var=False)
    assert t1["p_value"] == pytest.approx(welch.pvalue, rel=1e-10)
    # Hedges' g by hand: pooled-SD d times the small-sample correction 1 − 3/(4(n1 + n0) − 9)
    n1, n0 = len(x1), len(x0)
    sp = math.sqrt(((n1 - 1) * x1.var(ddof=1) + (n0 - 1) * x0.var(ddof=1)) / (n1 + n0 - 2))
    g = (x1.mean() - x0.mean()) / sp * (1 - 3 / (4 * (n1 + n0) - 9))
    hg = rows.loc["hedges_g_t1"]
    assert hg["estimate"] == pytest.approx(g, rel=1e-4)  # pingouin uses the exact gamma-function correction
    assert hg["ci_low"] < hg["estimate"] < hg["ci_high"]
    both = data.y_t0.notna() & data.y_t1.notna()
    ch = (data.y_t1 - data.y_t0)[both]
    expected = ch[data.phb[both] == 1].mean() - ch[data.phb[both] == 0].mean()
    assert rows.loc["unadjusted_change", "estimate"] == pytest.approx(expected, rel=1e-12)
    mort = outcomes.unadjusted(data, "mortality")
    assert mort["method"].tolist() == ["unadjusted", "hedges_g"]
    assert mort["mean_phb"].iloc[0] == pytest.approx(data.loc[data.phb == 1, "died"].mean())


def test_inputs_not_modified(data):
    before = data.copy()
    outcomes.ancova(data, "y", COVS, weights=_att(data)[1], variance="cr1")
    outcomes.binary_effects(data, "b", COVS, variance="cr1")
    outcomes.unadjusted(data, "y")
    pd.testing.assert_frame_equal(data, before)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.drop(columns="y_t1"), "none of the columns"),
    (lambda d: d.drop(columns="y_t0"), "baseline column 'y_t0'"),
    (lambda d: d.assign(y_t1=np.where(d.phb == 1, np.nan, d.y_t1)), "no PHB participants"),
    (lambda d: d.assign(site="S01"), "one site"),
    (lambda d: d.assign(sex="female"), "covariate 'sex' is constant"),
    (lambda d: d.assign(age2=d.age * 2), "not identifiable"),
])
def test_unestimable_designs_raise(data, mutate, message):
    covs = COVS + (["age2"] if message == "not identifiable" else [])
    with pytest.raises(EstimationError, match=message):
        outcomes.ancova(mutate(data), "y", covs, variance="cr1")


def test_binary_checks(data):
    with pytest.raises(EstimationError, match="must be coded 0/1"):
        outcomes.binary_effects(data, "y", COVS, variance="cr1")
    with pytest.raises(EstimationError, match="separation"):
        sep = data.assign(b_t1=data["phb"].astype(float))
        outcomes.binary_effects(sep, "b", COVS, variance="cr1")


def test_did_needs_both_waves(data):
    with pytest.raises(EstimationError, match="baseline column"):
        outcomes.did(data.drop(columns="y_t0"), "y", COVS, variance="cr1")
