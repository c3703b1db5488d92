"""Cost-effectiveness: incremental cost and effect, ICER quadrants, net monetary benefit, bootstrap, CEAC.

Per stratum, adjusted PHB − control differences come from ordinary least squares:

- effect: ``<effect>_t1`` on the PHB indicator(s), ``<effect>_t0`` and the covariates (``effect`` is
  ``scrqol``, else ``ascot_raw``; which one is stated on every row);
- QALY: ``qaly`` on the indicator(s), ``eq5d_index_t0`` and the covariates;
- cost: ``cost_total`` (and ``cost_direct``, ``cost_indirect``) on the indicator(s),
  ``cost_indirect_pre`` and the covariates.

Strata: ``all``; PHB-only variables (``budget_band``, ``implementation_model``, their cross,
``deployment``) are compared with **all controls** through stratum-specific PHB indicators in one adjusted
model per variable (controls are the reference); variables defined for both arms (``condition``) are
compared **within** the stratum (subset, then the ordinary model).

Uncertainty: non-parametric bootstrap of people, vectorised. Replicates are a (B × n) count matrix;
every model is refitted on every replicate by batched weighted least squares (moment matrices by one
matrix product per batch, then batched ``numpy.linalg.solve``). Percentile and BCa intervals follow
``boot::boot.ci`` exactly (same order-statistic interpolation); the BCa acceleration uses jackknife
influence values computed in closed form for OLS (R's ``empinf(type = "jack")``).
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import linalg, special

from .errors import EstimationError, PlanError
from .outcomes import design_matrix
from .progress import progress
from .results import estimate_row, rows_frame

__all__ = ["CeaResult", "cea", "cea_groups", "resolve_effect", "icer_quadrant", "quadrant_meaning", "stratum_streams",
           "bootstrap_indices", "iter_bootstrap_indices", "replicate_counts", "batched_wls", "loo_change",
           "percentile_interval", "bca_interval", "ceac_lambdas", "PHB_ONLY_VARIABLES", "QUADRANTS"]

PHB_ONLY_VARIABLES = ("budget_band", "implementation_model", "deployment")
QUADRANTS = ("dominant", "dominated", "NE trade-off", "SW trade-off", "no effect difference")
# draw name, outcome row name, follow-up column (template), baseline column (template); {e}=effect, {b}=baseline wave
_MODELS = (
    ("d_effect", "incremental_effect", "{e}_{f}", "{e}_{b}"),
    ("d_qaly", "incremental_qaly", "qaly", "eq5d_index_{b}"),
    ("d_cost", "incremental_cost", "cost_total", "cost_indirect_pre"),
    ("d_cost_direct", "incremental_cost_direct", "cost_direct", "cost_indirect_pre"),
    ("d_cost_indirect", "incremental_cost_indirect", "cost_indirect", "cost_indirect_pre"),
)
DRAW_COLUMNS = [m[0] for m in _MODELS]
_PRIMARY = ("d_effect", "d_cost")        # both needed for NMB; the joint person set is defined by them
_CHUNK_CELLS = 1 << 22                   # replicates × people per batch (bounds the weight matrix at ~32 MB)
_RCOND = 1e-10                           # relative eigenvalue below which a replicate's X'WX is rank-deficient
_LEVERAGE_ONE = 1e-10                    # 1 − h_i below this: the person is fitted exactly by their own dummy


# ---------------------------------------------------------------------------------------------------------
# result container
# ---------------------------------------------------------------------------------------------------------
@dataclass
class CeaResult:
    """Everything :func:`cea` produced.

    Attributes
    ----------
    estimates : results rows (``analysis = "cea"``), see :func:`cea`.
    table : one readable row per stratum (for ``tables/cea.csv``).
    ceac : ``stratum, lambda_gbp, prob_cost_effective`` (for ``tables/ceac.csv``).
    draws : CE-plane draws ``stratum, replicate, d_effect, d_qaly, d_cost, d_cost_direct, d_cost_indirect``.
    effect : the effect measure used (``scrqol`` or ``ascot_raw``).
    notes : sentences for people (skipped strata, models not estimable, replicates dropped).
    method : a paragraph describing what was done, for the report's methods section.
    """

    estimates: pd.DataFrame
    table: pd.DataFrame
    ceac: pd.DataFrame
    draws: pd.DataFrame
    effect: str
    notes: list = field(default_factory=list)
    method: str = ""


# ---------------------------------------------------------------------------------------------------------
# small closed-form pieces
# ---------------------------------------------------------------------------------------------------------
def resolve_effect(df: pd.DataFrame, effect: str = "auto", *, followup_wave="t1", baseline_wave="t0") -> str:
    """The effect measure: ``scrqol`` when both waves are present with data, else ``ascot_raw``."""
    if effect not in ("auto", "scrqol", "ascot_raw"):
        raise PlanError(f"cea.effect: {effect!r} is not one of auto, scrqol, ascot_raw")

    def usable(stem):
        cols = [f"{stem}_{followup_wave}", f"{stem}_{baseline_wave}"]
        return all(c in df.columns for c in cols) and df[cols[0]].notna().any()

    candidates = ["scrqol", "ascot_raw"] if effect == "auto" else [effect]
    for stem in candidates:
        if usable(stem):
            return stem
    need = " or ".join(f"{s}_{followup_wave} and {s}_{baseline_wave}" for s in candidates)
    raise EstimationError(f"cost-effectiveness: the effect measure needs {need} with data; score ASCOT "
                          f"(weights file or precomputed scrqol_<wave>) or set cea.effect in the plan")


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


# ---------------------------------------------------------------------------------------------------------
# resampling
# ---------------------------------------------------------------------------------------------------------
def stratum_streams(rng: np.random.Generator):
    """A function ``key -> Generator``: one independent stream per model group, derived from one draw of
    ``rng``, so adding or removing a stratum never changes the replicates of another."""
    base = int(rng.integers(0, 2 ** 63 - 1))
    return lambda key: np.random.default_rng([base, zlib.crc32(str(key).encode("utf-8"))])


def _index_dtype(n: int):
    return np.uint16 if n <= np.iinfo(np.uint16).max else (np.int32 if n < 2 ** 31 else np.int64)


def iter_bootstrap_indices(strata, B: int, rng: np.random.Generator, chunk: int):
    """Bootstrap replicates in blocks of at most ``chunk`` rows: (rows × n) resampled unit positions (0-based),
    drawn with replacement within each stratum, so every replicate keeps the stratum sizes (e.g. arm sizes).

    Each stratum (in sorted order) draws from its own child stream of ``rng`` (``Generator.spawn``) with
    32-bit draws, which continue seamlessly across calls: the blocks are the same replicates whatever the
    block size, so memory is bounded without changing a number. Same ``rng`` → same replicates.
    """
    codes = pd.factorize(pd.Series(np.asarray(strata)), sort=True)[0]
    if (codes < 0).any():
        raise EstimationError("bootstrap strata contain missing values")
    n = codes.size
    dtype = _index_dtype(n)
    members = [np.flatnonzero(codes == s).astype(dtype) for s in range(codes.max() + 1)]
    gens = rng.spawn(len(members))
    for start in range(0, B, max(1, int(chunk))):
        rows = min(int(chunk), B - start)
        block = np.empty((rows, n), dtype=dtype)
        col = 0
        for mem, gen in zip(members, gens):
            k = mem.size
            block[:, col:col + k] = mem[gen.integers(0, k, size=(rows, k), dtype=np.uint32)]
            col += k
        yield block


def bootstrap_indices(strata, B: int, rng: np.random.Generator) -> np.ndarray:
    """All B replicates at once: (B × n) resampled unit positions, as :func:`iter_bootstrap_indices`
    (the same numbers as its blocks stacked). Each row holds, stratum by stratum, as many draws from the
    stratum's units as it has units."""
    return next(iter_bootstrap_indices(strata, B, rng, chunk=B))


