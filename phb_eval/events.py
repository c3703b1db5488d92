"""Record-linked service events -> per-person ``_pre`` / ``_post`` counts (DuckDB by default; Spark).

Windows (relative to ``consent_date``, in days ``k = event_date - consent_date``):
``pre`` = [consent − 365, consent), i.e. −365 ≤ k < 0; ``post`` = [consent, consent + 365), 0 ≤ k < 365.
Events outside both windows are not counted.

Counts: ``inpatient_admissions`` = number of inpatient events; ``inpatient_days`` = Σ ``quantity`` of
inpatient events (missing if any of that person's inpatient events in the window lacks a quantity);
every other service = number of events (``quantity`` is 1 for them by the data contract and is not
used). Only services whose event type occurs in the file are produced (a source that never records A&E
gives no A&E columns rather than a column of zeros).

Observed windows: a person with no events gets 0 for an observed window. The pre window is observed
when ``consent_date`` is known. The post window is observed unless the person died (``died == 1``)
with no ``death_date``: then every ``_post`` value is missing (never zero). With a death date the
events up to death are counted and ``derive.exposure_post_years`` supplies the offset.

Costs given per event (``cost_gbp``): ``indirect_cost_given_pre/_post`` = Σ ``cost_gbp`` in the
window, and ``<service>_given_pre/_post`` = the units (as counted above) of events that carried a
cost; ``costs.person_costs`` prices only the remaining units with unit costs.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .contract import SERVICE_TO_EVENT, WINDOW_DAYS
from .data.events import (check_event_columns, participant_windows, plan_rewrites_events, register_events,
                          source_label)
from .data.spark import spark_session
from .errors import DataError, PhbEvalError

__all__ = ["WINDOW_DAYS", "aggregate_events", "merge_counts", "participant_windows", "spark_session"]

ENGINES = ("duckdb", "spark")


def _date_expr(col: str, typ: str, engine: str) -> str:
    typ = typ.upper()
    if any(t in typ for t in ("DATE", "TIMESTAMP")):
        return f"CAST({col} AS DATE)"
    if engine == "duckdb":
        return (f"COALESCE(TRY_CAST(TRY_CAST({col} AS TIMESTAMP) AS DATE), "
                f"CAST(TRY_STRPTIME(CAST({col} AS VARCHAR), '%d/%m/%Y') AS DATE))")
    return f"COALESCE(try_to_date(CAST({col} AS STRING)), try_to_date(CAST({col} AS STRING), 'dd/MM/yyyy'))"


def _num(col: str, engine: str) -> str:
    return f"TRY_CAST({col} AS DOUBLE)" if engine == "duckdb" else f"try_cast({col} AS DOUBLE)"


def _sql(columns: dict, event_types: list[str], engine: str) -> str:
    """The one aggregation, written once for both engines (only the date functions differ)."""
    diff = ("date_diff('day', p.consent_d, e.d)" if engine == "duckdb" else "datediff(e.d, p.consent_d)")
    qty = _num("quantity", engine) if "quantity" in columns else "CAST(1.0 AS DOUBLE)"
    cost = _num("cost_gbp", engine) if "cost_gbp" in columns else "CAST(NULL AS DOUBLE)"
    has_cost = "cost_gbp" in columns
    consent = ("CAST(consent AS DATE)" if engine == "duckdb" else "try_to_date(consent)")
    selects = ["p.pid AS participant_id"]
    for window, cond in (("pre", f"w.k >= -{WINDOW_DAYS} AND w.k < 0"), ("post", f"w.k >= 0 AND w.k < {WINDOW_DAYS}")):
        observed = "p.consent_d IS NOT NULL" + (" AND p.post_observed = 1" if window == "post" else "")
        for service, (etype, rule) in SERVICE_TO_EVENT.items():
            if etype not in event_types:
                continue
            hit = f"w.service = '{etype}' AND {cond}"
            if rule == "quantity":
                value = (f"CASE WHEN SUM(CASE WHEN {hit} AND w.q IS NULL THEN 1 ELSE 0 END) > 0 THEN NULL "
                         f"ELSE COALESCE(SUM(CASE WHEN {hit} THEN w.q ELSE 0 END), 0) END")
                given = f"COALESCE(SUM(CASE WHEN {hit} AND w.c IS NOT NULL THEN w.q ELSE 0 END), 0)"
            else:
                value = f"COALESCE(SUM(CASE WHEN {hit} THEN 1 ELSE 0 END), 0)"
                given = f"COALESCE(SUM(CASE WHEN {hit} AND w.c IS NOT NULL THEN 1 ELSE 0 END), 0)"
            selects.append(f"CASE WHEN {observed} THEN CAST({value} AS DOUBLE) END AS {service}_{window}")
            if has_cost:
                selects.append(f"CASE WHEN {observed} THEN CAST({given} AS DOUBLE) END AS {service}_given_{window}")
        if has_cost:
            selects.append(f"CASE WHEN {observed} THEN CAST(COALESCE(SUM(CASE WHEN {cond} THEN w.c ELSE 0 END), 0) "
                           f"AS DOUBLE) END AS indirect_cost_given_{window}")
    ev = (f"SELECT CAST(participant_id AS {'VARCHAR' if engine == 'duckdb' else 'STRING'}) AS pid, "
          f"{_date_expr('event_date', columns['event_date'], engine)} AS d, "
          f"CAST(service AS {'VARCHAR' if engine == 'duckdb' else 'STRING'}) AS service, {qty} AS q, {cost} AS c "
          "FROM events")
    return f"""
