"""Net-benefit regression (Hoch, Briggs & Willan 2002): does net benefit differ by budget size and flexibility?

Per person NB_i = λ·E_i − C_i (E = QALYs or ASCOT-years over the horizon, C = total cost) is regressed on
one PHB indicator per budget band × implementation model cell (controls the reference), the baseline
effect, baseline indirect cost and the covariates. Cell coefficients are adjusted incremental net benefits.
Joint Wald tests of linear contrasts of the cells: budget size (high − low band within each model),
flexibility (model 1 − model 2 within each band), their interaction, and any difference between cells.

Variance: CR2 by site with HTZ Wald tests and Satterthwaite df (``phb_eval.models.variance``; CR1 with
F(q, G − 1) while that module is absent, said in the method name). Over m imputed datasets, coefficients
pool by Rubin's rules and tests by the D1 statistic (Li, Raghunathan & Rubin 1991) with its denominator df
capped at the mean complete-data df.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..missing import pool_rubin
from ..outcomes import design_matrix

__all__ = ["net_benefit_regression", "cell_contrasts", "NBR_TESTS"]

BAND, MODEL = "budget_band", "implementation_model"
NBR_TESTS = ("budget_size", "flexibility", "interaction", "any_difference")


def _covariance(X, resid, cluster):
    """CR2 from the modelling core's variance module, or CR1 while it is absent; (object, kind)."""
    try:
        from ..models.variance import ClusterCovariance
    except ImportError:
        from ..models.fit import covariance_from_scores
        bread = np.linalg.inv(X.T @ X)
        return covariance_from_scores(bread, X * resid[:, None], cluster, kind="cr1"), "cr1"
    return ClusterCovariance.from_ols(X, resid, cluster, kind="cr2"), "cr2"


def cell_contrasts(cells: list[tuple[str, str]]) -> dict:
    """Contrast matrices over the cell coefficients, for a 2 × 2 layout (bands × models) or larger.

    ``budget_size``: each band minus the first band, within each model; ``flexibility``: each model minus
    the first model, within each band; ``interaction``: the differences of those differences;
    ``any_difference``: every cell minus the first cell."""
    bands = sorted({b for b, _ in cells})
    models = sorted({m for _, m in cells})
    pos = {c: i for i, c in enumerate(cells)}
    k = len(cells)

    def row(pairs):
        r = np.zeros(k)
        for c, w in pairs:
            r[pos[c]] += w
        return r

    out = {"budget_size": [row([((b, m), 1), ((bands[0], m), -1)]) for m in models for b in bands[1:]
                           if (b, m) in pos and (bands[0], m) in pos],
           "flexibility": [row([((b, m), 1), ((b, models[0]), -1)]) for b in bands for m in models[1:]
                           if (b, m) in pos and (b, models[0]) in pos],
           "interaction": [row([((b, m), 1), ((bands[0], m), -1), ((b, models[0]), -1), ((bands[0], models[0]), 1)])
                           for b in bands[1:] for m in models[1:]
                           if all(c in pos for c in ((b, m), (bands[0], m), (b, models[0]), (bands[0], models[0])))],
           "any_difference": [row([(c, 1), (cells[0], -1)]) for c in cells[1:]]}
    return {name: np.array(rows) for name, rows in out.items() if rows}


def _fit_one(data, y, covariates, baselines, cells, cluster):
    C = design_matrix(data, covariates).to_numpy(float)
    ind = np.column_stack([((data[BAND].astype(str) == b) & (data[MODEL].astype(str) == m)
                            & (data["phb"] == 1)).to_numpy(float) for b, m in cells])
    X = np.column_stack([C, data[baselines].to_numpy(float), ind])
    keep = [0] + [j for j in range(1, X.shape[1]) if np.ptp(X[:, j]) > 0]
    X = X[:, keep]
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    cov, kind = _covariance(X, resid, data[cluster].astype(str).to_numpy())
    pos = list(range(X.shape[1] - len(cells), X.shape[1]))
    return beta, cov, kind, pos