def replicate_counts(indices: np.ndarray, n_units: int) -> np.ndarray:
    """How often each unit appears in each replicate: (b × n_units) float counts from an index matrix."""
    b = indices.shape[0]
    flat = indices + (n_units * np.arange(b, dtype=np.int64))[:, None]
    return np.bincount(flat.ravel(), minlength=b * n_units).reshape(b, n_units).astype(float)


# ---------------------------------------------------------------------------------------------------------
# batched weighted least squares
# ---------------------------------------------------------------------------------------------------------
def _standardise(X: np.ndarray, rows: np.ndarray):
    """Centre and scale non-constant columns (on the rows used) so X'WX is well conditioned."""
    sub = X[rows]
    centre = sub.mean(axis=0)
    scale = sub.std(axis=0)
    const = scale <= 1e-12 * np.maximum(1.0, np.abs(centre))
    centre = np.where(const, 0.0, centre)
    scale = np.where(const, 1.0, scale)
    Xs = (X - centre) / scale
    return np.where(rows[:, None], Xs, 0.0), scale, const


class _Moments:
    """Cross-product layout of one design: each row of ``W @ self.Z`` holds X'WX (upper triangle) and X'WY."""

    def __init__(self, Xs: np.ndarray, Y: np.ndarray, mask: np.ndarray):
        n, p = Xs.shape
        self.p, self.k = p, Y.shape[1]
        self.iu = np.triu_indices(p)
        Ym = np.where(mask[:, None], Y, 0.0)
        cross = Xs[:, self.iu[0]] * Xs[:, self.iu[1]]
        xy = (Xs[:, :, None] * Ym[:, None, :]).reshape(n, p * self.k)
        self.Z = np.ascontiguousarray(np.hstack([cross, xy]) * mask[:, None])

    def compute(self, W: np.ndarray):
        M = W @ self.Z
        b, q = M.shape[0], self.iu[0].size
        A = np.empty((b, self.p, self.p))
        A[:, self.iu[0], self.iu[1]] = M[:, :q]
        A[:, self.iu[1], self.iu[0]] = M[:, :q]
        return A, M[:, q:].reshape(b, self.p, self.k)


def _solve(A: np.ndarray, R: np.ndarray, ret) -> np.ndarray:
    """Coefficients ``ret`` of the batched normal equations A β = R: (b, k, len(ret)).

    Well-conditioned replicates use one batched ``numpy.linalg.solve``. A rank-deficient replicate (e.g. a
    rare covariate level absent from the resample) uses the pseudo-inverse, which gives the same value as
    R's ``lm`` (aliased columns dropped) for every estimable coefficient; a coefficient that is not
    estimable in that replicate is NaN.
    """
    b = A.shape[0]
    out = np.full((b, R.shape[2], len(ret)), np.nan)
    if b == 0:
        return out
    # Cheap screen: det(A) / prod(diag A) is the determinant of the weighted correlation-like matrix
    # (1 when orthogonal, 0 when singular); only replicates it flags get the exact eigenvalue check.
    diag = np.einsum("bii->bi", A)
    sign, logdet = np.linalg.slogdet(A)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = logdet - np.sum(np.log(diag), axis=1)
    good = (sign > 0) & np.all(diag > 0, axis=1) & (ratio > math.log(_RCOND) * 1.5)
    check = np.flatnonzero(~good)
    if check.size:
        ev = np.linalg.eigvalsh(A[check])
        good[check] = (ev[:, -1] > 0) & (ev[:, 0] > _RCOND * ev[:, -1])
    if good.any():
        beta = np.linalg.solve(A[good], R[good])          # (g, p, k)
        out[good] = np.transpose(beta[:, ret, :], (0, 2, 1))
    for r in np.flatnonzero(~good):
        if not np.any(np.diag(A[r]) > 0):
            continue
        Ainv = np.linalg.pinv(A[r], rcond=_RCOND, hermitian=True)
        beta = Ainv @ R[r]
        proj = Ainv @ A[r]
        for j, col in enumerate(ret):
            e = np.zeros(A.shape[1])
            e[col] = 1.0
            if np.allclose(proj[col], e, atol=1e-7):
                out[r, :, j] = beta[col]
    return out


