"""Out-of-core validation of service-event files (phb_eval.events_check) against the in-memory route.

Every test writes a real CSV or Parquet file, loads it twice (in memory, and left on disk with
``events_in_memory_max_bytes=0``) and asserts that the two routes report the same problems: file, row,
column, value, rule, fix, count and the one-line message.
"""
import json
import math
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cohort_factory import build_cohort, build_events, write_table
from phb_eval import events as aggregation
from phb_eval import events_check, pipeline
from phb_eval.data import events_sql
from phb_eval.errors import DataError, PhbEvalError
from phb_eval.io import load_cohort, parse_dates, read_table
from phb_eval.plan import Plan, plan_from_dict
from phb_eval.validate import MAX_LISTED, validate_cohort

TODAY = "2024-01-01"
OUT_OF_CORE = "validated and aggregated out of core by DuckDB"


def comparable(problem) -> dict:
    d = problem.to_dict()
    if isinstance(d["value"], float) and math.isnan(d["value"]):
        d["value"] = None   # NaN never equals itself; the message still shows it
    return d


def events_table(frame=None) -> pd.DataFrame:
    """build_events with text columns as object (so tests may plant words) and ISO text dates."""
    ev = build_events(build_cohort() if frame is None else frame)
    ev["event_date"] = ev["event_date"].dt.strftime("%Y-%m-%d")
    return ev.astype({"participant_id": object, "event_date": object, "service": object, "quantity": object,
                      "cost_gbp": object})


