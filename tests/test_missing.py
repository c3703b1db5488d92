"""Multiple imputation (properties) and Rubin's rules (against mice::pool on a fixed set of imputations).

Golden values: tests/golden/missing_golden.json, made by tests/golden/missing_golden.R from the stacked
imputations in tests/golden/missing_golden_data.csv (mice long format).
"""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from phb_eval import outcomes
from phb_eval.errors import EstimationError
from phb_eval.missing import barnard_rubin_df, impute_chained, pool_rubin

GOLDEN = Path(__file__).parent / "golden"
COVS = ["age", "sex", "condition"]
PREDICTORS = ["phb", "site", *COVS]


@pytest.fixture(scope="module")
def golden():
    return json.loads((GOLDEN / "missing_golden.json").read_text())


@pytest.fixture(scope="module")
def stacked():
    long = pd.read_csv(GOLDEN / "missing_golden_data.csv")
    frames = [g.drop(columns=[".imp", ".id"]).reset_index(drop=True) for _, g in long.groupby(".imp")]
    return frames[0], frames[1:]


def cohort(n, seed, *, sites=20, effect=0.5, mcar=None):
    """Pilot-like cohort: site effects, confounded arms; returns (full data, data with missing scores).

    ``mcar`` = share missing completely at random in each score; otherwise MAR: follow-up more often
    missing for PHB holders and for people with low baseline scores (observed), baseline MCAR 10%.
    """
    rng = np.random.default_rng(seed)
    site = rng.integers(0, sites, n)
    age = rng.normal(60, 14, n)
    condition = rng.choice(["chc", "copd", "diabetes", "mental_health"], n)
    sex = rng.choice(["female", "male"], n)
    phb = (rng.random(n) < 1 / (1 + np.exp(-(0.02 * (60 - age) + 0.5 * (condition == "chc"))))).astype(int)
    u = rng.normal(0, 0.8, sites)[site]
    y0 = 15 + u + 0.03 * (age - 60) + rng.normal(0, 3, n)
    y1 = 4 + 0.7 * y0 + effect * phb + 0.3 * (sex == "male") + 0.5 * u + rng.normal(0, 2, n)
    full = pd.DataFrame({"site": [f"S{s:02d}" for s in site], "phb": phb, "age": age, "sex": sex,
                         "condition": condition, "y_t0": y0, "y_t1": y1})
    inc = full.copy()
    if mcar is not None:
        inc.loc[rng.random(n) < mcar, "y_t0"] = np.nan
        inc.loc[rng.random(n) < mcar, "y_t1"] = np.nan
    else:
        p_miss = 1 / (1 + np.exp(-(-1.6 + 0.5 * phb - 0.25 * (y0 - 15))))
        inc.loc[rng.random(n) < p_miss, "y_t1"] = np.nan
        inc.loc[rng.random(n) < 0.10, "y_t0"] = np.nan
    return full, inc


# ---------------------------------------------------------------------------------------------------------
# Rubin's rules against mice
# ---------------------------------------------------------------------------------------------------------
def test_ancova_mi_matches_mice_pool_scalar_with_cr1(stacked, golden):
    ref = golden["cr1"]
    _, completed = stacked
    per = [outcomes.ancova(f, "y", COVS, variance="cr1").iloc[0] for f in completed]
    np.testing.assert_allclose([r["estimate"] for r in per], ref["Q"], rtol=1e-8)
    np.testing.assert_allclose([r["se"] ** 2 for r in per], ref["U"], rtol=1e-6)
    row = outcomes.ancova_mi(completed, "y", COVS, variance="cr1").iloc[0]
    assert row["method"] == "ancova_mi_cr1_site"
    assert row["df_complete"] == ref["dfcom"] and row["n_clusters"] == ref["n_clusters"] and row["m"] == ref["m"]
    for ours, theirs in [("estimate", "qbar"), ("ubar", "ubar"), ("b", "b"), ("se", "se"), ("df", "df"),
                         ("riv", "riv"), ("lambda", "lambda"), ("fmi", "fmi"), ("ci_low", "ci_low"),
                         ("ci_high", "ci_high"), ("p_value", "p_value")]:
        assert row[ours] == pytest.approx(ref[theirs], rel=1e-6), ours


@pytest.mark.parametrize("case, dfcom", [("model_based_default", None), ("model_based_dfcom_g1", "G-1")])
def test_pool_rubin_matches_mice_pool(stacked, golden, case, dfcom):
    """Model-based OLS variances (statsmodels) pooled with mice's dfcom (n − k by default, or G − 1)."""
    ref = golden[case]
    _, completed = stacked
    q, u = [], []
    for f in completed:
        X = outcomes.design_matrix(f, ["phb", "y_t0", *COVS])
        fit = sm.OLS(f["y_t1"], X).fit()
        q.append(fit.params["phb"])
        u.append(fit.bse["phb"] ** 2)
    df_complete = fit.df_resid if dfcom is None else completed[0]["site"].nunique() - 1
    assert df_complete == ref["dfcom"]
    pooled = pool_rubin(q, u, df_complete, conf_level=0.90)
    for ours, theirs in [("qbar", "estimate"), ("ubar", "ubar"), ("b", "b"), ("t", "t"), ("df", "df"),
                         ("riv", "riv"), ("lambda", "lambda"), ("fmi", "fmi"), ("se", "se"),
                         ("p_value", "p_value"), ("ci_low", "ci_low_90"), ("ci_high", "ci_high_90")]:
        assert pooled[ours] == pytest.approx(ref[theirs], rel=1e-8), ours


