"""Reading cohort files: every format written by its real writer and read back equal; mapping,
missing codes, row numbers, and one clear sentence for files that cannot be read."""
import hashlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.pandas import column, data_frames, range_indexes

from cohort_factory import build_cohort, build_events, write_table
from phb_eval.errors import DataError, PhbEvalError
from phb_eval.io import load_cohort, parse_dates, read_table, sha256_file
from phb_eval.plan import Plan, plan_from_dict
from phb_eval.validate import Problem, validate_cohort

FORMATS = ["csv", "parquet", "xlsx", "sav", "dta"]


def _data(frame):
    return frame.drop(columns=[c for c in ("_file", "_row") if c in frame])


def _assert_same(got, expected):
    got, expected = _data(got), expected.copy()
    assert list(got.columns) == list(expected.columns)
    for col in expected.columns:
        e, g = expected[col], got[col]
        if pd.api.types.is_datetime64_any_dtype(e):
            assert pd.api.types.is_datetime64_any_dtype(g), col
            assert (g.isna() == e.isna()).all(), col
            assert (g[e.notna()].dt.date == e[e.notna()].dt.date).all(), col
        elif pd.api.types.is_numeric_dtype(e):
            np.testing.assert_allclose(g.astype(float), e.astype(float), err_msg=col)
        else:
            assert g.astype(object).where(g.notna(), None).tolist() == \
                e.astype(object).where(e.notna(), None).tolist(), col


@pytest.mark.parametrize("ext", FORMATS)
def test_every_format_round_trips_with_ids_as_text(tmp_path, ext):
    frame = build_cohort()
    path = write_table(frame, tmp_path / f"cohort.{ext}")
    got = read_table(path)
    _assert_same(got, frame)
    assert got["participant_id"].iloc[0] == "001"  # leading zeros kept
    first = 2 if ext in ("csv", "xlsx") else 1
    assert got["_row"].tolist() == list(range(first, first + len(frame)))
    assert set(got["_file"]) == {str(path)}


@pytest.mark.parametrize("ext", FORMATS)
def test_events_round_trip(tmp_path, ext):
    frame = build_cohort()
    events = build_events(frame)
    path = write_table(events, tmp_path / f"events.{ext}")
    _assert_same(read_table(path, table="events"), events)


def test_semicolon_csv_with_bom_uk_dates_and_decimal_commas(tmp_path):
    frame = build_cohort()
    frame.loc[0, "age"] = 41.5
    uk = frame.assign(consent_date=frame["consent_date"].dt.strftime("%d/%m/%Y"))
    path = tmp_path / "uk.csv"
    uk.to_csv(path, sep=";", decimal=",", index=False, encoding="utf-8-sig")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    got = read_table(path)
    _assert_same(got, frame)
    assert got.loc[0, "age"] == 41.5


def test_uk_dates_are_day_first_never_month_first():
    parsed, bad = parse_dates(pd.Series(["03/04/2010", "2010-04-03", "12/31/2010", None, "31/12/2010 00:00"]))
    assert parsed[0] == pd.Timestamp("2010-04-03") == parsed[1]
    assert bad.tolist() == [False, False, True, False, False]  # US 12/31 is not a date here
    assert pd.isna(parsed[2]) and pd.isna(parsed[3])
    assert parsed[4] == pd.Timestamp("2010-12-31")


def test_an_unparseable_date_keeps_the_raw_text_for_validate(write):
    frame = build_cohort()
    text = frame.assign(consent_date=frame["consent_date"].dt.strftime("%Y-%m-%d"))
    text.loc[3, "consent_date"] = "31/02/2010"
    got = read_table(write(text))
    assert got.loc[3, "consent_date"] == "31/02/2010"
    assert got.loc[0, "consent_date"] == frame.loc[0, "consent_date"].strftime("%Y-%m-%d")


def test_a_stray_word_keeps_a_number_column_as_text(write):
    frame = build_cohort()
    frame["age"] = frame["age"].astype(object)
    frame.loc[2, "age"] = "unknown"
    got = read_table(write(frame))
    assert got.loc[2, "age"] == "unknown"


