"""Baseline balance: SMDs against hand computations (closed form and R), propensity model against R glm.

Golden values: tests/golden/balance_golden.json (tests/golden/balance_golden.R) and the propensity part of
tests/golden/outcomes_golden.json (tests/golden/outcomes_golden.R), both from outcomes_golden_data.csv.
"""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phb_eval import balance
from phb_eval.contract import RESULT_COLUMNS
from phb_eval.errors import EstimationError, PlanError

GOLDEN = Path(__file__).parent / "golden"
PS_COVS = ["age", "sex", "condition", "y_t0"]
R_TERMS = {"Intercept": "(Intercept)", "age": "age", "sex[T.male]": "sexmale", "condition[T.copd]": "conditioncopd",
           "condition[T.diabetes]": "conditiondiabetes", "condition[T.mental_health]": "conditionmental_health",
           "y_t0": "y_t0"}


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(GOLDEN / "outcomes_golden_data.csv")


@pytest.fixture(scope="module")
def ps(data):
    return balance.propensity_scores(data, PS_COVS)


def test_smd_closed_form_tiny():
    """Continuous: (2.5 − 5)/sqrt((5/3 + 20/3)/2) = −2.5/sqrt(25/6); binary: (0.75 − 0.25)/sqrt(0.1875)."""
    df = pd.DataFrame({"phb": [1, 1, 1, 1, 0, 0, 0, 0], "x": [1, 2, 3, 4, 2, 4, 6, 8],
                       "b": [1, 1, 1, 0, 1, 0, 0, 0], "g": list("aabbaaab")})
    t = balance.baseline_table(df, ["x", "b", "g"]).set_index(["variable", "level"], drop=False)
    x = t.loc[("x", None)] if ("x", None) in t.index else t[t.variable == "x"].iloc[0]
    assert x["type"] == "continuous"
    assert x["smd"] == pytest.approx(-2.5 / math.sqrt(25 / 6), rel=1e-12)
    assert x["variance_ratio"] == pytest.approx((5 / 3) / (20 / 3), rel=1e-12)
    assert x["mean_phb"] == 2.5 and x["sd_control"] == pytest.approx(math.sqrt(20 / 3))
    b = t[t.variable == "b"].iloc[0]
    assert b["type"] == "binary" and b["level"] == "1" and b["count_phb"] == 3 and b["pct_control"] == 25
    assert b["smd"] == pytest.approx(0.5 / math.sqrt(0.1875), rel=1e-12)
    g = t[t.variable == "g"]
    assert g["level"].tolist() == ["a", "b"]
    # level a: 2/4 vs 3/4
    assert g.iloc[0]["smd"] == pytest.approx(-0.25 / math.sqrt((0.25 + 0.1875) / 2), rel=1e-12)
    assert t["flag"].tolist() == [True, True, True, True]


def test_weighted_smd_keeps_unweighted_denominator():
    df = pd.DataFrame({"phb": [1, 1, 1, 1, 0, 0, 0, 0], "x": [1, 2, 3, 4, 2, 4, 6, 8]})
    w = pd.Series([1, 1, 1, 1, 4, 2, 1, 1], dtype=float)
    row = balance.baseline_table(df, ["x"], weights=w).iloc[0]
    wm0 = (4 * 2 + 2 * 4 + 6 + 8) / 8
    assert row["mean_control_weighted"] == pytest.approx(wm0)
    assert row["smd_weighted"] == pytest.approx((2.5 - wm0) / math.sqrt(25 / 6), rel=1e-12)
    # equal weights reproduce the unweighted columns
    same = balance.baseline_table(df, ["x"], weights=pd.Series(3.0, index=df.index)).iloc[0]
    assert same["smd_weighted"] == pytest.approx(same["smd"]) and same["variance_ratio_weighted"] == pytest.approx(
        same["variance_ratio"])


def test_table_matches_r_hand_computation(data, ps):
    ref = json.loads((GOLDEN / "balance_golden.json").read_text())
    w = balance.propensity_weights(ps, data["phb"], "att")
    table = balance.baseline_table(data, ["age", "y_t0", "b_t0", "sex", "condition"], weights=w)
    assert len(table) == len(ref["rows"])
    for r in ref["rows"]:
        level = r["level"]
        mine = table[(table.variable == r["variable"]) & (table.level.isna() if level is None else table.level == level)]
        assert len(mine) == 1, (r["variable"], level)
        mine = mine.iloc[0]
        for key in ["smd", "smd_weighted", "mean_phb_weighted", "mean_control_weighted"]:
            assert mine[key] == pytest.approx(r[key], rel=1e-9), (r["variable"], level, key)
        for key in ["variance_ratio", "variance_ratio_weighted"]:
            if r[key] is None:
                assert np.isnan(mine[key])
            else:
                assert mine[key] == pytest.approx(r[key], rel=1e-9)
    diag = balance.overlap_diagnostics(ps, data["phb"], w).set_index("group")
    assert diag.loc["phb", "ess"] == pytest.approx(ref["ess_phb"], rel=1e-9)
    assert diag.loc["control", "ess"] == pytest.approx(ref["ess_control"], rel=1e-9)


