"""The data contract as checks: one small file per rule, each problem naming file, row, column and value."""
import json
import time

import numpy as np
import pandas as pd
import pytest

from cohort_factory import build_cohort, build_events, write_table
from phb_eval.contract import CONDITIONS, DEPLOYMENTS, SERVICE_EVENT_TYPES
from phb_eval.errors import DataError
from phb_eval.io import Cohort, load_cohort
from phb_eval.plan import Plan, plan_from_dict
from phb_eval.validate import MAX_LISTED, ensure_valid, validate_cohort

TODAY = "2024-01-01"


def run(tmp_path, frame, name="cohort.csv", plan=None, events=None, **write_kwargs):
    path = write_table(frame, tmp_path / name, **write_kwargs)
    ev = write_table(events, tmp_path / "events.csv") if events is not None else None
    cohort = load_cohort(path, events=ev, plan=plan)
    return validate_cohort(cohort, plan or Plan(), today=TODAY), path


def only(problems, column, rule_part, level="error"):
    hits = [p for p in problems if p.column == column and rule_part in p.rule and p.level == level]
    assert len(hits) == 1, [str(p) for p in problems]
    return hits[0]


def assert_names(problem, path, row, column, value):
    assert problem.file == str(path) and problem.row == row and problem.column == column
    assert problem.value == value
    text = str(problem)
    assert str(path) in text and f"row {row}" in text and f"column '{column}'" in text and repr(value) in text
    assert "Fix:" in text and "\n" not in text


def with_object(frame, col):
    frame[col] = frame[col].astype(object)
    return frame


# ---- a valid cohort --------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", ["csv", "parquet", "xlsx", "sav", "dta"])
def test_a_valid_cohort_has_no_problems(tmp_path, ext):
    frame = build_cohort()
    problems, _ = run(tmp_path, frame, f"cohort.{ext}", events=build_events(frame))
    assert problems == []
    assert ensure_valid(load_cohort(tmp_path / f"cohort.{ext}"), Plan(), today=TODAY) == []


def test_a_frame_built_in_code_is_validated_with_record_numbers():
    frame = build_cohort()
    frame.loc[2, "age"] = 200.0
    problems = validate_cohort(Cohort(frame=frame, files={"data": "memory"}), Plan(), today=TODAY)
    p = only(problems, "age", "plausible")
    assert (p.file, p.row, p.value) == ("memory", 3, 200.0)


# ---- columns and labels ----------------------------------------------------------------------------
@pytest.mark.parametrize("col", ["participant_id", "group", "site", "condition"])
def test_missing_required_column(tmp_path, col):
    problems, path = run(tmp_path, build_cohort().drop(columns=col))
    p = only(problems, col, "required column")
    assert p.file == str(path) and p.row is None and "data.columns" in p.fix
    assert "consent_date" in p.rule  # the columns found are listed


def test_group_is_not_required_with_two_files_but_every_file_needs_the_rest(tmp_path):
    frame = build_cohort()
    t = write_table(frame[frame.group == "phb"].drop(columns="group"), tmp_path / "phb.csv")
    c = write_table(frame[frame.group == "control"].drop(columns=["group", "site"]), tmp_path / "ctl.csv")
    problems = validate_cohort(load_cohort(treatment=t, control=c), Plan(), today=TODAY)
    assert [(p.file, p.column) for p in problems if p.level == "error"] == [(str(c), "site")]


def test_empty_required_value(tmp_path):
    frame = build_cohort()
    frame.loc[4, "site"] = np.nan
    problems, path = run(tmp_path, frame)
    p = only(problems, "site", "is empty")
    assert p.row == 6 and p.file == str(path)


@pytest.mark.parametrize("col, bad, allowed", [("group", "PHB", ("phb", "control")),
                                               ("condition", "cancer", CONDITIONS),
                                               ("deployment", "cash", DEPLOYMENTS)])
def test_unknown_labels_list_the_allowed_ones(tmp_path, col, bad, allowed):
    frame = with_object(build_cohort(), col)
    frame.loc[0, col] = bad
    problems, path = run(tmp_path, frame)
    p = only(problems, col, "not an allowed")
    assert_names(p, path, 2, col, bad)
    assert all(a in p.fix for a in allowed)