def parquet_safe(ev: pd.DataFrame) -> pd.DataFrame:
    """Columns mixing numbers and words become text, as they would arrive from a Parquet export."""
    out = ev.copy()
    for col in out.columns:
        kinds = {type(v) for v in out[col].dropna()}
        if len(kinds) > 1 and str in kinds:
            out[col] = out[col].map(lambda v: v if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    return out


def write_events(tmp_path, events, ext):
    path = tmp_path / f"events.{ext}"
    if isinstance(events, bytes):
        path.write_bytes(events)
        return path
    return write_table(parquet_safe(events) if ext == "parquet" else events, path)


def both_routes(tmp_path, events, ext="csv", plan=None, frame=None):
    """Problems of the in-memory and the out-of-core route on the same files; asserts they are equal."""
    frame = build_cohort() if frame is None else frame
    plan = plan or Plan()
    data = write_table(frame, tmp_path / "cohort.csv")
    ev = write_events(tmp_path, events, ext)
    memory = load_cohort(data, events=ev, plan=plan)
    disk = load_cohort(data, events=ev, plan=plan, events_in_memory_max_bytes=0)
    assert isinstance(memory.events, pd.DataFrame) and disk.events == str(ev)
    assert disk.columns[str(ev)] == memory.columns[str(ev)] and disk.hashes == memory.hashes
    expected = validate_cohort(memory, plan, today=TODAY)
    got = validate_cohort(disk, plan, today=TODAY)
    notes = [p for p in got if p.level == "info"]
    assert len(notes) == 1 and OUT_OF_CORE in notes[0].rule
    got = [p for p in got if p.level != "info"]
    assert [comparable(p) for p in got] == [comparable(p) for p in expected]
    return got, ev


def only(problems, column, part):
    hits = [p for p in problems if p.column == column and part in p.rule]
    assert len(hits) == 1, [str(p) for p in problems]
    return hits[0]


# ---- a valid file ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_a_valid_event_file_has_no_problems(tmp_path, ext):
    frame = build_cohort()
    data = write_table(frame, tmp_path / "cohort.csv")
    ev = write_table(build_events(frame), tmp_path / f"events.{ext}")   # typed dates and numbers
    cohort = load_cohort(data, events=Path(ev), events_in_memory_max_bytes=0)
    assert cohort.events == str(ev)
    problems = validate_cohort(cohort, Plan(), today=TODAY)
    assert [p.level for p in problems] == ["info"] and OUT_OF_CORE in problems[0].rule
    assert problems[0].file == str(ev)
    problems, _ = both_routes(tmp_path, events_table(frame), ext)
    assert problems == []


def test_small_files_stay_in_memory_and_the_limit_is_a_module_constant(tmp_path):
    from phb_eval import io
    frame = build_cohort()
    data = write_table(frame, tmp_path / "cohort.csv")
    ev = write_table(build_events(frame), tmp_path / "events.csv")
    assert io.EVENTS_IN_MEMORY_MAX_BYTES == 256 * 1024 * 1024
    assert isinstance(load_cohort(data, events=ev).events, pd.DataFrame)
    size = ev.stat().st_size
    assert isinstance(load_cohort(data, events=ev, events_in_memory_max_bytes=size).events, pd.DataFrame)
    assert load_cohort(data, events=ev, events_in_memory_max_bytes=size - 1).events == str(ev)
    xlsx = write_table(build_events(frame), tmp_path / "events.xlsx")   # other formats are always read
    assert isinstance(load_cohort(data, events=xlsx, events_in_memory_max_bytes=0).events, pd.DataFrame)


# ---- every rule, both formats ------------------------------------------------------------------------------
def _set(**cells):
    """A mutation: {column: {row index: value}}."""
    def mutate(ev):
        for col, values in cells.items():
            for i, v in values.items():
                ev.at[i, col] = v
        return ev
    return mutate


RULES = {
    "unknown id": (_set(participant_id={0: "999", 7: "1000"}), "participant_id", "not in the participant table"),
    "no id": (_set(participant_id={3: None}), "participant_id", "has no participant_id"),
    "service label": (_set(service={1: "dentist", 9: "GP"}), "service", "not an allowed service label"),
    "no service": (_set(service={4: None}), "service", "has no service label"),
    "quantity word": (_set(quantity={2: "lots"}), "quantity", "not a number"),
    "quantity negative": (_set(quantity={5: -2}), "quantity", "quantity cannot be negative"),
    "quantity negative, column with a word": (_set(quantity={5: -2, 6: "lots"}), "quantity", "cannot be negative"),
    "cost word": (_set(cost_gbp={8: "free"}), "cost_gbp", "not a number"),
    "cost negative": (_set(cost_gbp={3: -40.0}), "cost_gbp", "cost cannot be negative"),
    "unreadable date": (_set(event_date={6: "yesterday", 11: "31/02/2010"}), "event_date", "not a date"),
    "future date": (_set(event_date={10: "2099-01-01"}), "event_date", "in the future"),
    "future date, column with a bad date": (_set(event_date={10: "01/01/2099", 11: "soon"}), "event_date",
                                            "in the future"),
    "early date": (_set(event_date={12: "31/12/1850"}), "event_date", "before 1900"),
}


@pytest.mark.parametrize("ext", ["csv", "parquet"])
@pytest.mark.parametrize("case", list(RULES))
def test_each_rule_gives_the_same_problems_as_in_memory(tmp_path, ext, case):
    mutate, column, part = RULES[case]
    problems, ev = both_routes(tmp_path, mutate(events_table()), ext)
    hits = [p for p in problems if p.column == column and part in p.rule]
    assert hits and all(p.file == str(ev) and p.row is not None for p in hits)


@pytest.mark.parametrize("ext", ["csv", "parquet"])
@pytest.mark.parametrize("column", ["participant_id", "event_date", "service"])
def test_a_missing_required_column(tmp_path, ext, column):
    problems, ev = both_routes(tmp_path, events_table().drop(columns=[column]), ext)
    p = only(problems, column, f"no '{column}' column")
    assert p.file == str(ev) and p.row is None


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_long_lists_end_with_one_line_counting_the_rest(tmp_path, ext):
    frame = build_cohort(per_arm_per_site=15)                 # 60 people, 120 events
    ev = events_table(frame)
    ev.loc[::2, "participant_id"] = "999"                        # 60 unknown ids
    ev.loc[1::4, "quantity"] = -1                                # 30 negative quantities
    ev.loc[3::5, "event_date"] = "2099-12-31"                    # 24 future dates
    ev.loc[7, "service"] = "dentist"                             # one label
    problems, path = both_routes(tmp_path, ev, ext, frame=frame)
    for column, n in (("participant_id", 60), ("quantity", 30), ("event_date", 24)):
        mine = [p for p in problems if p.column == column]
        assert len(mine) == MAX_LISTED + 1 and sum(p.count for p in mine) == n
        assert mine[-1].row is None and mine[-1].count == n - MAX_LISTED and mine[-1].file == str(path)
    assert sum(p.count for p in problems) == 60 + 30 + 24 + 1


# ---- files as people make them -----------------------------------------------------------------------------
def test_csv_quirks_keep_the_users_row_numbers(tmp_path):
    """BOM, CRLF, empty lines (which DuckDB skips), a row of empty cells, a spaces-only line, pandas'
    missing words, padded cells, a quoted cell holding line breaks and an empty line, a short row."""
    lines = [
        "participant_id,event_date,service,quantity,cost_gbp,note",   # row 1
        "001,2010-03-02,gp,1,39,",                                     # 2
        "",                                                            # 3 empty line
        "999,2010-03-05,gp,1,,",                                       # 4 unknown id
        ",,,,,",                                                       # 5 empty cells
        "",                                                            # 6
        "",                                                            # 7
        '002,2010-04-01, gp ,1,,"a note\r\n\r\nover lines"',            # 8-10 (one record)
        "NA,2010-04-02,gp,1,,",                                        # 9 no id (NA is missing)
        "   ",                                                         # 10 spaces only
        "003,2010-04-03,NULL,1,,",                                     # 11 no service
        " 999 ,2010-04-04,dentist,-2,,",                               # 12 id, label, negative
        "004,31/02/2010,gp,1",                                         # 13 short row, bad date
        "005,2010-04-05,ae,lots,-5,x",                                 # 14 word, negative cost
        "",
    ]
    raw = ("\ufeff" + "\r\n".join(lines)).encode("utf-8")
    problems, _ = both_routes(tmp_path, raw, "csv")
    assert sorted((p.row, p.column) for p in problems) == [
        (4, "participant_id"), (9, "participant_id"), (11, "service"), (12, "participant_id"), (12, "quantity"),
        (12, "service"), (13, "event_date"), (14, "cost_gbp"), (14, "quantity")]
    assert only(problems, "quantity", "negative").value == "-2"   # text: the column also holds a word


def test_semicolon_csv_with_decimal_commas(tmp_path):
    raw = "\n".join([
        "participant_id;event_date;service;quantity;cost_gbp",
        "001;02/03/2010;inpatient;1,5;39,50",
        "002;03/03/2010;inpatient;-1,5;12",
        "003;04/03/2010;gp;1;-0,5",
    ]).encode()
    problems, _ = both_routes(tmp_path, raw, "csv")
    assert only(problems, "quantity", "negative").value == -1.5
    assert only(problems, "cost_gbp", "negative").value == -0.5


def test_not_utf8_csv(tmp_path):
    raw = "participant_id,event_date,service,quantity\n001,2010-03-02,caf\xe9,1\n".encode("latin-1")
    frame = build_cohort()
    data = write_table(frame, tmp_path / "cohort.csv")
    ev = write_events(tmp_path, raw, "csv")
    disk = load_cohort(data, events=ev, events_in_memory_max_bytes=0)
    problems = validate_cohort(disk, Plan(), today=TODAY)
    assert only(problems, "service", "not an allowed").value == "café"
    assert any("not valid UTF-8" in p.rule for p in problems if p.level == "warning")


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_plan_mapping_and_missing_codes(tmp_path, ext):
    frame = build_cohort().rename(columns={"participant_id": "person"})
    ev = events_table(build_cohort()).rename(columns={
        "participant_id": "person", "event_date": "when", "service": "svc", "quantity": "qty", "cost_gbp": "cost"})
    ev.loc[0, "qty"] = -9        # a code everywhere: missing, so not negative
    ev.loc[1, "qty"] = 999       # a code of this column
    ev.loc[2, "qty"] = -2        # really negative
    ev.loc[3, "svc"] = "N/K"     # a code: missing, so 'no service label'
    ev.loc[4, "person"] = "-9"   # identifiers never lose a value to a blanket code: unknown person
    ev.loc[5, "when"] = "N/K"    # a code: missing, not an unreadable date
    ev.loc[6, "cost"] = "-9"
    ev.loc[7, "when"] = "never"
    plan = plan_from_dict({"data": {
        "columns": {"participant_id": "person", "event_date": "when", "service": "svc", "quantity": "qty",
                    "cost_gbp": "cost"},
        "missing_codes": [-9, "N/K"], "missing_codes_by_column": {"qty": [999]}}})
    problems, _ = both_routes(tmp_path, ev, ext, plan=plan, frame=frame)
    assert only(problems, "quantity", "negative").value in (-2, "-2")
    assert only(problems, "service", "no service label")
    assert only(problems, "participant_id", "not in the participant table").value == "-9"
    assert only(problems, "event_date", "not a date").value == "never"
    assert not [p for p in problems if p.column == "cost_gbp"]


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_a_mapped_column_absent_fails_at_load_as_in_memory(tmp_path, ext):
    frame = build_cohort()
    data = write_table(frame, tmp_path / "cohort.csv")
    ev = write_table(events_table(frame).drop(columns=["quantity"]), tmp_path / f"events.{ext}")
    plan = plan_from_dict({"data": {"columns": {"quantity": "qty"}}})   # neither 'qty' nor 'quantity'
    messages = []
    for limit in (None, 0):
        with pytest.raises(DataError) as err:
            load_cohort(data, events=ev, plan=plan, events_in_memory_max_bytes=limit)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and "qty" in messages[0]


def test_unnamed_columns(tmp_path):
    frame = build_cohort()
    data = write_table(frame, tmp_path / "cohort.csv")
    ok = b"participant_id,event_date,service,quantity,\n001,2010-03-02,gp,1,\n"
    problems, _ = both_routes(tmp_path, ok, "csv")
    assert problems == []
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"participant_id,event_date,service,,quantity\n001,2010-03-02,gp,oops,1\n")
    with pytest.raises(DataError) as memory:
        load_cohort(data, events=bad)
    disk = load_cohort(data, events=bad, events_in_memory_max_bytes=0)
    with pytest.raises(DataError) as streamed:
        validate_cohort(disk, Plan(), today=TODAY)
    assert str(streamed.value) == str(memory.value)