def test_pool_rubin_closed_form_and_limits():
    q, u = [1.0, 1.2, 0.8, 1.1], [0.04, 0.05, 0.045, 0.05]
    p = pool_rubin(q, u, math.inf)
    b = np.var(q, ddof=1)
    assert p["t"] == pytest.approx(np.mean(u) + 1.25 * b)
    lam = 1.25 * b / p["t"]
    assert p["df"] == pytest.approx(3 / lam ** 2)              # Rubin (1987) df when dfcom is infinite
    # identical estimates: no between variance, df -> dfcom side of Barnard-Rubin, lambda floored at 1e-4
    same = pool_rubin([1.0] * 5, [0.1] * 5, 19)
    assert same["b"] == 0 and same["lambda"] == 0 and same["se"] == pytest.approx(math.sqrt(0.1))
    assert same["df"] == pytest.approx(barnard_rubin_df(5, 0.0, 0.1, 19)) and same["df"] < 19
    with pytest.raises(EstimationError, match="at least 2"):
        pool_rubin([1.0], [0.1], 10)
    with pytest.raises(EstimationError, match="non-finite"):
        pool_rubin([1.0, np.nan], [0.1, 0.1], 10)


# ---------------------------------------------------------------------------------------------------------
# imputation properties
# ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    _, inc = cohort(400, 3, sites=8, mcar=0.2)
    inc["case_t0"] = (inc["y_t0"] > 15).astype(float).where(inc["y_t0"].notna())
    inc["case_t1"] = (inc["y_t1"] > 15).astype(float).where(inc["y_t1"].notna())
    return inc


@pytest.mark.parametrize("method", ["pmm", "norm"])
def test_imputation_keeps_observed_values_and_fills_everything(small, method):
    before = small.copy()
    cols = ["y_t0", "y_t1", "case_t0", "case_t1"]
    out = impute_chained(small, cols, 4, np.random.default_rng(1), iterations=4, method=method,
                         predictors=PREDICTORS)
    pd.testing.assert_frame_equal(small, before)                  # input untouched
    assert len(out) == 4
    for frame in out:
        assert not frame[cols].isna().any().any()
        for c in cols:
            obs = small[c].notna()
            np.testing.assert_array_equal(frame.loc[obs, c], small.loc[obs, c])
        assert set(frame["case_t1"].unique()) <= {0.0, 1.0}       # binary stays 0/1 (PMM) with either method
        untouched = [c for c in small.columns if c not in cols]
        pd.testing.assert_frame_equal(frame[untouched], small[untouched])
        assert frame.attrs["imputation_methods"]["case_t1"] == "pmm"
        assert frame.attrs["imputation_methods"]["y_t1"] == method
    if method == "pmm":                                           # PMM imputes observed values only
        for frame in out:
            imputed = frame.loc[small["y_t1"].isna(), "y_t1"]
            assert imputed.isin(set(small["y_t1"].dropna())).all()
            assert small["y_t1"].min() <= imputed.min() and imputed.max() <= small["y_t1"].max()
    assert not out[0]["y_t1"].equals(out[1]["y_t1"])              # imputations differ from each other


def test_same_seed_same_imputations(small):
    a = impute_chained(small, ["y_t0", "y_t1"], 3, np.random.default_rng(7), iterations=3, predictors=PREDICTORS)
    b = impute_chained(small, ["y_t0", "y_t1"], 3, np.random.default_rng(7), iterations=3, predictors=PREDICTORS)
    c = impute_chained(small, ["y_t0", "y_t1"], 3, np.random.default_rng(8), iterations=3, predictors=PREDICTORS)
    for x, y in zip(a, b):
        pd.testing.assert_frame_equal(x, y)
    assert not a[0]["y_t1"].equals(c[0]["y_t1"])


def test_imputation_input_errors(small):
    rng = np.random.default_rng(0)
    with pytest.raises(EstimationError, match="predictor 'y_t0' has"):
        impute_chained(small, ["y_t1"], 2, rng, predictors=["phb", "y_t0"])
    with pytest.raises(EstimationError, match="not numeric"):
        impute_chained(small, ["sex"], 2, rng)
    with pytest.raises(EstimationError, match="not in the analysis data"):
        impute_chained(small, ["nope_t1"], 2, rng)
    with pytest.raises(EstimationError, match="method"):
        impute_chained(small, ["y_t1"], 2, rng, method="cart")


def test_mi_estimate_close_to_full_data_under_mcar():
    full, inc = cohort(3000, 11, mcar=0.25)
    truth = outcomes.ancova(full, "y", COVS, variance="cr1").iloc[0]
    completed = impute_chained(inc, ["y_t0", "y_t1"], 8, np.random.default_rng(5), iterations=5,
                               predictors=PREDICTORS)
    mi = outcomes.ancova_mi(completed, "y", COVS, variance="cr1").iloc[0]
    assert abs(mi["estimate"] - truth["estimate"]) < truth["se"]
    assert mi["se"] > truth["se"]                                 # missing data cost information
    assert 0 < mi["fmi"] < 0.7


def test_ancova_mi_needs_two_imputations(small):
    with pytest.raises(EstimationError, match="at least 2"):
        outcomes.ancova_mi([small.dropna()], "y", COVS, variance="cr1")


@pytest.mark.slow
def test_mi_interval_coverage_planted_effect():
    """95% intervals of ancova_mi_cr1_site cover the planted effect in ≥ 90% of 50 MAR cohorts."""
    effect, hits = 0.5, 0
    for seed in range(50):
        _, inc = cohort(600, 1000 + seed, effect=effect)
        completed = impute_chained(inc, ["y_t0", "y_t1"], 8, np.random.default_rng(seed), iterations=5,
                                   predictors=PREDICTORS)
        row = outcomes.ancova_mi(completed, "y", COVS, variance="cr1").iloc[0]
        hits += row["ci_low"] <= effect <= row["ci_high"]
    assert hits / 50 >= 0.90