def batched_wls(X, Y, weights, columns) -> np.ndarray:
    """Weighted least-squares coefficients for many weight vectors at once.

    Parameters
    ----------
    X : (n, p) design (with intercept). Y : (n,) or (n, k) responses. weights : (b, n) non-negative
    weights (e.g. bootstrap counts). columns : positions in X of the coefficients wanted (non-constant
    columns).

    Returns
    -------
    (b, k, len(columns)) array of coefficients; NaN where a coefficient is not estimable in a row.

    Notes
    -----
    Columns are centred and scaled before forming X'WX (restored afterwards), the cross products of all
    rows come from one matrix product ``W @ Z`` and the solves are batched.
    """
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    Y = Y[:, None] if Y.ndim == 1 else Y
    W = np.atleast_2d(np.asarray(weights, dtype=float))
    rows = np.ones(X.shape[0], dtype=bool)
    Xs, scale, const = _standardise(X, rows)
    columns = list(columns)
    if const[columns].any():
        raise ValueError("batched_wls returns slopes of non-constant columns only")
    A, R = _Moments(Xs, Y, rows).compute(W)
    return _solve(A, R, columns) / scale[columns]


def loo_change(X, y, columns) -> np.ndarray:
    """β̂ − β̂₍₋ᵢ₎ for the chosen coefficients, every person i, in closed form:
    (X'X)⁻¹ xᵢ eᵢ / (1 − hᵢ). (statsmodels' ``dfbeta`` gives the same by n refits in a loop.)

    A person fitted exactly by a covariate level of their own (hᵢ = 1, eᵢ = 0) changes no other
    coefficient when left out (R's ``lm`` drops the aliased column), so their change is 0.
    Returns (n, len(columns)).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    rows = np.ones(X.shape[0], dtype=bool)
    Xs, scale, _ = _standardise(X, rows)
    Q, Rq = np.linalg.qr(Xs)
    beta = linalg.solve_triangular(Rq, Q.T @ y)
    e = y - Xs @ beta
    h = np.sum(Q ** 2, axis=1)
    G = Q @ linalg.solve_triangular(Rq, np.eye(Rq.shape[0])).T     # row i: (X'X)⁻¹ xᵢ = R⁻¹ qᵢ
    one_minus_h = 1.0 - h
    exact = one_minus_h < _LEVERAGE_ONE
    factor = np.where(exact, 0.0, e / np.where(exact, 1.0, one_minus_h))
    cols = list(columns)
    return G[:, cols] * factor[:, None] / scale[cols]


# ---------------------------------------------------------------------------------------------------------
# strata and model groups
# ---------------------------------------------------------------------------------------------------------
@dataclass
class _Group:
    """One adjusted model set: a person set, its PHB indicator column(s) and the strata they report."""

    key: str
    kind: str                 # "overall" | "phb_only" | "within"
    data: pd.DataFrame
    labels: list              # reported stratum labels, one per indicator
    indicators: np.ndarray    # (n, len(labels)) 0/1
    resample: np.ndarray      # resampling stratum per person
    covariates: list


def _is_phb_only(df: pd.DataFrame, var: str) -> bool:
    return var in PHB_ONLY_VARIABLES or df.loc[df["phb"] == 0, var].isna().all()


def _level_column(df: pd.DataFrame, parts) -> pd.Series:
    """Stratum label per person: ``var=level`` (joined by ``;`` for a cross), NaN if any part is missing."""
    label = pd.Series("", index=df.index, dtype=object)
    ok = pd.Series(True, index=df.index)
    for i, var in enumerate(parts):
        ok &= df[var].notna()
        label = label + ("" if i == 0 else ";") + var + "=" + df[var].astype(str)
    return label.where(ok, np.nan)


def _comparison(kind: str) -> str:
    return {"overall": "all PHB holders vs all controls",
            "phb_only": "stratum's PHB holders vs all controls (stratum-specific PHB indicators, one model)",
            "within": "PHB vs control within the stratum"}[kind]


# ---------------------------------------------------------------------------------------------------------
# the estimator
# ---------------------------------------------------------------------------------------------------------
def cea(df: pd.DataFrame, covariates, *, rng: np.random.Generator, effect: str = "auto",
        strata=("all", "budget_band", "implementation_model", "budget_band:implementation_model",
                "condition", "deployment"),
        lambdas=(20000.0, 25000.0, 30000.0, 35000.0), B: int = 5000, cluster_bootstrap: bool = False,
        cluster: str = "site", conf_level: float = 0.95, ceac_max: float = 100000.0, ceac_step: float = 1000.0,
        min_per_arm: int = 10, baseline_wave: str = "t0", followup_wave: str = "t1",
        quiet: bool | None = None) -> CeaResult:
    """Stratified cost-effectiveness with a vectorised non-parametric bootstrap.

    Parameters
    ----------
    df : analysis frame (``phb``, effect waves, ``qaly``, ``eq5d_index_t0``, ``cost_total``, ``cost_direct``,
        ``cost_indirect``, ``cost_indirect_pre``, covariates, stratum variables, ``site``).
    covariates : adjustment columns for every model (strings become treatment-coded dummies).
    rng : the only source of randomness; same seed → identical numbers.
    effect : ``auto`` (``scrqol`` when available, else ``ascot_raw``), ``scrqol`` or ``ascot_raw``.
    strata : ``all``, variable names and ``a:b`` crosses.
    lambdas : willingness to pay per unit of the effect measure (£) for NMB rows.
    B : bootstrap replicates. cluster_bootstrap : resample sites (``cluster``) within arm instead of people.
    min_per_arm : a stratum with fewer people than this in an arm is reported as not estimable.

    Returns
    -------
    CeaResult. ``estimates`` rows (``analysis = "cea"``), per stratum: ``incremental_cost``,
    ``incremental_cost_direct``, ``incremental_cost_indirect``, ``incremental_effect``, ``incremental_qaly``
    (``method = ols_bootstrap``; ``estimate`` = OLS point estimate, ``se`` = bootstrap SD, ``ci_low``/
    ``ci_high`` = percentile interval), ``icer`` (``quadrant``, ``icer_meaning``, shares of replicates per
    quadrant) and ``nmb`` per λ (``method = bootstrap_nmb``, ``lambda_gbp``, ``prob_cost_effective``).
    Extra columns: ``effect_measure``, ``comparison``, ``lambda_gbp``, ``ci_method``, ``ci_low_bca``,
    ``ci_high_bca``, ``n_replicates``, ``note``.

    Notes
    -----
    Person set: people with the effect at both waves, ``cost_total``, ``cost_indirect_pre`` and the
    covariates observed (the pair needed for net benefit); resampling is of these people. The QALY and
    direct/indirect cost models use the complete cases for their own columns within that set (weight 0
    otherwise). PHB holders with a missing stratum variable are left out of that variable's model.
    Resampling is stratified by arm and, in a PHB-only model, by the stratum within the PHB arm (so each
    stratum keeps its size); with ``cluster_bootstrap`` whole sites are resampled within arm (a PHB-only
    stratum's size then varies, and a replicate in which it is empty is left out and counted in
    ``n_replicates``). Point estimates are OLS (statsmodels) on the same person set. NMB = λ·ΔE − ΔC per
    replicate; the probability cost-effective is the share of replicates with NMB > 0 (ties count as not
    cost-effective), so the CEAC at λ = 0 is the share of replicates that save money.

    Intervals follow ``boot::boot.ci``: percentile and BCa with the (R+1)·α order-statistic rule. The BCa
    acceleration uses jackknife influence values Lᵢ = (n_s − 1)(θ̂ − θ̂₍₋ᵢ₎) with n_s the size of i's
    resampling stratum (boot's ``empinf(type = "jack")``), computed in closed form for OLS; with the cluster
    bootstrap, the delete-one-(arm, site) jackknife refitted by the batched solver. ``boot.ci``'s default
    influence values (regression on the bootstrap array) approximate the same quantities; pass
    ``L = empinf(type = "jack")`` to ``boot.ci`` to reproduce our BCa exactly.

    ``table`` (one row per stratum): ``stratum, comparison, effect_measure, n_phb, n_control, n_replicates``,
    each incremental outcome with ``_ci_low``/``_ci_high`` (percentile), ``icer, quadrant, icer_meaning``, and
    per λ ``nmb_<λ>``, ``nmb_<λ>_ci_low``, ``nmb_<λ>_ci_high``, ``prob_ce_<λ>``; ``note``. ``ceac``: ``stratum,
    lambda_gbp, prob_cost_effective`` for λ = 0, ``ceac_step``, … ``ceac_max``. ``draws``: one row per
    stratum and replicate (``replicate`` 1…B) with ``d_effect, d_qaly, d_cost, d_cost_direct, d_cost_indirect``.
    """
    if not 0.5 < conf_level < 1:
        raise PlanError(f"conf_level must be between 0.5 and 1; got {conf_level}")
    if int(B) < 2:
        raise PlanError(f"cea.bootstrap must be at least 2 replicates; got {B}")
    if ceac_max <= 0 or ceac_step <= 0:
        raise PlanError("cea.ceac_max and cea.ceac_step must be positive")
    lambdas = [float(v) for v in lambdas]
    if any(v < 0 for v in lambdas):
        raise PlanError(f"cea.lambdas must be non-negative; got {lambdas}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (made from the plan's seed)")
    B = int(B)
    cl = cluster if cluster_bootstrap else None
    eff, models, groups, na_rows, notes = _prepare(df, covariates, effect, strata, cl, min_per_arm,
                                                   baseline_wave, followup_wave)
    covariates = list(covariates)
    streams = stratum_streams(rng)
    rows, tables, draws_parts, ceac_parts = [], [], [], []
    lam_grid = ceac_lambdas(ceac_max, ceac_step)
    with progress(total=B * len(groups), desc="bootstrap", unit="rep", quiet=quiet) as bar:
        for g in groups:
            fitted = _fit_group(g, models, B, streams(g.key), cl, min_per_arm, bar)
            for lab_i, label in enumerate(g.labels):
                out = _stratum_outputs(fitted, lab_i, label, g, eff, lambdas, lam_grid, conf_level, B)
                rows.extend(out["rows"])
                tables.append(out["table"])
                if out["draws"] is not None:
                    draws_parts.append(out["draws"])
                    ceac_parts.append(out["ceac"])
            notes.extend(fitted["notes"])
    for label, kind, n1, n0, why in na_rows:
        rows.extend(_not_estimable_rows(label, kind, n1, n0, why, eff, lambdas))
        tables.append(_table_row(label, kind, eff, n1, n0, {}, lambdas, note=why))

    order = _stratum_order(strata)
    est = rows_frame(rows)
    est = est.iloc[_sorted_positions(est["stratum"], order)].reset_index(drop=True)
    table = pd.DataFrame(tables)
    if not table.empty:
        table = table.iloc[_sorted_positions(table["stratum"], order)].reset_index(drop=True)
    draws = (pd.concat(draws_parts, ignore_index=True) if draws_parts
             else pd.DataFrame(columns=["stratum", "replicate", *DRAW_COLUMNS]))
    ceac = (pd.concat(ceac_parts, ignore_index=True) if ceac_parts
            else pd.DataFrame(columns=["stratum", "lambda_gbp", "prob_cost_effective"]))
    return CeaResult(estimates=est, table=table, ceac=ceac, draws=draws, effect=eff, notes=notes,
                     method=_method_text(eff, B, cluster_bootstrap, cluster, conf_level, lambdas, covariates,
                                         min_per_arm, baseline_wave, followup_wave))


def _prepare(df, covariates, effect, strata, cluster, min_per_arm, baseline_wave, followup_wave):
    """Effect measure, available models, model groups and not-estimable strata."""
    eff = resolve_effect(df, effect, followup_wave=followup_wave, baseline_wave=baseline_wave)
    covariates = list(covariates)
    notes: list[str] = []
    models = []  # (draw, outcome, y, base)
    for draw, outcome, ytpl, btpl in _MODELS:
        y, base = ytpl.format(e=eff, f=followup_wave, b=baseline_wave), btpl.format(e=eff, b=baseline_wave)
        absent = [c for c in (y, base) if c not in df.columns]
        if absent:
            if draw in _PRIMARY:
                raise EstimationError(f"cost-effectiveness: column(s) {absent} are not in the analysis data; "
                                      "cost the service use (costs.person_costs) before the CEA")
            notes.append(f"{outcome} not estimated: column(s) {absent} are not in the data")
            continue
        models.append((draw, outcome, y, base))
    needed = list(dict.fromkeys(["phb", f"{eff}_{followup_wave}", f"{eff}_{baseline_wave}", "cost_total",
                                 "cost_indirect_pre", *covariates] + ([cluster] if cluster else [])))
    absent = [c for c in needed if c not in df.columns]
    if absent:
        raise EstimationError(f"cost-effectiveness: column(s) {absent} are not in the analysis data; "
                              "check the plan's covariates and cluster")
    base = df.dropna(subset=needed).copy()
    if base.empty or base["phb"].nunique() < 2:
        raise EstimationError("cost-effectiveness: no people in one arm have the effect, costs and covariates "
                              "all observed; the comparison cannot be made")
    groups, na_rows = _build_groups(base, covariates, strata, min_per_arm, cluster, notes)
    return eff, models, groups, na_rows, notes


def cea_groups(df: pd.DataFrame, covariates, *, effect: str = "auto",
               strata=("all", "budget_band", "implementation_model", "budget_band:implementation_model",
                       "condition", "deployment"),
               cluster: str | None = None, min_per_arm: int = 10, baseline_wave: str = "t0",
               followup_wave: str = "t1") -> list[dict]:
    """The model groups :func:`cea` fits, in order: one dict per group with ``key`` (the name of its random
    stream), ``kind``, ``labels`` (strata reported), ``index`` (the frame's index of the people analysed, in
    order) and ``resample`` (resampling stratum per person). For checking the bootstrap against other software:
    ``bootstrap_indices(g["resample"], B, stratum_streams(rng)(g["key"]))`` are the replicates :func:`cea`
    draws for that group with the same ``rng``. With ``cluster`` (the cluster bootstrap) the dicts also hold
    ``units`` (resampling unit per person: one per arm and site) and ``unit_strata`` (each unit's arm); the
    replicates are then ``bootstrap_indices(g["unit_strata"], B, stream)`` over units."""
    _, _, groups, _, _ = _prepare(df, covariates, effect, strata, cluster, min_per_arm, baseline_wave,
                                  followup_wave)
    out = []
    for g in groups:
        d = {"key": g.key, "kind": g.kind, "labels": list(g.labels), "index": g.data.index,
             "resample": np.asarray(g.resample)}
        if cluster is not None:
            d["units"], d["unit_strata"] = _cluster_units(g.data, cluster)
        out.append(d)
    return out


def _sorted_positions(labels, order):
    keys = [(order(s), str(s), i) for i, s in enumerate(labels)]
    return [k[2] for k in sorted(keys)]


def _stratum_order(strata):
    pos = {}
    for i, s in enumerate(strata):
        pos[s] = i

    def order(label: str):
        if label == "all":
            return pos.get("all", -1)
        vars_ = [p.split("=", 1)[0] for p in str(label).split(";")]
        return pos.get(":".join(vars_), len(pos))
    return order


def _build_groups(base, covariates, strata, min_per_arm, cluster, notes):
    """Model groups for the requested strata, and not-estimable strata (label, kind, n_phb, n_control, why)."""
    groups, na_rows = [], []
    phb = base["phb"].to_numpy() == 1

    def few_clusters(data):
        if cluster is None:
            return False
        per_arm = data.groupby("phb")[cluster].nunique()
        return per_arm.reindex([0, 1]).fillna(0).min() < 2

    for spec in strata:
        if spec == "all":
            n1, n0 = int(phb.sum()), int((~phb).sum())
            if min(n1, n0) < min_per_arm:
                na_rows.append(("all", "overall", n1, n0, f"not estimable: fewer than {min_per_arm} people in an arm"))
            elif few_clusters(base):
                na_rows.append(("all", "overall", n1, n0, f"not estimable: fewer than 2 {cluster}s in an arm"))
            else:
                groups.append(_Group("all", "overall", base, ["all"], phb[:, None].astype(float),
                                     base["phb"].to_numpy(), covariates))
            continue
        parts = [p.strip() for p in str(spec).split(":")]
        missing = [p for p in parts if p not in base.columns]
        if missing:
            notes.append(f"cost-effectiveness stratum {spec!r} skipped: column(s) {missing} are not in the data")
            continue
        kinds = {_is_phb_only(base, p) for p in parts}
        if len(kinds) > 1:
            notes.append(f"cost-effectiveness stratum {spec!r} skipped: it crosses a PHB-only variable with one "
                         "defined for both arms")
            continue
        phb_only = kinds.pop()
        level = _level_column(base, parts)
        covs = [c for c in covariates if c not in parts]
        if phb_only:
            data = base[(base["phb"] == 0) | level.notna()]
            lev = level.loc[data.index]
            is_phb = data["phb"].to_numpy() == 1
            n0 = int((~is_phb).sum())
            kept = []
            for lab in sorted(lev.dropna().unique(), key=str):
                n1 = int(((lev == lab).to_numpy() & is_phb).sum())
                if min(n1, n0) < min_per_arm:
                    na_rows.append((lab, "phb_only", n1, n0,
                                    f"not estimable: fewer than {min_per_arm} people in an arm"))
                else:
                    kept.append(lab)
            if not kept:
                continue
            data = data[(data["phb"] == 0) | lev.isin(kept)]
            lev = lev.loc[data.index]
            if few_clusters(data):
                for lab in kept:
                    na_rows.append((lab, "phb_only", int((lev == lab).sum()), n0,
                                    f"not estimable: fewer than 2 {cluster}s in an arm"))
                continue
            ind = np.column_stack([(lev == lab).to_numpy(dtype=float) for lab in kept])
            resample = np.where(data["phb"].to_numpy() == 1, lev.to_numpy(dtype=object), "__control__")
            groups.append(_Group(str(spec), "phb_only", data, kept, ind, resample.astype(str), covs))
        else:
            for lab in sorted(level.dropna().unique(), key=str):
                data = base[level == lab]
                n1, n0 = int((data["phb"] == 1).sum()), int((data["phb"] == 0).sum())
                if min(n1, n0) < min_per_arm:
                    na_rows.append((lab, "within", n1, n0, f"not estimable: fewer than {min_per_arm} people in an arm"))
                elif few_clusters(data):
                    na_rows.append((lab, "within", n1, n0, f"not estimable: fewer than 2 {cluster}s in an arm"))
                else:
                    groups.append(_Group(lab, "within", data, [lab],
                                         data["phb"].to_numpy(dtype=float)[:, None], data["phb"].to_numpy(), covs))
    return groups, na_rows


def _fit_group(g: _Group, models, B, rng, cluster, min_per_arm, bar):
    """Point estimates, jackknife influence values and bootstrap draws for one model group."""
    data = g.data
    n, m = len(data), len(g.labels)
    notes = []
    C = design_matrix(data, g.covariates)
    Cv = C.to_numpy(dtype=float)
    ind = g.indicators
    is_phb = data["phb"].to_numpy() == 1
    resample_codes = pd.factorize(pd.Series(g.resample), sort=True)[0]

    # --- per-model design, mask, indicators kept ------------------------------------------------------
    specs = {}
    for draw, outcome, y, base in models:
        yv = data[y].to_numpy(dtype=float)
        bv = data[base].to_numpy(dtype=float)
        mask = np.isfinite(yv) & np.isfinite(bv)
        keep = []
        for j in range(m):
            n1 = int((mask & (ind[:, j] == 1)).sum())
            if n1 < min_per_arm:
                mask &= ind[:, j] == 0      # too few observed in this stratum for this model: leave them out
            else:
                keep.append(j)
        n0 = int((mask & ~is_phb).sum())
        why = None
        if n0 < min_per_arm:
            why = f"fewer than {min_per_arm} controls with {y} observed"
        elif not keep:
            why = f"fewer than {min_per_arm} PHB holders with {y} observed"
        # a covariate column constant among this model's people (e.g. a rare level whose members all lack
        # the outcome) is left out, as R's lm aliases it; said in a note
        Cm = Cv[mask]
        ccols = [0] + [c for c in range(1, Cv.shape[1]) if mask.any() and np.ptp(Cm[:, c]) > 0]
        if why is None and len(ccols) < Cv.shape[1]:
            gone = [C.columns[c] for c in range(1, Cv.shape[1]) if c not in ccols]
            notes.append(f"cost-effectiveness {g.key}: {outcome} model leaves out {gone} (constant among the "
                         f"{int(mask.sum())} people with {y} observed)")
        X = np.column_stack([Cv[:, ccols], ind[:, keep], bv]) if keep else None
        if why is None:
            Xm = X[mask]
            if np.linalg.matrix_rank(Xm) < Xm.shape[1]:
                why = f"the covariates are collinear among the {int(mask.sum())} people with {y} observed"
        if why is not None:
            if draw in _PRIMARY:
                notes.append(f"cost-effectiveness stratum {g.key}: not estimable ({why})")
                return {"notes": notes, "failed": why}
            notes.append(f"cost-effectiveness {g.key}: {outcome} not estimable ({why})")
            continue
        dropped = [g.labels[j] for j in range(m) if j not in keep]
        for lab in dropped:
            notes.append(f"cost-effectiveness {lab}: {outcome} not estimable (fewer than {min_per_arm} PHB "
                         f"holders with {y} observed)")
        cols = list(range(len(ccols), len(ccols) + len(keep)))
        fit = sm.OLS(yv[mask], X[mask]).fit()
        point = np.full(m, np.nan)
        point[keep] = fit.params[cols]
        specs[draw] = dict(outcome=outcome, y=y, base=base, yv=yv, bv=bv, mask=mask, keep=keep, X=X, cols=cols,
                           ccols=ccols,
                           point=point, n1=[int((mask & (ind[:, j] == 1)).sum()) for j in range(m)],
                           n0=int((mask & ~is_phb).sum()))

    # --- jackknife influence values (for BCa) --------------------------------------------------------------
    if cluster is None:
        ns = np.bincount(resample_codes)[resample_codes]          # stratum size per person
        for s in specs.values():
            L = np.zeros((n, m))
            mk = s["mask"]
            L[np.ix_(mk, s["keep"])] = loo_change(s["X"][mk], s["yv"][mk], s["cols"])
            s["L"] = (ns - 1)[:, None] * L
    else:
        units, unit_arm = _cluster_units(data, cluster)
        G_arm = np.bincount(unit_arm.astype(int), minlength=2)[unit_arm.astype(int)]
        W_jack = np.ones((units.max() + 1, n))
        W_jack[units, np.arange(n)] = 0.0                              # delete one site-arm cluster per row
        jack = _replicate_coefficients(specs, W_jack, m)
        for d, s in specs.items():
            s["L"] = (G_arm - 1)[:, None] * (s["point"][None, :] - jack[d])

    # --- bootstrap --------------------------------------------------------------------------------------
    if cluster is None:
        unit_of = np.arange(n)
        unit_strata = resample_codes
    else:
        unit_of = units
        unit_strata = unit_arm
    n_units = unit_of.max() + 1
    draws = {d: np.full((B, m), np.nan) for d in specs}
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    prepared = _prepare_moments(specs, m)
    start = 0
    for block in iter_bootstrap_indices(unit_strata, B, rng, chunk):
        stop = start + block.shape[0]
        W = replicate_counts(block, n_units)
        if cluster is not None:
            W = W[:, unit_of]
        coefs = _replicate_coefficients(specs, W, m, prepared)
        for d in specs:
            draws[d][start:stop] = coefs[d]
        bar.update(stop - start)
        start = stop
    return {"notes": notes, "failed": None, "specs": specs, "draws": draws}


def _cluster_units(data: pd.DataFrame, cluster: str):
    """Resampling units of the cluster bootstrap: one per (arm, site) pair. Returns the unit code per person
    (units sorted by arm, then site) and each unit's arm (its resampling stratum)."""
    arm = data["phb"].to_numpy().astype(int)
    units = pd.factorize(pd.Series(list(zip(arm, data[cluster].astype(str)))), sort=True)[0]
    unit_arm = np.zeros(units.max() + 1, dtype=int)
    unit_arm[units] = arm
    return units, unit_arm


def _prepare_moments(specs, m):
    """Group models sharing a mask and kept indicators into one union design (one moment matrix each)."""
    groups = {}
    for d, s in specs.items():
        key = (s["mask"].tobytes(), tuple(s["keep"]), tuple(s["ccols"]))
        groups.setdefault(key, []).append(d)
    prepared = []
    for (_, keep, ccols), members in groups.items():
        first = specs[members[0]]
        mask = first["mask"]
        nC = len(ccols)
        bases = list(dict.fromkeys(specs[d]["base"] for d in members))
        base_vals = {specs[d]["base"]: specs[d]["bv"] for d in members}
        Xu = np.column_stack([first["X"][:, :nC + len(keep)], *[base_vals[b] for b in bases]])
        Xu = np.where(mask[:, None], Xu, 0.0)
        Yu = np.column_stack([specs[d]["yv"] for d in members])
        Xs, scale, const = _standardise(Xu, mask)
        mom = _Moments(Xs, Yu, mask)
        solves = {}
        for k, d in enumerate(members):
            sel = list(range(nC + len(keep))) + [nC + len(keep) + bases.index(specs[d]["base"])]
            solves.setdefault(tuple(sel), []).append((k, d))
        ret_pos = list(range(nC, nC + len(keep)))          # indicator positions within each selection
        prepared.append((mom, scale, solves, ret_pos, list(keep)))
    return prepared


def _replicate_coefficients(specs, W, m, prepared=None):
    """Indicator coefficients of every model for each weight row: draw -> (b, m)."""
    prepared = prepared if prepared is not None else _prepare_moments(specs, m)
    out = {d: np.full((W.shape[0], m), np.nan) for d in specs}
    for mom, scale, solves, ret_pos, keep in prepared:
        A, R = mom.compute(W)
        for sel, members in solves.items():
            sel = list(sel)
            ks = [k for k, _ in members]
            coef = _solve(A[:, sel][:, :, sel], R[:, sel][:, :, ks], ret_pos)     # (b, len(ks), len(keep))
            coef = coef / scale[ret_pos]
            for i, (_, d) in enumerate(members):
                out[d][:, keep] = coef[:, i, :]
    return out


# ---------------------------------------------------------------------------------------------------------
# output assembly
# ---------------------------------------------------------------------------------------------------------
def _interval_set(t, t0, L, conf_level):
    fin = np.isfinite(t)
    lo, hi = percentile_interval(t[fin], conf_level) if fin.any() else (math.nan, math.nan)
    blo, bhi = bca_interval(t[fin], t0, L, conf_level) if fin.any() else (math.nan, math.nan)
    se = float(np.std(t[fin], ddof=1)) if fin.sum() > 1 else math.nan
    return dict(se=se, ci_low=lo, ci_high=hi, ci_low_bca=blo, ci_high_bca=bhi, n_replicates=int(fin.sum()))


def _stratum_outputs(fitted, j, label, g, eff, lambdas, lam_grid, conf_level, B):
    kind = g.kind
    is_phb = g.data["phb"].to_numpy() == 1
    n1_all, n0_all = int((g.indicators[:, j] == 1).sum()), int((~is_phb).sum())
    if fitted.get("failed"):
        why = f"not estimable: {fitted['failed']}"
        return {"rows": _not_estimable_rows(label, kind, n1_all, n0_all, why, eff, lambdas),
                "table": _table_row(label, kind, eff, n1_all, n0_all, {}, lambdas, note=why),
                "draws": None, "ceac": None}
    specs, draws = fitted["specs"], fitted["draws"]
    common = dict(stratum=label, effect_measure=eff, comparison=_comparison(kind), ci_method="percentile")
    rows, summary = [], {}
    for draw, outcome, _, _ in _MODELS:
        s = specs.get(draw)
        if s is None or not np.isfinite(s["point"][j]):
            why = "not estimable: " + ("column absent" if s is None else "too few people with it observed")
            rows.append(estimate_row("cea", outcome, "ols_bootstrap", math.nan,
                                     n_phb=None if s is None else s["n1"][j], n_control=None if s is None else s["n0"],
                                     **common,
                                     lambda_gbp=math.nan, note=why))
            continue
        t = draws[draw][:, j]
        iv = _interval_set(t, s["point"][j], s["L"][:, j], conf_level)
        summary[outcome] = dict(estimate=float(s["point"][j]), **iv)
        note = "" if iv["n_replicates"] == B else f"{B - iv['n_replicates']} replicates not estimable, left out"
        rows.append(estimate_row("cea", outcome, "ols_bootstrap", s["point"][j], iv["se"], iv["ci_low"],
                                 iv["ci_high"], n_phb=s["n1"][j], n_control=s["n0"],
                                 **common, lambda_gbp=math.nan,
                                 ci_low_bca=iv["ci_low_bca"], ci_high_bca=iv["ci_high_bca"],
                                 n_replicates=iv["n_replicates"], note=note))
    se_, sc = specs["d_effect"], specs["d_cost"]
    dE0, dC0 = float(se_["point"][j]), float(sc["point"][j])
    tE, tC = draws["d_effect"][:, j], draws["d_cost"][:, j]
    both = np.isfinite(tE) & np.isfinite(tC)
    tE, tC = tE[both], tC[both]
    LE, LC = se_["L"][:, j], sc["L"][:, j]
    n1, n0 = se_["n1"][j], se_["n0"]
    quad, icer = icer_quadrant(dE0, dC0)
    rq, _ = icer_quadrant(tE, tC)
    shares = {f"share_{q.split()[0].lower()}": float(np.mean(rq == q)) if rq.size else math.nan
              for q in QUADRANTS[:4]}
    rows.append(estimate_row("cea", "icer", "ols_bootstrap", icer, n_phb=n1, n_control=n0,
                             **common, lambda_gbp=math.nan,
                             quadrant=quad, icer_meaning=quadrant_meaning(quad, eff), n_replicates=int(both.sum()),
                             **shares, note="ICER shown only for trade-offs; see NMB and CEAC for uncertainty"))
    summary["icer"] = dict(estimate=icer, quadrant=quad)
    for lam in lambdas:
        t = lam * tE - tC
        t0 = lam * dE0 - dC0
        iv = _interval_set(t, t0, lam * LE - LC, conf_level)
        prob = float(np.mean(t > 0)) if t.size else math.nan
        summary[f"nmb_{lam:g}"] = dict(estimate=t0, prob=prob, **iv)
        rows.append(estimate_row("cea", "nmb", "bootstrap_nmb", t0, iv["se"], iv["ci_low"], iv["ci_high"],
                                 n_phb=n1, n_control=n0, **common,
                                 lambda_gbp=lam, prob_cost_effective=prob, ci_low_bca=iv["ci_low_bca"],
                                 ci_high_bca=iv["ci_high_bca"], n_replicates=iv["n_replicates"],
                                 note=f"NMB = λ·Δ{eff} − Δcost; P(cost-effective) = share of replicates with NMB > 0"))
    dr = pd.DataFrame({"stratum": label, "replicate": np.arange(1, draws["d_effect"].shape[0] + 1)})
    for d in DRAW_COLUMNS:
        dr[d] = draws[d][:, j] if d in draws else np.nan
    if both.any():
        prob = (lam_grid[:, None] * tE[None, :] - tC[None, :] > 0).mean(axis=1)
    else:
        prob = np.full(lam_grid.size, np.nan)
    ceac = pd.DataFrame({"stratum": label, "lambda_gbp": lam_grid, "prob_cost_effective": prob})
    table = _table_row(label, kind, eff, n1, n0, summary, lambdas, n_replicates=int(both.sum()))
    return {"rows": rows, "table": table, "draws": dr, "ceac": ceac}


def _not_estimable_rows(label, kind, n1, n0, why, eff, lambdas):
    common = dict(effect_measure=eff, comparison=_comparison(kind), ci_method="percentile", note=why)
    rows = [estimate_row("cea", outcome, "ols_bootstrap", math.nan, stratum=label, n_phb=n1, n_control=n0,
                         lambda_gbp=math.nan, **common) for _, outcome, _, _ in _MODELS]
    rows.append(estimate_row("cea", "icer", "ols_bootstrap", math.nan, stratum=label, n_phb=n1, n_control=n0,
                             lambda_gbp=math.nan, quadrant="not estimable", **common))
    rows += [estimate_row("cea", "nmb", "bootstrap_nmb", math.nan, stratum=label, n_phb=n1, n_control=n0,
                          lambda_gbp=lam, **common) for lam in lambdas]
    return rows


def _table_row(label, kind, eff, n1, n0, summary, lambdas, note="", n_replicates=None) -> dict:
    row = {"stratum": label, "comparison": _comparison(kind), "effect_measure": eff, "n_phb": n1, "n_control": n0,
           "n_replicates": n_replicates}
    for outcome in ("incremental_cost", "incremental_cost_direct", "incremental_cost_indirect",
                    "incremental_effect", "incremental_qaly"):
        s = summary.get(outcome, {})
        row[outcome] = s.get("estimate", math.nan)
        row[f"{outcome}_ci_low"] = s.get("ci_low", math.nan)
        row[f"{outcome}_ci_high"] = s.get("ci_high", math.nan)
    ic = summary.get("icer", {})
    row["icer"] = ic.get("estimate", math.nan)
    row["quadrant"] = ic.get("quadrant", "not estimable")
    row["icer_meaning"] = quadrant_meaning(row["quadrant"], eff)
    for lam in lambdas:
        s = summary.get(f"nmb_{lam:g}", {})
        row[f"nmb_{lam:g}"] = s.get("estimate", math.nan)
        row[f"nmb_{lam:g}_ci_low"] = s.get("ci_low", math.nan)
        row[f"nmb_{lam:g}_ci_high"] = s.get("ci_high", math.nan)
        row[f"prob_ce_{lam:g}"] = s.get("prob", math.nan)
    row["note"] = note
    return row


def _method_text(eff, B, cluster_bootstrap, cluster, conf_level, lambdas, covariates, min_per_arm, bw, fw) -> str:
    unit = (f"{cluster}s within arm" if cluster_bootstrap
            else "people within arm (and within stratum in PHB-only models)")
    lam = ", ".join(f"£{v:,.0f}" for v in lambdas)
    covs = ", ".join(covariates) if covariates else "no covariates"
    return (
        f"Incremental effects and costs are adjusted PHB − control differences from ordinary least squares: "
        f"{eff}_{fw} on the PHB indicator, {eff}_{bw} and {covs}; qaly on the indicator, eq5d_index_{bw} and the "
        f"same covariates; cost_total, cost_direct and cost_indirect on the indicator, cost_indirect_pre and the "
        f"same covariates. Strata defined only for PHB holders (budget band, implementation model, their cross, "
        f"deployment) are compared with all controls through stratum-specific PHB indicators in one adjusted model "
        f"per variable (controls are the reference); strata defined for both arms (condition) are compared within "
        f"the stratum. People analysed have the effect at both waves, total and baseline indirect cost and the "
        f"covariates observed; the QALY and cost-component models use the complete cases for their own columns "
        f"among them. Uncertainty: non-parametric bootstrap ({B:,} replicates) resampling {unit}, every model "
        f"re-estimated on every replicate; {conf_level:.0%} percentile intervals (BCa alongside, acceleration from "
        f"jackknife influence values in closed form). Net monetary benefit = λ·Δ{eff} − Δcost at λ = {lam} per "
        f"unit of {eff}; the probability cost-effective is the share of replicates with positive net benefit. "
        f"ICERs are labelled by quadrant and shown only for trade-offs. Strata with fewer than {min_per_arm} people "
        f"in an arm are reported as not estimable."
    )