def test_two_file_group_column_that_disagrees(tmp_path):
    frame = build_cohort()
    ctl = frame[frame.group == "control"].copy()
    ctl.iloc[1, ctl.columns.get_loc("group")] = "phb"
    t = write_table(frame[frame.group == "phb"], tmp_path / "phb.csv")
    c = write_table(ctl, tmp_path / "ctl.csv")
    problems = validate_cohort(load_cohort(treatment=t, control=c), Plan(), today=TODAY)
    p = only(problems, "group", "disagrees")
    assert_names(p, c, 3, "group", "phb")
    assert "control file" in p.rule


# ---- numbers ---------------------------------------------------------------------------------------
def test_text_in_a_number_column(tmp_path):
    frame = with_object(build_cohort(), "age")
    frame.loc[2, "age"] = "forty"
    problems, path = run(tmp_path, frame)
    assert_names(only(problems, "age", "not a number"), path, 4, "age", "forty")


@pytest.mark.parametrize("col, bad, version", [
    ("ascot_control_t0", 4, "3L"), ("ascot_social_t1", 1.5, "3L"), ("ghq05_t0", -1, "3L"),
    ("eq5d_pain_t1", 4, "3L"), ("eq5d_pain_t1", 6, "5L"), ("carer_health_t0", 0, "3L"),
    ("died", 2, "3L"), ("knew_budget", 9, "3L")])
def test_item_codes_out_of_range(tmp_path, col, bad, version):
    frame = build_cohort()
    frame[col] = frame[col].astype(float)
    frame.loc[0, col] = bad  # row 0 is a PHB holder, so budget flags apply
    plan = None if version == "3L" else plan_from_dict(
        {"instruments": {"eq5d_version": "5L", "eq5d_value_set": "england_devlin2018"}})
    problems, path = run(tmp_path, frame, plan=plan)
    rule = "must be 0 or 1" if col in ("died", "knew_budget") else "code"
    assert_names(only(problems, col, rule), path, 2, col, float(bad))


def test_eq5d_level_4_is_fine_under_5l(tmp_path):
    frame = build_cohort()
    frame.loc[0, "eq5d_pain_t1"] = 4
    plan = plan_from_dict({"instruments": {"eq5d_version": "5L", "eq5d_value_set": "england_devlin2018"}})
    problems, _ = run(tmp_path, frame, plan=plan)
    assert problems == []
    under_3l, _ = run(tmp_path, frame, "again.csv")
    assert "eq5d_version: 5L" in only(under_3l, "eq5d_pain_t1", "code").fix


def test_eq_vas_range(tmp_path):
    frame = build_cohort()
    frame.loc[5, "eq_vas_t1"] = 101
    problems, path = run(tmp_path, frame)
    assert_names(only(problems, "eq_vas_t1", "range"), path, 7, "eq_vas_t1", 101)


def test_out_of_range_hint_mentions_missing_codes(tmp_path):
    frame = build_cohort()
    frame.loc[0, "eq_vas_t0"] = 999
    problems, _ = run(tmp_path, frame)
    assert "data.missing_codes" in only(problems, "eq_vas_t0", "range").fix
    declared, _ = run(tmp_path, frame, "declared.csv",
                      plan=plan_from_dict({"data": {"missing_codes_by_column": {"eq_vas_t0": [999]}}}))
    assert declared == []


@pytest.mark.parametrize("age", [12, 111])
def test_implausible_age(tmp_path, age):
    frame = build_cohort()
    frame.loc[3, "age"] = age
    problems, path = run(tmp_path, frame)
    assert_names(only(problems, "age", "plausible age"), path, 5, "age", float(age))


def test_negative_budget(tmp_path):
    frame = build_cohort()
    frame.loc[1, "budget_gbp_per_year"] = -100
    problems, path = run(tmp_path, frame)
    assert_names(only(problems, "budget_gbp_per_year", "negative"), path, 3, "budget_gbp_per_year", -100.0)


def test_negative_direct_cost(tmp_path):
    frame = build_cohort().assign(direct_cost_gbp_per_year=1000.0)
    frame.loc[12, "direct_cost_gbp_per_year"] = -5
    problems, path = run(tmp_path, frame)
    assert_names(only(problems, "direct_cost_gbp_per_year", "negative"), path, 14, "direct_cost_gbp_per_year", -5.0)


