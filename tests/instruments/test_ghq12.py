"""GHQ-12 scorings against hand-computed states, prorating, caseness, precomputed scores, and
properties that must hold for every answer pattern (hypothesis)."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phb_eval.errors import DataError
from phb_eval.instruments.ghq12 import caseness, ghq12_score, score_ghq12

ITEMS = [f"ghq{i:02d}" for i in range(1, 13)]
MIXED = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]   # items 1..12


def _scores(codes, k=0):
    arr = np.array([codes], dtype=float)
    return {s: ghq12_score(arr, s, k)[0][0] for s in ("likert", "ghq", "modified_likert", "cghq")}


def test_closed_form_states():
    assert _scores([0] * 12) == {"likert": 0, "ghq": 0, "modified_likert": 0, "cghq": 0}
    assert _scores([3] * 12) == {"likert": 36, "ghq": 12, "modified_likert": 24, "cghq": 12}
    assert _scores([1] * 12) == {"likert": 12, "ghq": 0, "modified_likert": 0, "cghq": 6}  # negative items 0-1-1-1
    # MIXED by hand: Likert 3*(0+1+2+3) = 18; GHQ counts codes >= 2: 6; modified 3*(0+0+1+2) = 9;
    # C-GHQ positive items 1,3,4,7,8,12 (codes 0,2,3,2,3,3) -> 0+1+1+1+1+1 = 5,
    #       negative items 2,5,6,9,10,11 (codes 1,0,1,0,1,2) -> 1+0+1+0+1+1 = 4; total 9.
    assert _scores(MIXED) == {"likert": 18, "ghq": 6, "modified_likert": 9, "cghq": 9}


def test_complete_items_by_default_and_prorating_with_flag():
    codes = np.array([MIXED[:11] + [np.nan], MIXED[:10] + [np.nan, np.nan], MIXED], dtype=float)
    s0, f0 = ghq12_score(codes, "likert", 0)
    assert np.isnan(s0[0]) and np.isnan(s0[1]) and s0[2] == 18 and f0.tolist() == [0, 0, 0]
    s1, f1 = ghq12_score(codes, "likert", 1)
    assert s1[0] == pytest.approx(sum(MIXED[:11]) * 12 / 11) and np.isnan(s1[1]) and s1[2] == 18
    assert f1.tolist() == [1, 0, 0]
    s2, f2 = ghq12_score(codes, "ghq", 2)
    assert s2[1] == pytest.approx(sum(c >= 2 for c in MIXED[:10]) * 12 / 10) and f2.tolist() == [1, 1, 0]


def test_caseness_threshold_and_missing():
    got = caseness(np.array([3, 4, 12, np.nan, 3.9]), 4)
    assert got[:3].tolist() == [0, 1, 1] and np.isnan(got[3]) and got[4] == 0
    assert caseness(np.array([2.0]), 2).tolist() == [1.0]


def _frame(rows, wave="t0", ids=None):
    f = pd.DataFrame(rows, columns=[f"{c}_{wave}" for c in ITEMS], dtype=float)
    f.insert(0, "participant_id", ids or [f"id{i}" for i in range(len(rows))])
    return f


def test_score_ghq12_columns_reasons_and_options():
    f = _frame([MIXED, [0] * 12, MIXED[:11] + [np.nan], [np.nan] * 12])
    part = score_ghq12(f, ["t0"], scorings=["likert", "ghq", "cghq"], threshold=4)
    assert set(part.columns) == {"ghq12_likert_t0", "ghq12_ghq_t0", "ghq12_cghq_t0", "ghq12_caseness_t0"}
    np.testing.assert_array_equal(part.columns["ghq12_likert_t0"], [18, 0, np.nan, np.nan])
    np.testing.assert_array_equal(part.columns["ghq12_caseness_t0"], [1, 0, np.nan, np.nan])
    assert part.reasons["ghq12_likert_t0"].tolist() == ["scored", "scored", "item_missing", "lost_or_died"]
    pr = score_ghq12(f, ["t0"], prorate_max_missing=1)
    assert pr.columns["ghq12_prorated_t0"].tolist() == [0, 0, 1, 0]
    assert pr.columns["ghq12_likert_t0"][2] == pytest.approx(sum(MIXED[:11]) * 12 / 11)
    assert any("1 score(s) prorated" in n for n in pr.notes)
    assert "ghq12_prorated_t0" not in pr.meta      # a flag, not a score


def test_precomputed_likert_only():
    f = pd.DataFrame({"participant_id": ["a", "b"], "ghq12_t0": [14, np.nan]})
    part = score_ghq12(f, ["t0"])
    assert part.columns["ghq12_likert_t0"].tolist()[0] == 14
    assert "ghq12_ghq_t0" not in part.columns and "ghq12_caseness_t0" not in part.columns
    assert any("ghq12_caseness_t0 need the items" in n for n in part.notes)
    assert part.reasons["ghq12_likert_t0"].tolist() == ["scored", "lost_or_died"]


def test_items_win_over_precomputed_likert_and_disagreement_is_named():
    f = _frame([MIXED, [0] * 12, [3] * 12], ids=["p1", "p2", "p3"])
    f["ghq12_likert_t0"] = [18, 2, 36]
    part = score_ghq12(f, ["t0"])
    assert part.columns["ghq12_likert_t0"].tolist() == [18, 0, 36]
    assert len(part.warnings) == 1 and "p2" in part.warnings[0] and "1 row(s)" in part.warnings[0]


def test_out_of_range_code_names_row_column_value():
    f = _frame([MIXED, MIXED], ids=["p1", "p2"])
    f.loc[1, "ghq07_t0"] = 4
    f["_file"], f["_row"] = "cohort.csv", [2, 3]
    with pytest.raises(DataError) as err:
        score_ghq12(f, ["t0"])
    msg = str(err.value)
    assert "cohort.csv, row 3, column 'ghq07_t0': value 4.0" in msg and "p2" in msg
    f.loc[1, "ghq07_t0"] = 1.5
    with pytest.raises(DataError, match="ghq07_t0"):
        score_ghq12(f, ["t0"])


def test_no_ghq_at_all_is_a_note():
    part = score_ghq12(pd.DataFrame({"age_t0": [1.0]}), ["t0"])
    assert not part.columns and any("not available" in n for n in part.notes)


answers = st.lists(st.lists(st.one_of(st.integers(0, 3), st.none()), min_size=12, max_size=12),
                   min_size=1, max_size=20)


@settings(max_examples=150, deadline=None)
@given(answers, st.integers(0, 3))
def test_score_bounds_and_orderings(rows, k):
    codes = np.array([[np.nan if c is None else c for c in r] for r in rows], dtype=float)
    lik, _ = ghq12_score(codes, "likert", k)
    ghq, _ = ghq12_score(codes, "ghq", k)
    mod, _ = ghq12_score(codes, "modified_likert", k)
    cg, _ = ghq12_score(codes, "cghq", k)
    ok = ~np.isnan(lik)
    assert np.array_equal(ok, ~np.isnan(ghq)) and np.array_equal(ok, ~np.isnan(cg))
    answered = (~np.isnan(codes)).sum(axis=1)
    assert np.array_equal(ok, answered >= 12 - k)
    assert ((lik[ok] >= 0) & (lik[ok] <= 36)).all() and ((ghq[ok] >= 0) & (ghq[ok] <= 12)).all()
    assert (ghq[ok] <= lik[ok] / 2 + 1e-12).all()                  # per item: 0-0-1-1 <= (0-1-2-3)/2
    assert (ghq[ok] <= mod[ok] + 1e-12).all() and (mod[ok] <= lik[ok] + 1e-12).all()
    assert (ghq[ok] <= cg[ok] + 1e-12).all() and (cg[ok] <= 12).all()


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=12, max_size=12), st.integers(0, 11))
def test_scores_never_fall_when_one_answer_gets_worse(codes, item):
    if codes[item] == 3:
        return
    worse = list(codes)
    worse[item] += 1
    for s in ("likert", "ghq", "modified_likert", "cghq"):
        before = ghq12_score(np.array([codes], float), s)[0][0]
        after = ghq12_score(np.array([worse], float), s)[0][0]
        assert after >= before
    assert ghq12_score(np.array([worse], float), "likert")[0][0] == ghq12_score(np.array([codes], float))[0][0] + 1
