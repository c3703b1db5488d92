"""Doubly robust (AIPW) effect rows for every outcome family, beside the ANCOVA / NB / cost-model rows.

Each function reads the analysis frame and returns rows in the results layout (``phb_eval.results``),
computed by :func:`phb_eval.models.aipw.fit_effect`:

- :func:`aipw_outcome` — a score (linear outcome model; difference) or a 0/1 outcome (logit outcome model;
  risk difference and risk ratio), ``analysis="outcome"``;
- :func:`aipw_counts` — a service's post-consent count (NB2 outcome model with log exposure offset; rate
  ratio and difference of mean use per person-year), ``analysis="service_use"``;
- :func:`aipw_costs` — a cost (OLS and gamma-log outcome models; difference of means, £), ``analysis="cost"``.

Method names: ``aipw_<variance>_<cluster>`` for the ATT (``aipw_cr1_site``; ``aipw_boot_site`` with the site
bootstrap), ``aipw_ate_<variance>_<cluster>`` for the ATE; a second contrast or outcome model adds a
suffix: ``_ratio`` (risk ratio), ``_marginal_diff`` (count difference per person-year), ``_gamma_log``
(cost, gamma-log outcome model). Every row also carries ``estimand`` (att/ate), ``outcome_model``,
``scale``, ``df`` (G − 1), ``n_clusters``, ``mean_phb``/``mean_control`` (the two potential means) and ``note``.
"""
from __future__ import annotations

import math

import pandas as pd

from .errors import EstimationError
from .models.aipw import fit_effect, site_bootstrap
from .models.registry import method_name
from .results import estimate_row, rows_frame

__all__ = ["aipw_outcome", "aipw_counts", "aipw_costs", "aipw_method", "COST_COLUMNS"]

COST_COLUMNS = {"total_cost": "cost_total", "direct_cost": "cost_direct", "indirect_cost": "cost_indirect"}


def aipw_method(estimand: str, variance: str, cluster: str, suffix: str = "") -> str:
    """``aipw_cr1_site`` (ATT), ``aipw_ate_cr1_site`` (ATE), ``aipw_boot_site`` (site bootstrap)."""
    name = "aipw" if estimand == "att" else "aipw_ate"
    if variance == "bootstrap":
        return f"{name}_boot_{cluster}" + (f"_{suffix}" if suffix else "")
    return method_name(name, "cr1", cluster, suffix)


def _effect(df, analysis, outcome, response, contrasts, *, model, estimand, covariates, propensity_covariates,
            baseline, cluster, conf_level, variance, bootstrap, rng, exposure=None, trim=None, suffix="",
            treatment="phb") -> list[dict]:
    """Rows of one fitted effect: one per (scale, method suffix) in ``contrasts``."""
    kw = dict(model=model, estimand=estimand, covariates=list(covariates), baseline=baseline,
              propensity_covariates=None if propensity_covariates is None else list(propensity_covariates),
              exposure=exposure, trim=trim, treatment=treatment, what=f"AIPW ({estimand.upper()}) for {outcome}")
    fit = fit_effect(df, response, cluster=cluster, **kw)
    m1, m0 = fit.means()
    rows = []
    for scale, extra in contrasts:
        tail = "_".join(p for p in (extra, suffix) if p)
        if variance == "bootstrap":
            if rng is None:
                raise EstimationError(f"AIPW for {outcome}: the site bootstrap needs a random generator")
            c = site_bootstrap(df, response, B=int(bootstrap), rng=rng, scale=scale, level=conf_level,
                               cluster=cluster, **kw)
            note_b = f"site bootstrap, B = {c['B']} replicates" + (f" ({c['failed']} redrawn)" if c["failed"] else "")
        else:
            c, note_b = fit.contrast(scale, conf_level), ""
        note = "; ".join(n for n in [*fit.notes, note_b] if n)
        rows.append(estimate_row(
            analysis, outcome, aipw_method(estimand, variance, cluster, tail), c["estimate"], c["se"], c["ci_low"],
            c["ci_high"], c["p"], n_phb=fit.n_phb, n_control=fit.n_control, df=c["df"], n_clusters=fit.n_clusters,
            estimand=estimand, outcome_model=model, scale="log" if scale == "ratio" else scale,
            mean_phb=m1, mean_control=m0, **({"note": note} if note else {})))
    return rows


