"""Participant flow per arm: recruited, died, lost to follow-up, analysed per outcome, imputed.

Definitions (stated in the report):
- died: ``died == 1``.
- lost to follow-up: alive (``died`` not 1) with no follow-up answer on any outcome instrument.
- analysed (complete cases) for an outcome: follow-up score, baseline score (when the outcome has one)
  and every covariate observed.
- included by imputation: everyone alive at follow-up (death leaves a follow-up score undefined, so the
  dead are not imputed; mortality is analysed as its own outcome).
"""
from __future__ import annotations

import pandas as pd

__all__ = ["participant_flow", "alive", "analysable"]


def alive(frame: pd.DataFrame) -> pd.Series:
    """True where the participant did not die before follow-up (unknown counts as alive)."""
    died = pd.to_numeric(frame["died"], errors="coerce") if "died" in frame else pd.Series(0, index=frame.index)
    return died.fillna(0).ne(1)


def analysable(frame: pd.DataFrame, outcome: str, covariates, baseline_wave="t0", followup_wave="t1") -> pd.Series:
    """Complete cases for an outcome's ANCOVA."""
    cols = [f"{outcome}_{followup_wave}"] + [c for c in covariates if c in frame]
    if f"{outcome}_{baseline_wave}" in frame:
        cols.append(f"{outcome}_{baseline_wave}")
    return frame[cols].notna().all(axis=1)


def participant_flow(frame: pd.DataFrame, outcomes, covariates, baseline_wave="t0", followup_wave="t1") -> pd.DataFrame:
    """One row per stage, one count column per arm (``phb``, ``control``) — raw counts, before disclosure control."""
    arms = {"phb": frame["phb"] == 1, "control": frame["phb"] == 0}
    live = alive(frame)
    fu_cols = [c for c in frame.columns if c.endswith(f"_{followup_wave}")]
    any_followup = frame[fu_cols].notna().any(axis=1) if fu_cols else pd.Series(False, index=frame.index)
    stages = [("recruited", pd.Series(True, index=frame.index)),
              ("died before follow-up", ~live),
              ("lost to follow-up (alive, no follow-up answers)", live & ~any_followup),
              ("followed up", live & any_followup),
              ("included by imputation (alive at follow-up)", live)]
    for outcome in outcomes:
        if f"{outcome}_{followup_wave}" in frame:
            stages.append((f"analysed, complete cases: {outcome}",
                           analysable(frame, outcome, covariates, baseline_wave, followup_wave)))
    rows = [{"stage": name, **{arm: int((mask & sel).sum()) for arm, sel in arms.items()}} for name, mask in stages]
    return pd.DataFrame(rows)
