"""Subgroup effects and interaction tests against R (lm + sandwich::vcovCL HC1 + lmtest::waldtest,
p.adjust); golden values from tests/golden/subgroups.R on tests/golden/subgroups_data.csv."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phb_eval.errors import EstimationError
from phb_eval.subgroups import adjust_pvalues, subgroup_effects

GOLDEN = Path(__file__).parent / "golden"
COVS = ["age", "sex", "condition"]


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(GOLDEN / "subgroups_data.csv", dtype={"site": str})


@pytest.fixture(scope="module")
def golden():
    return pd.read_csv(GOLDEN / "subgroups.csv").set_index("stratum")


@pytest.fixture(scope="module")
def ours(data):
    rows = pd.concat([subgroup_effects(data, "ascot_raw", "condition", COVS, min_cell=5, variance="cr1"),
                      subgroup_effects(data, "ascot_raw", "budget_band", COVS, min_cell=5, variance="cr1")])
    return adjust_pvalues(rows, "holm").set_index("stratum"), adjust_pvalues(rows, "bh").set_index("stratum")


def test_level_effects_and_interaction_tests_match_r(ours, golden):
    holm, _ = ours
    for stratum, g in golden.iterrows():
        row = holm.loc[stratum]
        assert row["estimate"] == pytest.approx(g["estimate"], rel=1e-8), stratum
        assert row["p_value"] == pytest.approx(g["p_value"], rel=1e-6), stratum
        assert row["df"] == g["df"], stratum
        if not np.isnan(g["df2"]):                      # joint test: F on (q, G - 1) df, never chi-square
            assert row["df2"] == g["df2"] and row["test"] == "F", stratum
        if not np.isnan(g["se"]):
            assert row["se"] == pytest.approx(g["se"], rel=1e-6), stratum


def test_interaction_rows_are_labelled(ours):
    holm, _ = ours
    inter = holm[holm["method"] == "interaction_wald_cr1_site"]
    assert set(inter.index) == {"condition", "budget_band"}
    assert (inter["analysis"] == "subgroup").all()


def test_holm_and_bh_match_p_adjust(ours, golden):
    holm, bh = ours
    for stratum, g in golden.iterrows():
        assert holm.loc[stratum, "p_adjusted"] == pytest.approx(g["p_holm"], rel=1e-6), stratum
        assert bh.loc[stratum, "p_adjusted"] == pytest.approx(g["p_bh"], rel=1e-6), stratum
    assert holm.loc["condition", "n_tests"] == 2 and holm.loc["condition=chc", "n_tests"] == 5


def test_planted_heterogeneity_is_detected(ours):
    holm, _ = ours
    # Planted: +1.5 for budgets >= 1000, -0.5 below; +1.0 extra for CHC.
    assert holm.loc["budget_band", "p_adjusted"] < 0.001
    assert holm.loc["budget_band=>=1000", "estimate"] > holm.loc["budget_band=<1000", "estimate"]
    assert holm.loc["condition", "p_adjusted"] < 0.05


def test_small_levels_are_not_estimable_rather_than_wild(data):
    small = data.copy()
    small.loc[(small["condition"] == "copd") & (small["phb"] == 1), "condition"] = "copd"
    keep = ~((small["condition"] == "copd") & (small["phb"] == 1)) | (small.index.isin(small.index[:0]))
    small = small[keep | (small.index % 50 == 0)]  # a handful of PHB holders with COPD remain
    rows = subgroup_effects(small, "ascot_raw", "condition", COVS, min_cell=10, variance="cr1").set_index("stratum")
    assert np.isnan(rows.loc["condition=copd", "estimate"])
    assert "not estimable" in rows.loc["condition=copd", "note"]
    assert rows.loc["condition", "df"] == 1  # test over the two estimable levels


def test_prespecified_marking(ours):
    rows = adjust_pvalues(ours[0].reset_index(), "holm", prespecified=["budget_band"]).set_index("stratum")
    assert rows.loc["budget_band=>=1000", "prespecified"] and not rows.loc["condition=chc", "prespecified"]


def test_unestimable_design_is_a_clear_error(data):
    one_site = data.assign(site="S00")
    with pytest.raises(EstimationError, match="one site"):
        subgroup_effects(one_site, "ascot_raw", "condition", COVS, variance="cr1")
    with pytest.raises(EstimationError, match="not in the data"):
        subgroup_effects(data, "scrqol", "condition", COVS, variance="cr1")
