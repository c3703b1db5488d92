"""Multiple imputation for the CEA: every participant alive at follow-up, their missing ASCOT and EQ-5D waves,
costs and numeric covariates filled by the project's chained equations (:func:`phb_eval.missing.impute_chained`).

The imputation model holds everything the analysis models do — arm, site, the covariates, and indicators of
each PHB-only stratum level (budget band, implementation model, their cross, deployment) — so that
stratum-specific net benefit is not pulled towards the overall effect. Total cost is imputed passively as
direct + indirect where its components are imputed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import EstimationError
from ..missing import impute_chained
from .strata import PHB_ONLY_VARIABLES

__all__ = ["impute_for_cea"]

_STRATUM_CROSS = ("budget_band", "implementation_model")
# a predictor level held by fewer people than this is merged into its reference level in the imputation model
# only: a rare level whose few members lack the value being imputed would leave an empty column there
MIN_LEVEL = 5


def _level_indicators(df: pd.DataFrame, columns) -> pd.DataFrame:
    """0/1 columns for the levels (after the first) of categorical predictors such as sex, condition, site."""
    cols = {}
    for var in columns:
        for lvl in sorted(df[var].astype(str).unique())[1:]:
            cols[f"_imp_{var}={lvl}"] = (df[var].astype(str) == lvl).astype(float)
    return pd.DataFrame(cols, index=df.index)


def _stratum_indicators(df: pd.DataFrame) -> pd.DataFrame:
    """0/1 columns, one per level of each PHB-only stratum variable and of band × model (0 when missing)."""
    cols = {}
    present = [v for v in PHB_ONLY_VARIABLES if v in df.columns and df[v].notna().any()]
    for var in present:
        for lvl in sorted(df[var].dropna().astype(str).unique())[1:]:
            cols[f"_imp_{var}={lvl}"] = (df[var].astype(str) == lvl).astype(float).where(df[var].notna(), 0.0)
    if all(v in present for v in _STRATUM_CROSS):
        cross = df[_STRATUM_CROSS[0]].astype(str) + ";" + df[_STRATUM_CROSS[1]].astype(str)
        ok = df[list(_STRATUM_CROSS)].notna().all(axis=1)
        for lvl in sorted(cross[ok].unique())[1:]:
            cols[f"_imp_cross={lvl}"] = ((cross == lvl) & ok).astype(float)
    return pd.DataFrame(cols, index=df.index)


def impute_for_cea(df: pd.DataFrame, covariates, effect_cols, qaly_cols, cluster, m: int, rng, notes: list,
                   iterations: int = 10, method: str = "pmm", donors: int = 5):
    """The living cohort and ``m`` completed copies of it.

    Returns ``(people, imputed)``: ``people`` is the frame of those analysed (alive at follow-up, cluster and
    categorical covariates observed), ``imputed`` a list of ``m`` frames with the same index where the effect
    waves, QALY inputs, costs and numeric covariates have no missing values.
    """
    live = df
    if "mortality" in df.columns:
        live = df[df["mortality"].fillna(0) != 1]
        died = len(df) - len(live)
        if died:
            notes.append(f"cost-effectiveness: {died} people who died before follow-up are not in the CEA "
                         "(no follow-up outcomes to impute)")
    covariates = list(covariates)
    categorical = [c for c in covariates if not pd.api.types.is_numeric_dtype(live[c])
                   or pd.api.types.is_bool_dtype(live[c])]
    numeric = [c for c in covariates if c not in categorical]
    must = ["phb", *categorical] + ([cluster] if cluster else [])
    complete = live[must].notna().all(axis=1)
    if (~complete).any():
        notes.append(f"cost-effectiveness: {int((~complete).sum())} living people with a missing "
                     f"{' or '.join(must)} are left out (categorical values are not imputed)")
    people = live[complete]
    if people.empty or people["phb"].nunique() < 2:
        raise EstimationError("cost-effectiveness: no living people with the covariates observed in one arm")
    costs = (["cost_direct", "cost_indirect"] if {"cost_direct", "cost_indirect"} <= set(people.columns)
             else ["cost_total"])
    columns = [c for c in dict.fromkeys([*effect_cols, *qaly_cols, *costs, "cost_indirect_pre", *numeric])
               if c in people.columns and people[c].notna().sum() >= 2]
    n_missing = {c: int(people[c].isna().sum()) for c in columns if people[c].isna().any()}
    site = [cluster] if cluster and cluster in people else (["site"] if "site" in people and
                                                             people["site"].notna().all() else [])
    extra = pd.concat([_stratum_indicators(people), _level_indicators(people, [*categorical, *site])], axis=1)
    extra = extra.loc[:, [c for c in extra.columns if MIN_LEVEL <= extra[c].sum() <= len(extra) - MIN_LEVEL]]
    frame = pd.concat([people, extra], axis=1)
    predictors = ["phb", *extra.columns]
    imputed = impute_chained(frame, columns, m, rng, iterations=iterations, method=method, donors=donors,
                             predictors=list(dict.fromkeys(predictors)))
    out = []
    for d in imputed:
        d = d.drop(columns=list(extra.columns))
        if costs != ["cost_total"]:
            total = d["cost_direct"] + d["cost_indirect"]
            d["cost_total"] = d["cost_total"].where(d["cost_total"].notna(), total)
        out.append(d)
    if n_missing:
        notes.append(f"cost-effectiveness: {len(people):,} living people analysed; imputed ({m} datasets) "
                     + ", ".join(f"{c} ({k:,} missing)" for c, k in n_missing.items()))
    return people, out
