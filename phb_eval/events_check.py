"""Former home of the out-of-core event checks, now ``phb_eval.data.events_sql``. Kept so that
``from phb_eval.events_check import check_events_file`` keeps working."""
from __future__ import annotations

from .data import events_sql as _events_sql
from .data.events_sql import (OUT_OF_CORE_FORMATS, EventsFile, check_events_file,  # noqa: F401
                              events_view_sql, inspect_events_file)

__all__ = ["OUT_OF_CORE_FORMATS", "EventsFile", "inspect_events_file", "check_events_file", "events_view_sql"]


def __getattr__(name):
    """Any other (private) name of the old module, from the module it moved to."""
    if hasattr(_events_sql, name):
        return getattr(_events_sql, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