def test_a_malformed_csv_is_a_data_error(tmp_path):
    frame = build_cohort()
    data = write_table(frame, tmp_path / "cohort.csv")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"participant_id,event_date,service\n001,2010-03-02,gp\n002,2010-03-02,gp,1,2\n")
    disk = load_cohort(data, events=bad, events_in_memory_max_bytes=0)
    with pytest.raises(DataError, match="could not be read as CSV"):
        validate_cohort(disk, Plan(), today=TODAY)


def test_typed_parquet_columns(tmp_path):
    """Native Parquet types: integer ids, integer quantities, float costs, timestamps with a time."""
    frame = build_cohort()
    frame["participant_id"] = [str(i) for i in range(1, len(frame) + 1)]
    ev = build_events(build_cohort())
    ev["participant_id"] = [i // 2 + 1 for i in range(len(ev))]
    ev["quantity"] = ev["quantity"].astype("int64")
    ev.loc[0, "participant_id"] = 999
    ev.loc[1, "quantity"] = -3
    ev.loc[2, "cost_gbp"] = -1.5
    ev.loc[3, "event_date"] = pd.Timestamp("2099-01-01 10:30")
    ev.loc[4, "event_date"] = pd.Timestamp("2099-02-01")
    ev.loc[5, "event_date"] = pd.Timestamp("1850-01-01")
    problems, _ = both_routes(tmp_path, ev, "parquet", frame=frame)
    assert only(problems, "participant_id", "not in the participant table").value == "999"
    assert only(problems, "quantity", "negative").value == -3
    assert only(problems, "cost_gbp", "negative").value == -1.5
    assert [p.value for p in problems if "future" in p.rule] == ["2099-01-01", "2099-02-01"]   # dates, as read


def test_parquet_dates_as_dates_and_whole_float_ids(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    frame = build_cohort()
    frame["participant_id"] = [str(i) for i in range(1, len(frame) + 1)]
    ids = [float(i // 2 + 1) for i in range(2 * len(frame))]
    ids[3] = None
    dates = [pd.Timestamp("2010-06-01").date()] * len(ids)
    dates[4] = pd.Timestamp("2100-01-01").date()
    table = pa.table({"participant_id": ids, "event_date": pa.array(dates, pa.date32()),
                      "service": ["gp"] * len(ids), "quantity": [1.0] * len(ids)})
    path = tmp_path / "typed.parquet"
    pq.write_table(table, path)
    problems, _ = both_routes(tmp_path, path.read_bytes(), "parquet", frame=frame)
    assert only(problems, "event_date", "future").value == "2100-01-01"
    assert only(problems, "participant_id", "no participant_id").row == 4


def test_check_events_file_on_its_own(tmp_path):
    frame = build_cohort()
    ev = events_table(frame)
    ev.loc[0, "service"] = "dentist"
    path = write_table(ev, tmp_path / "events.csv")
    problems = events_check.check_events_file(path, frame, None, today=TODAY)
    assert [(p.row, p.column, p.value) for p in problems] == [(2, "service", "dentist")]
    assert [p.rule for p in events_check.check_events_file(path, None, today=TODAY)] == [problems[0].rule]


# ---- the parsers agree with pandas -------------------------------------------------------------------------
def _date_strings(n, seed):
    rng = random.Random(seed)

    def num(lo, hi, pad):
        s, r = str(rng.randint(lo, hi)), rng.random()
        return s.zfill(pad) if r < .4 else (s.rjust(pad) if r < .5 else s)
    out = set()
    for _ in range(n):
        y = str(rng.randint(1, 9999)).zfill(rng.choice([1, 3, 4, 4, 4, 5]))
        m, d = num(0, 13, 2), num(0, 32, 2)
        s = f"{y}-{m}-{d}" if rng.random() < .5 else f"{d}/{m}/{y}"
        if rng.random() < .05:
            s = s.replace(rng.choice("-/"), rng.choice(".-/ "))
        if rng.random() < .5:
            parts = [num(0, 25, 2), num(0, 61, 2), num(0, 62, 2)][:rng.choice([1, 2, 3, 3, 4])]
            if rng.random() < .1:
                parts = ["23", "59", rng.choice(["59", "60", "61"])]
            s += rng.choice([" ", "T", "  ", "\t", ""]) + ":".join(parts)
        out.add(s.strip())
    return sorted(out - {""}) + ["yesterday", "2010-05-31", "31/05/2010", "2010/05/31", "12/31/2010"]


def test_sql_dates_are_the_dates_parse_dates_reads():
    import duckdb
    values = _date_strings(6000, seed=5)
    parsed, bad = parse_dates(pd.Series(values, dtype=object))
    expected = [None if b else p.date() for p, b in zip(parsed, bad)]
    con = duckdb.connect()
    got = [r[0] for r in con.execute(f"SELECT {events_check._date_sql('v')} FROM unnest(?) t(v)", [values]).fetchall()]
    assert got == expected
    assert 0.2 < (~bad).mean() < 0.8   # the sample holds both kinds


def test_sql_numbers_are_the_numbers_to_numeric_reads():
    import duckdb
    rng = random.Random(7)
    alphabet = list("0123456789") + list(".+-eE_ ,") + ["inf", "Infinity", "nan", "x"]
    values = sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))).strip() for _ in range(8000)}
                    - {""})
    expected = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(float)
    con = duckdb.connect()
    got = np.array([np.nan if r[0] is None else r[0] for r in con.execute(
        f"SELECT {events_check._num_sql('v')} FROM unnest(?) t(v)", [values]).fetchall()], float)
    same = (np.isnan(expected) & np.isnan(got)) | np.isclose(expected, got, rtol=1e-12)
    assert same.all(), [v for v, s in zip(values, same) if not s][:10]