def test_negative_and_fractional_service_counts(tmp_path):
    frame = build_cohort()
    frame["gp_consultations_pre"] = frame["gp_consultations_pre"].astype(float)
    frame.loc[0, "gp_consultations_pre"] = -1
    frame.loc[1, "gp_consultations_pre"] = 2.5
    problems, path = run(tmp_path, frame)
    assert_names(only(problems, "gp_consultations_pre", "negative"), path, 2, "gp_consultations_pre", -1.0)
    assert_names(only(problems, "gp_consultations_pre", "whole number"), path, 3, "gp_consultations_pre", 2.5)


def test_budget_filled_for_a_control(tmp_path):
    frame = with_object(build_cohort(), "deployment")
    ctl = frame.index[frame.group == "control"][0]
    frame.loc[ctl, "budget_gbp_per_year"] = 800
    frame.loc[ctl, "deployment"] = "notional"
    problems, path = run(tmp_path, frame)
    assert_names(only(problems, "budget_gbp_per_year", "control"), path, ctl + 2, "budget_gbp_per_year", 800.0)
    assert_names(only(problems, "deployment", "control"), path, ctl + 2, "deployment", "notional")


# ---- dates -----------------------------------------------------------------------------------------
def _text_dates(frame):
    for col in ("consent_date", "death_date"):
        frame[col] = frame[col].dt.strftime("%Y-%m-%d").astype(object)
    return frame


def test_unparseable_date_is_named_not_blanked(tmp_path):
    frame = _text_dates(build_cohort())
    frame.loc[6, "consent_date"] = "31/02/2010"
    frame.loc[7, "consent_date"] = "05/31/2010"  # US month-first
    problems, path = run(tmp_path, frame)
    bad = [p for p in problems if p.column == "consent_date" and "not a date" in p.rule]
    assert [(p.row, p.value) for p in bad] == [(8, "31/02/2010"), (9, "05/31/2010")]
    assert_names(bad[0], path, 8, "consent_date", "31/02/2010")


def test_future_date_and_year_before_1900(tmp_path):
    frame = _text_dates(build_cohort())
    frame.loc[0, "consent_date"] = "2030-01-01"
    frame.loc[1, "consent_date"] = "1850-06-01"
    problems, path = run(tmp_path, frame)
    assert_names(only(problems, "consent_date", "future"), path, 2, "consent_date", "2030-01-01")
    assert_names(only(problems, "consent_date", "before 1900"), path, 3, "consent_date", "1850-06-01")


def test_death_before_consent(tmp_path):
    frame = _text_dates(build_cohort())
    frame.loc[2, "consent_date"] = "01/06/2010"
    frame.loc[2, "death_date"] = "31/05/2010"
    frame.loc[2, "died"] = 1
    problems, path = run(tmp_path, frame)
    p = only(problems, "death_date", "before the consent date")
    assert_names(p, path, 4, "death_date", "2010-05-31")  # read as a date, shown in ISO form
    assert "2010-06-01" in p.rule


def test_events_need_consent_dates(tmp_path):
    frame = build_cohort()
    events = build_events(frame)
    gap = frame.copy()
    gap.loc[9, "consent_date"] = pd.NaT
    problems, path = run(tmp_path, gap, events=events)
    assert only(problems, "consent_date", "cannot be placed").row == 11
    problems, path = run(tmp_path, frame.drop(columns="consent_date"), "nodates.csv", events=events)
    assert only(problems, "consent_date", "no 'consent_date'").file == str(path)


# ---- identifiers and arms --------------------------------------------------------------------------
def test_duplicate_id_names_both_rows(tmp_path):
    frame = build_cohort()
    frame.loc[3, "participant_id"] = frame.loc[1, "participant_id"]  # both PHB holders at S1
    problems, path = run(tmp_path, frame)
    p = only(problems, "participant_id", "more than once")
    assert_names(p, path, 5, "participant_id", "002")
    assert f"also at {path} row 3" in p.rule


