"""Statistical disclosure control for every published table (NHS Digital rule, from September 2018).

Pilot sites and subgroups are sub-national, so their tables fall under the NHS Digital small-number rule
(``shared/docs/reference-data.md`` → Disclosure control):

- **counts**: 0 stays 0; 1 to ``min_count - 1`` (1–7) is shown as ``'*'``; every other count is rounded to
  the nearest ``rounding_base`` (5), halves up; a missing count stays missing.
- **totals** are computed from unrounded values, then rounded. Here every cell is rounded on its own from
  the raw number it holds, so a total row that the producer summed from raw counts is handled correctly;
  never sum published (rounded) cells. ``total_rows`` only names those rows (it is checked, nothing more).
- **means and medians** (``mean_columns``, also used for SDs) based on 1–7 people are ``'*'``. The decision
  uses the *unrounded* n.
- **percentages** (``percent_columns``) are recomputed from the *rounded* numerator and denominator, and are
  ``'*'`` when either is suppressed (a percentage of a small count would disclose it).
- model estimates and confidence intervals need no suppression (the writer publishes them as they are).

The n of a mean and the numerator and denominator of a percentage are counts by definition, so they get
the count rule even when ``count_columns`` does not list them: otherwise the table would publish the
small number that the suppressed mean protects.

``apply_disclosure`` never modifies its input. A column that receives a ``'*'`` becomes ``object`` dtype;
otherwise integer columns stay integer and float columns stay float. A column name that is not in the
frame, or a count that is negative or not a number, raises ``ValueError``: the spec comes from code, so
that is a bug, not a user error.

The participant-id guard lives in ``report.writer.check_privacy`` (run on every published table), so this
module does not repeat it.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np
import pandas as pd

from .plan import DisclosureSettings

__all__ = ["apply_disclosure", "describe_rule", "suppress_count", "SUPPRESSED", "RULE_NAMES"]

SUPPRESSED = "*"
RULE_NAMES = {"nhs_digital_2018": "NHS Digital 2018 rule"}
PCT_RTOL = 1e-6   # a declared percentage must equal scale * num / den to this relative tolerance


# ------------------------------------------------------------------------------------------ the rule
def _settings(settings) -> DisclosureSettings:
    settings = DisclosureSettings() if settings is None else settings
    if settings.rule not in RULE_NAMES:
        raise ValueError(f"disclosure rule {settings.rule!r} is not implemented; known: {sorted(RULE_NAMES)}")
    return settings


def _small(x: np.ndarray, min_count: int) -> np.ndarray:
    """True where a count is a small non-zero number (0 < x < min_count); False for 0 and missing."""
    with np.errstate(invalid="ignore"):
        return (x > 0) & (x < min_count)


def _round_half_up(x: np.ndarray, base: int) -> np.ndarray:
    """Nearest multiple of ``base``, halves up; NaN stays NaN. floor((2x + b) / 2b) avoids x/b + 0.5 error."""
    return np.floor((2.0 * x + base) / (2.0 * base)) * base


def _is_missing(value) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)) \
        or (isinstance(value, np.floating) and np.isnan(value))


def suppress_count(value, settings: DisclosureSettings | None = None):
    """One count as published: 0 -> 0, 1..min_count-1 -> '*', else the nearest multiple of rounding_base.

    Missing stays missing and an already published ``'*'`` stays ``'*'``. Integers come back as ``int``,
    floats as ``float``. The same arithmetic as ``apply_disclosure`` (tests check they agree).
    """
    s = _settings(settings)
    if isinstance(value, str) and value == SUPPRESSED:
        return SUPPRESSED
    if _is_missing(value):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"a count must be a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x) or x < 0:
        raise ValueError(f"a count must be a finite non-negative number, got {value!r}")
    if not s.enabled:
        return value
    if _small(np.array([x]), s.min_count)[0]:
        return SUPPRESSED
    out = float(_round_half_up(np.array([x]), s.rounding_base)[0])
    return int(out) if isinstance(value, numbers.Integral) else out


def describe_rule(settings: DisclosureSettings | None = None) -> str:
    """One plain sentence stating the rule as run, with the numbers from ``settings`` (for the report)."""
    s = _settings(settings)
    if not s.enabled:
        return ("Disclosure control was turned off (disclosure.enabled: false): small numbers are shown "
                "unsuppressed, so these tables must not be published.")
    m, b = s.min_count, s.rounding_base
    rounded = "are shown unrounded" if b == 1 else f"are rounded to the nearest {b}"
    if m > 1:
        counts = ("counts of 1 are" if m == 2 else f"counts from 1 to {m - 1} are") + \
            f" shown as *, other counts {rounded}"
        means = "means and medians based on " + ("1 person" if m == 2 else f"1 to {m - 1} people") + \
            " are shown as *"
        pcts = ("percentages are computed from the rounded numerator and denominator and shown as * when "
                "either is suppressed")
    else:
        counts = f"no counts are suppressed; counts {rounded}"
        means = "means and medians are not suppressed"
        pcts = "percentages are computed from the rounded numerator and denominator"
    totals = "totals are computed from unrounded counts" + ("" if b == 1 else ", then rounded")
    return (f"Disclosure control ({RULE_NAMES[s.rule]}): {counts}; {totals}; {means}; {pcts}; model estimates and confidence intervals are not suppressed.")


# ---------------------------------------------------------------------------------------- the table
def _numeric(frame: pd.DataFrame, col, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(values as float with NaN for missing, mask of cells already '*') of a column; ValueError if not numeric."""
    if col not in frame.columns:
        raise ValueError(f"{what} column {col!r} is not in the table (columns: {list(map(str, frame.columns))})")
    s = frame[col]
    if isinstance(s, pd.DataFrame):
        raise ValueError(f"{what} column {col!r} appears more than once in the table")
    if pd.api.types.is_bool_dtype(s):
        raise ValueError(f"{what} column {col!r} holds booleans, not numbers")
    starred = np.zeros(len(s), dtype=bool)
    if pd.api.types.is_numeric_dtype(s):
        return s.to_numpy(dtype=float, na_value=np.nan), starred
    # object/text column: numbers, missing values and '*' (already published) are allowed, nothing else
    starred = s.map(lambda v: isinstance(v, str) and v == SUPPRESSED).to_numpy(dtype=bool)
    rest = s.where(~starred)
    bad = rest.map(lambda v: not _is_missing(v) and (isinstance(v, (bool, np.bool_, str))
                                                    or not isinstance(v, numbers.Real)))
    if bad.any():
        raise ValueError(f"{what} column {col!r} holds a value that is not a number: {rest[bad].iloc[0]!r}")
    return pd.to_numeric(rest, errors="coerce").to_numpy(dtype=float), starred