def test_sql_strip_is_str_strip():
    import duckdb
    rng = random.Random(11)
    alphabet = ["a", "Z", "1", "é", "-", " ", "\t", "\r", "\n", "\x0b", "\x1c", "\xa0", "\u2003", "\u3000", "\x85"]
    values = sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 5))) for _ in range(5000)})
    con = duckdb.connect()
    got = [r[0] for r in con.execute(f"SELECT {events_check._strip_sql('v')} FROM unnest(?) t(v)", [values]).fetchall()]
    assert got == [v.strip() for v in values]


def test_empty_lines_are_found_outside_quotes_across_blocks(tmp_path, monkeypatch):
    text = b'h1,h2\r\n1,"a\r\n\r\nb"\r\n\r\n2,x\n\n\n3,"q""\n"\n\n4,y'
    path = tmp_path / "e.csv"
    path.write_bytes(text)
    for chunk in (3, 5, 1 << 20):
        monkeypatch.setattr(events_sql, "_CHUNK", chunk)
        assert events_check._empty_lines(path) == ([1, 2, 2, 3], 4)


# ---- aggregation of a path ---------------------------------------------------------------------------------
@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_aggregated_counts_and_the_analysis_frame_are_the_same_from_the_path(tmp_path, ext):
    frame = build_cohort()
    data = write_table(frame, tmp_path / "cohort.csv")
    ev = write_table(build_events(frame), tmp_path / f"events.{ext}")
    memory = load_cohort(data, events=ev)
    disk = load_cohort(data, events=ev, events_in_memory_max_bytes=0)
    from_frame = aggregation.aggregate_events(memory.events, memory.frame)
    from_path = aggregation.aggregate_events(disk.events, disk.frame)
    pd.testing.assert_frame_equal(from_path, from_frame)
    assert from_path["inpatient_days_post"].sum() > 0
    a, _ = pipeline.prepare(memory, Plan())
    b, results = pipeline.prepare(disk, Plan())
    pd.testing.assert_frame_equal(b, a)
    assert any(OUT_OF_CORE in w for w in results.warnings)