WITH p AS (SELECT pid, {consent} AS consent_d, post_observed FROM people),
     e AS ({ev}),
     w AS (SELECT e.pid, e.service, e.q, e.c, {diff} AS k FROM e JOIN p ON e.pid = p.pid)
SELECT {', '.join(selects)}
FROM p LEFT JOIN w ON w.pid = p.pid
GROUP BY p.pid, p.consent_d, p.post_observed
ORDER BY p.pid
"""


def _run_duckdb(events, people: pd.DataFrame, plan=None):
    import duckdb

    con = duckdb.connect()
    try:
        con.register("people", people)
        register_events(con, events, plan)
        columns = {r[0]: r[1] for r in con.execute("DESCRIBE events").fetchall()}
        check_event_columns(columns, source_label(events))
        types = [r[0] for r in con.execute("SELECT DISTINCT CAST(service AS VARCHAR) FROM events").fetchall()]
        stats = con.execute(
            f"SELECT COUNT(*), SUM(CASE WHEN e.pid NOT IN (SELECT pid FROM people) THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN e.d IS NULL THEN 1 ELSE 0 END) FROM (SELECT CAST(participant_id AS VARCHAR) AS pid, "
            f"{_date_expr('event_date', columns['event_date'], 'duckdb')} AS d FROM events) e").fetchone()
        counts = con.execute(_sql(columns, types, "duckdb")).df()
    finally:
        con.close()
    return counts, types, stats


def _run_spark(events, people: pd.DataFrame, master):
    spark = spark_session(master)
    spark.createDataFrame(people.astype({"post_observed": "int64"})).createOrReplaceTempView("people")
    if isinstance(events, (str, Path)):
        path = str(events)
        if not Path(path).exists():
            raise DataError(f"{path}: event file not found. Fix: give an existing CSV or Parquet file")
        sdf = (spark.read.parquet(path) if path.lower().endswith(".parquet")
               else spark.read.option("header", True).csv(path))
    else:
        pdf = events.copy()
        for col in pdf.columns:      # Arrow-friendly types: dates as ISO text, ids as text
            if pd.api.types.is_datetime64_any_dtype(pdf[col]):
                pdf[col] = pdf[col].dt.strftime("%Y-%m-%d")
            elif pdf[col].dtype == object:
                pdf[col] = pdf[col].astype(str).where(pdf[col].notna(), None)
        sdf = spark.createDataFrame(pdf)
    sdf.createOrReplaceTempView("events")
    columns = {f.name: f.dataType.simpleString() for f in sdf.schema.fields}
    check_event_columns(columns, source_label(events))
    types = [r[0] for r in spark.sql("SELECT DISTINCT CAST(service AS STRING) FROM events").collect()]
    d = _date_expr("event_date", columns["event_date"], "spark")
    row = spark.sql(f"SELECT COUNT(*), SUM(CASE WHEN p.pid IS NULL THEN 1 ELSE 0 END), "
                    f"SUM(CASE WHEN e.d IS NULL THEN 1 ELSE 0 END) FROM (SELECT CAST(participant_id AS STRING) AS pid, "
                    f"{d} AS d FROM events) e LEFT JOIN (SELECT DISTINCT pid FROM people) p "
                    "ON e.pid = p.pid").collect()[0]
    counts = spark.sql(_sql(columns, types, "spark")).toPandas()
    return counts, types, tuple(row)


def aggregate_events(events, participants: pd.DataFrame, engine: str = "duckdb", spark_master: str | None = None,
                     plan=None) -> pd.DataFrame:
    """Per-person ``<service>_pre`` / ``<service>_post`` counts from a service-event table.

    Parameters
    ----------
    events : DataFrame, or path to a CSV / Parquet file (read by the engine itself, out of core).
    participants : the participant table (``participant_id``, ``consent_date``; ``died``/``death_date``).
    engine : ``"duckdb"`` (embedded, default) or ``"spark"`` (local session unless ``spark_master``).
    plan : the analysis plan; for a path, its event column mapping and missing codes are applied in SQL
        (DuckDB). Spark reads a path as it is, so a plan that maps event columns or sets missing codes is
        refused there (load the file in memory, or use DuckDB).

    Returns
    -------
    DataFrame, one row per participant (sorted by id): ``participant_id``, ``<service>_pre``,
    ``<service>_post`` for each service whose event type occurs, and, when events carry ``cost_gbp``,
    ``<service>_given_pre/_post`` and ``indirect_cost_given_pre/_post``. Values are floats; missing
    means the window was not observed. ``attrs["notes"]`` holds sentences about events not counted.
    See the module docstring for the windows and rules.
    """
    if engine not in ENGINES:
        raise PhbEvalError(f"unknown event engine {engine!r}; choose duckdb or spark")
    people = participant_windows(participants)
    if engine == "duckdb":
        counts, types, stats = _run_duckdb(events, people, plan)
    else:
        if isinstance(events, (str, Path)) and plan is not None and plan_rewrites_events(plan):
            raise PhbEvalError(f"{events}: the spark engine reads the event file as it is, but the plan maps event "
                               "columns or sets missing-value codes. Fix: use --engine duckdb, or give the file "
                               "with the contract's column names and no missing codes")
        counts, types, stats = _run_spark(events, people, spark_master)
    counts["participant_id"] = counts["participant_id"].astype(str)
    counts = counts.sort_values("participant_id", kind="stable").reset_index(drop=True)
    value_cols = [c for c in counts.columns if c != "participant_id"]
    counts[value_cols] = counts[value_cols].astype(float)
    notes = []
    known = {e for e, _ in SERVICE_TO_EVENT.values()}
    unknown = sorted(str(t) for t in types if t not in known)
    total, orphan, undated = (int(x or 0) for x in stats)
    if unknown:
        notes.append(f"events: service types {unknown} are not in the data contract and were not counted")
    if orphan:
        notes.append(f"events: {orphan} of {total} events belong to no participant in the table and were not counted")
    if undated:
        notes.append(f"events: {undated} events have no readable event_date and were not counted")
    counts.attrs["notes"] = notes
    return counts


def merge_counts(frame: pd.DataFrame, counts: pd.DataFrame, warn: list | None = None) -> pd.DataFrame:
    """The participant frame with event-derived columns joined on ``participant_id`` (a copy).

    Event counts replace same-named columns already in the frame. Cells where both have a value and they
    disagree are reported to ``warn`` (a list) as a conflict; cells empty in the frame and filled by the
    events (people lost to questionnaire follow-up are still seen by record linkage) are reported as
    gaps filled. The aggregation notes in ``counts.attrs["notes"]`` are added too."""
    out = frame.copy()
    new = [c for c in counts.columns if c != "participant_id"]
    indexed = counts.set_index("participant_id")
    pid = out["participant_id"].astype(str)
    for col in new:
        values = pid.map(indexed[col]).astype(float)
        if col in out.columns and warn is not None:
            old = pd.to_numeric(out[col], errors="coerce")
            filled = old.isna() & values.notna()
            conflict = old.notna() & ~(old == values)
            if conflict.any():
                warn.append(f"events: {col} from the event table replaces the participant table's column, which "
                            f"differs for {int(conflict.sum())} people; check the record linkage or drop the column")
            if filled.any():  # record linkage observes people lost to questionnaire follow-up: a gap filled
                warn.append(f"events: {col} was empty in the participant table for {int(filled.sum())} people "
                            "and is taken from the event table (record linkage still observes them)")
        out[col] = values.to_numpy()
    if warn is not None:
        warn.extend(counts.attrs.get("notes", []))
    return out
