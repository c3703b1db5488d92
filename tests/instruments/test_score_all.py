"""score_all: every instrument together as the plan says, input untouched, summary counts by reason."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import phb_eval
from phb_eval.errors import DataError
from phb_eval.instruments import SUMMARY_COLUMNS, ScoreResult, score_all
from phb_eval.plan import load_plan

DEMO = Path(phb_eval.__file__).parent / "config" / "demo"
ASCOT = ["control", "personal_care", "food_drink", "accommodation", "safety", "social", "occupation", "dignity"]
CARER = ["occupation", "control", "self_care", "safety", "social", "space_time", "supported"]
EQ = ["mobility", "selfcare", "activities", "pain", "anxiety"]


def cohort() -> pd.DataFrame:
    """Six people; every cell chosen so each count in the summary is known.

    p1 phb: complete everywhere. p2 phb: one ASCOT item missing at t1. p3 control: died, nothing at t1.
    p4 control: no carer. p5 control: one GHQ item missing at t0. p6 phb: complete, 5L worst state at t1.
    """
    ids = ["p1", "p2", "p3", "p4", "p5", "p6"]
    f = pd.DataFrame({"participant_id": ids, "group": ["phb", "phb", "control", "control", "control", "phb"],
                      "site": "S1", "died": [0, 0, 1, 0, 0, 0], "has_carer": [1, 1, 1, 0, 1, 1]},
                     index=range(10, 16))
    for w in ("t0", "t1"):
        for d in ASCOT:
            f[f"ascot_{d}_{w}"] = [3, 2, 1, 0, 2, 3]
        for i in range(1, 13):
            f[f"ghq{i:02d}_{w}"] = [0, 1, 2, 3, 2, 1]
        for d in EQ:
            f[f"eq5d_{d}_{w}"] = [1, 2, 3, 4, 5, 1]
        f[f"eq_vas_{w}"] = [90, 70, 50, 30, 10, 100]
        for d in CARER:
            f[f"carer_ascot_{d}_{w}"] = [3, 3, 2, 1, 0, 1]
        f[f"carer_health_{w}"] = [1, 2, 3, 4, 5, 2]
    f = f.astype({c: float for c in f.columns if c.endswith(("_t0", "_t1"))})
    f.loc[11, "ascot_safety_t1"] = np.nan
    f.loc[12, [c for c in f.columns if c.endswith("_t1")]] = np.nan
    f.loc[13, [c for c in f.columns if c.startswith(("carer_",))]] = np.nan
    f.loc[14, "ghq05_t0"] = np.nan
    f.loc[15, [f"eq5d_{d}_t1" for d in EQ]] = 5.0
    return f


def plan(**instruments):
    base = {"eq5d_version": "5L", "eq5d_value_set": "england_devlin2018",
            "ascot_weights": str(DEMO / "ascot_weights_synthetic.csv"),
            "carer_ascot_weights": str(DEMO / "carer_ascot_weights_synthetic.csv")}
    base.update(instruments)
    return load_plan(None, overrides={"instruments": base})


def test_all_scores_added_and_input_untouched():
    f = cohort()
    before = f.copy()
    res = score_all(f, plan())
    assert isinstance(res, ScoreResult)
    pd.testing.assert_frame_equal(f, before)
    out = res.frame
    assert list(out.columns[:len(f.columns)]) == list(f.columns) and out.index.equals(f.index)
    for w in ("t0", "t1"):
        for s in ("ascot_raw", "scrqol", "ghq12_likert", "ghq12_ghq", "ghq12_caseness", "eq5d_index", "eq_vas",
                  "carer_ascot_raw", "carer_scrqol", "carer_health", "carer_health_good"):
            assert f"{s}_{w}" in out.columns, f"{s}_{w}"
    assert "qaly" in out.columns
    np.testing.assert_array_equal(out["ascot_raw_t1"], [24, np.nan, np.nan, 0, 16, 24])
    np.testing.assert_allclose(out["scrqol_t0"], [1.0, 0.8, 0.32, -0.17, 0.8, 1.0])
    np.testing.assert_array_equal(out["ghq12_likert_t0"], [0, 12, 24, 36, np.nan, 12])
    np.testing.assert_array_equal(out["ghq12_caseness_t0"], [0, 0, 1, 1, np.nan, 0])
    # England 2018: 22222 = 1 - (0.058+0.050+0.050+0.063+0.078) = 0.701; 55555 = -0.285
    np.testing.assert_allclose(out["eq5d_index_t0"], [1, 0.701, 1 - (0.076 + 0.080 + 0.063 + 0.084 + 0.104),
                                                      1 - (0.207 + 0.164 + 0.162 + 0.276 + 0.285), -0.285, 1])
    np.testing.assert_allclose(out["qaly"], [1, 0.701, np.nan, out["eq5d_index_t0"][13], -0.285, (1 - 0.285) / 2])
    np.testing.assert_array_equal(out["carer_ascot_raw_t0"], [21, 21, 14, np.nan, 0, 7])
    assert res.score_columns and set(res.score_columns) <= set(out.columns)
    assert not res.warnings


def test_summary_counts_by_reason():
    s = score_all(cohort(), plan()).summary
    assert list(s.columns) == SUMMARY_COLUMNS
    row = s.set_index(["score", "wave", "group"])
    r = row.loc[("ascot_raw", "t1", "phb")]
    assert (r.n, r.n_scored, r.n_item_missing, r.n_lost_or_died) == (3, 2, 1, 0)
    assert (r["mean"], r["min"], r["max"]) == (24, 24, 24)
    r = row.loc[("ascot_raw", "t1", "control")]
    assert (r.n_scored, r.n_missing, r.n_lost_or_died, r.n_item_missing) == (2, 1, 1, 0)
    r = row.loc[("carer_ascot_raw", "t0", "control")]
    assert (r.n_scored, r.n_not_applicable) == (2, 1)
    r = row.loc[("ghq12_likert", "t0", "control")]
    assert (r.n_scored, r.n_item_missing) == (2, 1)
    r = row.loc[("qaly", "t0-t1", "control")]
    assert (r.n_scored, r.n_lost_or_died) == (2, 1)
    assert set(s["source"]) >= {"items", "items (england_devlin2018)"}


def test_defaults_without_weights_note_scrqol_absent():
    f = cohort()
    for w in ("t0", "t1"):
        for d in EQ:
            f[f"eq5d_{d}_{w}"] = f[f"eq5d_{d}_{w}"].clip(upper=3)
    res = score_all(f, None)
    assert "scrqol_t0" not in res.frame.columns and "carer_scrqol_t0" not in res.frame.columns
    assert any(n.startswith("scrqol not available at t0: no weights file") for n in res.notes)
    assert "scrqol" not in set(res.summary["score"])


def test_relative_weights_path_resolves_against_base_dir():
    res = score_all(cohort(), plan(ascot_weights="ascot_weights_synthetic.csv"), base_dir=DEMO)
    assert res.frame["scrqol_t0"].iloc[0] == pytest.approx(1.0)


def test_prorating_option_adds_flag_column():
    res = score_all(cohort(), plan(ghq12_prorate_max_missing=1, ghq12_scorings=["likert", "ghq", "cghq"]))
    out = res.frame
    assert out["ghq12_prorated_t0"].tolist() == [0, 0, 0, 0, 1, 0]
    assert out["ghq12_likert_t0"].iloc[4] == pytest.approx(22 * 12 / 11)
    assert "ghq12_cghq_t1" in out.columns and "ghq12_modified_likert_t1" not in out.columns


def test_precomputed_scores_stand_in_and_are_reconciled():
    f = cohort()
    f["scrqol_t0"] = [1.0, 0.8, 0.32, -0.17, 0.9, 1.0]           # p5 off by 0.1
    res = score_all(f, plan())
    assert len(res.warnings) == 1 and "p5" in res.warnings[0] and "scrqol_t0" in res.warnings[0]
    assert res.frame["scrqol_t0"].iloc[4] == pytest.approx(0.8)
    assert list(res.frame.columns).index("scrqol_t0") == list(f.columns).index("scrqol_t0")
    only = pd.DataFrame({"participant_id": ["a", "b"], "group": ["phb", "control"], "scrqol_t0": [0.5, 0.6],
                         "scrqol_t1": [0.7, np.nan], "ghq12_t0": [10, 20]})
    res = score_all(only, None)
    assert res.frame["scrqol_t1"].tolist()[0] == 0.7 and res.frame["ghq12_likert_t0"].tolist() == [10, 20]
    assert any("scrqol_t0: the precomputed column is used as given" in n for n in res.notes)


def test_out_of_range_codes_raise():
    f = cohort()
    f.loc[10, "eq5d_pain_t0"] = 6
    with pytest.raises(DataError, match="eq5d_pain_t0"):
        score_all(f, plan())