def test_the_view_gives_the_values_read_table_gives(tmp_path):
    import duckdb
    ev = events_table().rename(columns={"quantity": "qty"})
    ev.loc[0, "qty"] = -9
    ev.loc[1, "service"] = " gp "
    ev.loc[2, "event_date"] = "03/04/2010"
    ev.loc[3, "cost_gbp"] = "12,5"
    ev.loc[4, "participant_id"] = "NA"
    path = write_table(ev, tmp_path / "events.csv", sep=";")
    plan = plan_from_dict({"data": {"columns": {"quantity": "qty"}, "missing_codes": [-9]}})
    expected = read_table(path, plan, table="events")
    con = duckdb.connect()
    got = con.execute(events_check.events_view_sql(path, plan, numbered=True)).df()
    assert (got["_rn"] + 1).tolist() == expected["_row"].tolist()
    pid = got["participant_id"].astype(object)
    assert pid.where(pid.notna(), None).tolist() == expected["participant_id"].astype(object).where(
        expected["participant_id"].notna(), None).tolist()
    assert got["service"].tolist() == expected["service"].tolist()
    np.testing.assert_array_equal(got["quantity"].to_numpy(float), pd.to_numeric(expected["quantity"]).to_numpy(float))
    np.testing.assert_array_equal(got["cost_gbp"].to_numpy(float), pd.to_numeric(expected["cost_gbp"]).to_numpy(float))
    assert pd.to_datetime(got["event_date"]).tolist() == parse_dates(expected["event_date"])[0].tolist()


