"""Decision summaries of incremental cost and effect: ICER quadrants, the λ grid, CEAC and CEAF."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["QUADRANTS", "icer_quadrant", "quadrant_meaning", "ceac_lambdas", "ceac_ceaf"]

QUADRANTS = ("dominant", "dominated", "NE trade-off", "SW trade-off", "no effect difference")


def icer_quadrant(d_effect, d_cost):
    """Quadrant label and ICER for incremental effect(s) and cost(s); never a bare negative ratio.

    ``dominant`` (ΔE > 0, ΔC ≤ 0) and ``dominated`` (ΔE < 0, ΔC ≥ 0) have no ICER (NaN);
    ``NE trade-off`` (more effective, more costly) has ICER = ΔC/ΔE, £ per unit gained;
    ``SW trade-off`` (less effective, cheaper) has ICER = ΔC/ΔE > 0, £ saved per unit lost;
    ΔE = 0 is ``no effect difference``. Scalars give ``(label, icer)``; arrays give two arrays.
    """
    e = np.asarray(d_effect, dtype=float)
    c = np.asarray(d_cost, dtype=float)
    finite = np.isfinite(e) & np.isfinite(c)
    conds = [finite & (e > 0) & (c <= 0), finite & (e < 0) & (c >= 0), finite & (e > 0) & (c > 0),
             finite & (e < 0) & (c < 0), finite & (e == 0)]
    label = np.select(conds, list(QUADRANTS), default="not estimable")
    with np.errstate(divide="ignore", invalid="ignore"):
        icer = np.where(conds[2] | conds[3], c / np.where(e == 0, np.nan, e), np.nan)
    if label.ndim == 0:
        return str(label), float(icer)
    return label, icer


def quadrant_meaning(label: str, effect: str) -> str:
    """A sentence for a quadrant label: what the ICER (if any) means."""
    return {
        "dominant": "PHB more effective and less costly (dominant); no ICER needed",
        "dominated": "PHB less effective and more costly (dominated); no ICER",
        "NE trade-off": f"PHB more effective and more costly: ICER = £ per unit of {effect} gained",
        "SW trade-off": f"PHB less effective and less costly: ICER = £ saved per unit of {effect} lost",
        "no effect difference": "no difference in effect; ICER undefined",
    }.get(label, "not estimable")


def ceac_lambdas(ceac_max: float, ceac_step: float) -> np.ndarray:
    """λ grid £0, step, 2·step, … up to ``ceac_max`` (included even if off the step)."""
    k = int(math.floor(ceac_max / ceac_step + 1e-9))
    grid = ceac_step * np.arange(k + 1, dtype=float)
    if grid[-1] < ceac_max - 1e-9:
        grid = np.append(grid, float(ceac_max))
    return grid



def ceac_ceaf(lam_grid: np.ndarray, d_effect: np.ndarray, d_cost: np.ndarray):
    """CEAC and CEAF values on a λ grid from paired draws of incremental effect and cost.

    CEAC: P(INB > 0) per λ (ties count as not cost-effective). CEAF (Fenwick, Claxton & Sculpher 2001): the
    option with the highest expected net benefit at each λ (PHB when mean INB > 0) and the probability that
    this option is cost-effective — P(INB > 0) for PHB, 1 − P(INB > 0) for control.
    Returns (prob_phb, optimal, prob_optimal), one value per λ.
    """
    inb = lam_grid[:, None] * d_effect[None, :] - d_cost[None, :]
    prob = (inb > 0).mean(axis=1)
    phb_best = inb.mean(axis=1) > 0
    optimal = np.where(phb_best, "PHB", "control")
    return prob, optimal, np.where(phb_best, prob, 1 - prob)
