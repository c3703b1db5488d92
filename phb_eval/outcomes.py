"""Adjusted PHB − control comparisons of person-level outcomes with cluster-robust errors.

Estimators (one tidy results row each, ``analysis="outcome"``; method names ``<estimator>_<variance>_<cluster>``
from :mod:`phb_eval.models.registry`, e.g. ``ancova_cr2_site``):

- :func:`ancova` — follow-up score on the PHB indicator, the baseline score and covariates
  (``ancova``; ``ancova_ipw`` when propensity weights are given);
- :func:`did` — change score on the PHB indicator and covariates (``did``);
- :func:`binary_effects` — risk difference (linear probability model) and odds ratio (logit) for 0/1
  outcomes (``ancova_rd`` / ``logit_or``, ``ancova_ipw_rd`` / ``logit_ipw_or`` when weighted);
- :func:`ancova_mi` — ANCOVA on each imputed dataset pooled by Rubin's rules (``ancova_mi``);
- :func:`unadjusted` — means per arm and wave, Welch differences and Hedges' g.

Designs come from :func:`phb_eval.models.design.build_design`, fits and covariances from
:mod:`phb_eval.models.fit`. A design that cannot be estimated (outcome column absent, an arm empty after
exclusions, one site, a constant covariate, collinear covariates, a binary outcome that is not 0/1) raises
:class:`~phb_eval.errors.EstimationError` with a sentence naming the outcome, column and fix; the
pipeline turns it into a "skipped" sentence. No estimator returns a silent NaN estimate.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats

from .errors import EstimationError
from .missing import pool_rubin, single_thread_blas
from .models.design import Design, build_design
from .models.design import design_matrix as _design_matrix
from .models.fit import Fit, fit_logit, fit_ols
from .models.registry import OUTCOME_ESTIMATORS as REGISTRY_OUTCOMES
from .models.registry import REGISTRY
from .results import estimate_row, rows_frame

MIN_CLUSTERS_PER_ARM = 10

__all__ = ["ancova", "did", "binary_effects", "ancova_mi", "unadjusted", "design_matrix", "resolve_columns",
           "effect_row", "MIN_CLUSTERS_PER_ARM", "RUNNERS"]

# Outcomes measured once (no wave suffix) may be stored under another canonical name.
_ALIASES = {"mortality": "died"}


# ---------------------------------------------------------------------------------------------------------
# small pieces
# ---------------------------------------------------------------------------------------------------------
def resolve_columns(df: pd.DataFrame, outcome: str, baseline, *, followup_wave="t1", baseline_wave="t0"):
    """Follow-up and baseline column names for an outcome stem.

    The follow-up column is ``<outcome>_<followup_wave>``, else the bare ``<outcome>`` (e.g. ``qaly``,
    ``mortality``, whose alias is ``died``). ``baseline=True`` requires ``<outcome>_<baseline_wave>``,
    ``False`` ignores it, ``None`` uses it when present.
    """
    candidates = [f"{outcome}_{followup_wave}", outcome] + ([_ALIASES[outcome]] if outcome in _ALIASES else [])
    y_col = next((c for c in candidates if c in df.columns), None)
    if y_col is None:
        raise EstimationError(f"{outcome}: none of the columns {candidates} is in the analysis data; "
                              f"score or supply the outcome, or drop it from the plan's outcomes")
    base = f"{outcome}_{baseline_wave}"
    if baseline is True and base not in df.columns:
        raise EstimationError(f"{outcome}: baseline column '{base}' is not in the data, so the baseline-adjusted "
                              f"model cannot be fitted; supply it or use an estimator without baseline adjustment")
    base_col = base if (baseline is True or (baseline is None and base in df.columns)) else None
    return y_col, base_col


def is_categorical(col: pd.Series) -> bool:
    """Text and 0/1-bool columns enter models as treatment-coded levels; numbers as they are."""
    return not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)


def design_matrix(data: pd.DataFrame, terms) -> pd.DataFrame:
    """Intercept plus ``terms`` (see :func:`phb_eval.models.design.design_matrix`)."""
    return _design_matrix(data, terms)


def _method(name: str, variance: str, cluster: str) -> str:
    return REGISTRY[name].method(variance, cluster)


def _few_clusters_note(d: Design) -> str:
    g = min(d.clusters_per_arm)
    return (f"only {g} {{cluster}}s in the smaller arm (fewer than {MIN_CLUSTERS_PER_ARM} per arm): "
            "cluster-robust inference may be unreliable" if g < MIN_CLUSTERS_PER_ARM else "")


def effect_row(analysis, outcome, method, fit: Fit, name: str, conf_level, stratum, cluster, *, exp=False,
               **extra) -> dict:
    """One results row for coefficient ``name`` of ``fit`` (``exp``: ratio scale, se on the log scale)."""
    t = fit.test(name, level=conf_level)
    d = fit.design
    note = "; ".join(n for n in [*fit.notes, _few_clusters_note(d).format(cluster=cluster), extra.pop("note", "")]
                     if n)
    est, lo, hi = t["estimate"], t["ci_low"], t["ci_high"]
    if exp:
        est, lo, hi = math.exp(est), math.exp(lo), math.exp(hi)
    return estimate_row(analysis, outcome, method, est, t["se"], lo, hi, t["p"], n_phb=d.n_phb,
                        n_control=d.n_control, stratum=stratum, df=t["df"], n_clusters=fit.n_clusters,
                        **({"note": note} if note else {}), **extra)


def _design(df, what, y, base_col, covariates, *, treatment, cluster, weights, change=False) -> Design:
    return build_design(df, y, treatment=treatment, covariates=covariates, cluster=cluster, weights=weights,
                        baseline=None if (change or base_col is None) else base_col,
                        change_from=base_col if change else None, what=what)


def _with_coefficients(rows, fit: Fit, conf_level, coefficients: bool):
    out = rows_frame(rows)
    if coefficients:
        out.attrs["coefficients"] = fit.coefficients(conf_level)
    return out


# ---------------------------------------------------------------------------------------------------------
# estimators
# ---------------------------------------------------------------------------------------------------------
def ancova(df: pd.DataFrame, outcome: str, covariates=(), *, baseline=True, cluster="site", conf_level=0.95,
           weights=None, stratum="all", treatment="phb", variance="cr2", bootstrap=None, followup_wave="t1",
           baseline_wave="t0", coefficients=False) -> pd.DataFrame:
    """Baseline-adjusted PHB − control difference at follow-up (ANCOVA) with cluster-robust errors.

    Parameters
    ----------
    df : analysis frame (one row per person).
    outcome : score stem, e.g. ``"scrqol"``; the response is ``<outcome>_<followup_wave>``.
    covariates : model terms (:mod:`phb_eval.models.design`): columns, ``log1p(x)``, ``C(site)``, ``a:b``.
    baseline : True adjusts for ``<outcome>_<baseline_wave>`` (required), False omits it, None uses it if
        present; it is not added twice when ``covariates`` already has it.
    weights : column name or Series aligned with ``df`` (propensity weights): the weighted (doubly robust)
        estimator ``ancova_ipw_<variance>_<cluster>``. Rows with missing or zero weight are excluded.
    treatment, cluster : column names (0/1 treatment, or two-level text with the second level treated).
    variance : ``"cr1"``, ``"cr2"`` (default) or ``"wild_bootstrap"`` (``bootstrap = {B, weights, seed}``).
    coefficients : True puts every coefficient (term, estimate, se, df, t, p, ci) in ``.attrs["coefficients"]``.

    Returns
    -------
    DataFrame with one results row: ``estimate`` (adjusted difference), ``se``, ``ci_low``, ``ci_high``,
    ``p_value`` (t on the variance's df: G − 1 for CR1, Satterthwaite for CR2), ``n_phb``, ``n_control``,
    ``df``, ``n_clusters``.
    """
    y_col, base_col = resolve_columns(df, outcome, baseline, followup_wave=followup_wave, baseline_wave=baseline_wave)
    name = "ancova_ipw" if weights is not None else "ancova"
    method = _method(name, variance, cluster)
    d = _design(df, f"{method} for {outcome}", y_col, base_col, covariates, treatment=treatment, cluster=cluster,
                weights=weights)
    fit = fit_ols(d, REGISTRY[name].variance(variance), bootstrap=bootstrap, what=f"{method} for {outcome}")
    return _with_coefficients([effect_row("outcome", outcome, method, fit, treatment, conf_level, stratum, cluster,
                                          adjusted_for_baseline=base_col is not None)], fit, conf_level, coefficients)


def did(df: pd.DataFrame, outcome: str, covariates=(), *, cluster="site", conf_level=0.95, weights=None,
        stratum="all", treatment="phb", variance="cr2", bootstrap=None, followup_wave="t1", baseline_wave="t0",
        coefficients=False) -> pd.DataFrame:
    """Difference in differences: change score (follow-up − baseline) on PHB and covariates.

    Returns one results row (``did_<variance>_<cluster>``) with the columns of :func:`ancova`. Equivalent to
    ANCOVA with the baseline coefficient fixed at 1; unbiased under parallel trends rather than under
    conditional exchangeability at baseline.
    """
    y_col, base_col = resolve_columns(df, outcome, True, followup_wave=followup_wave, baseline_wave=baseline_wave)
    method = _method("did", variance, cluster)
    d = _design(df, f"{method} for {outcome}", y_col, base_col, covariates, treatment=treatment, cluster=cluster,
                weights=weights, change=True)
    fit = fit_ols(d, REGISTRY["did"].variance(variance), bootstrap=bootstrap, what=f"{method} for {outcome}")
    return _with_coefficients([effect_row("outcome", outcome, method, fit, treatment, conf_level, stratum, cluster)],
                              fit, conf_level, coefficients)


def binary_effects(df: pd.DataFrame, outcome: str, covariates=(), *, baseline=None, cluster="site", conf_level=0.95,
                   weights=None, stratum="all", treatment="phb", variance="cr2", bootstrap=None,
                   followup_wave="t1", baseline_wave="t0") -> pd.DataFrame:
    """Risk difference and odds ratio of a 0/1 outcome (caseness, carer health good, mortality).

    Parameters
    ----------
    baseline : None (default) adjusts for the baseline value when the column exists (caseness, carer
        health) and not otherwise (mortality); True requires it; False omits it.

    Returns
    -------
    Two results rows:

    - ``ancova_rd_<variance>_<cluster>``: linear probability model coefficient (risk difference).
    - ``logit_or_<variance>_<cluster>``: ``estimate`` = odds ratio exp(b); ``se`` of log(OR); interval
      exp(b ∓ t·se); p on the log scale (column ``scale="log"``). The wild bootstrap is for linear models,
      so under ``wild_bootstrap`` the odds ratio uses CR2.

    ``_ipw`` follows the estimator name (``ancova_ipw_rd``, ``logit_ipw_or``) when weights are given.
    """
    y_col, base_col = resolve_columns(df, outcome, baseline, followup_wave=followup_wave, baseline_wave=baseline_wave)
    weighted = weights is not None
    what = f"binary effects for {outcome}"
    d = _design(df, what, y_col, base_col, covariates, treatment=treatment, cluster=cluster, weights=weights)
    if not d.y.isin([0, 1]).all():
        raise EstimationError(f"{what}: '{y_col}' must be coded 0/1; found values such as "
                              f"{sorted(d.y[~d.y.isin([0, 1])].unique())[:5]}")
    if d.y.nunique() < 2:
        raise EstimationError(f"{what}: '{y_col}' is {int(d.y.iloc[0])} for every analysed person, so no "
                              f"risk difference or odds ratio can be estimated")
    rd, lo = ("ancova_ipw_rd", "logit_ipw_or") if weighted else ("ancova_rd", "logit_or")
    rows = [effect_row("outcome", outcome, _method(rd, variance, cluster),
                       fit_ols(d, REGISTRY[rd].variance(variance), bootstrap=bootstrap, what=what), treatment,
                       conf_level, stratum, cluster, scale="risk_difference")]
    logit = fit_logit(d, REGISTRY[lo].variance(variance), what=what)
    rows.append(effect_row("outcome", outcome, _method(lo, variance, cluster), logit, treatment, conf_level, stratum,
                           cluster, exp=True, scale="log", note="odds ratio; se is on the log-odds scale"))
    return rows_frame(rows)


def _mi_fit(frame, k, outcome, method, covariates, *, baseline, cluster, weights, treatment, followup_wave,
            baseline_wave, variance):
    y_col, base_col = resolve_columns(frame, outcome, baseline, followup_wave=followup_wave,
                                      baseline_wave=baseline_wave)
    d = _design(frame, f"{method} for {outcome} (imputation {k + 1})", y_col, base_col, covariates,
                treatment=treatment, cluster=cluster, weights=weights)
    return d, fit_ols(d, variance, what=f"{method} for {outcome}")


def ancova_mi(imputed, outcome: str, covariates=(), *, baseline=True, cluster="site", conf_level=0.95,
              weights=None, stratum="all", treatment="phb", variance="cr2", bootstrap=None, followup_wave="t1",
              baseline_wave="t0") -> pd.DataFrame:
    """ANCOVA with cluster-robust errors fitted on each imputed dataset, pooled by Rubin's rules.

    Parameters
    ----------
    imputed : list of completed analysis frames (from :func:`phb_eval.missing.impute_chained`).
    Other parameters as :func:`ancova`; ``wild_bootstrap`` is not pooled by Rubin's rules, so it runs CR2.

    Returns
    -------
    One results row, ``method="ancova_mi_<variance>_<cluster>"`` (``ancova_ipw_mi_…`` is not offered):
    ``estimate`` = pooled difference, ``se`` = sqrt(total variance), CI and p from t with the Barnard–Rubin
    df; extra columns ``df``, ``df_complete``, ``n_clusters``, ``m``, ``ubar``, ``b``, ``riv``, ``lambda``,
    ``fmi``.

    Notes
    -----
    The complete-data df given to Barnard–Rubin is the variance's own df for the treatment coefficient
    (G − 1 for CR1, as ``pool(..., dfcom = G - 1)`` in R; the mean Satterthwaite df over imputations for CR2).
    ``n_phb``/``n_control`` are those analysed in the first imputed dataset.
    """
    imputed = list(imputed)
    spec = REGISTRY["ancova_mi"]
    method = spec.method(variance, cluster)
    run = spec.variance(variance)
    if len(imputed) < 2:
        raise EstimationError(f"{method} for {outcome}: Rubin's rules need at least 2 imputed datasets, "
                              f"got {len(imputed)}")
    with single_thread_blas():
        fits = [_mi_fit(frame, k, outcome, method, covariates, baseline=baseline, cluster=cluster, weights=weights,
                        treatment=treatment, followup_wave=followup_wave, baseline_wave=baseline_wave, variance=run)
                for k, frame in enumerate(imputed)]
    tests = [fit.test(treatment, level=conf_level) for _, fit in fits]
    ncl = {fit.n_clusters for _, fit in fits}
    if len(ncl) != 1:
        raise EstimationError(f"{method} for {outcome}: the number of {cluster}s differs between imputed "
                              f"datasets ({sorted(ncl)}); impute every covariate used by the model")
    G = ncl.pop()
    df_complete = float(np.mean([t["df"] for t in tests]))
    pooled = pool_rubin([t["estimate"] for t in tests], [t["se"] ** 2 for t in tests], df_complete,
                        conf_level=conf_level)
    first = fits[0][0]
    note = "; ".join(n for n in [*fits[0][1].notes, _few_clusters_note(first).format(cluster=cluster)] if n)
    return rows_frame([estimate_row("outcome", outcome, method, pooled["qbar"], pooled["se"], pooled["ci_low"],
                                    pooled["ci_high"], pooled["p_value"], n_phb=first.n_phb,
                                    n_control=first.n_control, stratum=stratum, df=pooled["df"],
                                    df_complete=df_complete, n_clusters=G, m=pooled["m"], ubar=pooled["ubar"],
                                    b=pooled["b"], riv=pooled["riv"], **{"lambda": pooled["lambda"]},
                                    fmi=pooled["fmi"], **({"note": note} if note else {}))])


# ---------------------------------------------------------------------------------------------------------
# runners: what the pipeline calls for each outcome estimator of the plan (names as in models.registry)
# ---------------------------------------------------------------------------------------------------------
def _common(ctx):
    return dict(cluster=ctx.plan.cluster, conf_level=ctx.plan.confidence_level, variance=ctx.plan.variance,
                bootstrap=ctx.bootstrap, followup_wave=ctx.fu, baseline_wave=ctx.base)


def _run_ancova(ctx, outcome, binary):
    fn = binary_effects if binary else ancova
    return fn(ctx.frame, outcome, ctx.covariates, **_common(ctx))


def _run_ancova_ipw(ctx, outcome, binary):
    if ctx.weights is None:
        return None
    fn = binary_effects if binary else ancova
    return fn(ctx.frame, outcome, ctx.covariates, weights=ctx.weights, **_common(ctx))


def _run_did(ctx, outcome, binary):
    return None if binary else did(ctx.frame, outcome, ctx.covariates, **_common(ctx))


def _run_ancova_mi(ctx, outcome, binary):
    if binary or outcome not in ctx.imputed:
        return None
    return ancova_mi(ctx.imputed[outcome], outcome, ctx.covariates, **_common(ctx))


RUNNERS = {"ancova": _run_ancova, "ancova_ipw": _run_ancova_ipw, "did": _run_did, "ancova_mi": _run_ancova_mi}


def unadjusted(df: pd.DataFrame, outcome: str, *, conf_level=0.95, stratum="all", treatment="phb",
               waves=("t0", "t1")) -> pd.DataFrame:
    """Unadjusted means per arm at each wave, their change, and Hedges' g at follow-up.

    Returns
    -------
    Results rows with extra columns ``wave``, ``mean_phb``, ``sd_phb``, ``mean_control``, ``sd_control``:

    - ``unadjusted_<wave>`` for each wave present (or ``unadjusted`` for an outcome without waves, e.g.
      mortality): ``estimate`` = mean PHB − mean control among those observed at that wave; se, CI and p
      from Welch's t test (scipy).
    - ``unadjusted_change``: the same for (last wave − first wave), people observed at both.
    - ``hedges_g_<last wave>``: Hedges' g (pingouin ``compute_effsize``) with its CI (``compute_esci``, the
      normal-theory se of d with t on n₁ + n₀ − 2 df); ``se`` is not reported.

    Notes
    -----
    SDs use n − 1. Rows are not covariate-adjusted and ignore clustering: they describe, they do not test.
    """
    present = [w for w in waves if f"{outcome}_{w}" in df.columns]
    if not present:
        y_col, _ = resolve_columns(df, outcome, False)
        cols = {None: y_col}
    else:
        cols = {w: f"{outcome}_{w}" for w in present}
    if treatment not in df.columns:
        raise EstimationError(f"unadjusted means for {outcome}: treatment column '{treatment}' is not in the data")
    t = pd.to_numeric(df[treatment], errors="coerce")

    def arms(values: pd.Series):
        ok = values.notna() & t.isin([0, 1])
        x1 = values[ok & (t == 1)].astype(float).to_numpy()
        x0 = values[ok & (t == 0)].astype(float).to_numpy()
        if len(x1) < 2 or len(x0) < 2:
            raise EstimationError(f"unadjusted means for {outcome}: fewer than 2 people observed in an arm "
                                  f"({len(x1)} PHB, {len(x0)} control)")
        return x1, x0

    def welch_row(method, wave, x1, x0):
        res = stats.ttest_ind(x1, x0, equal_var=False)
        ci = res.confidence_interval(confidence_level=conf_level)
        diff = float(x1.mean() - x0.mean())
        se = math.sqrt(x1.var(ddof=1) / len(x1) + x0.var(ddof=1) / len(x0))
        return estimate_row("outcome", outcome, method, diff, se, ci.low, ci.high, res.pvalue, n_phb=len(x1),
                            n_control=len(x0), stratum=stratum, df=float(res.df), wave=wave,
                            mean_phb=float(x1.mean()), sd_phb=float(x1.std(ddof=1)), mean_control=float(x0.mean()),
                            sd_control=float(x0.std(ddof=1)))

    rows = []
    for wave, col in cols.items():
        x1, x0 = arms(df[col])
        rows.append(welch_row("unadjusted" if wave is None else f"unadjusted_{wave}", wave, x1, x0))
    if len(cols) >= 2:
        first, last = present[0], present[-1]
        change = df[cols[last]].astype(float) - df[cols[first]].astype(float)
        x1, x0 = arms(change)
        rows.append(welch_row("unadjusted_change", f"{last}-{first}", x1, x0))
    last_wave = present[-1] if present else None
    x1, x0 = arms(df[cols[last_wave]])
    g = float(pg.compute_effsize(x1, x0, paired=False, eftype="hedges"))
    ci = pg.compute_esci(stat=g, nx=len(x1), ny=len(x0), eftype="hedges", confidence=float(conf_level), decimals=15)
    rows.append(estimate_row("outcome", outcome, "hedges_g" + (f"_{last_wave}" if last_wave else ""), g,
                             ci_low=float(ci[0]), ci_high=float(ci[1]), n_phb=len(x1), n_control=len(x0),
                             stratum=stratum, wave=last_wave, note="standardised mean difference (Hedges' g)"))
    return rows_frame(rows)


assert set(RUNNERS) == set(REGISTRY_OUTCOMES), "every outcome estimator in the registry has a runner"