# ---- scale: 2 million events, a fraction of the memory -----------------------------------------------------
_CHILD = textwrap.dedent("""
    import json, sys, tracemalloc
    import duckdb, numpy, pandas, pyarrow.parquet
    from phb_eval import events, io, validate
    mode, people, ev = sys.argv[1:]

    def status(key):   # MiB; VmHWM is this process's peak resident memory (ru_maxrss survives exec)
        with open("/proc/self/status") as fh:
            return next(int(ln.split()[1]) for ln in fh if ln.startswith(key)) / 1024
    participants = pandas.read_parquet(people)
    base = status("VmRSS:")
    with open("/proc/self/clear_refs", "w") as fh:   # reset VmHWM to the current size
        fh.write("5")
    tracemalloc.start()
    out = {}
    if mode == "disk":
        cohort = io.load_cohort(people, events=ev, events_in_memory_max_bytes=0)
        problems = validate.validate_cohort(cohort, None, today="2024-01-01")
        counts = events.aggregate_events(cohort.events, cohort.frame)
        out["errors"] = {}
        for p in problems:
            if p.level == "error":
                out["errors"][p.column] = out["errors"].get(p.column, 0) + p.count
        out["gp"] = float(counts["gp_consultations_pre"].sum() + counts["gp_consultations_post"].sum())
    else:
        frame = io.read_table(ev, table="events")      # what the in-memory route holds
        out["rows"] = len(frame)
    out["python_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    out["rss_mb"] = status("VmHWM:") - base
    print(json.dumps(out))
""")


