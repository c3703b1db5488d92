"""Carer measures: ASCOT-Carer (unweighted and weighted) and the carer's self-rated health.

ASCOT-Carer is scored by ``ascot.score_ascot`` (7 domains, 0-21 unweighted). People with
``has_carer == 0`` have nothing to score: their missing values count as 'not applicable'.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..contract import SINGLE_ITEMS
from .ascot import AscotWeights, score_ascot
from .common import Part, missing_reason, numeric_column

__all__ = ["GOOD_HEALTH_CODES", "carer_health_good", "no_carer_mask", "score_carer"]

# Self-rated health codes 1 very good, 2 good, 3 fair, 4 bad, 5 very bad: "good" = very good or good.
GOOD_HEALTH_CODES = (1, 2)


def carer_health_good(health: pd.Series) -> pd.Series:
    """1.0 for very good or good (codes 1-2), 0.0 for fair, bad or very bad (3-5), NaN where missing."""
    h = pd.Series(health, dtype=float)
    return pd.Series(np.where(h.isna(), np.nan, h.isin(GOOD_HEALTH_CODES).astype(float)), index=h.index)


def no_carer_mask(frame: pd.DataFrame) -> np.ndarray:
    """True where the person has no carer (``has_carer == 0``); False where 1, missing or absent."""
    if "has_carer" not in frame.columns:
        return np.zeros(len(frame), bool)
    has = numeric_column(frame, "has_carer", label="has_carer (0/1)", low=0, high=1, whole=True)
    return (has == 0).to_numpy()


def score_carer(frame: pd.DataFrame, waves, *, weights: AscotWeights | None = None,
                tolerance: float = 0.005) -> Part:
    """ASCOT-Carer and carer self-rated health at every wave.

    Returns
    -------
    Part with ``carer_ascot_raw_<wave>``, ``carer_scrqol_<wave>`` (weights or precomputed),
    ``carer_health_<wave>`` (1-5, as given) and ``carer_health_good_<wave>`` (0/1).
    """
    na = no_carer_mask(frame)
    part = score_ascot(frame, waves, instrument="carer_ascot", weights=weights, tolerance=tolerance,
                       not_applicable=na)
    lo, hi = SINGLE_ITEMS["carer_health"]
    for wave in waves:
        col = f"carer_health_{wave}"
        if col not in frame.columns:
            continue
        h = numeric_column(frame, col, label="carer self-rated health", low=lo, high=hi, whole=True)
        part.add(col, h, missing_reason(h, None, not_applicable=na), "carer_health", wave, "items")
        good = carer_health_good(h)
        part.add(f"carer_health_good_{wave}", good, missing_reason(good, None, not_applicable=na),
                 "carer_health_good", wave, "items")
    return part
