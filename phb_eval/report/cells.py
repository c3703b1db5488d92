"""Text cells made safe for spreadsheets (CSV/formula injection).

A spreadsheet reads a cell beginning with ``=``, ``+``, ``-``, ``@``, tab or carriage return as a formula,
so a category value such as ``=HYPERLINK(...)`` in the data would run when tables.csv or tables.xlsx is
opened. Following the OWASP CSV-injection guidance, such text is prefixed with a single quote. Numbers
stay numbers: numeric cells are never touched, and text that is exactly a number (``-0.5``, ``+3``,
``-1e-3``) is left as it is, since no spreadsheet evaluates it as a formula.
"""
from __future__ import annotations

import re

import pandas as pd

__all__ = ["FORMULA_START", "safe_text", "neutralise"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def safe_text(value):
    """``value`` with a leading quote when it is text a spreadsheet would read as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not NUMBER.match(value):
        return "'" + value
    return value


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells and column names are spreadsheet-safe (numeric columns untouched)."""
    out = frame.copy()
    for i, col in enumerate(out.columns):
        s = out.iloc[:, i]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s) \
                or pd.api.types.is_datetime64_any_dtype(s):
            continue
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(object)
        values = s.to_numpy(dtype=object)
        seen = pd.unique(values[pd.notna(values)])   # each distinct text checked once (long tables repeat them)
        changed = {v: safe_text(v) for v in seen if isinstance(v, str) and safe_text(v) != v}
        if changed:
            out.isetitem(i, s.map(lambda v: changed.get(v, v) if isinstance(v, str) else v, na_action="ignore"))
    out.columns = [safe_text(c) for c in out.columns]
    return out
