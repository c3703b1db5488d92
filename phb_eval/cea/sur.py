"""Batched least squares for the cost and effect equations on many bootstrap weight vectors at once.

The adjusted incremental cost and effect are a seemingly unrelated regression (SUR) system. With the same
regressors in every equation, SUR's GLS estimator equals equation-by-equation OLS (Zellner 1962), so the
system is solved here as OLS on one shared moment matrix; the correlation between cost and effect is
carried by resampling people (or sites) jointly for both equations. Written by hand because no library
solves thousands of weighted fits from one matrix product (``linearmodels.SUR`` fits one system at a time).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import linalg

__all__ = ["batched_wls", "loo_change", "prepare_moments", "replicate_coefficients"]

_RCOND = 1e-10                           # relative eigenvalue below which a replicate's X'WX is rank-deficient
_LEVERAGE_ONE = 1e-10                    # 1 − h_i below this: the person is fitted exactly by their own dummy


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

    def by_unit(self, unit_of: np.ndarray, n_units: int) -> "_Moments":
        """Sum the rows of each resampling unit (e.g. an arm's site): a replicate's moments are then
        ``W_units @ Z_units``, the same numbers as expanding the unit counts to people, at a fraction of the cost."""
        Z = np.zeros((n_units, self.Z.shape[1]))
        np.add.at(Z, unit_of, self.Z)
        self.Z = Z
        return self

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


def prepare_moments(specs, m, unit_of=None, n_units=None):
    """Group models sharing a mask and kept indicators into one union design (one moment matrix each);
    with ``unit_of`` (resampling unit per person) the moments are summed per unit, for unit-level weights."""
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
        if unit_of is not None:
            mom.by_unit(unit_of, n_units)
        solves = {}
        for k, d in enumerate(members):
            sel = list(range(nC + len(keep))) + [nC + len(keep) + bases.index(specs[d]["base"])]
            solves.setdefault(tuple(sel), []).append((k, d))
        ret_pos = list(range(nC, nC + len(keep)))          # indicator positions within each selection
        prepared.append((mom, scale, solves, ret_pos, list(keep)))
    return prepared


def replicate_coefficients(specs, W, m, prepared=None):
    """Indicator coefficients of every model for each weight row: draw -> (b, m)."""
    prepared = prepared if prepared is not None else prepare_moments(specs, m)
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

