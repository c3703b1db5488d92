"""Questionnaire items -> scores: ASCOT, GHQ-12, EQ-5D and carer measures, one module per instrument.

``score_all(frame, plan)`` is the stage the pipeline and ``phb-eval score`` call. It returns the
input columns plus every score column, the warnings and notes people need to read, and a summary
per score, wave and arm (N scored, N missing and why, mean and range).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..contract import waves_in
from .ascot import load_weights, score_ascot
from .carer import score_carer
from .common import MISSING_REASONS, Part
from .eq5d import load_value_set, score_eq5d
from .ghq12 import score_ghq12

__all__ = ["ScoreResult", "score_all", "summarise", "load_weights", "load_value_set", "SUMMARY_COLUMNS"]

SUMMARY_COLUMNS = ["score", "wave", "group", "source", "n", "n_scored", "n_missing", "n_item_missing",
                   "n_not_applicable", "n_lost_or_died", "mean", "min", "max"]


@dataclass
class ScoreResult:
    """What scoring produced.

    frame : the input columns plus every score column (the input frame is not modified).
    warnings : disagreements and data problems people should look at.
    notes : what was done and what is not available, one sentence each.
    summary : one row per score x wave x arm, columns ``SUMMARY_COLUMNS``.
    score_columns : the columns added or replaced by scoring, in order.
    """

    frame: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SUMMARY_COLUMNS))
    score_columns: list[str] = field(default_factory=list)


def _resolve(path, base_dir) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() or base_dir is None else Path(base_dir) / p


def summarise(part: Part, groups: pd.Series | None) -> pd.DataFrame:
    """Per score column and arm: N, N scored, N missing split by reason, mean, min, max.

    Returns
    -------
    DataFrame with columns ``SUMMARY_COLUMNS``; ``group`` is the arm, or 'all' without a group column.
    """
    rows = []
    for col, values in part.columns.items():
        if col not in part.meta:
            continue   # flags such as ghq12_prorated_<wave> are not scores
        score, wave, source = part.meta[col]
        reason = part.reasons[col]
        if groups is None:
            splits = [("all", np.ones(len(values), bool))]
        else:
            splits = [(g, (groups == g).to_numpy()) for g in sorted(groups.dropna().unique(), key=str)]
        for g, mask in splits:
            v, r = values[mask], reason[mask]
            ok = v.dropna()
            row = {"score": score, "wave": wave, "group": g, "source": source, "n": int(mask.sum()),
                   "n_scored": int(ok.size), "n_missing": int(v.isna().sum())}
            for why in MISSING_REASONS:
                row[f"n_{why}"] = int((r == why).sum())
            row.update(mean=float(ok.mean()) if ok.size else np.nan,
                       min=float(ok.min()) if ok.size else np.nan,
                       max=float(ok.max()) if ok.size else np.nan)
            rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def score_all(frame: pd.DataFrame, plan=None, *, base_dir=None) -> ScoreResult:
    """Score every instrument found in the data, as the plan says.

    Parameters
    ----------
    frame : participant table in the canonical layout (items and/or precomputed scores per wave).
    plan : ``phb_eval.plan.Plan``; None uses the defaults. Read: ``instruments.*`` (value set, weights
        files, GHQ scorings, caseness threshold, prorating, score tolerance) and ``data.waves`` /
        ``baseline_wave`` / ``followup_wave`` (QALY timing).
    base_dir : folder that relative weights-file paths are resolved against (default: current folder).

    Returns
    -------
    ScoreResult

    Notes
    -----
    Waves are those found among the column names (``contract.waves_in``). Scores from items replace a
    precomputed column of the same score (disagreements beyond ``score_tolerance`` are warned). Item
    codes out of range raise ``DataError`` naming row, column and value.
    """
    if plan is None:
        from ..plan import load_plan
        plan = load_plan(None)
    ins = plan.instruments
    waves = waves_in(frame.columns)
    work = frame.reset_index(drop=True)     # positional labels: messages and alignment never trip on the index
    tol = ins.score_tolerance

    weights = load_weights(_resolve(ins.ascot_weights, base_dir), "ascot") if ins.ascot_weights else None
    carer_weights = (load_weights(_resolve(ins.carer_ascot_weights, base_dir), "carer_ascot")
                     if ins.carer_ascot_weights else None)
    value_set = load_value_set(ins.eq5d_value_set)

    part = Part()
    part.extend(score_ascot(work, waves, instrument="ascot", weights=weights, tolerance=tol))
    part.extend(score_ghq12(work, waves, scorings=ins.ghq12_scorings, threshold=ins.ghq12_caseness_threshold,
                            prorate_max_missing=ins.ghq12_prorate_max_missing, tolerance=tol))
    part.extend(score_eq5d(work, waves, value_set=value_set, tolerance=tol, wave_months=dict(plan.data.waves),
                           baseline_wave=plan.data.baseline_wave, followup_wave=plan.data.followup_wave))
    part.extend(score_carer(work, waves, weights=carer_weights, tolerance=tol))

    new = pd.DataFrame(part.columns, index=work.index).set_axis(frame.index)
    replaced = [c for c in new.columns if c in frame.columns]
    out = frame.copy()
    for c in replaced:                     # a precomputed column keeps its place, with the scored values
        out[c] = new[c].to_numpy()
    out = pd.concat([out, new.drop(columns=replaced)], axis=1)
    groups = work["group"] if "group" in work.columns else None
    return ScoreResult(frame=out, warnings=part.warnings, notes=part.notes, summary=summarise(part, groups),
                       score_columns=list(new.columns))