def test_cp1252_fallback_is_said(tmp_path):
    frame = build_cohort()
    frame.loc[0, "sex"] = "féminin"
    path = tmp_path / "latin.csv"
    frame.to_csv(path, index=False, encoding="cp1252")
    with pytest.warns(UserWarning, match="Windows-1252"):
        got = read_table(path)
    assert got.loc[0, "sex"] == "féminin"
    cohort = load_cohort(path)
    problems = validate_cohort(cohort, Plan())
    assert any(p.level == "warning" and "Windows-1252" in str(p) and p.file == str(path) for p in problems)


def test_blank_lines_keep_spreadsheet_row_numbers(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("participant_id,group,site,condition\n001,phb,S1,chc\n\n003,control,S1,chc\n", encoding="utf-8")
    got = read_table(path)
    assert got["participant_id"].tolist() == ["001", "003"]
    assert got["_row"].tolist() == [2, 4]


def test_xlsx_named_sheet_from_argument_or_plan(tmp_path):
    frame = build_cohort()
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path, engine="openpyxl") as xw:
        pd.DataFrame({"note": ["cover sheet"]}).to_excel(xw, sheet_name="About", index=False)
        frame.to_excel(xw, sheet_name="Cohort", index=False)
    assert list(_data(read_table(path)).columns) == ["note"]  # first sheet by default
    _assert_same(read_table(path, sheet="Cohort"), frame)
    plan = plan_from_dict({"data": {"sheet": "Cohort"}})
    _assert_same(read_table(path, plan), frame)
    with pytest.raises(DataError, match="no sheet named 'Nope'.*About, Cohort"):
        read_table(path, sheet="Nope")


def test_numeric_ids_from_spss_lose_no_digits_and_gain_no_decimals(tmp_path):
    import pyreadstat
    frame = pd.DataFrame({"participant_id": [1.0, 20.0, 300.0], "group": ["phb", "control", "phb"],
                          "site": [7.0, 7.0, 8.0], "condition": ["chc"] * 3})
    path = tmp_path / "ids.sav"
    pyreadstat.write_sav(frame, str(path))
    got = read_table(path)
    assert got["participant_id"].tolist() == ["1", "20", "300"]
    assert got["site"].tolist() == ["7", "7", "8"]


def test_column_mapping_renames_and_names_both_names_when_absent(write):
    frame = build_cohort().rename(columns={"participant_id": "ID", "site": "PCT"})
    path = write(frame)
    plan = plan_from_dict({"data": {"columns": {"participant_id": "ID", "site": "PCT"}}})
    got = read_table(path, plan)
    assert {"participant_id", "site"} <= set(got.columns) and "ID" not in got.columns
    assert got["participant_id"].iloc[0] == "001"
    wrong = plan_from_dict({"data": {"columns": {"participant_id": "ID", "age": "AgeYears"}}})
    no_age = write(frame.drop(columns="age"), "no_age.csv")
    with pytest.raises(DataError) as err:
        read_table(no_age, wrong)
    assert "'AgeYears'" in str(err.value) and "'age'" in str(err.value) and str(no_age) in str(err.value)
    # A file that already uses the canonical name is read as it is.
    assert read_table(path, wrong)["age"].tolist() == frame["age"].tolist()


def test_two_file_mapping_allows_budget_columns_only_in_the_phb_file(tmp_path):
    frame = build_cohort().rename(columns={"budget_gbp_per_year": "Budget"})
    phb = frame[frame["group"] == "phb"].drop(columns="group")
    ctl = frame[frame["group"] == "control"].drop(columns=["group", "Budget"])
    t = write_table(phb, tmp_path / "phb.csv")
    c = write_table(ctl, tmp_path / "ctl.parquet")
    plan = plan_from_dict({"data": {"columns": {"budget_gbp_per_year": "Budget"}}})
    cohort = load_cohort(treatment=t, control=c, plan=plan)
    assert cohort.frame["budget_gbp_per_year"].notna().sum() == len(phb)
    absent = plan_from_dict({"data": {"columns": {"has_carer": "CarerYN"}}})
    with pytest.raises(DataError, match="'CarerYN' \\(for 'has_carer'\\)"):
        load_cohort(treatment=t, control=c, plan=absent)


