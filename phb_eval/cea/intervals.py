"""Bootstrap confidence intervals exactly as R's ``boot::boot.ci`` (percentile and BCa)."""
from __future__ import annotations

import math

import numpy as np
from scipy import special

__all__ = ["percentile_interval", "bca_interval"]


def _order_stat_interp(t: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Bootstrap quantiles as in ``boot``'s ``norm.inter``: order statistic (R+1)·α, interpolated on the
    normal-quantile scale when (R+1)·α is not an integer (Davison & Hinkley 1997, eq. 5.8).
    Hand-written because no Python library implements this exact rule (numpy's quantiles differ)."""
    t = np.sort(t[np.isfinite(t)])
    R = t.size
    out = np.full(alpha.shape, np.nan)
    if R == 0:
        return out
    rk = (R + 1) * alpha
    k = np.trunc(rk).astype(int)
    for i, (ki, rki, a) in enumerate(zip(k, rk, alpha)):
        if not np.isfinite(rki):
            continue
        if ki <= 0:
            out[i] = t[0]
        elif ki >= R:
            out[i] = t[R - 1]
        elif ki == rki:
            out[i] = t[ki - 1]
        else:
            z, zk, zk1 = special.ndtri([a, ki / (R + 1), (ki + 1) / (R + 1)])
            out[i] = t[ki - 1] + (z - zk) / (zk1 - zk) * (t[ki] - t[ki - 1])
    return out


def percentile_interval(t, conf_level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap replicates ``t`` (``boot.ci(type = "perc")``)."""
    alpha = (1 + np.array([-conf_level, conf_level])) / 2
    lo, hi = _order_stat_interp(np.asarray(t, dtype=float), alpha)
    return float(lo), float(hi)


def bca_interval(t, t0: float, L, conf_level: float = 0.95) -> tuple[float, float]:
    """BCa interval (``boot.ci(type = "bca", L = L)``): bias correction w = Φ⁻¹(#{t* < t0}/R) and
    acceleration a = ΣL³ / (6 (ΣL²)^{3/2}) from influence values ``L``. NaN when w or a is not finite
    (all replicates on one side of ``t0``, or undefined influence values)."""
    t = np.asarray(t, dtype=float)
    t = t[np.isfinite(t)]
    L = np.asarray(L, dtype=float)
    if t.size == 0 or not np.isfinite(t0):
        return math.nan, math.nan
    w = special.ndtri(np.sum(t < t0) / t.size)
    s2 = np.sum(L ** 2)
    a = np.sum(L ** 3) / (6 * s2 ** 1.5) if s2 > 0 else (0.0 if np.all(L == 0) else math.nan)
    if not (np.isfinite(w) and np.isfinite(a)):
        return math.nan, math.nan
    z = special.ndtri((1 + np.array([-conf_level, conf_level])) / 2)
    adj = special.ndtr(w + (w + z) / (1 - a * (w + z)))
    lo, hi = _order_stat_interp(t, adj)
    return float(lo), float(hi)

