"""GHQ-12: Likert, GHQ, modified Likert and C-GHQ scores, caseness, optional prorating.

Items ``ghq01``-``ghq12`` are coded 0-3 by option position, 0 the healthiest option in every item
(so no reversal is needed). Higher scores mean more distress. ``ghq12_<wave>`` is item 12 when the
other items of that wave are present, otherwise a precomputed Likert score (data contract).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..contract import ITEM_RANGES, ITEMS
from .common import Part, has_any, item_matrix, missing_reason, numeric_column, reconcile

__all__ = ["SCORINGS", "POSITIVE_ITEMS", "NEGATIVE_ITEMS", "item_points", "ghq12_score", "caseness",
           "score_ghq12"]

N_ITEMS = len(ITEMS["ghq12"])
# Positively and negatively worded items (1-based), Goldberg & Williams 1988; used by C-GHQ.
POSITIVE_ITEMS = (1, 3, 4, 7, 8, 12)
NEGATIVE_ITEMS = (2, 5, 6, 9, 10, 11)
# Points per code 0..3, per scoring (Goldberg & Williams 1988, "A user's guide to the GHQ"):
# scoring -> (points for positive items, points for negative items).
SCORINGS = {
    "likert": ((0, 1, 2, 3), (0, 1, 2, 3)),
    "ghq": ((0, 0, 1, 1), (0, 0, 1, 1)),
    "modified_likert": ((0, 0, 1, 2), (0, 0, 1, 2)),
    "cghq": ((0, 0, 1, 1), (0, 1, 1, 1)),
}
SCORE_LIMITS = {s: N_ITEMS * max(max(p), max(n)) for s, (p, n) in SCORINGS.items()}


def item_points(scoring: str) -> np.ndarray:
    """(12, 4) array: points for item i (0-based row) at code c (column)."""
    pos, neg = SCORINGS[scoring]
    return np.array([pos if (i + 1) in POSITIVE_ITEMS else neg for i in range(N_ITEMS)], dtype=float)


def ghq12_score(codes: np.ndarray, scoring: str = "likert", prorate_max_missing: int = 0):
    """Score an (n, 12) array of codes 0-3 (NaN = unanswered).

    Returns
    -------
    (score, prorated): float arrays. ``score`` is the sum of item points when all 12 items are
    answered; when 1..``prorate_max_missing`` items are missing it is the sum over answered items
    times 12 / answered (``prorated`` = 1), otherwise NaN.
    """
    codes = np.asarray(codes, dtype=float)
    answered = (~np.isnan(codes)).sum(axis=1)
    pts = item_points(scoring)
    safe = np.where(np.isnan(codes), 0, codes).astype(int)
    total = np.where(np.isnan(codes), 0.0, pts[np.arange(N_ITEMS)[None, :], safe]).sum(axis=1)
    ok = answered >= N_ITEMS - prorate_max_missing
    ok &= answered > 0
    score = np.full(len(codes), np.nan)
    score[ok] = total[ok] * N_ITEMS / answered[ok]
    prorated = (ok & (answered < N_ITEMS)).astype(float)
    return score, prorated


def caseness(ghq: pd.Series | np.ndarray, threshold: float) -> np.ndarray:
    """1.0 where the GHQ (0-0-1-1) score is at or above ``threshold``, 0.0 below, NaN where missing."""
    ghq = np.asarray(ghq, dtype=float)
    return np.where(np.isnan(ghq), np.nan, (ghq >= threshold).astype(float))


def score_ghq12(frame: pd.DataFrame, waves, *, scorings=("likert", "ghq"), threshold: int = 4,
                prorate_max_missing: int = 0, tolerance: float = 0.005) -> Part:
    """Score the GHQ-12 at every wave.

    Returns
    -------
    Part with ``ghq12_likert_<wave>``, ``ghq12_ghq_<wave>``, ``ghq12_caseness_<wave>`` always (when
    items are present), ``ghq12_modified_likert_<wave>`` / ``ghq12_cghq_<wave>`` on request, and
    ``ghq12_prorated_<wave>`` (1 prorated, 0 otherwise) when prorating is on.

    Notes
    -----
    Complete items by default. A precomputed Likert score (``ghq12_<wave>`` without the other items,
    or ``ghq12_likert_<wave>``) is used when there are no items; the GHQ score and caseness cannot be
    derived from it and are then absent.
    """
    lo, hi = ITEM_RANGES["ghq12"]
    wanted = ["likert", "ghq"] + [s for s in ("modified_likert", "cghq") if s in scorings]
    part = Part()
    for wave in waves:
        cols = [f"{stem}_{wave}" for stem in ITEMS["ghq12"]]
        likert_col = f"ghq12_likert_{wave}"
        if has_any(frame, cols[:-1]):
            absent = [c for c in cols if c not in frame.columns]
            if absent:
                part.warnings.append(f"GHQ-12 {wave}: item column(s) {absent} are missing and count as "
                                     "unanswered items; check the column names or the plan's data.columns")
            codes = item_matrix(frame, cols, low=lo, high=hi, label="GHQ-12")
            answered = (~np.isnan(codes)).sum(axis=1)
            prorated = None
            for scoring in wanted:
                values, flag = ghq12_score(codes, scoring, prorate_max_missing)
                s = pd.Series(values, index=frame.index)
                col = f"ghq12_{scoring}_{wave}"
                part.add(col, s, missing_reason(s, answered), f"ghq12_{scoring}", wave, "items")
                prorated = flag
                if scoring == "likert" and likert_col in frame.columns:
                    given = numeric_column(frame, likert_col, label="precomputed GHQ-12 Likert score",
                                           low=0, high=SCORE_LIMITS["likert"])
                    part.warnings.extend(reconcile(frame, s, given, column=likert_col, tolerance=tolerance))
                    part.notes.append(f"{likert_col}: computed from items; the precomputed column was replaced")
            case = pd.Series(caseness(part.columns[f"ghq12_ghq_{wave}"], threshold), index=frame.index)
            part.add(f"ghq12_caseness_{wave}", case, missing_reason(case, answered), "ghq12_caseness", wave,
                     "items")
            if prorate_max_missing > 0:
                flag = pd.Series(prorated, index=frame.index)
                part.columns[f"ghq12_prorated_{wave}"] = flag
                n = int(flag.sum())
                part.notes.append(f"GHQ-12 {wave}: prorating on (up to {prorate_max_missing} missing item(s)); "
                                  f"{n} score(s) prorated, flagged in ghq12_prorated_{wave}")
            continue
        source = next((c for c in (likert_col, f"ghq12_{wave}") if c in frame.columns), None)
        if source is not None:
            given = numeric_column(frame, source, label="precomputed GHQ-12 Likert score", low=0,
                                   high=SCORE_LIMITS["likert"])
            part.add(likert_col, given, missing_reason(given, None), "ghq12_likert", wave, "precomputed")
            part.notes.append(f"{likert_col}: the precomputed GHQ-12 Likert score in {source} is used as given; "
                              f"ghq12_ghq_{wave} and ghq12_caseness_{wave} need the items and are not available")
    if not part.columns and len(waves):
        part.notes.append("ghq12 scores not available: no GHQ-12 items (ghq01_<wave> ... ghq12_<wave>) and no "
                          "precomputed ghq12_<wave> column in the data")
    return part