def _write_scale_files(tmp_path, n_people=20_000, n_events=2_000_000):
    import pyarrow as pa
    import pyarrow.parquet as pq
    rng = np.random.default_rng(3)
    ids = np.array([f"P{i:06d}" for i in range(n_people)])
    consent = np.datetime64("2010-04-01") + rng.integers(0, 400, n_people).astype("timedelta64[D]")
    people = tmp_path / "people.parquet"
    pq.write_table(pa.table({
        "participant_id": ids, "group": np.where(np.arange(n_people) % 2, "phb", "control"),
        "site": (np.arange(n_people) % 20).astype(str), "condition": np.full(n_people, "chc"),
        "consent_date": consent.astype("datetime64[D]")}), people)
    who = rng.integers(0, n_people, n_events)
    services = np.array(["inpatient", "ae", "gp", "outpatient"])
    svc = services[rng.choice(4, n_events, p=[0.05, 0.1, 0.7, 0.15])]
    pid = ids[who].astype(object)
    pid[::100_000] = "UNKNOWN"                                   # 20 unknown people
    qty = np.where(svc == "inpatient", rng.integers(1, 10, n_events), 1).astype(float)
    qty[5::250_000] = -1.0                                       # 8 negative quantities
    date = consent[who] + rng.integers(-400, 400, n_events).astype("timedelta64[D]")
    ev = tmp_path / "events.parquet"
    pq.write_table(pa.table({"participant_id": pa.array(pid, pa.string()), "event_date": date.astype("datetime64[D]"),
                             "service": svc, "quantity": qty}), ev, row_group_size=250_000)
    k = (date - consent[who]).astype(int)
    gp = int(((svc == "gp") & (k >= -365) & (k < 365) & (pid != "UNKNOWN")).sum())
    return people, ev, gp


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="peak memory is read from Linux /proc")
def test_two_million_events_validate_and_aggregate_out_of_core_in_little_memory(tmp_path):
    people, ev, gp = _write_scale_files(tmp_path)
    script = tmp_path / "child.py"
    script.write_text(_CHILD)

    def run(mode):
        proc = subprocess.run([sys.executable, str(script), mode, str(people), str(ev)], capture_output=True,
                              text=True, cwd=Path(__file__).parent.parent)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])
    disk, memory = run("disk"), run("memory")
    assert memory["rows"] == 2_000_000
    assert disk["errors"] == {"participant_id": 20, "quantity": 8}
    assert disk["gp"] == gp
    print(f"\npeak above baseline, out of core / in memory: Python (tracemalloc) {disk['python_mb']:.0f} / "
          f"{memory['python_mb']:.0f} MiB, resident incl. DuckDB {disk['rss_mb']:.0f} / {memory['rss_mb']:.0f} MiB")
    assert disk["python_mb"] < 0.1 * memory["python_mb"], (disk, memory)
    assert disk["rss_mb"] < 0.5 * memory["rss_mb"], (disk, memory)


