"""Spark validation of Parquet event files (phb_eval.data.events_spark) gives DuckDB's problems, exactly."""
import math

import pandas as pd
import pytest

from cohort_factory import build_cohort, build_events, write_table
from phb_eval.io import load_cohort
from phb_eval.plan import Plan
from phb_eval.validate import validate_cohort

pytestmark = pytest.mark.spark
pytest.importorskip("pyspark")
TODAY = "2024-01-01"


def comparable(problem) -> dict:
    d = problem.to_dict()
    if isinstance(d["value"], float) and math.isnan(d["value"]):
        d["value"] = None
    return d


def routes(tmp_path, events: pd.DataFrame, frame, monkeypatch):
    """Problems of the DuckDB and the Spark route on the same Parquet file (info notes dropped)."""
    data = write_table(frame, tmp_path / "cohort.csv")
    ev = tmp_path / "events.parquet"
    events.to_parquet(ev, index=False)
    disk = load_cohort(data, events=ev, plan=Plan(), events_in_memory_max_bytes=0)
    duck = [comparable(p) for p in validate_cohort(disk, Plan(), today=TODAY) if p.level != "info"]
    from phb_eval.data import validation
    monkeypatch.setattr(validation, "check_events_file", None)   # the Spark route must not fall back to DuckDB
    spark = [comparable(p) for p in validate_cohort(disk, Plan(), today=TODAY, engine="spark") if p.level != "info"]
    return duck, spark


def test_every_rule_on_text_columns_matches_duckdb(tmp_path, monkeypatch):
    frame = build_cohort()
    ev = build_events(frame)
    ev["event_date"] = ev["event_date"].dt.strftime("%Y-%m-%d")
    ev = ev.astype({c: object for c in ("participant_id", "event_date", "service", "quantity", "cost_gbp")})
    cells = {"participant_id": {0: "999", 7: "1000", 3: None}, "service": {1: "dentist", 9: "GP", 4: None},
             "quantity": {2: "lots", 5: -2}, "cost_gbp": {8: "free", 3: -40.0},
             "event_date": {6: "yesterday", 11: "31/02/2010", 10: "2099-01-01", 12: "31/12/1850", 13: "05/06/2010"}}
    for col, values in cells.items():
        for i, v in values.items():
            ev.at[i, col] = v
    for col in ("quantity", "cost_gbp"):   # mixed numbers and words arrive as text from a Parquet export
        ev[col] = ev[col].map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    duck, spark = routes(tmp_path, ev, frame, monkeypatch)
    assert len(duck) >= 10 and spark == duck


def test_typed_columns_and_many_rows_match_duckdb(tmp_path, monkeypatch):
    frame = build_cohort()
    frame["participant_id"] = [str(i) for i in range(1, len(frame) + 1)]
    ev = build_events(frame)
    ev = pd.concat([ev] * 30, ignore_index=True)            # more offending rows than are listed
    ev["participant_id"] = [float(i % len(frame) + 1) for i in range(len(ev))]
    ev.loc[::7, "quantity"] = -1.0
    ev.loc[3, "participant_id"] = None
    ev.loc[5, "event_date"] = pd.Timestamp("2099-03-01 10:30")
    duck, spark = routes(tmp_path, ev, frame, monkeypatch)
    assert any("more row(s)" in p["rule"] for p in duck) and spark == duck