def test_id_in_both_arms_one_file(tmp_path):
    frame = build_cohort()
    ctl = frame.index[frame.group == "control"][0]
    frame.loc[ctl, "participant_id"] = "001"
    problems, path = run(tmp_path, frame)
    p = only(problems, "participant_id", "both arms")
    assert_names(p, path, ctl + 2, "participant_id", "001")
    assert "row 2" in p.rule and "'phb'" in p.rule


def test_id_in_both_arms_two_files(tmp_path):
    frame = build_cohort()
    ctl = frame[frame.group == "control"].drop(columns="group").copy()
    ctl.iloc[2, ctl.columns.get_loc("participant_id")] = "004"
    t = write_table(frame[frame.group == "phb"].drop(columns="group"), tmp_path / "phb.xlsx")
    c = write_table(ctl, tmp_path / "ctl.csv")
    problems = validate_cohort(load_cohort(treatment=t, control=c), Plan(), today=TODAY)
    p = only(problems, "participant_id", "both arms")
    assert_names(p, c, 4, "participant_id", "004")
    assert f"also at {t} row 5" in p.rule


def test_empty_arm(tmp_path):
    frame = build_cohort()
    frame = frame[frame.group == "phb"]
    problems, path = run(tmp_path, frame)
    p = only(problems, "group", "control arm has no participants")
    assert p.file == str(path) and "'control'" in p.rule


def test_empty_control_file(tmp_path):
    frame = build_cohort()
    t = write_table(frame[frame.group == "phb"].drop(columns="group"), tmp_path / "phb.csv")
    c = write_table(frame[frame.group == "control"].drop(columns="group").iloc[:0], tmp_path / "ctl.csv")
    problems = validate_cohort(load_cohort(treatment=t, control=c), Plan(), today=TODAY)
    assert only(problems, "group", "control arm has no participants").file == str(c)


# ---- events ----------------------------------------------------------------------------------------
def test_event_problems(tmp_path):
    frame = build_cohort()
    events = with_object(build_events(frame), "service")
    events["quantity"] = events["quantity"].astype(float)
    events.loc[0, "participant_id"] = "999"
    events.loc[1, "service"] = "dentist"
    events.loc[2, "quantity"] = -2
    events.loc[3, "cost_gbp"] = -40
    events["event_date"] = events["event_date"].dt.strftime("%d/%m/%Y").astype(object)
    events.loc[4, "event_date"] = "yesterday"
    problems, _ = run(tmp_path, frame, events=events)
    ev = tmp_path / "events.csv"
    assert_names(only(problems, "participant_id", "not in the participant table"), ev, 2, "participant_id", "999")
    p = only(problems, "service", "not an allowed")
    assert_names(p, ev, 3, "service", "dentist")
    assert all(s in p.fix for s in SERVICE_EVENT_TYPES)
    assert_names(only(problems, "quantity", "negative"), ev, 4, "quantity", -2.0)
    assert_names(only(problems, "cost_gbp", "negative"), ev, 5, "cost_gbp", -40.0)
    assert_names(only(problems, "event_date", "not a date"), ev, 6, "event_date", "yesterday")
    assert len([p for p in problems if p.level == "error"]) == 5


def test_event_table_without_required_columns(tmp_path):
    frame = build_cohort()
    problems, _ = run(tmp_path, frame, events=build_events(frame).drop(columns=["service"]))
    p = only(problems, "service", "no 'service' column")
    assert p.file == str(tmp_path / "events.csv")


# ---- warnings --------------------------------------------------------------------------------------
def test_one_arm_site_and_small_site_are_warnings(tmp_path):
    frame = build_cohort()
    frame.loc[frame.index[:2], "site"] = "S3"  # two PHB holders alone at S3
    problems, _ = run(tmp_path, frame)
    assert all(p.level == "warning" for p in problems)
    small = [p for p in problems if "fewer than 10" in p.rule]
    assert [(p.value, p.column) for p in small] == [("S1", "site"), ("S3", "site")]
    one_arm = only(problems, "site", "one arm only", level="warning")
    assert one_arm.value == "S3" and "'phb'" in one_arm.rule