def test_missing_codes_everywhere_and_by_column_but_never_blanking_ids(write):
    frame = build_cohort()
    frame.loc[0, "age"] = -9
    frame.loc[1, "eq_vas_t0"] = 999
    frame.loc[2, "participant_id"] = "-9"
    frame["sex"] = frame["sex"].astype(object)
    frame.loc[3, "sex"] = "-9"
    plan = plan_from_dict({"data": {"missing_codes": [-9], "missing_codes_by_column": {"eq_vas_t0": [999]}}})
    got = read_table(write(frame), plan)
    assert pd.isna(got.loc[0, "age"]) and pd.isna(got.loc[1, "eq_vas_t0"]) and pd.isna(got.loc[3, "sex"])
    assert got.loc[2, "participant_id"] == "-9"
    assert got.loc[4, "age"] == frame.loc[4, "age"] and got.loc[4, "eq_vas_t0"] == frame.loc[4, "eq_vas_t0"]
    assert pd.api.types.is_numeric_dtype(got["age"])


def test_text_missing_code_turns_a_column_numeric(write):
    frame = build_cohort()
    frame["age"] = frame["age"].astype(object)
    frame.loc[0, "age"] = "."
    got = read_table(write(frame), plan_from_dict({"data": {"missing_codes": ["."]}}))
    assert pd.api.types.is_numeric_dtype(got["age"]) and pd.isna(got.loc[0, "age"])


def test_spss_user_missing_and_stata_codes_stay_codes(tmp_path):
    import pyreadstat
    frame = pd.DataFrame({"participant_id": ["a", "b"], "group": ["phb", "control"], "site": ["S", "S"],
                          "condition": ["chc", "copd"], "eq5d_pain_t0": [2.0, 3.0]})
    path = tmp_path / "labelled.sav"
    pyreadstat.write_sav(frame, str(path), variable_value_labels={"eq5d_pain_t0": {2.0: "some", 3.0: "extreme"}})
    assert read_table(path)["eq5d_pain_t0"].tolist() == [2.0, 3.0]  # codes, not labels