def _check_counts(x: np.ndarray, col) -> None:
    finite = np.isfinite(x) | np.isnan(x)
    if not finite.all():
        raise ValueError(f"count column {col!r} holds an infinite value")
    if (x[~np.isnan(x)] < 0).any():
        raise ValueError(f"count column {col!r} holds a negative value ({x[x < 0][0]!r}); counts cannot be negative")


def _with_stars(values, star: np.ndarray, index, integral: bool) -> pd.Series:
    """An object column: '*' where ``star``, else the value (whole counts as int, missing as NaN)."""
    out = np.empty(len(star), dtype=object)
    for i, (v, st) in enumerate(zip(values, star)):
        if st:
            out[i] = SUPPRESSED
        elif _is_missing(v):
            out[i] = np.nan
        elif integral and float(v).is_integer():
            out[i] = int(v)
        else:
            out[i] = v
    return pd.Series(out, index=index, dtype=object)


def _check_rows(frame: pd.DataFrame, total_rows) -> None:
    """``total_rows`` must be a boolean mask of the table's length or labels that are in its index."""
    if total_rows is None:
        return
    if isinstance(total_rows, (str, bytes)) or not hasattr(total_rows, "__len__"):
        total_rows = [total_rows]
    arr = np.asarray(total_rows)
    if arr.dtype == bool:
        if len(arr) != len(frame):
            raise ValueError(f"total_rows mask has {len(arr)} entries for a table of {len(frame)} rows")
        return
    missing = [r for r in list(total_rows) if r not in frame.index]
    if missing:
        raise ValueError(f"total_rows label {missing[0]!r} is not in the table's index")


def _percent_spec(pct, spec) -> tuple:
    if isinstance(spec, (str, bytes)) or len(spec) not in (2, 3):
        raise ValueError(f"percent column {pct!r}: give (numerator, denominator) or (numerator, denominator, "
                         f"scale), got {spec!r}")
    num, den = spec[0], spec[1]
    scale = float(spec[2]) if len(spec) == 3 else 100.0
    return num, den, scale


