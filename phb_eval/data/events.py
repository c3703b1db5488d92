"""The event table as the aggregation (``phb_eval.events``) reads it: per-person windows from the
participant table, and the events themselves registered in DuckDB, either a frame already read and checked
in memory or a CSV/Parquet path streamed through ``events_sql.events_view_sql`` (read exactly as validation
read it: the plan's column mapping, missing codes, trimmed text, UK dates, decimal commas)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..contract import EVENT_REQUIRED
from ..errors import DataError
from .events_sql import events_view_sql
from .mapping import _mapping

__all__ = ["participant_windows", "register_events", "check_event_columns", "source_label", "plan_rewrites_events"]


def participant_windows(participants: pd.DataFrame) -> pd.DataFrame:
    """Small per-person frame for the join: ``pid``, ``consent`` (ISO date text), ``post_observed`` (0/1)."""
    if "participant_id" not in participants.columns or "consent_date" not in participants.columns:
        raise DataError("service events need 'participant_id' and 'consent_date' in the participant table. "
                        "Fix: add each participant's consent date, or give _pre/_post counts instead of events")
    consent = pd.to_datetime(participants["consent_date"], errors="coerce", dayfirst=False)
    died = pd.to_numeric(participants["died"], errors="coerce").fillna(0) if "died" in participants else 0
    death = pd.to_datetime(participants["death_date"], errors="coerce") if "death_date" in participants \
        else pd.Series(pd.NaT, index=participants.index)
    died_unknown_date = ((np.asarray(died) == 1) & death.isna().to_numpy())
    return pd.DataFrame({
        "pid": participants["participant_id"].astype(str).to_numpy(),
        "consent": consent.dt.strftime("%Y-%m-%d").to_numpy(),
        "post_observed": (~died_unknown_date).astype(int),
    })


def check_event_columns(columns: dict, source: str) -> None:
    """Refuse an event table without the contract's required columns (``contract.EVENT_REQUIRED``)."""
    missing = sorted(set(EVENT_REQUIRED) - set(columns))
    if missing:
        raise DataError(f"{source}: the service-event table lacks column(s) {missing}. Fix: give participant_id, "
                        "event_date, service (and quantity for inpatient bed days; cost_gbp optional)")


def source_label(events) -> str:
    return str(events) if isinstance(events, (str, Path)) else "service events"


def register_events(con, events, plan=None) -> None:
    """Make the view/table ``events`` on a DuckDB connection: a frame as it is, a path streamed (out of core)."""
    import duckdb

    if not isinstance(events, (str, Path)):
        con.register("events", events)
        return
    path = str(events)
    if not Path(path).exists():
        raise DataError(f"{path}: event file not found. Fix: give an existing CSV or Parquet file")
    try:
        con.execute(f"CREATE VIEW events AS {events_view_sql(path, plan)}")
        con.execute("DESCRIBE events").fetchall()
    except duckdb.Error as exc:
        if "quoted new lines" not in str(exc):
            raise
        con.execute("DROP VIEW IF EXISTS events")
        con.execute(f"CREATE VIEW events AS {events_view_sql(path, plan, parallel=False)}")


def plan_rewrites_events(plan) -> bool:
    """Whether the plan maps event columns or sets missing codes (Spark reads a file as it is, so cannot)."""
    return bool(_mapping(plan, "events") or plan.data.missing_codes or plan.data.missing_codes_by_column)
