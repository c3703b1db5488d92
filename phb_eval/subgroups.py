"""Subgroup effects: level-specific PHB effects, joint interaction (heterogeneity) tests, multiplicity.

One adjusted model per outcome and subgroup variable. Instead of ``phb`` the model has one PHB indicator
per level (``phb × [level]``); the level's own main effect is in the model when the variable is defined for
both arms. The level coefficients are the within-level effects, and the test that they are all equal is
the joint test of the PHB × subgroup interaction terms (the two parametrisations span the same column
space, so the Wald statistic is identical). The joint test uses the same cluster covariance as the level
effects with a small-sample reference: CR2 → clubSandwich's HTZ test, CR1 → F(q, G − 1); never χ².
Variables defined only for PHB holders (budget band, implementation model, deployment) compare each
level's holders with all controls. Designs and covariances come from :mod:`phb_eval.models`.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from .errors import EstimationError
from .models.design import build_design, parse_terms
from .models.design import design_matrix as _design_matrix
from .models.fit import fit_ols
from .models.registry import REGISTRY
from .outcomes import MIN_CLUSTERS_PER_ARM
from .results import estimate_row, rows_frame

__all__ = ["PHB_ONLY_VARIABLES", "subgroup_effects", "adjust_pvalues", "design_matrix", "is_interaction_test"]

PHB_ONLY_VARIABLES = ("budget_band", "implementation_model", "deployment",
                      "budget_band:implementation_model")


def design_matrix(df: pd.DataFrame, covariates, baseline: str | None) -> pd.DataFrame:
    """Intercept, baseline score and covariates (strings become treatment-coded dummies)."""
    return _design_matrix(df, ([baseline] if baseline is not None else []) + list(covariates))


def is_interaction_test(method) -> pd.Series | bool:
    """True for the joint interaction-test rows (``interaction_wald_<variance>_<cluster>``)."""
    if isinstance(method, pd.Series):
        return method.astype(str).str.startswith("interaction_wald_")
    return str(method).startswith("interaction_wald_")


def _level_counts(df, var, levels, treatment):
    phb = df[treatment] == 1
    return {lvl: (int(((df[var] == lvl) & phb).sum()),
                  int(((df[var] == lvl) & ~phb).sum()) if var not in PHB_ONLY_VARIABLES else int((~phb).sum()))
            for lvl in levels}


def subgroup_effects(df: pd.DataFrame, outcome: str, variable: str, covariates, *, baseline_wave="t0",
                     followup_wave="t1", cluster="site", conf_level=0.95, min_cell=10,
                     phb_only: bool | None = None, treatment: str = "phb", variance: str = "cr1",
                     bootstrap: dict | None = None) -> pd.DataFrame:
    """Within-level PHB effects on ``<outcome>_<followup>`` and the joint interaction test.

    Parameters
    ----------
    df : analysis frame with the treatment, cluster, the subgroup variable, scores and covariates.
    outcome : score stem, e.g. ``"scrqol"``; the model adjusts for ``<outcome>_<baseline_wave>`` when present.
    variable : subgroup column. PHB-only variables (NaN for controls) compare each level with all controls.
    covariates : model terms; terms that use ``variable`` are left out (the model has it already).
    min_cell : a level with fewer people than this in either arm is reported as not estimable.
    variance : ``"cr1"``, ``"cr2"`` (default) or ``"wild_bootstrap"`` (level effects; the joint test then
        uses CR2/HTZ).

    Returns
    -------
    DataFrame of results rows: one per level (``stratum = variable=level``, ``method = ancova_<v>_<cluster>``)
    and one interaction row (``stratum = variable``, ``method = interaction_wald_<v>_<cluster>``,
    ``estimate`` = the F statistic (HTZ for CR2), ``df`` = numerator df, ``df2`` = denominator df,
    ``p_value``, ``test``). Extra columns: ``df``, ``n_clusters``, ``note`` (with fewer than 10 clusters per
    arm it says so).
    """
    y_col = f"{outcome}_{followup_wave}"
    base_col = f"{outcome}_{baseline_wave}" if f"{outcome}_{baseline_wave}" in df else None
    if variable not in df or treatment not in df:
        raise EstimationError(f"subgroups by {variable} for {outcome}: column(s) "
                              f"{[c for c in (variable, treatment) if c not in df]} are not in the data")
    if phb_only is None:
        phb_only = variable in PHB_ONLY_VARIABLES or df.loc[df[treatment] == 0, variable].isna().all()
    terms = [t for t in parse_terms(covariates, cluster=cluster) if variable not in t.variables]
    needed = [y_col, treatment, cluster, *{v for t in terms for v in t.variables}] + ([base_col] if base_col else [])
    missing = [c for c in needed if c not in df]
    if missing:
        raise EstimationError(f"subgroups by {variable} for {outcome}: column(s) {missing} are not in the data")
    data = df.dropna(subset=needed)
    in_level = data[variable].notna()
    data = data[in_level | ((data[treatment] == 0) if phb_only else False)]

    levels = sorted(data[variable].dropna().unique(), key=str)
    counts = _level_counts(data, variable, levels, treatment)
    level_method = REGISTRY["ancova"].method(variance, cluster)
    rows, kept = [], []
    for lvl in levels:
        n1, n0 = counts[lvl]
        if min(n1, n0) < min_cell:
            rows.append(estimate_row("subgroup", outcome, level_method, math.nan, stratum=f"{variable}={lvl}",
                                     n_phb=n1, n_control=n0,
                                     note=f"not estimable: fewer than {min_cell} people in an arm"))
        else:
            kept.append(lvl)
    if not phb_only:
        data = data[data[variable].isin(kept)]
    else:
        data = data[(data[treatment] == 0) | data[variable].isin(kept)]
    if len(kept) == 0:
        return rows_frame(rows)

    ind = pd.DataFrame({f"{treatment}:{variable}[{lvl}]": ((data[treatment] == 1) & (data[variable] == lvl)
                                                            ).astype(float) for lvl in kept}, index=data.index)
    level_terms = [] if phb_only else [f"C({variable})"] if pd.api.types.is_numeric_dtype(data[variable]) \
        else [variable]
    what = f"subgroups by {variable} for {outcome}"
    d = build_design(data, y_col, treatment=treatment, covariates=terms + parse_terms(level_terms),
                     cluster=cluster, baseline=base_col, extra=ind, include_treatment=False, what=what)
    fit = fit_ols(d, REGISTRY["ancova"].variance(variance), bootstrap=bootstrap, what=what)
    few = min(d.clusters_per_arm)
    few_note = (f"only {few} {cluster}s in the smaller arm (fewer than {MIN_CLUSTERS_PER_ARM} per arm): "
                "cluster-robust inference may be unreliable" if few < MIN_CLUSTERS_PER_ARM else "")
    names = list(ind.columns)
    for lvl, name in zip(kept, names):
        t = fit.test(name, level=conf_level)
        n1, n0 = counts[lvl]
        what_note = ("level-specific PHB indicator vs all controls, one adjusted model" if phb_only
                     else "level-specific PHB indicator, one adjusted model")
        rows.append(estimate_row("subgroup", outcome, level_method, t["estimate"], t["se"], t["ci_low"],
                                 t["ci_high"], t["p"], n_phb=n1, n_control=n0, stratum=f"{variable}={lvl}",
                                 df=t["df"], n_clusters=fit.n_clusters,
                                 note="; ".join(x for x in (what_note, few_note) if x)))
    if len(kept) >= 2:
        idx = [fit.cov_names.index(n) for n in names]
        R = np.zeros((len(kept) - 1, len(fit.cov_names)))
        for r in range(len(kept) - 1):          # b_j − b_first, j ≥ 2
            R[r, idx[0]], R[r, idx[r + 1]] = -1.0, 1.0
        joint = "cr2" if fit.variance == "wild_bootstrap" else fit.variance
        w = fit.wald(R)   # a wild-bootstrap fit carries the CR2 covariance: HTZ
        dof = len(kept) - 1
        rows.append(estimate_row("subgroup", outcome, REGISTRY["interaction_wald"].method(joint, cluster),
                                 w["statistic"], p_value=w["p"], stratum=variable,
                                 n_phb=d.n_phb, n_control=d.n_control, df=float(w["df1"]), df2=float(w["df2"]),
                                 test=w["test"], n_clusters=fit.n_clusters,
                                 note="; ".join(x for x in (
                                     f"{w['test']} test ({dof} and {w['df2']:.1f} df) that the PHB effect is "
                                     "equal across levels", few_note) if x)))
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
    kind = np.where(is_interaction_test(out["method"]), "interaction", "level")
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
