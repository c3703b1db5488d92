"""Derived analysis variables: arm indicator, budget bands, implementation model, exposure, bands.

Pure functions on the scored participant frame; each returns a new frame (inputs are not modified).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .contract import FLEXIBILITY_FEATURES

__all__ = ["budget_band_labels", "budget_band", "implementation_model", "exposure_post_years",
           "age_band", "baseline_need", "analysis_frame", "WINDOW_DAYS"]

WINDOW_DAYS = 365  # the data contract's service-use window


def budget_band_labels(cuts) -> list[str]:
    """Band labels for increasing cut points: [1000] -> ['<1000', '>=1000']."""
    fmt = [f"{c:g}" for c in cuts]
    labels = [f"<{fmt[0]}"]
    labels += [f">={lo},<{hi}" for lo, hi in zip(fmt, fmt[1:])]
    labels.append(f">={fmt[-1]}")
    return labels


def budget_band(budget: pd.Series, cuts) -> pd.Series:
    """Budget band per person (NaN where the budget is missing, e.g. controls)."""
    labels = budget_band_labels(cuts)
    edges = [-np.inf, *cuts, np.inf]
    out = pd.cut(budget, bins=edges, labels=labels, right=False)
    return out.astype(object).where(budget.notna(), np.nan)


def implementation_model(frame: pd.DataFrame, rule: dict, otherwise: str) -> pd.Series:
    """First model in ``rule`` whose features are all 1; ``otherwise`` when each model fails on an
    observed 0; NaN when a missing feature leaves it undecided or for controls."""
    result = pd.Series(np.nan, index=frame.index, dtype=object)
    undecided = pd.Series(False, index=frame.index)
    for name, feats in rule.items():
        values = frame.reindex(columns=feats).astype(float)
        meets = (values == 1).all(axis=1)
        fails = (values == 0).any(axis=1)
        take = meets & result.isna() & ~undecided
        result[take] = name
        undecided |= ~meets & ~fails & result.isna()
    is_phb = frame["group"].eq("phb")
    rest = result.isna() & ~undecided & is_phb
    result[rest] = otherwise
    result[~is_phb] = np.nan
    return result


def exposure_post_years(frame: pd.DataFrame) -> pd.Series:
    """Share of the 365-day post-consent window the person was alive (1.0 unless a death date
    inside the window is known)."""
    exposure = pd.Series(1.0, index=frame.index)
    if {"death_date", "consent_date"} <= set(frame.columns):
        death = pd.to_datetime(frame["death_date"], errors="coerce")
        consent = pd.to_datetime(frame["consent_date"], errors="coerce")
        days = (death - consent).dt.days
        inside = days.notna() & (days < WINDOW_DAYS)
        exposure[inside] = np.clip(days[inside], 1, WINDOW_DAYS) / WINDOW_DAYS
    return exposure


def age_band(age: pd.Series, cuts) -> pd.Series:
    """Age band labels from cut points, e.g. [45, 65] -> '<45', '45-64', '>=65'."""
    fmt = [f"{c:g}" for c in cuts]
    labels = [f"<{fmt[0]}"] + [f"{lo}-{float(hi) - 1:g}" for lo, hi in zip(fmt, fmt[1:])] + [f">={fmt[-1]}"]
    out = pd.cut(age, bins=[-np.inf, *cuts, np.inf], labels=labels, right=False)
    return out.astype(object).where(age.notna(), np.nan)


def baseline_need(score: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """Tertiles of a baseline score labelled by need (low/medium/high), pooled over both arms."""
    ranks = score.rank(method="first", ascending=not higher_is_better)
    tert = pd.qcut(ranks, 3, labels=["low", "medium", "high"])
    return tert.astype(object).where(score.notna(), np.nan)


def analysis_frame(scored: pd.DataFrame, plan) -> pd.DataFrame:
    """The frame every estimator reads: scores plus `phb`, bands, model, exposure, mortality."""
    df = scored.copy()
    df["phb"] = df["group"].eq("phb").astype(int)
    df["site"] = df["site"].astype(str)
    if "budget_gbp_per_year" in df:
        df["budget_band"] = budget_band(pd.to_numeric(df["budget_gbp_per_year"], errors="coerce"),
                                        plan.strata.budget_cuts)
    if set(FLEXIBILITY_FEATURES) & set(df.columns):
        df["implementation_model"] = implementation_model(df, plan.strata.implementation_model,
                                                          plan.strata.otherwise_label)
    if "died" in df:
        df["mortality"] = pd.to_numeric(df["died"], errors="coerce")
    df["exposure_post_years"] = exposure_post_years(df)
    if "age" in df:
        df["age_band"] = age_band(pd.to_numeric(df["age"], errors="coerce"), plan.subgroups.age_cuts)
    base = plan.data.baseline_wave
    for stem, better_high in (("scrqol", True), ("ascot_raw", True)):
        col = f"{stem}_{base}"
        if col in df and df[col].notna().any():
            df["baseline_need"] = baseline_need(df[col], higher_is_better=better_high)
            break
    return df
