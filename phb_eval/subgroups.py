"""Subgroup effects: level-specific PHB effects, joint interaction (heterogeneity) tests, multiplicity.

One adjusted model per outcome and subgroup variable. Instead of ``phb`` the model has one PHB indicator
per level (``phb × [level]``); the level's own main effect is in the model when the variable is defined for
both arms. The level coefficients are the within-level effects, and the Wald test that they are all equal
is the joint test of the PHB × subgroup interaction terms (the two parametrisations span the same column
space, so the CR1 Wald statistic is identical). Variables defined only for PHB holders (budget band,
implementation model, deployment) compare each level's holders with all controls.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests

from .errors import EstimationError
from .outcomes import design_matrix as _design_matrix
from .results import estimate_row, rows_frame, t_interval

__all__ = ["PHB_ONLY_VARIABLES", "subgroup_effects", "adjust_pvalues", "design_matrix"]

PHB_ONLY_VARIABLES = ("budget_band", "implementation_model", "deployment",
                      "budget_band:implementation_model")


def _dummies(series: pd.Series, prefix: str) -> pd.DataFrame:
    """Treatment-coded dummies (first level, sorted, is the reference) — as R's default contrasts."""
    levels = sorted(series.dropna().unique(), key=str)
    return pd.DataFrame({f"{prefix}[{lvl}]": (series == lvl).astype(float) for lvl in levels[1:]},
                        index=series.index)


def design_matrix(df: pd.DataFrame, covariates, baseline: str | None) -> pd.DataFrame:
    """Intercept, baseline score and covariates (strings become treatment-coded dummies)."""
    return _design_matrix(df, ([baseline] if baseline is not None else []) + list(covariates))


def _level_counts(df, var, levels):
    phb = df["phb"] == 1
    return {lvl: (int(((df[var] == lvl) & phb).sum()),
                  int(((df[var] == lvl) & ~phb).sum()) if var not in PHB_ONLY_VARIABLES else int((~phb).sum()))
            for lvl in levels}


