"""EQ-5D index values: published check states, every state against an independent R computation,
QALYs by area under the curve, and the items-vs-precomputed rules."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from phb_eval.errors import DataError, PlanError
from phb_eval.instruments.eq5d import (VALUE_SETS, eq5d_index, load_value_set, qaly_auc, score_eq5d,
                                       state_codes)

GOLDEN = Path(__file__).parents[1] / "golden" / "eq5d_value_sets.csv"
ITEMS = ["eq5d_mobility", "eq5d_selfcare", "eq5d_activities", "eq5d_pain", "eq5d_anxiety"]

# Published check states as listed in ../shared/docs/reference-data.md (and, for the crosswalk,
# ../shared/reference/README.md), typed here independently of the YAML files.
PUBLISHED = {
    "uk_dolan1997": {"11111": 1.000, "11112": 0.848, "21111": 0.850, "11113": 0.414, "22222": 0.516,
                     "33333": -0.594},
    "england_devlin2018": {"11112": 0.922, "21111": 0.942, "55555": -0.285},
    "uk_rowen2026": {"11112": 0.959, "55555": -0.567},
    "uk_vanhout2012_crosswalk": {"11111": 1.0, "11112": 0.879, "21111": 0.877, "22222": 0.592,
                                 "33333": 0.516, "44444": 0.036, "55555": -0.594},
}
CHECKS = [(vs, state, value) for vs, states in PUBLISHED.items() for state, value in states.items()]


@pytest.mark.parametrize("value_set,state,published", CHECKS)
def test_published_check_states(value_set, state, published):
    got = load_value_set(value_set).index_of(state)
    assert round(got, 3) == pytest.approx(published, abs=1e-12)
    assert abs(got - published) < 5e-4


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_config_check_states_hold_and_cover_the_reference_document(value_set):
    vs = load_value_set(value_set)
    assert set(PUBLISHED[value_set]) <= set(vs.check_states)
    for state, value in vs.check_states.items():
        assert abs(vs.index_of(state) - value) < 5e-4, state
    assert vs.source and vs.year >= 1997


@pytest.fixture(scope="module")
def golden():
    return pd.read_csv(GOLDEN, dtype={"state": str})


@pytest.mark.parametrize("value_set,n_states", [("uk_dolan1997", 243), ("england_devlin2018", 3125),
                                                ("uk_rowen2026", 3125), ("uk_vanhout2012_crosswalk", 3125)])
def test_every_state_matches_r(golden, value_set, n_states):
    g = golden[golden["value_set"] == value_set]
    assert len(g) == n_states and g["state"].is_unique
    vs = load_value_set(value_set)
    levels = np.array([[int(c) for c in s] for s in g["state"]], dtype=float)
    got = eq5d_index(levels, vs)
    if vs.formula == "lookup":
        np.testing.assert_array_equal(got, g["index"].to_numpy())      # a table: exact
    else:
        assert np.max(np.abs(got - g["index"].to_numpy())) <= 1e-12


def test_state_codes_are_lexicographic():
    assert state_codes(np.array([[1, 1, 1, 1, 1], [1, 1, 1, 1, 2], [2, 1, 1, 1, 1], [3, 3, 3, 3, 3]]), 3).tolist() \
        == [0, 1, 81, 242]


def test_missing_dimension_gives_missing_index_and_bad_level_is_an_error():
    vs = load_value_set("uk_dolan1997")
    got = eq5d_index(np.array([[1, 1, 1, 1, np.nan], [1, 1, 1, 1, 2]]), vs)
    assert np.isnan(got[0]) and got[1] == pytest.approx(0.848)
    frame = pd.DataFrame({"participant_id": ["a", "b"], **{f"{c}_t0": [1, 1] for c in ITEMS}})
    frame.loc[1, "eq5d_pain_t0"] = 4          # a 5L code in 3L data
    with pytest.raises(DataError) as err:
        score_eq5d(frame, ["t0"], value_set=vs)
    msg = str(err.value)
    assert "row 2" in msg and "eq5d_pain_t0" in msg and "value 4" in msg and "participant_id b" in msg


def test_unknown_value_set_is_a_plan_error():
    with pytest.raises(PlanError, match="uk_dolan1997"):
        load_value_set("dolan")


def test_qaly_trapezoid_closed_form():
    u0, u1, u2 = pd.Series([0.5, 1.0, np.nan]), pd.Series([0.7, 0.2, 0.9]), pd.Series([0.9, 0.0, 0.4])
    q = qaly_auc({"t0": u0, "t1": u1}, {"t0": 0, "t1": 12})
    np.testing.assert_allclose(q[:2], [0.6, 0.6])
    assert np.isnan(q[2])
    q3 = qaly_auc({"t2": u2, "t0": u0, "t1": u1}, {"t0": 0, "t1": 6, "t2": 12})
    np.testing.assert_allclose(q3[:2], [0.5 * (0.5 + 0.7) / 2 + 0.5 * (0.7 + 0.9) / 2, 0.5 * 1.2 / 2 + 0.5 * 0.2 / 2])
    half = qaly_auc({"t0": u0, "t1": u1}, {"t0": 0, "t1": 6})
    assert half[0] == pytest.approx(0.3)


def _frame():
    rows = {"participant_id": ["p1", "p2", "p3", "p4"], "died": [0, 0, 0, 1]}
    t0 = [[1, 1, 1, 1, 2], [2, 2, 2, 2, 2], [1, np.nan, 1, 1, 1], [3, 3, 3, 3, 3]]
    t1 = [[1, 1, 1, 1, 1], [2, 1, 1, 1, 1], [1, 1, 1, 1, 1], [np.nan] * 5]
    for wave, states in (("t0", t0), ("t1", t1)):
        for j, c in enumerate(ITEMS):
            rows[f"{c}_{wave}"] = [s[j] for s in states]
    rows["eq_vas_t0"] = [80, 50, np.nan, 10]
    return pd.DataFrame(rows)


def test_score_eq5d_from_items_with_qaly_and_reasons():
    part = score_eq5d(_frame(), ["t0", "t1"], value_set=load_value_set("uk_dolan1997"),
                      wave_months={"t0": 0, "t1": 12})
    np.testing.assert_allclose(part.columns["eq5d_index_t0"], [0.848, 0.516, np.nan, -0.594])
    np.testing.assert_allclose(part.columns["eq5d_index_t1"], [1.0, 0.850, 1.0, np.nan])
    np.testing.assert_allclose(part.columns["qaly"], [(0.848 + 1) / 2, (0.516 + 0.85) / 2, np.nan, np.nan])
    assert part.reasons["eq5d_index_t0"].tolist() == ["scored", "scored", "item_missing", "scored"]
    assert part.reasons["eq5d_index_t1"].tolist()[3] == "lost_or_died"
    assert part.reasons["qaly"].tolist() == ["scored", "scored", "item_missing", "lost_or_died"]
    assert part.columns["eq_vas_t0"].tolist()[:2] == [80, 50]
    assert part.meta["qaly"][1] == "t0-t1"


def test_five_level_data_with_england_set():
    f = pd.DataFrame({f"{c}_t0": [5, 1] for c in ITEMS})
    f.loc[1, "eq5d_anxiety_t0"] = 2
    part = score_eq5d(f, ["t0"], value_set=load_value_set("england_devlin2018"))
    np.testing.assert_allclose(part.columns["eq5d_index_t0"], [-0.285, 0.922])


def test_items_win_over_precomputed_and_disagreements_name_rows():
    f = _frame()
    f["eq5d_index_t0"] = [0.848, 0.600, 0.7, -0.594]     # p2 disagrees; p3 has incomplete items
    part = score_eq5d(f, ["t0", "t1"], value_set=load_value_set("uk_dolan1997"), tolerance=0.005,
                      wave_months={"t0": 0, "t1": 12})
    assert part.columns["eq5d_index_t0"][1] == pytest.approx(0.516)
    joined = " ".join(part.warnings)
    assert "eq5d_index_t0" in joined and "p2" in joined and "1 row(s)" in joined
    assert "p1" not in part.warnings[0]
    assert any("p3" in w and "incomplete items" in w for w in part.warnings)


def test_precomputed_only_is_used_and_noted():
    f = pd.DataFrame({"participant_id": ["a", "b"], "eq5d_index_t0": [0.5, np.nan], "eq5d_index_t1": [0.7, 0.1]})
    part = score_eq5d(f, ["t0", "t1"], value_set=load_value_set("uk_dolan1997"), wave_months={"t0": 0, "t1": 12})
    assert part.meta["eq5d_index_t0"][2] == "precomputed"
    assert any("used as given" in n for n in part.notes)
    assert part.columns["qaly"][0] == pytest.approx(0.6) and np.isnan(part.columns["qaly"][1])


def test_no_eq5d_at_all_is_a_note():
    part = score_eq5d(pd.DataFrame({"x_t0": [1]}), ["t0"], value_set=load_value_set("uk_dolan1997"))
    assert not part.columns and any("not available" in n for n in part.notes)


def test_eq_vas_out_of_range_is_an_error():
    f = pd.DataFrame({"participant_id": ["a"], "eq_vas_t0": [101]})
    with pytest.raises(DataError, match="eq_vas_t0"):
        score_eq5d(f, ["t0"], value_set=load_value_set("uk_dolan1997"))
