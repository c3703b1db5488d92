"""Derived variables: bands, implementation model, exposure; checked against hand-worked cases."""
import numpy as np
import pandas as pd

from phb_eval.derive import (age_band, analysis_frame, baseline_need, budget_band, budget_band_labels,
                             exposure_post_years, implementation_model)
from phb_eval.plan import Plan

RULE = {"model1": ["knew_budget", "flexible_spend", "chose_deployment"]}


def test_budget_band_edges_are_left_closed():
    assert budget_band_labels([1000, 10000]) == ["<1000", ">=1000,<10000", ">=10000"]
    got = budget_band(pd.Series([0, 999.99, 1000, 9999, 10000, np.nan]), [1000, 10000]).tolist()
    assert got[:5] == ["<1000", "<1000", ">=1000,<10000", ">=1000,<10000", ">=10000"]
    assert pd.isna(got[5])


def test_implementation_model_needs_all_features_and_leaves_undecided_missing():
    f = pd.DataFrame({"group": ["phb"] * 5 + ["control"],
                      "knew_budget": [1, 1, 0, np.nan, 1, np.nan],
                      "flexible_spend": [1, 0, np.nan, 1, 1, np.nan],
                      "chose_deployment": [1, 1, 1, 1, np.nan, np.nan]})
    got = implementation_model(f, RULE, "model2").tolist()
    assert got[:3] == ["model1", "model2", "model2"]  # an observed 0 decides model2 even with a gap
    assert all(pd.isna(x) for x in got[3:])           # undecided, and controls


def test_user_defined_models_are_tried_in_order():
    f = pd.DataFrame({"group": ["phb"] * 3, "knew_budget": [1, 1, 0], "flexible_spend": [1, 0, 0],
                      "chose_deployment": [1, 1, 0]})
    rule = {"full": ["knew_budget", "flexible_spend", "chose_deployment"], "knew": ["knew_budget"]}
    assert implementation_model(f, rule, "restrictive").tolist() == ["full", "knew", "restrictive"]


def test_exposure_is_share_of_window_alive():
    f = pd.DataFrame({"consent_date": pd.to_datetime(["2010-05-01"] * 3),
                      "death_date": pd.to_datetime(["2010-07-31", None, "2012-01-01"])})
    got = exposure_post_years(f).tolist()
    assert got == [91 / 365, 1.0, 1.0]


def test_age_band_and_need_tertiles():
    assert age_band(pd.Series([44.9, 45, 64, 65]), [45, 65]).tolist() == ["<45", "45-64", "45-64", ">=65"]
    need = baseline_need(pd.Series([24, 20, 16, 12, 8, 4]), higher_is_better=True)
    assert need.tolist() == ["low", "low", "medium", "medium", "high", "high"]


def test_analysis_frame_does_not_modify_input():
    f = pd.DataFrame({"group": ["phb", "control"], "site": [1, 2], "budget_gbp_per_year": [500, np.nan],
                      "knew_budget": [1, np.nan], "flexible_spend": [1, np.nan], "chose_deployment": [1, np.nan],
                      "died": [0, 1], "age": [50, 70]})
    before = f.copy()
    out = analysis_frame(f, Plan())
    pd.testing.assert_frame_equal(f, before)
    assert out["phb"].tolist() == [1, 0] and out["site"].tolist() == ["1", "2"]
    assert out["budget_band"].iloc[0] == "<1000" and out["implementation_model"].iloc[0] == "model1"
    assert out["mortality"].tolist() == [0, 1]
