"""Value of information: expected value of perfect information (EVPI) from bootstrap draws of net benefit.

With two options (PHB, control) and the incremental net benefit INB = λ·ΔE − ΔC of PHB drawn R times,
per-person EVPI = E[max(INB, 0)] − max(E[INB], 0): what a decision maker would pay per person to remove
all uncertainty (Claxton 1999; Briggs, Claxton & Sculpher 2006, ch. 6). Population EVPI multiplies by the
number of people the decision affects (the budget-impact section's eligible population).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["evpi_per_person", "evpi_normal", "population_evpi"]


def evpi_per_person(inb) -> float:
    """EVPI per person from draws of incremental net benefit (NaN draws left out)."""
    t = np.asarray(inb, dtype=float)
    t = t[np.isfinite(t)]
    if t.size == 0:
        return math.nan
    return float(np.mean(np.maximum(t, 0.0)) - max(float(np.mean(t)), 0.0))


def evpi_normal(mean: float, sd: float) -> float:
    """Closed-form EVPI when INB ~ N(mean, sd²): mean·Φ(mean/sd) + sd·φ(mean/sd) − max(mean, 0)."""
    from scipy import stats
    if sd <= 0:
        return 0.0
    z = mean / sd
    return float(mean * stats.norm.cdf(z) + sd * stats.norm.pdf(z) - max(mean, 0.0))


def population_evpi(evpi: pd.DataFrame, eligible: dict) -> pd.DataFrame:
    """The EVPI table with population EVPI: per-person EVPI × the eligible population (the sum of the plan's
    ``budget_impact.eligible`` groups), for one decision on that population over the CEA horizon."""
    out = evpi.copy()
    n = float(sum(eligible.values())) if eligible else math.nan
    out["eligible_population"] = n
    if not out.empty:
        out["evpi_population"] = out["evpi_per_person"] * n
    return out
