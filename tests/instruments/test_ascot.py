"""ASCOT SCT4: weights-file checks, scores against hand-computed states, items vs precomputed index,
and monotonicity of the index in every item for any valid ordered weights (hypothesis)."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import phb_eval
from phb_eval.errors import DataError, PhbEvalError
from phb_eval.instruments.ascot import AscotWeights, ascot_raw, domains, load_weights, score_ascot

DEMO = Path(phb_eval.__file__).parent / "config" / "demo"
WEIGHTS = DEMO / "ascot_weights_synthetic.csv"
CARER_WEIGHTS = DEMO / "carer_ascot_weights_synthetic.csv"
DOMAINS = domains("ascot")
ITEMS = [f"ascot_{d}" for d in DOMAINS]
# The synthetic demo weights by level 0..3 (same in every domain): -0.02125, 0.04, 0.1, 0.125.


def test_domains_follow_the_contract():
    assert DOMAINS == ["control", "personal_care", "food_drink", "accommodation", "safety", "social",
                       "occupation", "dignity"]
    assert len(domains("carer_ascot")) == 7


def test_demo_weights_load_and_score_hand_computed_states():
    w = load_weights(WEIGHTS)
    codes = np.array([[3] * 8, [0] * 8, [3, 2, 1, 0, 3, 2, 1, 0], [2] * 8, [3, 3, 3, 3, 3, 3, 3, np.nan]])
    got = w.index(codes)
    np.testing.assert_allclose(got[:4], [1.0, -0.17, 2 * (0.125 + 0.1 + 0.04 - 0.02125), 0.8], atol=1e-12)
    assert np.isnan(got[4])
    raw = ascot_raw(codes)
    assert raw[:4].tolist() == [24, 0, 12, 16] and np.isnan(raw[4])
    carer = load_weights(CARER_WEIGHTS, instrument="carer_ascot")
    np.testing.assert_allclose(carer.index(np.array([[3] * 7, [0] * 7])), [1.0, -0.17], atol=1e-8)


def _write(tmp_path, body: str, name="w.csv") -> Path:
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    return p


def _rows(weights_by_level=(-0.02125, 0.04, 0.1, 0.125), intercept=0.0, scale=1.0, drop=None, extra=""):
    lines = ["# a comment line", "domain,level,weight", f"intercept,,{intercept}", f"scale,,{scale}"]
    for d in DOMAINS:
        for lv, wt in enumerate(weights_by_level):
            if drop != (d, lv):
                lines.append(f"{d},{lv},{wt}")
    return "\n".join(lines) + "\n" + extra


def test_intercept_and_scale_are_applied(tmp_path):
    # weights scaled by 2 and shifted: index = -0.5 + 0.5 * (2 * sum + 1) = sum, the same index as the demo
    w = load_weights(_write(tmp_path, _rows([2 * x + 1 / 8 for x in (-0.02125, 0.04, 0.1, 0.125)],
                                            intercept=-0.5, scale=0.5)))
    state = np.array([[3, 2, 1, 0, 3, 2, 1, 0]])
    assert w.index(state)[0] == pytest.approx(load_weights(WEIGHTS).index(state)[0], abs=1e-12)


@pytest.mark.parametrize("body,check", [
    (_rows(drop=("dignity", 2)), "missing: dignity level 2"),
    (_rows(weights_by_level=(-0.02125, 0.04, 0.1, 0.12)), "ideal state score 0.9600"),
    (_rows(weights_by_level=(0.02875, 0.06, 0.1, 0.125)), "pre-v2"),                     # worst = 0.23
    (_rows(extra="hygiene,1,0.1\n"), "unknown domain(s) ['hygiene']"),
    (_rows(extra="dignity,1,0.1\n"), "dignity' level 1 appears more than once"),
    (_rows(extra="dignity,4,0.1\n"), "level '4'"),
    (_rows().replace("scale,,1.0\n", ""), "'scale' must appear exactly once"),
    (_rows().replace("control,2,0.1", "control,2,abc"), "'abc'"),
    ("domain,weight\ncontrol,0.1\n", "columns ['level'] are missing"),
])
def test_bad_weights_files_fail_naming_file_and_check(tmp_path, body, check):
    path = _write(tmp_path, body)
    with pytest.raises(PhbEvalError) as err:
        load_weights(path)
    assert str(path) in str(err.value) and check in str(err.value)


def test_missing_weights_file_names_the_plan_setting(tmp_path):
    with pytest.raises(DataError, match="instruments.ascot_weights"):
        load_weights(tmp_path / "nope.csv")


def _frame(rows, wave="t0"):
    f = pd.DataFrame(rows, columns=[f"{c}_{wave}" for c in ITEMS], dtype=float)
    f.insert(0, "participant_id", [f"p{i + 1}" for i in range(len(rows))])
    return f


def test_score_ascot_items_with_weights_and_precomputed_disagreement():
    f = _frame([[3] * 8, [0] * 8, [3, 3, 3, 3, 3, 3, 3, np.nan], [np.nan] * 8])
    f["scrqol_t0"] = [1.0, -0.10, 0.9, np.nan]
    part = score_ascot(f, ["t0"], weights=load_weights(WEIGHTS), tolerance=0.005)
    np.testing.assert_allclose(part.columns["scrqol_t0"], [1.0, -0.17, np.nan, np.nan])
    np.testing.assert_array_equal(part.columns["ascot_raw_t0"], [24, 0, np.nan, np.nan])
    assert part.reasons["scrqol_t0"].tolist() == ["scored", "scored", "item_missing", "lost_or_died"]
    text = "\n".join(part.warnings)
    assert "scrqol_t0" in text and "p2" in text and "p1" not in text.split("\n")[0]
    assert "p3" in text and "incomplete items" in text
    assert part.meta["scrqol_t0"][2] == "items"


def test_without_weights_precomputed_is_used_and_without_either_a_note_says_so():
    f = _frame([[3] * 8, [1] * 8])
    f["scrqol_t0"] = [0.95, 0.4]
    part = score_ascot(f, ["t0"])
    assert part.columns["scrqol_t0"].tolist() == [0.95, 0.4] and part.meta["scrqol_t0"][2] == "precomputed"
    assert part.columns["ascot_raw_t0"].tolist() == [24, 8]
    assert any("used as given" in n for n in part.notes)
    bare = score_ascot(_frame([[3] * 8]), ["t0"])
    assert "scrqol_t0" not in bare.columns
    assert any(n.startswith("scrqol not available at t0: no weights file") for n in bare.notes)
    nothing = score_ascot(pd.DataFrame({"participant_id": ["a"], "age_t0": [3]}), ["t0"])
    assert not nothing.columns and any("scrqol and ascot_raw not available" in n for n in nothing.notes)


def test_precomputed_index_above_one_is_an_error():
    f = pd.DataFrame({"participant_id": ["a"], "scrqol_t0": [1.3]})
    with pytest.raises(DataError, match="scrqol_t0"):
        score_ascot(f, ["t0"])


def test_out_of_range_code_is_an_error_naming_row_column_value():
    f = _frame([[3] * 8, [3] * 8])
    f.loc[1, "ascot_safety_t0"] = 5
    with pytest.raises(DataError) as err:
        score_ascot(f, ["t0"])
    assert "row 2, column 'ascot_safety_t0': value 5.0" in str(err.value)


# ---- properties -------------------------------------------------------------------------------
@st.composite
def ordered_weights(draw):
    """Any weights increasing in level, rescaled so all-ideal = 1 and all-high-needs = -0.17."""
    raw = np.array([sorted(draw(st.lists(st.floats(0, 1), min_size=4, max_size=4))) for _ in DOMAINS])
    top, bottom = raw[:, 3].sum(), raw[:, 0].sum()
    if top - bottom < 1e-3:
        raw[:, 3] += 0.01
        top = raw[:, 3].sum()
    scale = 1.17 / (top - bottom)
    return AscotWeights("ascot", "<generated>", 1.0 - scale * top, scale, raw)


codes_row = st.lists(st.integers(0, 3), min_size=8, max_size=8)


@settings(max_examples=150, deadline=None)
@given(ordered_weights(), codes_row, st.integers(0, 7))
def test_index_is_monotone_in_every_item_and_in_range(w, codes, item):
    base = np.array([codes], dtype=float)
    v = w.index(base)[0]
    assert -0.17 - 1e-9 <= v <= 1.0 + 1e-9
    assert 0 <= ascot_raw(base)[0] <= 24
    if codes[item] < 3:
        better = base.copy()
        better[0, item] += 1
        assert w.index(better)[0] >= v - 1e-12
        assert ascot_raw(better)[0] == ascot_raw(base)[0] + 1


@settings(max_examples=30, deadline=None)
@given(ordered_weights())
def test_generated_weights_pass_the_load_checks(tmp_path_factory, w):
    lines = ["domain,level,weight", f"intercept,,{float(w.intercept)!r}", f"scale,,{float(w.scale)!r}"]
    lines += [f"{d},{lv},{float(w.table[i, lv])!r}" for i, d in enumerate(DOMAINS) for lv in range(4)]
    path = tmp_path_factory.mktemp("w") / "weights.csv"
    path.write_text("\n".join(lines) + "\n")
    loaded = load_weights(path)
    np.testing.assert_allclose(loaded.table, w.table, rtol=0, atol=0)
    assert loaded.intercept == w.intercept and loaded.scale == w.scale
