"""Pieces every instrument scorer shares: reading item codes safely, naming rows in messages,
reconciling a score from items with a precomputed one, and labelling why a score is missing.

Nothing here knows an instrument's rules; ascot.py, ghq12.py, eq5d.py and carer.py hold those.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError, describe

__all__ = ["Part", "MISSING_REASONS", "MAX_NAMED", "CONFIG_DIR", "item_matrix", "numeric_column",
           "name_rows", "reconcile", "missing_reason", "has_any"]

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config" / "value_sets"
MAX_NAMED = 5        # participants named in a warning before "and N more"
MAX_ERRORS = 20      # bad cells listed in one DataError before "and N more"
# Why a score is missing: some items answered but not enough; the instrument does not apply to the
# person (no carer); nothing at all recorded at that wave (every item empty / no score given).
MISSING_REASONS = ("item_missing", "not_applicable", "lost_or_died")


@dataclass
class Part:
    """What one instrument adds: score columns, why each value is missing, and sentences for people.

    ``columns`` maps output column -> Series; ``reasons`` maps the same columns -> Series of labels
    ('scored' or one of ``MISSING_REASONS``); ``meta`` maps column -> (score, wave, source).
    """

    columns: dict = field(default_factory=dict)
    reasons: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def add(self, column: str, values: pd.Series, reason: pd.Series, score: str, wave: str, source: str):
        self.columns[column] = values
        self.reasons[column] = reason
        self.meta[column] = (score, wave, source)

    def extend(self, other: "Part") -> "Part":
        self.columns.update(other.columns)
        self.reasons.update(other.reasons)
        self.meta.update(other.meta)
        self.warnings.extend(other.warnings)
        self.notes.extend(other.notes)
        return self


def has_any(frame: pd.DataFrame, columns) -> bool:
    return any(c in frame.columns for c in columns)


def _where(frame: pd.DataFrame, label) -> tuple:
    """(file, row, who) for one index label: the user's file and row when io.py recorded them."""
    file = frame.at[label, "_file"] if "_file" in frame.columns else None
    if "_row" in frame.columns:
        row = int(frame.at[label, "_row"])
    else:
        row = int(frame.index.get_loc(label)) + 1
    who = frame.at[label, "participant_id"] if "participant_id" in frame.columns else None
    return file, row, who


def _raise_bad(frame: pd.DataFrame, bad: dict, rule: str, fix: str):
    """bad: column -> boolean mask. One DataError listing every bad cell (up to MAX_ERRORS)."""
    lines, total = [], 0
    for col, mask in bad.items():
        for label in mask[mask].index:
            total += 1
            if len(lines) < MAX_ERRORS:
                file, row, who = _where(frame, label)
                extra = f" (participant_id {who})" if who is not None else ""
                value = frame.at[label, col]
                value = value.item() if isinstance(value, np.generic) else value   # 4, not np.int64(4)
                lines.append(describe(file, row, col, value, rule + extra, None))
    if total > len(lines):
        lines.append(f"... and {total - len(lines)} more cell(s) like these")
    raise DataError(f"{total} value(s) cannot be scored; fix: {fix}:\n  " + "\n  ".join(lines))


def as_float(raw: pd.Series) -> pd.Series:
    """Values as float; text that is not a number becomes NaN (the callers report it)."""
    if pd.api.types.is_bool_dtype(raw) or pd.api.types.is_numeric_dtype(raw):
        return raw.astype(float)
    return pd.to_numeric(raw.astype(object).where(raw.notna()), errors="coerce").astype(float)


def warn_absent_items(part, frame: pd.DataFrame, cols: list[str], label: str, wave: str) -> None:
    """Some but not all item columns of a wave: nobody can be scored there, so say which are missing."""
    absent = [c for c in cols if c not in frame.columns]
    if absent:
        part.warnings.append(f"{label} {wave}: item column(s) {absent} are missing, so no one can be "
                             f"scored at {wave}; check the column names or the plan's data.columns")


