"""Warnings, before any model runs, about sites and arms that make an analysis impossible.

``compare`` still runs (each analysis that cannot be estimated becomes a line under "analyses not run"),
but an evaluator should hear at ``validate`` time that, say, one site has no follow-up answers or one arm
has nobody with a GHQ-12 at follow-up, while there is time to chase the missing returns. The warnings give
sites, arms, instruments and rules only, never a person's row or value.
"""
from __future__ import annotations

import pandas as pd

from ..contract import GROUPS, ITEMS, PRECOMPUTED_SCORES, SINGLE_ITEMS
from .problems import Problem

__all__ = ["feasibility_warnings"]


def _instrument_columns(columns, wave: str) -> dict[str, list[str]]:
    """Columns holding each instrument's answers (items, single items or precomputed score) at ``wave``."""
    stems = {name: list(items) for name, items in ITEMS.items()}
    for name in SINGLE_ITEMS:
        stems[name] = [name]
    owner = {"scrqol": "ascot", "ghq12_likert": "ghq12", "eq5d_index": "eq5d", "carer_scrqol": "carer_ascot"}
    for raw, score in PRECOMPUTED_SCORES.items():
        stems.setdefault(owner.get(score, raw), []).append(raw)
    present = set(columns)
    out = {name: [f"{s}_{wave}" for s in ss if f"{s}_{wave}" in present] for name, ss in stems.items()}
    return {name: cols for name, cols in out.items() if cols}


def _answered(frame: pd.DataFrame, cols: list[str]) -> pd.Series:
    return frame[cols].apply(pd.to_numeric, errors="coerce").notna().any(axis=1)


def _warn(column, value, rule, fix) -> Problem:
    return Problem("warning", None, None, column, value, rule, fix)


def feasibility_warnings(frame: pd.DataFrame, plan=None) -> list[Problem]:
    """Sites and arms with no follow-up answers, and too few sites for cluster-robust errors.

    Parameters
    ----------
    frame : the participant table as read (``Cohort.frame``), text values not yet checked.
    plan : the analysis plan (follow-up wave, cluster column); None uses the defaults (t1, site).

    Returns
    -------
    list of warning ``Problem``: per instrument, an arm with nobody answering it at follow-up (its effects
    cannot be estimated); per site, nobody answering anything at follow-up (the site adds nothing to the
    effects and is pooled in the imputation models); per instrument, the sites with answers to others but
    not to it (pooled in its imputation model); fewer than 2 clusters with follow-up answers
    (cluster-robust standard errors cannot be computed).
    """
    fu = plan.data.followup_wave if plan is not None else "t1"
    cluster = plan.cluster if plan is not None else "site"
    if "group" not in frame or not len(frame):
        return []
    instruments = _instrument_columns(frame.columns, fu)
    if not instruments:
        return []            # no follow-up columns at all: the wave check says so
    group = frame["group"].astype(object)
    out = []
    for name, cols in instruments.items():
        answered = _answered(frame, cols)
        if not answered.any():
            continue         # nobody at all: compare lists the outcome as not analysed
        for arm in GROUPS:
            in_arm = group.eq(arm)
            if in_arm.any() and not answered[in_arm].any():
                out.append(_warn(cols[0], None,
                                 f"nobody in the {arm} arm has a {name} answer at follow-up ({fu}), so the {name} "
                                 "effects cannot be estimated and will be listed under 'analyses not run'",
                                 f"check the {arm} arm's {fu} {name} returns were read in"))
    any_answer = _answered(frame, [c for cols in instruments.values() for c in cols])
    if cluster in frame:
        site = frame[cluster].astype(str).where(frame[cluster].notna())
        with_answers = site[any_answer].dropna().unique()
        silent = sorted(set(site.dropna().unique()) - set(with_answers))
        for label in silent:
            out.append(_warn(cluster, label,
                             f"nobody in this {cluster} has any answer at follow-up ({fu}): it adds nothing to the "
                             "effect estimates, and its people are imputed from the pooled model",
                             f"check this {cluster}'s follow-up returns were read in, or pool it with another"))
        for name, cols in instruments.items():
            answered = _answered(frame, cols)
            without = sorted(set(with_answers) - set(site[answered].dropna().unique()))
            if answered.any() and without:
                out.append(_warn(cols[0], None,
                                 f"nobody in {len(without)} {cluster}(s) ({', '.join(without[:20])}"
                                 f"{' …' if len(without) > 20 else ''}) has a {name} answer at follow-up ({fu}): "
                                 f"they are pooled with the others in the {name} imputation model",
                                 f"check those {cluster}s' {fu} {name} returns were read in"))
        if any_answer.any() and len(with_answers) < 2:
            out.append(_warn(cluster, None,
                             f"only {len(with_answers)} {cluster} has follow-up answers; cluster-robust standard "
                             f"errors need at least 2, so the effects by {cluster} cannot be estimated",
                             f"use a plan with a different cluster, or add the other {cluster}s' data"))
    return out
