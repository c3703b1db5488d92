"""Estimate rows in the results layout, and the thin Results object that gathers tables.

Every estimator returns a tidy DataFrame whose columns start with ``RESULT_COLUMNS`` (see
data-contract.md → Results); extra columns (``df``, ``lambda_gbp``, ``note`` …) may follow.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from .contract import RESULT_COLUMNS

__all__ = ["estimate_row", "rows_frame", "t_interval", "Results", "RESULT_COLUMNS"]


def t_interval(estimate: float, se: float, df: float | None, conf_level: float):
    """Two-sided interval and p-value from t (df given) or normal (df None or inf)."""
    if se is None or not np.isfinite(se) or se <= 0:
        return (math.nan, math.nan, math.nan)
    z = estimate / se
    if df is None or not np.isfinite(df):
        q = stats.norm.ppf(0.5 + conf_level / 2)
        p = 2 * stats.norm.sf(abs(z))
    else:
        q = stats.t.ppf(0.5 + conf_level / 2, df)
        p = 2 * stats.t.sf(abs(z), df)
    return (estimate - q * se, estimate + q * se, p)


def estimate_row(analysis, outcome, method, estimate, se=math.nan, ci_low=math.nan, ci_high=math.nan,
                 p_value=math.nan, n_phb=None, n_control=None, stratum="all", **extra) -> dict:
    """One row of the results layout; extra keyword arguments become extra columns."""
    row = {"analysis": analysis, "outcome": outcome, "stratum": stratum, "method": method,
           "estimate": float(estimate) if estimate is not None else math.nan,
           "se": float(se) if se is not None else math.nan,
           "ci_low": float(ci_low) if ci_low is not None else math.nan,
           "ci_high": float(ci_high) if ci_high is not None else math.nan,
           "p_value": float(p_value) if p_value is not None else math.nan,
           "n_phb": None if n_phb is None else int(n_phb),
           "n_control": None if n_control is None else int(n_control)}
    row.update(extra)
    return row


def rows_frame(rows) -> pd.DataFrame:
    """A DataFrame of estimate rows with the contract columns first."""
    df = pd.DataFrame(list(rows))
    if df.empty:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    extra = [c for c in df.columns if c not in RESULT_COLUMNS]
    for c in RESULT_COLUMNS:
        if c not in df.columns:
            df[c] = np.nan
    return df[RESULT_COLUMNS + extra]


@dataclass
class Results:
    """What a run produced: estimate rows, named tables, figures, warnings and meta."""

    estimates: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=RESULT_COLUMNS))
    tables: dict = field(default_factory=dict)       # name -> DataFrame (published after disclosure control)
    figures: dict = field(default_factory=dict)      # name -> matplotlib Figure
    warnings: list = field(default_factory=list)     # sentences for people
    skipped: list = field(default_factory=list)      # sentences: analyses not run and why
    meta: dict = field(default_factory=dict)
    table_specs: dict = field(default_factory=dict)  # table name -> disclosure spec (see report/writer.py)

    def add(self, rows) -> None:
        """Append estimate rows (a DataFrame or dicts); ``None`` — an analysis that was skipped — adds nothing."""
        if rows is None:
            return
        frame = rows if isinstance(rows, pd.DataFrame) else rows_frame(rows)
        if frame.empty:
            return
        self.estimates = rows_frame(pd.concat([self.estimates, frame], ignore_index=True).to_dict("records")) \
            if not self.estimates.empty else rows_frame(frame.to_dict("records"))