def net_benefit_regression(datasets, covariates, measures: dict, lambdas: dict, *, cluster="site",
                           conf_level=0.95, horizon=1.0, min_per_cell=10):
    """Cell coefficients and joint tests of net benefit by budget band × implementation model.

    Parameters
    ----------
    datasets : one (complete-case) or m (imputed) frames of the same people, with ``phb``, ``budget_band``,
        ``implementation_model``, ``cost_total``, the covariates, ``cluster`` and the effect columns.
    measures : effect measure -> (effect column, baseline column), e.g. ``{"qaly": ("_cea_qaly", "eq5d_index_t0")}``.
    lambdas : effect measure -> list of λ.

    Returns
    -------
    (coefficients, tests) DataFrames: ``effect_measure, horizon_years, lambda_gbp, cell, estimate, se, ci_low,
    ci_high, df, p_value, n, method`` and ``effect_measure, horizon_years, lambda_gbp, test, statistic, df1, df2,
    p_value, method`` (empty when the bands or models are not in the data).
    """
    first = datasets[0]
    if BAND not in first or MODEL not in first or cluster not in first:
        return pd.DataFrame(), pd.DataFrame()
    people = (first["phb"] == 0) | (first[BAND].notna() & first[MODEL].notna())
    cells_all = sorted(set(zip(first.loc[people & (first["phb"] == 1), BAND].astype(str),
                               first.loc[people & (first["phb"] == 1), MODEL].astype(str))))
    counts = {c: int(((first[BAND].astype(str) == c[0]) & (first[MODEL].astype(str) == c[1])
                      & (first["phb"] == 1) & people).sum()) for c in cells_all}
    cells = [c for c in cells_all if counts[c] >= min_per_cell]
    if len(cells) < 2:
        return pd.DataFrame(), pd.DataFrame()
    coef_rows, test_rows = [], []
    for measure, (ecol, bcol) in measures.items():
        for lam in lambdas.get(measure, []):
            fits = []
            for d in datasets:
                sub = d[people & (d["phb"].eq(0) | pd.Series(list(zip(d[BAND].astype(str), d[MODEL].astype(str))),
                                                              index=d.index).isin(cells))]
                sub = sub.dropna(subset=[ecol, bcol, "cost_total", "cost_indirect_pre", *covariates])
                y = lam * sub[ecol].to_numpy(float) - sub["cost_total"].to_numpy(float)
                fits.append((*_fit_one(sub, y, covariates, [bcol, "cost_indirect_pre"], cells, cluster), len(sub)))
            kind = fits[0][2]
            method = f"nbr_ols_{kind}_{cluster}" + ("_mi" if len(fits) > 1 else "")
            common = dict(effect_measure=measure, horizon_years=horizon, lambda_gbp=lam, method=method)
            for i, cell in enumerate(cells):
                c = np.zeros(len(fits[0][0]))
                c[fits[0][3][i]] = 1.0
                tests = [f[1].coef_test(f[0], c, level=conf_level) for f in fits]
                if len(fits) == 1:
                    t = tests[0]
                    est, se, lo, hi, dof, p = t["estimate"], t["se"], t["ci_low"], t["ci_high"], t["df"], t["p"]
                else:
                    pooled = pool_rubin([t["estimate"] for t in tests], [t["se"] ** 2 for t in tests],
                                        float(np.mean([t["df"] for t in tests])), conf_level)
                    est, se, lo, hi = pooled["qbar"], pooled["se"], pooled["ci_low"], pooled["ci_high"]
                    dof, p = pooled["df"], pooled["p_value"]
                coef_rows.append(dict(common, cell=f"{BAND}={cell[0]};{MODEL}={cell[1]}", estimate=est, se=se,
                                      ci_low=lo, ci_high=hi, df=dof, p_value=p, n=fits[0][4], n_phb_cell=counts[cell]))
            for name, Rc in cell_contrasts(cells).items():
                R = np.zeros((Rc.shape[0], len(fits[0][0])))
                R[:, fits[0][3]] = Rc
                test_rows.append(dict(common, test=name, **_joint_test(fits, R)))
    return pd.DataFrame(coef_rows), pd.DataFrame(test_rows)


def _joint_test(fits, R):
    """One dataset: the covariance's own Wald test (HTZ for CR2). Several: D1 of Li, Raghunathan & Rubin
    (1991) on the pooled coefficients, df2 the smaller of their df and the mean complete-data df2."""
    if len(fits) == 1:
        w = fits[0][1].wald_test(fits[0][0], R)
        return dict(statistic=w["statistic"], df1=w["df1"], df2=w["df2"], p_value=w["p"])
    m = len(fits)
    q = R.shape[0]
    d = np.array([R @ f[0] for f in fits])                       # (m, q)
    U = np.array([R @ f[1].vcov @ R.T for f in fits])
    dbar, Ubar = d.mean(axis=0), U.mean(axis=0)
    Bm = np.atleast_2d(np.cov(d, rowvar=False, ddof=1))
    r = (1 + 1 / m) * np.trace(Bm @ np.linalg.inv(Ubar)) / q
    D1 = float(dbar @ np.linalg.solve(Ubar, dbar)) / (q * (1 + r))
    t = q * (m - 1)
    if t > 4:
        v = 4 + (t - 4) * (1 + (1 - 2 / t) / r) ** 2 if r > 0 else math.inf
    else:
        v = t * (1 + 1 / q) * (1 + 1 / r) ** 2 / 2 if r > 0 else math.inf
    df2_com = float(np.mean([f[1].wald_test(f[0], R)["df2"] for f in fits]))
    df2 = min(v, df2_com)
    return dict(statistic=D1, df1=float(q), df2=df2, p_value=float(stats.f.sf(D1, q, df2)))