def numeric_column(frame: pd.DataFrame, column: str, *, label: str, low=None, high=None,
                   whole: bool = False) -> pd.Series:
    """A column as float; text, fractions (when ``whole``) or values outside [low, high] raise DataError."""
    raw = frame[column]
    num = as_float(raw)
    ok = num.notna()
    bad = (raw.notna() & ~ok)
    if whole:
        bad |= ok & (num % 1 != 0)
    if low is not None:
        bad |= ok & (num < low)
    if high is not None:
        bad |= ok & (num > high)
    if bad.any():
        span = f"{'whole numbers ' if whole else ''}{low if low is not None else '-inf'} to {high if high is not None else 'inf'}"
        _raise_bad(frame, {column: bad}, f"not a valid {label} value ({span})",
                   f"correct these {label} values, or list the code under data.missing_codes in the plan "
                   "if it means 'missing'")
    return num


def item_matrix(frame: pd.DataFrame, columns: list[str], *, low: int, high: int, label: str,
                hint: str = "") -> np.ndarray:
    """Item codes as an (n, k) float array, NaN where unanswered or where the column is absent.

    Raises DataError naming row, column and value for any code that is not a whole number in
    [low, high]: out-of-range codes are never scored.
    """
    out = np.full((len(frame), len(columns)), np.nan)
    bad = {}
    for j, col in enumerate(columns):
        if col not in frame.columns:
            continue
        raw = frame[col]
        num = as_float(raw)
        ok = num.notna()
        mask = (raw.notna() & ~ok) | (ok & ((num % 1 != 0) | (num < low) | (num > high)))
        if mask.any():
            bad[col] = mask
        out[:, j] = num.to_numpy()
    if bad:
        _raise_bad(frame, bad, f"not a valid {label} code (whole numbers {low} to {high})",
                   f"use the {label} codes {low} to {high}{hint}, or list the code under data.missing_codes "
                   "in the plan if it means 'missing'")
    return out


def name_rows(frame: pd.DataFrame, mask: pd.Series, detail=None) -> str:
    """'participant_id 001 (0.71 vs 0.65), 004 (...) and 3 more' for the rows where mask is True."""
    labels = list(mask[mask].index)
    shown = []
    for label in labels[:MAX_NAMED]:
        who = frame.at[label, "participant_id"] if "participant_id" in frame.columns else f"row {label}"
        shown.append(f"{who}{f' ({detail(label)})' if detail else ''}")
    head = "participant_id " if "participant_id" in frame.columns else ""
    text = head + ", ".join(shown)
    if len(labels) > MAX_NAMED:
        text += f" and {len(labels) - MAX_NAMED} more"
    return text


def reconcile(frame: pd.DataFrame, computed: pd.Series, given: pd.Series, *, column: str,
              tolerance: float) -> list[str]:
    """Compare a score from items with a precomputed one; a warning when they disagree beyond tolerance.

    Items win either way. Rows where only the precomputed score exists (items incomplete) are also
    reported, because that value is dropped.
    """
    out = []
    both = computed.notna() & given.notna()
    diff = (computed - given).abs()
    # a small allowance so that a difference of exactly `tolerance` (in decimal) is not warned
    far = both & (diff > tolerance + 1e-9)
    if far.any():
        rows = name_rows(frame, far, lambda i: f"items {computed[i]:.4g} vs given {given[i]:.4g}")
        out.append(f"{column}: the score from items differs from the precomputed {column} by more than "
                   f"{tolerance:g} in {int(far.sum())} row(s): {rows}; the score from items is used")
    dropped = computed.isna() & given.notna()
    if dropped.any():
        rows = name_rows(frame, dropped)
        out.append(f"{column}: {int(dropped.sum())} row(s) have a precomputed {column} but incomplete items, "
                   f"so no score from items: {rows}; the score from items (missing) is used")
    return out


def missing_reason(score: pd.Series, answered: np.ndarray | None, *, not_applicable=None) -> pd.Series:
    """'scored', or why not: item_missing (some items answered), not_applicable (mask), lost_or_died
    (nothing recorded at that wave). ``answered`` is the number of items answered per row, or None
    when the score was given precomputed (then a missing score means nothing was recorded)."""
    reason = pd.Series("scored", index=score.index, dtype=object)
    miss = score.isna().to_numpy()
    some = np.zeros(len(score), bool) if answered is None else (np.asarray(answered) > 0)
    reason[miss & some] = "item_missing"
    reason[miss & ~some] = "lost_or_died"
    if not_applicable is not None:
        na = np.asarray(not_applicable, dtype=bool)
        reason[miss & na] = "not_applicable"
    return reason
