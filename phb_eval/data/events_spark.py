"""Validate a Parquet service-event file with Spark (``--engine spark``): the rules of ``events_sql``, in Spark SQL.

For an event table too large for one machine's DuckDB (hundreds of millions of rows, or a cluster given by
``--spark-master``). Nothing but counts and the first ``MAX_LISTED`` offending rows of each rule reaches the
driver: one pass counts every rule (``count_if``), and each broken rule then takes its first rows by record
number (``ORDER BY … LIMIT``, a top-k per partition, never a sort of the whole table). Known participant
ids are a broadcast table. The problems are worded and shown as ``events_sql.check_events_file`` words
them (same rules, row numbers from 1 in the file, same values); a folder of Parquet part files is read as
one table, each listed row named by its part file.

Parquet only (its columns are typed, so nothing depends on CSV parsing): CSV event files, and plans that
map event columns or set missing codes, are validated by DuckDB (``check_events_file``), which streams them.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..contract import EVENT_REQUIRED, MIN_YEAR, SERVICE_EVENT_TYPES
from . import readers
from .events_sql import _TEXTS, _shown
from .problems import MAX_LISTED, Problem, _Report

__all__ = ["check_events_spark", "spark_can_check"]

_STRING = ("string", "varchar", "char")


def spark_can_check(path, plan=None) -> bool:
    """Whether Spark validates this event source: a .parquet file or a folder of them, read as it is."""
    from .events import plan_rewrites_events
    p = Path(str(path))
    parquet = (p.is_file() and p.suffix.lower() == ".parquet") or (p.is_dir() and any(p.glob("*.parquet")))
    return parquet and not (plan is not None and plan_rewrites_events(plan))


def _lit(value) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def _q(name: str) -> str:
    return "`" + str(name).replace("`", "``") + "`"


def _number(col: str, typ: str) -> str:
    if typ.startswith(_STRING):
        return f"try_cast(trim({col}) AS DOUBLE)"
    if typ == "boolean" or typ.startswith(("int", "bigint", "smallint", "tinyint", "double", "float", "decimal")):
        return f"CAST({col} AS DOUBLE)"
    return "CAST(NULL AS DOUBLE)"


def _date(col: str, typ: str) -> str:
    if typ.startswith(("date", "timestamp")):
        return f"CAST({col} AS DATE)"
    t = f"trim(CAST({col} AS STRING))"
    forms = ["yyyy-M-d", "d/M/yyyy"]
    day = ", ".join(f"try_to_date(regexp_extract({t}, '^([0-9/-]+)', 1), '{f}')" for f in forms)
    return (f"CASE WHEN {t} RLIKE '^([0-9]{{4}}-[0-9]{{1,2}}-[0-9]{{1,2}}|[0-9]{{1,2}}/[0-9]{{1,2}}/[0-9]{{4}})"
            f"([ T][0-9]{{1,2}}:[0-9]{{2}}(:[0-9]{{2}}(\\\\.[0-9]+)?)?)?$' THEN coalesce({day}) END")


def check_events_spark(path, participants: pd.DataFrame | None, plan=None, rep: _Report | None = None, *,
                       today=None, master: str | None = None) -> list[Problem]:
    """The service-event rules of ``validate`` on a Parquet file (or folder), run by Spark.

    Returns the ``Problem`` list added to ``rep``, in ``check_events_file``'s order. ``master``: a Spark
    master URL (default: a local session on 2 cores, ``events.spark_session``).
    """
    from .spark import spark_session

    today = pd.Timestamp.today().normalize() if today is None else pd.Timestamp(today).normalize()
    rep = rep if rep is not None else _Report()
    start = len(rep.problems)
    label = str(path)
    p = Path(label)
    if not p.exists():
        raise readers._fail(path, "file not found", "check the path and the file name")
    spark = spark_session(master)
    sdf = spark.read.parquet(label)
    types = {f.name: f.dataType.simpleString().lower() for f in sdf.schema.fields}
    for col in EVENT_REQUIRED:
        if col not in types:
            rep.add("error", label, None, col, None,
                    f"the service-event table has no '{col}' column (columns found: {', '.join(types) or 'none'})",
                    f"add a '{col}' column, or map your name in the plan: data.columns: {{{col}: YOUR_NAME}}")
    many = p.is_dir()
    sdf.select("*", "_metadata.row_index", "_metadata.file_path").createOrReplaceTempView("_events_raw")
    kept = " OR ".join(f"{_q(c)} IS NOT NULL" for c in types) or "true"
    inner = ["row_index + 1 AS _rn", "file_path AS _f", f"({kept}) AS _kept"]
    middle = ["e.*"]
    rules, stats, joins = [], [], ""
    if "participant_id" in types:
        pid = _q("participant_id")
        if types["participant_id"].startswith(("double", "float", "decimal")):   # whole numbers lose '.0'
            whole = spark.sql(f"SELECT coalesce(bool_and({pid} = floor({pid}) AND abs({pid}) < 9007199254740992), "
                              f"true) FROM _events_raw").collect()[0][0]
            pid = f"CAST({pid} AS BIGINT)" if whole else pid
        elif types["participant_id"] == "boolean":
            pid = f"CASE WHEN {pid} THEN 'True' WHEN NOT {pid} THEN 'False' END"
        inner.append(f"CAST({pid} AS STRING) AS pid")
        rules.append(("pid_missing", "pid IS NULL", "CAST(NULL AS STRING)"))
        if participants is not None and "participant_id" in participants:
            known = pd.unique(participants["participant_id"].dropna().map(str).to_numpy(dtype=object))
            spark.createDataFrame(pd.DataFrame({"id": known.astype(str)})).createOrReplaceTempView("_known_ids")
            joins = "LEFT JOIN (SELECT DISTINCT id FROM _known_ids) k ON e.pid = k.id"
            middle.append("k.id IS NOT NULL AS pid_known")
            rules.append(("pid_unknown", "pid IS NOT NULL AND NOT pid_known", "pid"))
    if "service" in types:
        inner.append(f"CAST({_q('service')} AS STRING) AS svc")
        allowed = ", ".join(_lit(s) for s in SERVICE_EVENT_TYPES)
        rules.append(("svc_label", f"svc IS NOT NULL AND svc NOT IN ({allowed})", "svc"))
        rules.append(("svc_missing", "svc IS NULL", "CAST(NULL AS STRING)"))
    for col, short in (("quantity", "q"), ("cost_gbp", "c")):
        if col not in types:
            continue
        inner.append(f"{_q(col)} AS {short}")
        middle.append(f"{_number(short, types[col])} AS {short}n")
        shown = f"named_struct('t', {short}, 'n', {short}n)"
        rules.append((f"{short}_nan", f"{short} IS NOT NULL AND {short}n IS NULL", shown))
        rules.append((f"{short}_neg", f"{short}n < 0", shown))
        text = types[col].startswith(_STRING)
        not_int = f"{short} IS NULL" + (f" OR NOT (trim({short}) RLIKE '^[+-]?[0-9]+$')" if text else "")
        stats.append(f"count_if({not_int}) AS {short}_not_int")
    if "event_date" in types:
        inner.append(f"{_q('event_date')} AS d")
        middle.append(f"{_date('d', types['event_date'])} AS dd")
        shown = "named_struct('t', d, 'dd', dd)"
        rules.append(("d_bad", "d IS NOT NULL AND dd IS NULL", shown))
        rules.append(("d_future", f"dd > DATE {_lit(today.strftime('%Y-%m-%d'))}", shown))
        rules.append(("d_early", f"year(dd) < {MIN_YEAR}", shown))
    spark.sql(f"SELECT {', '.join(middle)} FROM (SELECT {', '.join(inner)} FROM _events_raw) e {joins}") \
        .createOrReplaceTempView("_events_checked")
    counts = ["count(*) AS n_raw", "count_if(_kept) AS n_rows", *stats]
    counts += [f"count_if(_kept AND ({flag})) AS n_{key}" for key, flag, _s in rules]
    row = spark.sql(f"SELECT {', '.join(counts)} FROM _events_checked").collect()[0].asDict()
    listed = {}
    for key, flag, shown in rules:
        if row[f"n_{key}"]:
            hits = spark.sql(f"SELECT _f, _rn, {shown} AS v FROM _events_checked WHERE _kept AND ({flag}) "
                             f"ORDER BY _f, _rn LIMIT {MAX_LISTED}").collect()
            listed[key] = [(r["_f"], int(r["_rn"]), r["v"].asDict() if hasattr(r["v"], "asDict") else r["v"])
                           for r in hits]
    got = {"row": row, "empty_lines": []}
    for key, _flag, _shown_sql in rules:
        column, rule, fix = _TEXTS[key]
        if key == "d_future":
            rule = f"this date is in the future (today is {today:%Y-%m-%d})"
        total = int(row[f"n_{key}"] or 0)
        if not total:
            continue
        for file_path, rn, v in listed[key]:
            where = f"{label} ({Path(file_path.removeprefix('file:')).name})" if many else label
            rep.add("error", where, rn, column, _shown(key, v, got), rule, fix)
        rest = total - len(listed[key])
        if rest:
            rep.add("error", label, None, column, None,
                    f"{rest} more row(s) break the same rule ({rule}); the first {MAX_LISTED} are listed above",
                    fix, count=rest)
    return rep.problems[start:]
