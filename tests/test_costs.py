"""Unit costs, inflation chains (checked by hand), per-person costs, and cost models against R
(tests/golden/service_use_costs.R: lm / glm Gamma(log) with sandwich::vcovCL HC1)."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phb_eval import costs
from phb_eval.errors import DataError, PhbEvalError

GOLDEN = Path(__file__).parent / "golden"
NHSCII = {"2015/16": 0.40, "2016/17": 2.09, "2017/18": 1.24, "2018/19": 1.60, "2019/20": 2.14, "2020/21": 2.49,
          "2021/22": 2.58, "2022/23": 7.32, "2023/24": 2.47, "2024/25": 4.02}   # reference-data.md


def test_nhscii_chain_by_hand():
    by_hand = 1.0
    for year in ["2017/18", "2018/19", "2019/20", "2020/21", "2021/22", "2022/23", "2023/24", "2024/25"]:
        by_hand *= 1 + NHSCII[year] / 100
    assert costs.inflate(313.0, "2016/17", "2024/25") == pytest.approx(313.0 * by_hand, rel=1e-14)
    assert costs.inflate(100.0, "2024/25", "2016/17") == pytest.approx(100.0 / by_hand, rel=1e-14)
    assert costs.inflate(100.0, "2023/24", "2024/25") == pytest.approx(104.02, rel=1e-14)
    assert costs.inflate(100.0, "2015/16", "2015/16") == 100.0
    np.testing.assert_allclose(costs.inflate(np.array([1.0, 2.0]), "2022/23", "2024/25"),
                               np.array([1.0, 2.0]) * 1.0247 * 1.0402, rtol=1e-14)


def test_hchs_levels_and_missing_years():
    assert costs.inflate(100.0, "2006/07", "2008/09") == pytest.approx(100 * 268.6 / 249.8, rel=1e-14)
    with pytest.raises(PhbEvalError) as err:
        costs.inflate(45.0, "2012/13", "2024/25")
    msg = str(err.value)
    assert "2013/14, 2014/15" in msg and "costs.inflation_index" in msg and "2015/16" not in msg.split("value for")[1]
    with pytest.raises(PhbEvalError, match="2009/10, 2010/11, 2011/12"):
        costs.inflate(1.0, "2008/09", "2011/12")


def test_user_index_fills_the_gap(tmp_path):
    user = tmp_path / "index.csv"
    pd.DataFrame({"year": ["2012/13", "2013/14", "2014/15"], "pct_change": [1.5, 2.0, 1.0]}).to_csv(user, index=False)
    by_hand = 1.02 * 1.01
    for y in NHSCII:
        by_hand *= 1 + NHSCII[y] / 100
    assert costs.inflate(45.0, "2012/13", "2024/25", index=user) == pytest.approx(45.0 * by_hand, rel=1e-14)
    # a user index given as levels bridges the stretch it covers
    lev = tmp_path / "levels.csv"
    pd.DataFrame({"year": ["2011/12", "2015/16"], "index": [100.0, 104.0]}).to_csv(lev, index=False)
    expected = 1.04 * np.prod([1 + NHSCII[y] / 100 for y in list(NHSCII)[1:]])
    assert costs.inflate(1.0, "2011/12", "2024/25", index=lev) == pytest.approx(expected, rel=1e-14)


def test_bad_year_and_bad_index(tmp_path):
    with pytest.raises(DataError, match="2024/26"):
        costs.inflate(1.0, "2024/26", "2024/25")
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"year": ["2012/13"], "pct_change": ["two"]}).to_csv(bad, index=False)
    with pytest.raises(DataError, match=r"bad.csv.*row 2.*pct_change.*'two'"):
        costs.inflate(1.0, "2012/13", "2013/14", index=bad)


def test_default_unit_costs():
    uc = costs.load_unit_costs()
    assert list(uc.columns[:5]) == costs.UNIT_COST_COLUMNS
    row = uc.set_index("item")
    assert row.loc["ae_attendance", "cost_gbp_at_price_year"] == 280.17
    assert row.loc["nonelective_spell", "cost_gbp"] == 2709.82
    ebd = 313 * np.prod([1 + NHSCII[y] / 100 for y in list(NHSCII)[2:]])
    assert row.loc["excess_bed_day", "cost_gbp_at_price_year"] == pytest.approx(ebd, rel=1e-14)
    assert math.isnan(row.loc["gp_consultation_11_7min", "cost_gbp_at_price_year"])
    assert "2013/14" in row.loc["gp_consultation_11_7min", "inflation_note"]
    assert row["source"].notna().all()
    uc23 = costs.load_unit_costs(price_year="2023/24")
    assert uc23.set_index("item").loc["ae_attendance", "cost_gbp_at_price_year"] == pytest.approx(280.17 / 1.0402)


@pytest.mark.parametrize("cell,value,match", [
    ("cost_gbp", "-3", r"row 3.*cost_gbp.*'-3'.*>= 0"),
    ("cost_gbp", "abc", r"row 3.*cost_gbp.*'abc'"),
    ("price_year", "2024", r"row 3.*price_year.*'2024'"),
])
def test_unit_cost_validation(tmp_path, cell, value, match):
    t = pd.DataFrame({"item": ["a", "b"], "unit": ["x", "y"], "cost_gbp": ["1", "2"],
                      "price_year": ["2024/25", "2024/25"], "source": ["s", "s"]})
    t.loc[1, cell] = value
    path = tmp_path / "uc.csv"
    t.to_csv(path, index=False)
    with pytest.raises(DataError, match=match):
        costs.load_unit_costs(path)
    with pytest.raises(DataError, match="lacks"):
        t.drop(columns="source").to_csv(path, index=False)
        costs.load_unit_costs(path)


def _cohort():
    return pd.DataFrame({
        "participant_id": ["1", "2", "3", "4"], "group": ["phb", "phb", "control", "control"],
        "budget_gbp_per_year": [1200.0, np.nan, np.nan, np.nan],
        "direct_cost_gbp_per_year": [np.nan, 900.0, 5000.0, np.nan],
        "inpatient_admissions_pre": [1, 0, 2, 0], "inpatient_admissions_post": [0, 1, np.nan, 1],
        "inpatient_days_pre": [5, 0, 9, 0], "inpatient_days_post": [0, 3, np.nan, 2],
        "ae_attendances_pre": [2, 1, 0, 0], "ae_attendances_post": [1, 0, np.nan, 3],
        "gp_consultations_pre": [4, 2, 6, 1], "gp_consultations_post": [3, 2, np.nan, 5]})


def test_person_costs_by_hand():
    df = _cohort()
    before = df.copy()
    out, notes = costs.person_costs(df, costs.load_unit_costs())
    pd.testing.assert_frame_equal(df, before)
    spell, ae, gp = 2709.82, 280.17, 48.0
    assert out["cost_indirect"].iloc[0] == pytest.approx(0 * spell + 1 * ae + 3 * gp)
    assert out["cost_indirect_pre"].iloc[2] == pytest.approx(2 * spell + 0 * ae + 6 * gp)
    assert math.isnan(out["cost_indirect"].iloc[2])              # unobserved post counts: not zero
    assert out["cost_direct"].tolist()[:3] == [1200.0, 900.0, 5000.0]
    assert math.isnan(out["cost_direct"].iloc[3])                 # control without a package cost
    assert out["cost_total"].iloc[1] == pytest.approx(900 + spell + 2 * gp)
    assert math.isnan(out["cost_total"].iloc[3])
    assert "cost_inpatient_days" not in out                       # inside the spell cost (no double count)
    assert any("inpatient_days is not costed" in n for n in notes)
    assert any("1 controls have no direct_cost_gbp_per_year" in n for n in notes)


def test_person_costs_given_costs_and_user_map(tmp_path):
    df = _cohort()
    df["inpatient_admissions_given_post"] = [0, 1, np.nan, 0]    # person 2's spell came with its own cost
    df["indirect_cost_given_post"] = [0.0, 4000.0, np.nan, 0.0]
    out, _ = costs.person_costs(df, costs.load_unit_costs())
    assert out["cost_indirect"].iloc[1] == pytest.approx(4000.0 + 2 * 48.0)
    # a user table that maps services itself: cost bed days instead of spells
    user = tmp_path / "uc.csv"
    pd.DataFrame({"item": ["bed_day", "gp"], "unit": ["day", "consultation"], "cost_gbp": [400.0, 40.0],
                  "price_year": ["2024/25", "2023/24"], "source": ["local", "local"],
                  "service": ["inpatient_days", "gp_consultations"]}).to_csv(user, index=False)
    uc = costs.load_unit_costs(user)
    out, notes = costs.person_costs(_cohort(), uc)
    assert out["cost_indirect"].iloc[1] == pytest.approx(3 * 400 + 2 * 40 * 1.0402)
    assert any("inpatient_admissions is not costed" in n for n in notes)


def test_person_costs_missing_index_is_an_error(tmp_path):
    user = tmp_path / "uc.csv"
    pd.DataFrame({"item": ["gp"], "unit": ["consultation"], "cost_gbp": [45.0], "price_year": ["2012/13"],
                  "source": ["PSSRU 2013"], "service": ["gp_consultations"]}).to_csv(user, index=False)
    uc = costs.load_unit_costs(user)
    with pytest.raises(PhbEvalError, match="2013/14, 2014/15.*costs.inflation_index"):
        costs.person_costs(_cohort(), uc)


@pytest.fixture(scope="module")
def cost_data():
    return pd.read_csv(GOLDEN / "service_use_costs_data.csv", dtype={"site": str})


def test_cost_effects_match_r(cost_data):
    g = json.loads((GOLDEN / "service_use_costs.json").read_text())
    out = costs.cost_effects(cost_data, ["age", "sex", "condition"], models=("ols", "glm_gamma_log"), variance="cr1")
    assert set(out.analysis) == {"cost"}
    for outcome, col in costs.COST_OUTCOMES.items():
        r = g[col]
        rows = out[out.outcome == outcome].set_index("method")
        ols = rows.loc["ols_cr1_site"]
        assert ols.estimate == pytest.approx(r["ols_coef"], rel=1e-9)
        assert ols.se == pytest.approx(r["ols_se"], rel=1e-9)
        assert ols.n == r["n"] and ols.df == 13
        gam = rows.loc["glm_gamma_log_cr1_site"]
        assert gam.estimate == pytest.approx(math.exp(r["gamma_coef"]), rel=1e-8)
        assert gam.se == pytest.approx(r["gamma_se"], rel=1e-6)
        md = rows.loc["glm_gamma_log_cr1_site_marginal_diff"]
        assert md.estimate == pytest.approx(r["gamma_marginal_diff"], rel=1e-6)
        assert md.se == pytest.approx(r["gamma_marginal_diff_se"], rel=1e-6)


def test_cost_effects_zero_costs_give_a_reason(cost_data):
    df = cost_data.copy()
    df.loc[0, "cost_indirect"] = 0.0
    out = costs.cost_effects(df, ["age", "sex", "condition"], outcomes=("indirect_cost",), variance="cr1")
    gam = out[out.method == "glm_gamma_log_cr1_site"].iloc[0]
    assert math.isnan(gam.estimate) and "£0" in gam.note
    assert np.isfinite(out[out.method == "ols_cr1_site"].estimate.iloc[0])


def test_cost_breakdown(cost_data):
    table = costs.cost_breakdown(cost_data)
    row = table.set_index("cost").loc["cost_indirect"]
    assert row.mean_phb == pytest.approx(cost_data.loc[cost_data.phb == 1, "cost_indirect"].mean())
    assert row.difference == pytest.approx(row.mean_phb - row.mean_control)
    assert table.set_index("cost").loc["cost_direct", "n_control"] == (cost_data.phb == 0).sum() - 10
