"""Former home of the file readers and ``load_cohort``, now in ``phb_eval.data``: ``readers`` (one file to
a raw table), ``mapping`` (the plan's column names and missing codes) and ``cohort`` (types, the cohort).

Kept so that ``from phb_eval.io import load_cohort`` (and the older private names) keeps working; new
code imports from ``phb_eval.data``.
"""
from __future__ import annotations

from .contract import DATE_COLUMNS, EVENT_COLUMNS, ID_COLUMNS, TEXT_COLUMNS  # noqa: F401
from .data import cohort as _cohort
from .data import mapping as _mapping_mod
from .data import readers as _readers
from .data.cohort import EVENTS_IN_MEMORY_MAX_BYTES, Cohort, load_cohort, read_table, write_table  # noqa: F401
from .data.readers import BOOKKEEPING, FORMATS, ROW_BASIS, DataWarning, parse_dates, sha256_file  # noqa: F401

__all__ = ["read_table", "write_table", "load_cohort", "Cohort", "sha256_file", "parse_dates", "DataWarning",
           "DATE_COLUMNS", "TEXT_COLUMNS", "EVENT_COLUMNS", "FORMATS", "ROW_BASIS", "BOOKKEEPING",
           "EVENTS_IN_MEMORY_MAX_BYTES"]


def __getattr__(name):
    """Any other (private) name of the old module, from the module it moved to."""
    for module in (_cohort, _mapping_mod, _readers):
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