def test_invalid_utf8_after_the_sampled_start_is_read_again_as_latin1(tmp_path):
    frame = build_cohort()
    ev = events_table(frame)
    ev = pd.concat([ev] * 4000, ignore_index=True)               # > 256 KB before the odd byte
    text = ev.to_csv(index=False) + "001,2010-03-02,caf\xe9,1,\n"
    assert len(text) > 300_000
    problems, _ = both_routes_errors(tmp_path, text.encode("latin-1"), frame)
    assert only(problems, "service", "not an allowed").value == "café"


def both_routes_errors(tmp_path, raw, frame):
    """Like both_routes, for files whose encoding notes differ in wording (Latin-1 vs Windows-1252)."""
    data = write_table(frame, tmp_path / "cohort.csv")
    ev = write_events(tmp_path, raw, "csv")
    expected = validate_cohort(load_cohort(data, events=ev), Plan(), today=TODAY)
    got = validate_cohort(load_cohort(data, events=ev, events_in_memory_max_bytes=0), Plan(), today=TODAY)
    assert any("UTF-8" in p.rule and "Latin-1" in p.rule for p in got if p.level == "warning")
    errors = [[comparable(p) for p in ps if p.level == "error"] for ps in (got, expected)]
    assert errors[0] == errors[1]
    return [p for p in got if p.level == "error"], ev


def test_row_numbers_that_cannot_be_vouched_for_are_said_so(tmp_path):
    """A stray quote inside an unquoted cell (read literally by pandas and DuckDB) and an empty line:
    the quote-aware scan for empty lines cannot place them, and says so rather than guess silently."""
    raw = b'participant_id,event_date,service\n001,2010-03-02,g"p\n\n002,2010-03-02,gp\n999,2010-03-02,gp\n'
    frame = build_cohort()
    data = write_table(frame, tmp_path / "cohort.csv")
    ev = write_events(tmp_path, raw, "csv")
    got = validate_cohort(load_cohort(data, events=ev, events_in_memory_max_bytes=0), Plan(), today=TODAY)
    assert any("may be off" in p.rule for p in got if p.level == "warning")
    expected = validate_cohort(load_cohort(data, events=ev), Plan(), today=TODAY)
    assert {p.column for p in got if p.level == "error"} == {p.column for p in expected if p.level == "error"}


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_aggregating_a_path_applies_the_plans_mapping_and_codes(tmp_path, ext):
    """A mapped quantity column and a missing code count as validation read them, not raw."""
    frame = build_cohort()
    data = write_table(frame, tmp_path / "cohort.csv")
    ev = build_events(frame).rename(columns={"quantity": "qty", "service": "svc"})
    ev.loc[ev["svc"].eq("inpatient"), "qty"] = 3.0
    ev.loc[0, "qty"] = -9                        # a missing code: not -9 days
    ev["svc"] = " " + ev["svc"].astype(str)      # padded labels are still counted
    path = write_table(ev, tmp_path / f"events.{ext}")
    plan = plan_from_dict({"data": {"columns": {"quantity": "qty", "service": "svc"}, "missing_codes": [-9]}})
    memory = load_cohort(data, events=path, plan=plan)
    disk = load_cohort(data, events=path, plan=plan, events_in_memory_max_bytes=0)
    from_frame = aggregation.aggregate_events(memory.events, memory.frame)
    from_path = aggregation.aggregate_events(disk.events, disk.frame, plan=plan)
    pd.testing.assert_frame_equal(from_path, from_frame)
    assert from_path["inpatient_days_post"].max() >= 3
    with pytest.raises(PhbEvalError, match="--engine duckdb"):
        aggregation.aggregate_events(disk.events, disk.frame, engine="spark", plan=plan)