def aipw_outcome(df: pd.DataFrame, outcome: str, covariates=(), *, binary: bool = False, estimand: str = "att",
                 propensity_covariates=None, cluster: str = "site", conf_level: float = 0.95,
                 variance: str = "cr1", bootstrap: int = 199, rng=None, trim=None, followup_wave: str = "t1",
                 baseline_wave: str = "t0", treatment: str = "phb") -> pd.DataFrame:
    """AIPW effect on a score (difference; linear outcome model) or a 0/1 outcome (risk difference and risk
    ratio, method suffix ``_ratio``; logit outcome model).

    The outcome model adjusts for the outcome's own baseline (``<outcome>_<baseline_wave>`` when present)
    and ``covariates``; the propensity model for ``propensity_covariates`` (default the same terms).
    ``variance``: ``cr1`` (stacked-equation sandwich by cluster, G/(G − 1), t(G − 1)) or ``bootstrap``
    (site bootstrap with ``bootstrap`` replicates from ``rng``).
    """
    from .outcomes import resolve_columns
    y_col, base_col = resolve_columns(df, outcome, None, followup_wave=followup_wave, baseline_wave=baseline_wave)
    contrasts = [("difference", ""), ("ratio", "ratio")] if binary else [("difference", "")]
    rows = _effect(df, "outcome", outcome, y_col, contrasts, model="logit" if binary else "linear",
                   estimand=estimand, covariates=covariates, propensity_covariates=propensity_covariates,
                   baseline=base_col, cluster=cluster, conf_level=conf_level, variance=variance,
                   bootstrap=bootstrap, rng=rng, trim=trim, treatment=treatment)
    if binary:
        rows[0]["scale"] = "risk_difference"
        rows[1]["note"] = "; ".join(n for n in [rows[1].get("note", ""), "risk ratio; se is on the log scale"] if n)
    return rows_frame(rows)


def aipw_counts(df: pd.DataFrame, service: str, covariates=(), *, estimand: str = "att", propensity_covariates=None,
                cluster: str = "site", conf_level: float = 0.95, variance: str = "cr1", bootstrap: int = 199,
                rng=None, trim=None, exposure: str | None = "exposure_post_years", treatment: str = "phb"
                ) -> pd.DataFrame:
    """AIPW rate ratio (mean use per person-year with the budget / without it, among PHB holders for the ATT;
    se on the log scale) and difference per person-year (suffix ``_marginal_diff``) of one service.

    The outcome model is NB2 on ``log1p(<service>_pre)`` and ``covariates`` with offset log(exposure) when the
    exposure column is present (person-years observed; people who died part-way count for the time alive).
    """
    pre, post = f"{service}_pre", f"{service}_post"
    absent = [c for c in (pre, post) if c not in df.columns]
    if absent:
        raise EstimationError(f"AIPW for {service}: column(s) {absent} are not in the analysis data")
    expo = exposure if exposure and exposure in df.columns else None
    rows = _effect(df, "service_use", service, post, [("ratio", ""), ("difference", "marginal_diff")],
                   model="negbin", estimand=estimand, covariates=covariates,
                   propensity_covariates=propensity_covariates, baseline=f"log1p({pre})", cluster=cluster,
                   conf_level=conf_level, variance=variance, bootstrap=bootstrap, rng=rng, exposure=expo, trim=trim,
                   treatment=treatment)
    rows[0]["note"] = "; ".join(n for n in [rows[0].get("note", ""), "rate ratio of mean use per person-year; "
                                            "se is on the log scale"] if n)
    return rows_frame(rows)


def aipw_costs(df: pd.DataFrame, covariates=(), *, models=("ols",), outcomes=("total_cost",),
               estimand: str = "att", propensity_covariates=None, baseline: str = "cost_indirect_pre",
               cluster: str = "site", conf_level: float = 0.95, variance: str = "cr1", bootstrap: int = 199,
               rng=None, trim=None, treatment: str = "phb") -> pd.DataFrame:
    """AIPW difference in mean cost (£ per person per year) with an OLS outcome model (``ols``) and/or a
    gamma-log outcome model (``glm_gamma_log``, method suffix ``_gamma_log``); baseline = pre-consent
    indirect cost. An outcome/model that cannot be estimated gives a row with the reason in ``note``."""
    rows = []
    for outcome in outcomes:
        col = COST_COLUMNS.get(outcome, outcome)
        for model in models:
            suffix = "" if model == "ols" else "gamma_log"
            try:
                rows.extend(_effect(df, "cost", outcome, col, [("difference", "")],
                                    model="linear" if model == "ols" else "gamma_log", estimand=estimand,
                                    covariates=covariates, propensity_covariates=propensity_covariates,
                                    baseline=baseline if baseline in df.columns else None, cluster=cluster,
                                    conf_level=conf_level, variance=variance, bootstrap=bootstrap, rng=rng,
                                    trim=trim, suffix=suffix, treatment=treatment))
            except EstimationError as exc:
                rows.append(estimate_row("cost", outcome, aipw_method(estimand, variance, cluster, suffix),
                                         math.nan, estimand=estimand, note=str(exc)))
    return rows_frame(rows)
