"""Strata: PHB-only variables as stratum-specific indicators in one model; small strata not estimable."""

import numpy as np
import pytest
import statsmodels.formula.api as smf

from phb_eval.cea import cea

from cea_helpers import COVS, pick_row


def test_phb_only_strata_use_one_model_with_indicators(pilot):
    """The level estimates are the coefficients of stratum-specific PHB indicators in one model."""
    res = cea(pilot, COVS, strata=["budget_band"], B=20, rng=np.random.default_rng(1), quiet=True,
              missing="complete_case")
    d = pilot.dropna(subset=["scrqol_t1", "scrqol_t0", "cost_total", "cost_indirect_pre"]).copy()
    d = d[(d["phb"] == 0) | d["budget_band"].notna()]
    d["lo"] = ((d["phb"] == 1) & (d["budget_band"] == "<1000")).astype(float)
    d["hi"] = ((d["phb"] == 1) & (d["budget_band"] == ">=1000")).astype(float)
    fit = smf.ols("cost_total ~ lo + hi + cost_indirect_pre + age + C(sex) + C(condition)", d).fit()
    assert pick_row(res.estimates, "budget_band=<1000", "incremental_cost")["estimate"] == \
        pytest.approx(fit.params["lo"], rel=1e-10)
    assert pick_row(res.estimates, "budget_band=>=1000", "incremental_cost")["estimate"] == \
        pytest.approx(fit.params["hi"], rel=1e-10)


def test_small_stratum_not_estimable(gres):
    row = pick_row(gres.estimates, "condition=other", "incremental_effect")
    assert np.isnan(row["estimate"]) and "fewer than 10" in row["note"]
    assert "condition=other" not in set(gres.draws["stratum"])
    tab = gres.table.set_index("stratum")
    assert tab.loc["condition=other", "quadrant_qaly"] == "not estimable"
    assert tab.loc["all", "quadrant_ascot_years"] in ("dominant", "dominated", "NE trade-off", "SW trade-off")
