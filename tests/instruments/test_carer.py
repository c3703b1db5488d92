"""Carer measures: ASCOT-Carer scores, self-rated health, and 'not applicable' for people without a carer."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import phb_eval
from phb_eval.errors import DataError
from phb_eval.instruments.ascot import domains, load_weights
from phb_eval.instruments.carer import carer_health_good, score_carer

CARER_WEIGHTS = Path(phb_eval.__file__).parent / "config" / "demo" / "carer_ascot_weights_synthetic.csv"
ITEMS = [f"carer_ascot_{d}" for d in domains("carer_ascot")]


def test_health_good_is_very_good_or_good():
    got = carer_health_good(pd.Series([1, 2, 3, 4, 5, np.nan]))
    assert got[:5].tolist() == [1, 1, 0, 0, 0] and np.isnan(got[5])


def _frame():
    f = pd.DataFrame({"participant_id": ["c1", "c2", "c3", "c4"], "has_carer": [1, 1, 0, np.nan]})
    for j, c in enumerate(ITEMS):
        f[f"{c}_t1"] = [3, 1, np.nan, 2 if j else np.nan]
    f["carer_health_t1"] = [2, 4, np.nan, np.nan]
    return f


def test_score_carer_scores_and_reasons():
    part = score_carer(_frame(), ["t1"], weights=load_weights(CARER_WEIGHTS, instrument="carer_ascot"))
    np.testing.assert_array_equal(part.columns["carer_ascot_raw_t1"], [21, 7, np.nan, np.nan])
    # synthetic weights: level 3 = 1/7, level 1 = 0.0457142857 in every domain
    np.testing.assert_allclose(part.columns["carer_scrqol_t1"], [7 * 0.1428571429, 7 * 0.0457142857, np.nan, np.nan])
    assert part.reasons["carer_ascot_raw_t1"].tolist() == ["scored", "scored", "not_applicable", "item_missing"]
    assert part.columns["carer_health_good_t1"].tolist()[:2] == [1, 0]
    assert part.reasons["carer_health_t1"].tolist() == ["scored", "scored", "not_applicable", "lost_or_died"]


def test_without_weights_carer_scrqol_is_absent_with_a_note():
    part = score_carer(_frame(), ["t1"])
    assert "carer_scrqol_t1" not in part.columns and "carer_ascot_raw_t1" in part.columns
    assert any(n.startswith("carer_scrqol not available at t1") for n in part.notes)


@pytest.mark.parametrize("column,value", [("carer_health_t1", 6), ("carer_health_t1", 2.5), ("has_carer", 2),
                                          ("carer_ascot_space_time_t1", -1)])
def test_bad_codes_are_errors(column, value):
    f = _frame()
    f.loc[0, column] = value
    with pytest.raises(DataError) as err:
        score_carer(f, ["t1"])
    assert column in str(err.value) and "row 1" in str(err.value)