def subgroup_effects(df: pd.DataFrame, outcome: str, variable: str, covariates, *, baseline_wave="t0",
                     followup_wave="t1", cluster="site", conf_level=0.95, min_cell=10,
                     phb_only: bool | None = None) -> pd.DataFrame:
    """Within-level PHB effects on ``<outcome>_<followup>`` and the joint interaction test.

    Parameters
    ----------
    df : analysis frame with ``phb``, ``cluster``, the subgroup variable, scores and covariates.
    outcome : score stem, e.g. ``"scrqol"``; the model adjusts for ``<outcome>_<baseline_wave>`` when present.
    variable : subgroup column. PHB-only variables (NaN for controls) compare each level with all controls.
    min_cell : a level with fewer people than this in either arm is reported as not estimable.

    Returns
    -------
    DataFrame of results rows: one per level (``stratum = variable=level``, ``method = ancova_cr1_site``)
    and one interaction row (``stratum = variable``, ``method = interaction_wald_cr1_site``, ``estimate`` =
    Wald chi-square, ``df`` = its degrees of freedom, ``p_value``). Extra columns: ``df``, ``n_clusters``,
    ``note``.

    Notes
    -----
    Complete cases for the outcome, baseline, covariates and (for PHB holders) the subgroup variable.
    Covariance CR1 by cluster (G/(G-1)·(N-1)/(N-K), as Stata and ``sandwich::vcovCL(type="HC1")``);
    level effects use t with G−1 df, the interaction test the Wald chi-square with (levels − 1) df.
    """
    y_col = f"{outcome}_{followup_wave}"
    base_col = f"{outcome}_{baseline_wave}" if f"{outcome}_{baseline_wave}" in df else None
    if phb_only is None:
        phb_only = variable in PHB_ONLY_VARIABLES or df.loc[df["phb"] == 0, variable].isna().all()
    covs = [c for c in covariates if c != variable and c in df]
    needed = [y_col, "phb", cluster, *covs] + ([base_col] if base_col else [])
    missing = [c for c in needed + [variable] if c not in df]
    if missing:
        raise EstimationError(f"subgroups by {variable} for {outcome}: column(s) {missing} are not in the data")
    data = df.dropna(subset=needed)
    in_level = data[variable].notna()
    data = data[in_level | ((data["phb"] == 0) if phb_only else False)]

    levels = sorted(data[variable].dropna().unique(), key=str)
    counts = _level_counts(data, variable, levels)
    rows, kept = [], []
    for lvl in levels:
        n1, n0 = counts[lvl]
        if min(n1, n0) < min_cell:
            rows.append(estimate_row("subgroup", outcome, "ancova_cr1_site", math.nan, stratum=f"{variable}={lvl}",
                                     n_phb=n1, n_control=n0,
                                     note=f"not estimable: fewer than {min_cell} people in an arm"))
        else:
            kept.append(lvl)
    if not phb_only:
        data = data[data[variable].isin(kept)]
    else:
        data = data[(data["phb"] == 0) | data[variable].isin(kept)]
    if len(kept) == 0:
        return rows_frame(rows)

    X = design_matrix(data, covs, base_col)
    if not phb_only:
        X = pd.concat([X, _dummies(data[variable].astype(object), variable)], axis=1)
    ind = pd.DataFrame({f"phb:{variable}[{lvl}]": ((data["phb"] == 1) & (data[variable] == lvl)).astype(float)
                        for lvl in kept}, index=data.index)
    X = pd.concat([X, ind], axis=1)
    constant = [c for c in X.columns[1:] if X[c].nunique() <= 1]
    if constant:
        raise EstimationError(f"subgroups by {variable} for {outcome}: {constant} constant among the "
                              f"{len(data)} people analysed; drop it from the plan's covariates")
    if np.linalg.matrix_rank(X.to_numpy()) < X.shape[1]:
        raise EstimationError(f"subgroups by {variable} for {outcome}: the model is not identifiable "
                              "(collinear covariates); simplify the plan's covariates")
    groups = pd.factorize(data[cluster])[0]
    n_clusters = int(groups.max() + 1)
    if n_clusters < 2:
        raise EstimationError(f"subgroups by {variable}: only one {cluster} left, so cluster-robust errors "
                              "cannot be estimated")
    fit = sm.OLS(data[y_col].astype(float), X).fit(cov_type="cluster", cov_kwds={"groups": groups})
    df_t = n_clusters - 1
    names = list(ind.columns)
    for lvl, name in zip(kept, names):
        est, se = float(fit.params[name]), float(fit.bse[name])
        lo, hi, p = t_interval(est, se, df_t, conf_level)
        n1, n0 = counts[lvl]
        rows.append(estimate_row("subgroup", outcome, "ancova_cr1_site", est, se, lo, hi, p,
                                 n_phb=n1, n_control=n0, stratum=f"{variable}={lvl}", df=df_t,
                                 n_clusters=n_clusters,
                                 note=("level-specific PHB indicator vs all controls, one adjusted model"
                                       if phb_only else "level-specific PHB indicator, one adjusted model")))
    if len(kept) >= 2:
        b = fit.params[names].to_numpy()
        V = fit.cov_params().loc[names, names].to_numpy()
        R = np.hstack([-np.ones((len(kept) - 1, 1)), np.eye(len(kept) - 1)])  # b_j − b_first, j ≥ 2
        rb = R @ b
        wald = float(rb @ np.linalg.solve(R @ V @ R.T, rb))
        dof = len(kept) - 1
        rows.append(estimate_row("subgroup", outcome, "interaction_wald_cr1_site", wald,
                                 p_value=float(stats.chi2.sf(wald, dof)), stratum=variable,
                                 n_phb=int((data["phb"] == 1).sum()), n_control=int((data["phb"] == 0).sum()),
                                 df=dof, n_clusters=n_clusters,
                                 note=f"Wald chi-square ({dof} df) that the PHB effect is equal across levels"))
    return rows_frame(rows)


def adjust_pvalues(rows: pd.DataFrame, method="holm", family="all", prespecified=()) -> pd.DataFrame:
    """Add ``p_adjusted`` (Holm or Benjamini–Hochberg), ``n_tests`` and ``prespecified``.

    Interaction tests form one family and level-specific tests another, over all outcomes
    (``family="all"``) or within each outcome (``family="per_outcome"``). Rows without a p-value
    (not estimable) are not counted as tests.
    """
    out = rows.reset_index(drop=True)
    out["p_adjusted"] = np.nan
    out["n_tests"] = np.nan
    kind = np.where(out["method"].eq("interaction_wald_cr1_site"), "interaction", "level")
    keys = [kind] if family == "all" else [kind, out["outcome"]]
    sm_method = {"holm": "holm", "bh": "fdr_bh"}[method]
    for _, idx in out.groupby(keys).groups.items():
        p = out.loc[idx, "p_value"]
        ok = p.notna()
        if ok.any():
            out.loc[p[ok].index, "p_adjusted"] = multipletests(p[ok].to_numpy(), method=sm_method)[1]
            out.loc[p[ok].index, "n_tests"] = int(ok.sum())
    variable = out["stratum"].str.split("=", n=1).str[0]
    out["prespecified"] = variable.isin(list(prespecified))
    out["multiplicity"] = method
    return out