def test_propensity_model_matches_r_glm(data, ps):
    ref = json.loads((GOLDEN / "outcomes_golden.json").read_text())["propensity"]
    coefs = balance.propensity_model(data, PS_COVS).set_index("term")
    for term, r_term in R_TERMS.items():
        assert coefs.loc[term, "estimate"] == pytest.approx(ref["coef"][r_term], rel=1e-8)
        assert coefs.loc[term, "se"] == pytest.approx(ref["se"][r_term], rel=1e-6)
    by_id = pd.Series(ps.to_numpy(), index=data["participant_id"])
    np.testing.assert_allclose(by_id[ref["participant_id"]].to_numpy(), ref["ps"], rtol=1e-8)
    assert ps.isna().sum() == data["y_t0"].isna().sum()           # no score without complete covariates
    for estimand, key in [("att", "w_att"), ("overlap", "w_overlap")]:
        w = pd.Series(balance.propensity_weights(ps, data["phb"], estimand).to_numpy(), index=data["participant_id"])
        np.testing.assert_allclose(w[ref["participant_id"]].to_numpy(), ref[key], rtol=1e-8)


def test_weights_closed_forms_and_trim():
    ps = pd.Series([0.2, 0.5, 0.9, 0.2, 0.5, 0.995])
    t = pd.Series([1, 1, 1, 0, 0, 0])
    np.testing.assert_allclose(balance.propensity_weights(ps, t, "att"), [1, 1, 1, 0.25, 1, 199])
    np.testing.assert_allclose(balance.propensity_weights(ps, t, "ate"), [5, 2, 1 / 0.9, 1.25, 2, 200])
    np.testing.assert_allclose(balance.propensity_weights(ps, t, "overlap"), [0.8, 0.5, 0.1, 0.2, 0.5, 0.995])
    trimmed = balance.propensity_weights(ps, t, "att", trim=0.05)
    assert trimmed.isna().tolist() == [False] * 5 + [True] and trimmed.name == "weight_att"
    with pytest.raises(PlanError, match="estimand"):
        balance.propensity_weights(ps, t, "atc")
    with pytest.raises(PlanError, match="trim"):
        balance.propensity_weights(ps, t, "att", trim=0.6)


def test_overlap_diagnostics_support_and_ess():
    ps = pd.Series([0.1, 0.4, 0.8, 0.3, 0.5, 0.9])
    t = pd.Series([1, 1, 1, 0, 0, 0])
    w = pd.Series([1, 1, 1, 1, 1, 3], dtype=float)
    d = balance.overlap_diagnostics(ps, t, w).set_index("group")
    assert d.loc["phb", "support_low"] == 0.3 and d.loc["phb", "support_high"] == 0.8
    assert d.loc["phb", "share_outside_support"] == pytest.approx(1 / 3)
    assert d.loc["control", "share_outside_support"] == pytest.approx(1 / 3)
    assert d.loc["control", "ess"] == pytest.approx(25 / 11) and d.loc["phb", "ess"] == pytest.approx(3)


def test_balance_rows_layout(data, ps):
    w = balance.propensity_weights(ps, data["phb"], "att")
    table = balance.baseline_table(data, ["age", "sex"], weights=w, threshold=0.1)
    rows = balance.balance_rows(table, estimand="att")
    assert list(rows.columns[: len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert rows["analysis"].eq("balance").all()
    assert rows["method"].tolist() == ["smd_unweighted", "smd_att"] * 3
    assert rows["outcome"].tolist() == ["age", "age", "sex", "sex", "sex", "sex"]
    assert rows.loc[0, "estimate"] == table.loc[0, "smd"] and rows.loc[1, "estimate"] == table.loc[0, "smd_weighted"]
    assert rows.loc[0, "flag"] == (abs(table.loc[0, "smd"]) > 0.1)
    unweighted = balance.balance_rows(balance.baseline_table(data, ["age"]))
    assert unweighted["method"].tolist() == ["smd_unweighted"]


def test_propensity_errors(data):
    with pytest.raises(EstimationError, match="separate the arms"):
        balance.propensity_scores(data.assign(z=data["phb"]), ["age", "z"])
    with pytest.raises(EstimationError, match="constant"):
        balance.propensity_scores(data.assign(sex="female"), ["age", "sex"])
    with pytest.raises(EstimationError, match="not in the data"):
        balance.propensity_scores(data, ["age", "nope"])
    with pytest.raises(EstimationError, match="not observed for anyone"):
        balance.baseline_table(data.assign(y_t0=np.where(data.phb == 1, np.nan, data.y_t0)), ["y_t0"])


def test_one_fit_gives_the_same_scores_and_coefficients(data):
    scores, model = balance.propensity(data, PS_COVS)
    pd.testing.assert_series_equal(scores, balance.propensity_scores(data, PS_COVS))
    pd.testing.assert_frame_equal(model, balance.propensity_model(data, PS_COVS))
