"""Disclosure control: the NHS Digital 2018 small-number rule on counts, means and percentages."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings as hyp_settings, strategies as st

from phb_eval.disclosure import SUPPRESSED, apply_disclosure, describe_rule, suppress_count
from phb_eval.plan import DisclosureSettings, load_plan

NHS = DisclosureSettings()


# ------------------------------------------------------------------------------------------ counts
@pytest.mark.parametrize("value, published", [(0, 0), (1, "*"), (7, "*"), (8, 10), (12, 10), (13, 15),
                                              (1000, 1000), (1171, 1170), (1173, 1175), (7.5, "*"),
                                              (12.5, 15.0), (17.49, 15.0)])
def test_suppress_count_closed_form(value, published):
    out = suppress_count(value, NHS)
    assert out == published
    assert type(out) is type(published)


def test_suppress_count_missing_and_bad_values():
    assert math.isnan(suppress_count(float("nan"), NHS))
    assert suppress_count(None, NHS) is None
    assert suppress_count(pd.NA, NHS) is pd.NA
    assert suppress_count("*", NHS) == "*"
    for bad in (-1, float("inf"), "12", True):
        with pytest.raises(ValueError):
            suppress_count(bad, NHS)


def test_plan_default_is_the_nhs_rule():
    d = load_plan().disclosure
    assert (d.enabled, d.rule, d.min_count, d.rounding_base) == (True, "nhs_digital_2018", 8, 5)


def test_count_columns_int_column_with_stars_becomes_object():
    frame = pd.DataFrame({"site": list("abcdefg"), "n": [0, 1, 7, 8, 12, 13, 1000]})
    out = apply_disclosure(frame, settings=NHS, count_columns=["n"])
    assert out["n"].tolist() == [0, "*", "*", 10, 10, 15, 1000]
    assert out["n"].dtype == object
    assert all(type(v) is int for v in out["n"] if v != SUPPRESSED)   # whole numbers, not 10.0
    assert out["site"].tolist() == list("abcdefg")


def test_count_columns_keep_dtype_without_stars():
    frame = pd.DataFrame({"a": np.array([0, 8, 12, 13], dtype="int32"), "b": [0.0, 8.0, np.nan, 1002.0],
                          "c": pd.array([0, None, 13, 22], dtype="Int64")})
    out = apply_disclosure(frame, settings=NHS, count_columns=["a", "b", "c"])
    assert out["a"].dtype == np.dtype("int32") and out["a"].tolist() == [0, 10, 10, 15]
    assert out["b"].dtype == np.float64
    np.testing.assert_array_equal(out["b"].to_numpy(), [0.0, 10.0, np.nan, 1000.0])
    assert out["c"].dtype == pd.Int64Dtype() and out["c"].isna().tolist() == [False, True, False, False]
    assert out["c"].dropna().tolist() == [0, 15, 20]


def test_missing_counts_stay_missing_next_to_stars():
    frame = pd.DataFrame({"n": [np.nan, 3.0, 40.0]})
    out = apply_disclosure(frame, settings=NHS, count_columns=["n"])
    assert out["n"].dtype == object
    assert math.isnan(out["n"][0]) and out["n"][1] == "*" and out["n"][2] == 40


def test_already_published_column_is_unchanged():
    frame = pd.DataFrame({"n": [0, 3, 13, 1171]})
    once = apply_disclosure(frame, settings=NHS, count_columns=["n"])
    twice = apply_disclosure(once, settings=NHS, count_columns=["n"])
    assert twice["n"].tolist() == once["n"].tolist() == [0, "*", 15, 1170]


def test_input_is_not_modified():
    frame = pd.DataFrame({"n": [3, 13], "mean": [1.5, 2.5], "num": [2, 10], "pct": [200 / 3, 10 / 13 * 100]})
    before = frame.copy(deep=True)
    out = apply_disclosure(frame, settings=NHS, count_columns=["n"], mean_columns={"mean": "n"},
                           percent_columns={"pct": ("num", "n")})
    pd.testing.assert_frame_equal(frame, before)
    assert out is not frame and out["n"].tolist() == ["*", 15]


# ------------------------------------------------------------------------------------ means and pcts
def test_means_use_the_unrounded_n():
    frame = pd.DataFrame({"n": [7, 8, 0, 12], "mean": [61.2, 0.61, np.nan, 3.0], "sd": [1.0, 2.0, np.nan, 4.0]})
    out = apply_disclosure(frame, settings=NHS, count_columns=["n"], mean_columns={"mean": "n", "sd": "n"})
    assert out["mean"].tolist()[:2] == ["*", 0.61] and math.isnan(out["mean"][2]) and out["mean"][3] == 3.0
    assert out["sd"].tolist()[:2] == ["*", 2.0]
    assert out["n"].tolist() == ["*", 10, 0, 10]
    # no small n: the mean column keeps its float dtype and exact values
    out = apply_disclosure(frame.iloc[1:], settings=NHS, mean_columns={"mean": "n"})
    assert out["mean"].dtype == np.float64 and out["mean"].iloc[0] == 0.61


def test_n_of_a_mean_is_rounded_even_when_not_listed_as_a_count():
    frame = pd.DataFrame({"n": [5, 1171], "mean": [0.004, 61.2]})
    out = apply_disclosure(frame, settings=NHS, mean_columns={"mean": "n"})
    assert out["n"].tolist() == ["*", 1170] and out["mean"].tolist() == ["*", 61.2]


def test_mean_with_missing_n_is_suppressed():
    frame = pd.DataFrame({"n": [np.nan, np.nan], "mean": [2.0, np.nan]})
    out = apply_disclosure(frame, settings=NHS, mean_columns={"mean": "n"})
    assert out["mean"][0] == "*" and math.isnan(out["mean"][1])


def test_percentages_from_rounded_numerator_and_denominator():
    frame = pd.DataFrame({"num": [3, 12, 48, 0, 20], "den": [40, 5, 103, 0, 1171],
                          "pct": [7.5, 240.0, 48 / 103 * 100, np.nan, 20 / 1171 * 100]})
    out = apply_disclosure(frame, settings=NHS, percent_columns={"pct": ("num", "den")})
    pct = out["pct"].tolist()
    assert pct[0] == "*"          # small numerator
    assert pct[1] == "*"          # small denominator
    assert pct[2] == pytest.approx(50 / 105 * 100)   # from 50 and 105, not 48 and 103
    assert math.isnan(pct[3])     # 0 of 0 is undefined
    assert pct[4] == pytest.approx(20 / 1170 * 100)
    assert out["num"].tolist() == ["*", 10, 50, 0, 20] and out["den"].tolist() == [40, "*", 105, 0, 1170]


def test_proportions_need_their_scale():
    frame = pd.DataFrame({"num": [10, 48], "den": [20, 103], "prop": [0.5, 48 / 103]})
    out = apply_disclosure(frame, settings=NHS, percent_columns={"prop": ("num", "den", 1)})
    assert out["prop"].tolist() == pytest.approx([0.5, 50 / 105])
    assert out["prop"].dtype == np.float64
    with pytest.raises(ValueError, match="prop"):   # a proportion declared as a percentage is caught
        apply_disclosure(frame, settings=NHS, percent_columns={"prop": ("num", "den")})


# ------------------------------------------------------------------------------------ totals, errors
def test_totals_are_rounded_from_their_own_unrounded_value():
    # 3 + 3 + 3 = 9: the rows are '*' but the total is published as 10, not a sum of published cells
    frame = pd.DataFrame({"site": ["a", "b", "c", "total"], "n": [3, 3, 3, 9]}).set_index("site")
    out = apply_disclosure(frame, settings=NHS, count_columns=["n"], total_rows=["total"])
    assert out["n"].tolist() == ["*", "*", "*", 10]
    out = apply_disclosure(frame, settings=NHS, count_columns=["n"], total_rows=[False, False, False, True])
    assert out.loc["total", "n"] == 10
    with pytest.raises(ValueError, match="Total"):
        apply_disclosure(frame, settings=NHS, count_columns=["n"], total_rows=["Total"])
    with pytest.raises(ValueError, match="mask"):
        apply_disclosure(frame, settings=NHS, count_columns=["n"], total_rows=[True])


@pytest.mark.parametrize("kwargs, name", [({"count_columns": ["nn"]}, "nn"),
                                          ({"mean_columns": {"mean": "size"}}, "size"),
                                          ({"mean_columns": {"avg": "n"}}, "avg"),
                                          ({"percent_columns": {"pct": ("n", "denominator")}}, "denominator")])
def test_unknown_columns_are_named(kwargs, name):
    frame = pd.DataFrame({"n": [10], "mean": [1.0], "pct": [100.0]})
    with pytest.raises(ValueError, match=name):
        apply_disclosure(frame, settings=NHS, **kwargs)


def test_bad_counts_are_programming_errors():
    with pytest.raises(ValueError, match="negative"):
        apply_disclosure(pd.DataFrame({"n": [10, -5]}), settings=NHS, count_columns=["n"])
    with pytest.raises(ValueError, match="not a number"):
        apply_disclosure(pd.DataFrame({"n": ["ten", 5]}), settings=NHS, count_columns=["n"])
    with pytest.raises(ValueError, match="both"):
        apply_disclosure(pd.DataFrame({"n": [10], "m": [1.0]}), settings=NHS, count_columns=["n", "m"],
                         mean_columns={"m": "n"})


def test_disabled_settings_give_an_unchanged_copy():
    frame = pd.DataFrame({"n": [3, 13]})
    out = apply_disclosure(frame, settings=DisclosureSettings(enabled=False), count_columns=["n"])
    pd.testing.assert_frame_equal(out, frame)
    assert out is not frame


def test_other_settings_are_used():
    s = DisclosureSettings(min_count=10, rounding_base=10)
    frame = pd.DataFrame({"n": [0, 8, 9, 10, 14, 15, 1234]})
    assert apply_disclosure(frame, settings=s, count_columns=["n"])["n"].tolist() == [0, "*", "*", 10, 10, 20, 1230]


# -------------------------------------------------------------------------------------- the sentence
def test_describe_rule_default_sentence():
    text = describe_rule(NHS)
    assert text.startswith("Disclosure control (NHS Digital 2018 rule): counts from 1 to 7 are shown as *, "
                           "other counts are rounded to the nearest 5;")
    assert "unrounded" in text and "means and medians based on 1 to 7 people" in text
    assert "percentages" in text and text.endswith(".") and "\n" not in text


def test_describe_rule_states_the_numbers_from_settings():
    text = describe_rule(DisclosureSettings(min_count=10, rounding_base=10))
    assert "1 to 9" in text and "nearest 10" in text and "1 to 7" not in text and "nearest 5" not in text
    assert "turned off" in describe_rule(DisclosureSettings(enabled=False))
    assert "no counts are suppressed" in describe_rule(DisclosureSettings(min_count=1))


# ---------------------------------------------------------------------------------------- properties
settings_strategy = st.one_of(st.just(NHS), st.builds(DisclosureSettings, min_count=st.integers(1, 30),
                                                      rounding_base=st.integers(1, 50)))


@hyp_settings(max_examples=300, deadline=None)
@given(counts=st.lists(st.integers(0, 10**9), min_size=1, max_size=40), s=settings_strategy)
def test_published_counts_property(counts, s):
    frame = pd.DataFrame({"n": counts})
    out = apply_disclosure(frame, settings=s, count_columns=["n"])["n"].tolist()
    assert frame["n"].tolist() == counts
    for truth, shown in zip(counts, out):
        assert shown == suppress_count(truth, s)          # vectorised and scalar agree
        if 0 < truth < s.min_count:
            assert shown == SUPPRESSED
            continue
        assert shown != SUPPRESSED and shown % s.rounding_base == 0
        assert abs(shown - truth) <= s.rounding_base / 2
        if truth == 0:
            assert shown == 0
        if s == NHS:
            assert not 1 <= shown <= 7                    # no small number survives the NHS rule


@hyp_settings(max_examples=200, deadline=None)
@given(data=st.lists(st.tuples(st.integers(0, 5000), st.one_of(st.floats(-1e6, 1e6), st.just(float("nan")))), min_size=1,
                     max_size=30))
def test_means_property(data):
    frame = pd.DataFrame(data, columns=["n", "mean"])
    out = apply_disclosure(frame, settings=NHS, mean_columns={"mean": "n"})
    for (n, mean), shown_n, shown in zip(data, out["n"], out["mean"]):
        if 0 < n < 8:
            assert shown == SUPPRESSED and shown_n == SUPPRESSED
        elif math.isnan(mean):
            assert math.isnan(shown)
        else:
            assert shown == mean