def apply_disclosure(frame: pd.DataFrame, settings: DisclosureSettings | None = None, *, count_columns=(),
                     mean_columns: Mapping | None = None, percent_columns: Mapping | None = None,
                     total_rows=None) -> pd.DataFrame:
    """A copy of ``frame`` as it may be published under the small-number rule (see the module docstring).

    Parameters
    ----------
    frame : the table; not modified.
    settings : ``plan.disclosure`` (default: the NHS Digital rule, 8 and 5). Disabled -> an unchanged copy.
    count_columns : columns holding counts of people (or events about people).
    mean_columns : ``{mean_col: n_col}`` — a mean, median or SD and the column holding its unrounded n.
        A mean whose n is missing (but the mean is not) is suppressed: nothing shows it rests on enough people.
    percent_columns : ``{pct_col: (num_col, den_col)}`` or ``(num_col, den_col, scale)``; ``scale`` is 100
        for percentages (default) or 1 for proportions. The given value must equal scale * num / den (checked,
        so a proportion declared as a percentage is caught); the published value is recomputed from the
        rounded numerator and denominator.
    total_rows : rows that are totals (a boolean mask or index labels). They get the same per-cell rule;
        the argument documents and checks the layout, because totals must come from unrounded counts.

    Raises
    ------
    ValueError : a named column is not in the table, a count is negative, infinite or not a number, a column
        is declared twice in conflicting roles, or a percentage does not match its numerator and denominator.
    """
    s = _settings(settings)
    if isinstance(count_columns, (str, bytes)):
        count_columns = [count_columns]
    mean_columns = dict(mean_columns or {})
    percent_columns = {p: _percent_spec(p, spec) for p, spec in dict(percent_columns or {}).items()}
    _check_rows(frame, total_rows)

    # the n of a mean and the numerator and denominator of a percentage are counts too
    counts = list(dict.fromkeys([*count_columns, *mean_columns.values(),
                                 *(c for num, den, _ in percent_columns.values() for c in (num, den))]))
    for col in [*mean_columns, *percent_columns]:
        if col in counts:
            raise ValueError(f"column {col!r} is declared both as a count and as a mean or percentage")
    both = set(mean_columns) & set(percent_columns)
    if both:
        raise ValueError(f"column {sorted(both, key=str)[0]!r} is declared both as a mean and as a percentage")

    # read every count first: all decisions use the unrounded numbers
    raw, small = {}, {}
    for col in counts:
        x, starred = _numeric(frame, col, "count")
        _check_counts(x, col)
        raw[col] = x
        small[col] = starred | _small(x, s.min_count)
    means = {col: _numeric(frame, col, "mean") for col in mean_columns}
    pcts = {col: _numeric(frame, col, "percent") for col in percent_columns}

    out = frame.copy()
    if not s.enabled:
        return out

    rounded = {col: _round_half_up(raw[col], s.rounding_base) for col in counts}
    for col in counts:
        original = frame[col]
        if small[col].any() or not pd.api.types.is_numeric_dtype(original):
            out[col] = _with_stars(rounded[col], small[col], frame.index, integral=True)
        else:   # no '*': the column keeps its dtype (int stays int, nullable Int64 keeps <NA>, float stays float)
            out[col] = pd.Series(rounded[col], index=frame.index).astype(original.dtype)

    for col, n_col in mean_columns.items():
        value, starred = means[col]
        unknown_n = np.isnan(raw[n_col]) & ~small[n_col] & ~np.isnan(value)
        star = starred | small[n_col] | unknown_n
        if star.any():
            out[col] = _with_stars(frame[col].to_numpy(dtype=object), star, frame.index, integral=False)

    for col, (num, den, scale) in percent_columns.items():
        value, starred = pcts[col]
        with np.errstate(divide="ignore", invalid="ignore"):
            given = scale * raw[num] / raw[den]
            recomputed = scale * rounded[num] / rounded[den]
        check = np.isfinite(given) & ~np.isnan(value)
        if not np.allclose(value[check], given[check], rtol=PCT_RTOL, atol=1e-9 * scale):
            i = np.flatnonzero(check & ~np.isclose(value, given, rtol=PCT_RTOL, atol=1e-9 * scale))[0]
            raise ValueError(f"percent column {col!r} row {i}: {value[i]!r} is not {scale:g} * {num} / {den} "
                             f"= {given[i]!r}; declare (num, den, scale) with the right scale, or fix the table")
        recomputed = np.where(np.isfinite(recomputed), recomputed, np.nan)
        unknown = (np.isnan(raw[num]) | np.isnan(raw[den])) & ~np.isnan(value)
        star = starred | small[num] | small[den] | unknown
        if star.any() or not pd.api.types.is_float_dtype(frame[col]):
            out[col] = _with_stars(recomputed, star, frame.index, integral=False)
        else:
            out[col] = pd.Series(recomputed, index=frame.index, dtype=frame[col].dtype)
    return out
