"""Problems found in the input: where (file, row, column), what (value, rule), what to do (fix).

``Report`` collects them for the in-memory checks (``validation``) and the DuckDB checks (``events_sql``)
alike, so both routes word, list and count a broken rule the same way: the first ``MAX_LISTED`` rows are
listed, then one line with ``count`` set to how many more rows break it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ..errors import describe

__all__ = ["Problem", "Report", "MAX_LISTED", "MISSING_HINT"]

MAX_LISTED = 20          # rows listed per rule before "and N more rows"
_MISSING_HINT = "or, if this value means 'missing', list it in the plan under data.missing_codes"


@dataclass
class Problem:
    """One broken rule: where (file, row, column), what (value, rule) and what to do (fix).

    ``count`` is 1 for a problem in one row; on the closing "N more rows" line of a long list it is N.
    """

    level: str              # "error" or "warning"
    file: str | None
    row: int | None
    column: str | None
    value: object
    rule: str
    fix: str | None = None
    count: int = 1

    def __str__(self) -> str:
        return describe(self.file, self.row, self.column, self.value, self.rule, self.fix)

    def to_dict(self) -> dict:
        """Plain JSON-ready mapping (for ``--json``), with the one-line message under ``message``."""
        out = asdict(self)
        out["value"] = _plain(self.value)
        out["message"] = str(self)
        return out


def _plain(value):
    """numpy/pandas scalars -> Python ones, so messages read 200.0 rather than np.float64(200.0)."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return value


class _Report:
    """Collects problems; ``rows`` lists up to MAX_LISTED rows of a rule and summarises the rest."""

    def __init__(self):
        self.problems: list[Problem] = []

    def add(self, level, file, row, column, value, rule, fix=None, count=1):
        self.problems.append(Problem(level, file, None if row is None else int(row), column,
                                     _plain(value), rule, fix, int(count)))

    def rows(self, frame, mask, column, rule, fix, *, level="error", values=None, detail=None):
        """Report the rows where ``mask`` is True. ``values`` (default: the column) supplies the value
        shown; ``detail(labels) -> list[str]`` adds per-row text for the listed rows only."""
        mask = mask.fillna(False).astype(bool) if mask.dtype != bool else mask
        total = int(mask.sum())
        if not total:
            return
        shown = mask[mask].index[:MAX_LISTED]
        vals = (values if values is not None else frame[column]).loc[shown].tolist()
        extra = detail(shown) if detail is not None else [None] * len(shown)
        files = frame.loc[shown, "_file"].tolist()
        rows = frame.loc[shown, "_row"].tolist()
        for f, r, v, x in zip(files, rows, vals, extra):
            self.add(level, f, r, column, v, f"{rule} ({x})" if x else rule, fix)
        rest = total - len(shown)
        if rest:
            rest_files = frame.loc[mask[mask].index[MAX_LISTED:], "_file"].unique()
            self.add(level, rest_files[0] if len(rest_files) == 1 else None, None, column, None,
                     f"{rest} more row(s) break the same rule ({rule}); the first {MAX_LISTED} are listed above",
                     fix, count=rest)

    def items(self, items, make):
        """Report a list of non-row items (e.g. sites), MAX_LISTED at most, then one summary line."""
        items = list(items)
        for it in items[:MAX_LISTED]:
            self.add(**make(it))
        if len(items) > MAX_LISTED:
            last = make(items[MAX_LISTED])
            rest = len(items) - MAX_LISTED
            self.add(last["level"], last.get("file"), None, last.get("column"), None,
                     f"{rest} more like this, not listed", last.get("fix"), count=rest)




Report = _Report
MISSING_HINT = _MISSING_HINT
