"""Effect measures over a stated horizon: area under the curve of a utility-like score across the plan's waves.

QALYs are the area under the EQ-5D index curve and ASCOT-years the area under the SCRQoL curve, each from
the baseline wave to ``horizon`` years after it, by the trapezoid rule between waves (linear
interpolation to the horizon when it falls between two waves). The baseline value is not subtracted:
the difference between arms is adjusted for it in the regression (Manca, Hawkins & Sculpher 2005), which
removes the baseline imbalance that the raw AUC difference would carry.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import PlanError

__all__ = ["auc_years", "horizon_waves", "MONTHS_PER_YEAR"]

MONTHS_PER_YEAR = 12.0


def horizon_waves(months: dict, baseline_wave: str, horizon: float) -> list[tuple[str, float]]:
    """The waves the area over ``[baseline, baseline + horizon]`` needs, as (wave, years after baseline),
    in time order. Raises when the horizon reaches beyond the last wave (no extrapolation: costs and
    outcomes are both observed only up to then)."""
    if baseline_wave not in months:
        raise PlanError(f"cea.horizon: data.waves gives no timing for the baseline wave {baseline_wave!r}")
    if not horizon > 0:
        raise PlanError(f"cea.horizon must be positive (years); got {horizon}")
    t0 = float(months[baseline_wave])
    timed = sorted(((w, (float(m) - t0) / MONTHS_PER_YEAR) for w, m in months.items()
                    if float(m) >= t0), key=lambda x: x[1])
    last = timed[-1][1]
    if horizon > last + 1e-9:
        raise PlanError(f"cea.horizon = {horizon:g} years reaches beyond the last wave ({last:g} years after "
                        f"{baseline_wave}); choose a horizon up to {last:g} years (results are not extrapolated)")
    need = [(w, t) for w, t in timed if t < horizon - 1e-9]
    nxt = next((w, t) for w, t in timed if t >= horizon - 1e-9)
    return need + [nxt]


def auc_years(values: pd.DataFrame | dict, months: dict, baseline_wave: str, horizon: float) -> np.ndarray:
    """Area under each person's score curve from the baseline wave to ``horizon`` years (score × years).

    ``values`` maps wave -> scores (one per person); ``months`` maps wave -> months after consent (the plan's
    ``data.waves``). A person missing a wave the area needs gets NaN (impute the waves first, then take the
    area of each completed dataset).
    """
    waves = horizon_waves(months, baseline_wave, horizon)
    cols = [np.asarray(values[w], dtype=float) for w, _ in waves]
    times = [t for _, t in waves]
    area = np.zeros_like(cols[0])
    for (a, ta), (b, tb) in zip(zip(cols, times), zip(cols[1:], times[1:])):
        end = min(tb, horizon)
        if end <= ta:
            break
        at_end = a + (b - a) * (end - ta) / (tb - ta)          # linear interpolation to the horizon
        area = area + (end - ta) * (a + at_end) / 2
    return area