def test_died_without_date_but_with_post_counts_is_informational(tmp_path):
    frame = build_cohort()
    frame.loc[[4, 8], "died"] = 1
    frame.loc[8, "death_date"] = pd.Timestamp("2010-12-01")
    problems, path = run(tmp_path, frame)
    p = only(problems, "death_date", "no death_date", level="warning")
    assert p.file == str(path) and "(row 6)" in p.rule and p.count == 1
    assert [q for q in problems if q.level == "error"] == []


# ---- reporting mechanics ---------------------------------------------------------------------------
def test_long_lists_are_capped_but_every_row_is_counted(tmp_path):
    frame = build_cohort(per_arm_per_site=10)
    frame["age"] = 5.0
    problems, path = run(tmp_path, frame)
    ages = [p for p in problems if p.column == "age"]
    assert len(ages) == MAX_LISTED + 1
    assert [p.row for p in ages[:MAX_LISTED]] == list(range(2, 2 + MAX_LISTED))
    assert ages[-1].row is None and ages[-1].count == len(frame) - MAX_LISTED
    assert f"{len(frame) - MAX_LISTED} more row(s)" in str(ages[-1])
    assert sum(p.count for p in ages) == len(frame)


def test_ensure_valid_raises_with_every_problem_and_returns_warnings_otherwise(tmp_path):
    frame = with_object(build_cohort(), "condition")
    frame.loc[0, "condition"] = "cancer"
    frame.loc[1, "age"] = 200
    path = write_table(frame, tmp_path / "bad.csv")
    with pytest.raises(DataError) as err:
        ensure_valid(load_cohort(path), Plan(), today=TODAY)
    assert len(err.value.problems) == 2 and "2 place(s)" in str(err.value)
    assert "'cancer'" in str(err.value) and "200" in str(err.value)
    small = write_table(build_cohort(per_arm_per_site=2), tmp_path / "small.csv")
    warnings = ensure_valid(load_cohort(small), Plan(), today=TODAY)
    assert warnings and all(p.level == "warning" for p in warnings)


def test_problems_serialise_to_json(tmp_path):
    frame = with_object(build_cohort(), "age")
    frame.loc[0, "age"] = "x"
    frame.loc[1, "age"] = 300
    problems, _ = run(tmp_path, frame)
    doc = json.loads(json.dumps([p.to_dict() for p in problems]))
    assert {d["value"] for d in doc} == {"x", 300.0}
    assert set(doc[0]) >= {"level", "file", "row", "column", "value", "rule", "fix", "count", "message"}


def test_errors_come_before_warnings(tmp_path):
    frame = build_cohort(per_arm_per_site=2)
    frame.loc[0, "age"] = 3
    problems, _ = run(tmp_path, frame)
    levels = [p.level for p in problems]
    assert levels[0] == "error" and levels == sorted(levels)  # 'error' < 'warning'


def test_record_numbers_for_spss_files(tmp_path):
    frame = build_cohort()
    frame.loc[0, "age"] = 12
    problems, path = run(tmp_path, frame, "cohort.sav")
    assert_names(only(problems, "age", "plausible"), path, 1, "age", 12.0)


@pytest.mark.slow
def test_two_million_rows_validate_in_seconds():
    n = 2_000_000
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({
        "participant_id": pd.Series(np.arange(n)).astype(str), "group": np.where(np.arange(n) % 2, "phb", "control"),
        "site": (np.arange(n) % 200).astype(str), "condition": "chc", "age": rng.uniform(20, 90, n),
        "consent_date": pd.Timestamp("2010-05-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
        "died": rng.integers(0, 2, n), "eq5d_pain_t0": rng.integers(1, 4, n), "ghq01_t0": rng.integers(0, 4, n),
        "gp_consultations_pre": rng.poisson(3, n), "gp_consultations_post": rng.poisson(3, n),
        "_file": "big.parquet", "_row": np.arange(1, n + 1)})
    frame.loc[::1000, "age"] = 5.0
    cohort = Cohort(frame=frame, files={"data": "big.parquet"})
    start = time.perf_counter()
    problems = validate_cohort(cohort, Plan(), today=TODAY)
    elapsed = time.perf_counter() - start
    assert sum(p.count for p in problems if p.column == "age") == n // 1000
    assert elapsed < 60, elapsed
