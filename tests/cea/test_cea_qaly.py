"""QALYs and ASCOT-years by area under the curve over the horizon, and the baseline-adjusted difference,
against closed forms on a small table."""
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from phb_eval.cea import auc_years, cea
from phb_eval.errors import PlanError

MONTHS = {"t0": 0, "t1": 6, "t2": 12}


def test_auc_trapezoid_and_horizon_interpolation():
    u = {"t0": np.array([0.5, 0.8]), "t1": np.array([0.7, 0.8]), "t2": np.array([0.9, 0.2])}
    # full year: 0.5·(0.5+0.7)/2 + 0.5·(0.7+0.9)/2 = 0.3 + 0.4
    assert auc_years(u, MONTHS, "t0", 1.0) == pytest.approx([0.7, 0.5 * 0.8 + 0.5 * (0.8 + 0.2) / 2])
    # 9 months: the second segment stops half-way, at the interpolated value 0.8 (person 1)
    assert auc_years(u, MONTHS, "t0", 0.75)[0] == pytest.approx(0.3 + 0.25 * (0.7 + 0.8) / 2)
    assert auc_years(u, MONTHS, "t0", 0.5)[0] == pytest.approx(0.3)
    with pytest.raises(PlanError, match="beyond the last wave"):
        auc_years(u, MONTHS, "t0", 2.0)


def test_missing_wave_gives_missing_area():
    u = {"t0": np.array([0.5]), "t1": np.array([np.nan]), "t2": np.array([0.9])}
    assert np.isnan(auc_years(u, MONTHS, "t0", 1.0)[0])


def test_baseline_adjusted_differences_equal_ols_on_the_areas():
    """Manca et al. 2005: the QALY difference is the PHB coefficient of AUC on the arm and baseline utility."""
    rng = np.random.default_rng(5)
    n = 80
    phb = np.repeat([1, 0], n // 2)
    e0 = rng.uniform(0.2, 0.9, n)
    d = pd.DataFrame({"participant_id": [f"P{i:03d}" for i in range(n)], "phb": phb,
                      "site": [f"S{i % 4}" for i in range(n)], "age": rng.normal(60, 10, n),
                      "eq5d_index_t0": e0, "eq5d_index_t1": e0 + 0.05 * phb + rng.normal(0, 0.1, n),
                      "eq5d_index_t2": e0 + 0.08 * phb + rng.normal(0, 0.1, n),
                      "scrqol_t0": e0, "scrqol_t1": e0 + rng.normal(0, 0.1, n), "scrqol_t2": e0 + rng.normal(0, 0.1, n),
                      "cost_indirect_pre": rng.gamma(2, 500, n), "cost_total": rng.gamma(2, 800, n)})
    res = cea(d, ["age"], strata=["all"], B=50, missing="complete_case", bootstrap_unit="person",
              wave_months=MONTHS, followup_wave="t2", horizon=1.0, rng=np.random.default_rng(1), quiet=True)
    d["q"] = 0.5 * (d.eq5d_index_t0 + d.eq5d_index_t1) / 2 + 0.5 * (d.eq5d_index_t1 + d.eq5d_index_t2) / 2
    d["a"] = 0.5 * (d.scrqol_t0 + d.scrqol_t1) / 2 + 0.5 * (d.scrqol_t1 + d.scrqol_t2) / 2
    est = res.estimates.set_index("outcome")
    assert est.loc["incremental_qaly", "estimate"] == pytest.approx(
        smf.ols("q ~ phb + eq5d_index_t0 + age", d).fit().params["phb"], rel=1e-10)
    assert est.loc["incremental_ascot_years", "estimate"] == pytest.approx(
        smf.ols("a ~ phb + scrqol_t0 + age", d).fit().params["phb"], rel=1e-10)
    nmb = res.estimates[res.estimates["outcome"] == "nmb"]
    assert set(zip(nmb["effect_measure"], nmb["horizon_years"])) == {("qaly", 1.0), ("ascot_years", 1.0)}