@pytest.mark.parametrize("name, content, phrase", [
    ("cohort.txt", b"a,b\n1,2\n", "extension '.txt'"),
    ("cohort", b"a,b\n1,2\n", "extension '(none)'"),
    ("empty.csv", b"", "is empty"),
    ("blank.csv", b"\n\n\n", "no header"),
    ("numbers.csv", b"1,2,3\n4,5,6\n", "no header row"),
    ("binary.csv", bytes(range(256)) * 4, "binary"),
    ("fake.xlsx", b"this is not a workbook", "Excel"),
    ("fake.parquet", b"PAR1 nope", "Parquet"),
    ("fake.sav", b"$FL2 not really", "SPSS"),
    ("fake.dta", b"<stata_dta> broken", "Stata"),
    ("empty.parquet", b"", "is empty"),
])
def test_unreadable_files_give_one_sentence_naming_file_and_formats(tmp_path, name, content, phrase):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError) as err:
        read_table(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and phrase in msg
    assert ".csv, .parquet, .xlsx, .sav" in msg


def test_missing_file_and_folder_are_named(tmp_path):
    with pytest.raises(DataError, match="nope.csv: file not found"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a folder"):
        read_table(tmp_path)


def test_duplicate_and_unnamed_columns_are_refused(tmp_path):
    dup = tmp_path / "dup.csv"
    dup.write_text("participant_id,age,age\n1,2,3\n", encoding="utf-8")
    with pytest.raises(DataError, match="more than one column named 'age'"):
        read_table(dup)
    unnamed = tmp_path / "unnamed.csv"
    unnamed.write_text("participant_id,,group\n1,x,phb\n", encoding="utf-8")
    with pytest.raises(DataError, match="column number 2 has data but no name"):
        read_table(unnamed)
    trailing = tmp_path / "trailing.csv"
    trailing.write_text("participant_id,group,\n1,phb,\n", encoding="utf-8")
    assert list(_data(read_table(trailing)).columns) == ["participant_id", "group"]


def test_ragged_csv_is_a_data_error(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("a,b\n1,2\n3,4,5,6\n", encoding="utf-8")
    with pytest.raises(DataError, match="ragged.csv"):
        read_table(path)


def test_load_cohort_one_file_records_files_and_hashes(write, tmp_path):
    frame = build_cohort()
    path = write(frame, "cohort.xlsx")
    ev = write(build_events(frame), "events.parquet")
    cohort = load_cohort(path, events=ev, plan=Plan())
    assert cohort.files == {"data": str(path), "events": str(ev)}
    assert cohort.hashes[str(path)] == hashlib.sha256(path.read_bytes()).hexdigest() == sha256_file(path)
    assert cohort.hashes[str(ev)] == hashlib.sha256(ev.read_bytes()).hexdigest()
    assert not cohort.two_files and len(cohort.frame) == len(frame) and len(cohort.events) == 2 * len(frame)


def test_load_cohort_two_files_sets_group_and_keeps_what_the_file_said(tmp_path):
    frame = build_cohort()
    t = write_table(frame[frame.group == "phb"], tmp_path / "phb.sav")
    budget = ["budget_gbp_per_year", "deployment", "knew_budget", "flexible_spend", "chose_deployment"]
    c = write_table(frame[frame.group == "control"].drop(columns=["group", *budget]), tmp_path / "ctl.dta")
    cohort = load_cohort(treatment=t, control=c)
    assert cohort.two_files and cohort.files == {"treatment": str(t), "control": str(c)}
    got = cohort.frame
    assert (got.groupby("group").size() == frame.groupby("group").size()).all()
    assert (got.loc[got["_file"] == str(t), "_group_given"] == "phb").all()
    assert got.loc[got["_file"] == str(c), "_group_given"].isna().all()
    assert got.loc[got["_file"] == str(c), "_row"].iloc[0] == 1


def test_load_cohort_refuses_both_ways_at_once(tmp_path):
    with pytest.raises(PhbEvalError, match="one or the other"):
        load_cohort(data="a.csv", treatment="t.csv", control="c.csv")
    with pytest.raises(PhbEvalError, match="go together"):
        load_cohort(treatment="t.csv")
    with pytest.raises(PhbEvalError, match="no data given"):
        load_cohort()


def test_inputs_are_not_modified(write):
    frame = build_cohort()
    path = write(frame)
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    load_cohort(path, plan=plan_from_dict({"data": {"missing_codes": [0]}}))
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


# ---- property-based: nothing but Problems or a PhbEvalError ---------------------------------------
def _load_and_validate(path):
    try:
        problems = validate_cohort(load_cohort(path), Plan())
    except PhbEvalError as exc:
        assert str(exc)
        return None
    assert isinstance(problems, list) and all(isinstance(p, Problem) for p in problems)
    for p in problems:
        assert str(p) and "\n" not in str(p)
        p.to_dict()
    return problems


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=400), ext=st.sampled_from(FORMATS))
def test_garbage_bytes_never_crash(tmp_path, blob, ext):
    path = tmp_path / f"garbage.{ext}"
    path.write_bytes(blob)
    _load_and_validate(path)


_NAMES = st.sampled_from(["participant_id", "group", "site", "condition", "age", "died", "consent_date",
                          "death_date", "budget_gbp_per_year", "deployment", "ascot_control_t0", "eq5d_pain_t1",
                          "ghq12_t0", "eq_vas_t0", "gp_consultations_post", "knew_budget", "x y", "Ünïcode"])
_CELLS = st.one_of(st.none(), st.integers(-5, 120), st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from(["phb", "control", "chc", "S1", "", " ", "2010-05-01", "31/12/2011",
                                    "12/31/2011", "1850-01-01", "abc", "001", "-9", "NA", "1e309", ";", '"']),
                   st.text(max_size=6))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frame=data_frames(columns=[column(name, elements=_CELLS) for name in
                                  ["participant_id", "group", "site", "condition"]],
                         index=range_indexes(max_size=8)),
       extra=st.lists(st.tuples(_NAMES, st.lists(_CELLS, min_size=8, max_size=8)), max_size=4),
       sep=st.sampled_from([",", ";"]))
def test_random_small_frames_as_csv_give_problems_or_a_clear_error(tmp_path, frame, extra, sep):
    for name, cells in extra:
        if name not in frame.columns:
            frame[name] = pd.Series(cells[:len(frame)], index=frame.index, dtype=object)
    path = tmp_path / "random.csv"
    frame.to_csv(path, index=False, sep=sep)
    _load_and_validate(path)
