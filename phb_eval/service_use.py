"""Service use: count models of post-consent use -> rate ratios and marginal differences.

Each service (``<service>_pre`` / ``<service>_post`` in the analysis frame) is modelled as the
post-consent count on the PHB indicator, ``log1p(<service>_pre)`` and the plan's covariates, with the
plan's cluster covariance (:mod:`phb_eval.models`). Four count models are offered; ``negbin`` is the
default. :func:`count_regression` is the same on any DataFrame (column names as arguments).

Matching R
----------
``negbin`` reproduces ``MASS::glm.nb`` + ``sandwich::vcovCL(type = "HC1")`` (CR1) and clubSandwich's CR2
on the same GLM: the NB2 dispersion is estimated jointly with the coefficients by maximum likelihood,
then coefficients and covariance come from the GLM with the dispersion fixed at that estimate — what
``glm.nb`` hands to ``sandwich``: bread = *expected* information, K = number of coefficients. The
sandwich of the discrete ``NegativeBinomial`` fit (and Stata's ``nbreg, vce(cluster)``) uses the
observed information over (coefficients, dispersion); with a log link, which is not canonical for NB2,
those standard errors differ from R's (by up to ~10% on the golden data); coefficients agree.

For ``zinb`` and ``hurdle_negbin`` the covariance is the CR1 M-estimation sandwich over every parameter
including the dispersion (statsmodels' convention; CR2 is defined for linear models and GLMs, so a CR2
plan runs CR1 for them and the method name says so). R's ``vcovCL`` on ``pscl`` fits leaves theta out of
the score and the (N-1)/(N-K) factor, so its standard errors differ by several percent; the tests
reproduce R's numbers from our fit when the same convention is applied, to show that is the only cause.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from statsmodels.tools.numdiff import approx_fprime

from .contract import OPTIONAL_SERVICES, SERVICES
from .errors import DataError, EstimationError, describe
from .models.design import Design, build_design
from .models.design import design_matrix as _design_matrix
from .models.fit import FITTERS, Fit
from .models.registry import REGISTRY
from .outcomes import MIN_CLUSTERS_PER_ARM
from .results import estimate_row, rows_frame, t_interval

__all__ = ["COUNT_MODELS", "count_model", "count_regression", "fit_comparison", "services_present",
           "design_matrix"]

COUNT_MODELS = ("negbin", "poisson", "zinb", "hurdle_negbin")
PHB = "phb"
EXPOSURE = "exposure_post_years"


# ---------------------------------------------------------------------------------------------------
# data preparation
# ---------------------------------------------------------------------------------------------------
def services_present(df: pd.DataFrame, services=None) -> list[str]:
    """Services with both ``_pre`` and ``_post`` columns (contract order), optionally restricted."""
    candidates = list(services) if services is not None else SERVICES + OPTIONAL_SERVICES
    return [s for s in candidates if f"{s}_pre" in df.columns and f"{s}_post" in df.columns]


def design_matrix(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The core's model matrix with the intercept named ``const`` (kept for callers of the old name)."""
    return _design_matrix(frame, columns).rename(columns={"Intercept": "const"})


def _check_counts(df: pd.DataFrame, cols) -> None:
    for col in cols:
        vals = pd.to_numeric(df[col], errors="coerce")
        bad = vals.notna() & ((vals < 0) | (vals != np.floor(vals)))
        if df[col].notna().sum() != vals.notna().sum() or bad.any():
            idx = (bad | (vals.isna() & df[col].notna())).idxmax()
            raise DataError(describe(row=idx, column=col, value=df[col].loc[idx],
                                     rule="a service count must be a whole number of events >= 0",
                                     fix="correct the value, or leave it empty if it was not observed"))


def _prepare_counts(df, response, *, treatment, covariates, cluster, baseline, exposure, what) -> Design:
    """Design of a count model: whole-number response, optional log-exposure offset (used only when
    someone was observed for less than one unit), complete cases (a missing count is never zero-filled)."""
    covariates = list(covariates or [])
    missing = [c for c in [response, treatment, cluster] if c not in df.columns]
    if missing:
        raise DataError(describe(column=missing[0], rule=f"the {what} count model needs column(s) {missing}",
                                 fix="supply them in the analysis frame or remove them from the plan"))
    _check_counts(df, [response])
    frame = df.assign(**{response: pd.to_numeric(df[response], errors="coerce")})
    offset = None
    if exposure and exposure in df.columns:
        expo = pd.to_numeric(df[exposure], errors="coerce")
        bad = expo.notna() & (expo <= 0)
        if bad.any():
            idx = bad.idxmax()
            raise DataError(describe(row=idx, column=exposure, value=expo.loc[idx],
                                     rule="exposure must be > 0", fix="check consent_date and death_date"))
        observed = frame[response].notna()
        if bool((expo[observed] < 1).any()):
            offset = exposure
            frame = frame.assign(**{exposure: expo})
    d = build_design(frame, response, treatment=treatment, covariates=covariates, cluster=cluster,
                     baseline=baseline, offset=offset, what=what)
    if (d.y == 0).all():
        raise EstimationError(f"{what}: every observed {response} count is 0, so no rate can be modelled")
    if offset:
        d.notes.append(f"offset log({exposure}) for people observed for part of the window")
    return d


def _prepare(df: pd.DataFrame, service: str, covariates, cluster: str, *, treatment: str = PHB,
             exposure: str | None = EXPOSURE) -> Design:
    pre, post = f"{service}_pre", f"{service}_post"
    absent = [c for c in (post, pre) if c not in df.columns]
    if absent:
        raise DataError(describe(column=absent[0], rule=f"the {service} count model needs column(s) {absent}",
                                 fix="supply them in the analysis frame or remove them from the plan"))
    _check_counts(df, [pre])
    return _prepare_counts(df, post, treatment=treatment, covariates=covariates, cluster=cluster,
                           baseline=f"log1p({pre})", exposure=exposure, what=service)


# ---------------------------------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------------------------------
def _fit(p: Design, model: str, variance: str = "cr1", what: str | None = None) -> Fit:
    """Fit one count model; every numerical failure becomes an EstimationError sentence."""
    if model not in COUNT_MODELS:
        raise EstimationError(f"unknown count model {model!r}; choose one of {list(COUNT_MODELS)}")
    what = what or "count model"
    try:
        with np.errstate(all="ignore"):
            fit = FITTERS[model](p, REGISTRY[model].variance(variance), what=f"{what} ({model})")
    except (np.linalg.LinAlgError, ValueError, OverflowError, FloatingPointError) as exc:
        raise EstimationError(f"{what}: the {model} model could not be estimated ({exc}); "
                              "the data may not identify it. Fix: use "
                              f"{'poisson' if model == 'negbin' else 'negbin'} for this service") from None
    ok = np.isfinite(fit.params.to_numpy()).all()
    se2 = float(fit.vcov.loc[p.treatment, p.treatment])
    if not ok or not fit.converged or not np.isfinite(se2):
        fix = ("use poisson (robust errors) for this service, or fewer covariates" if model == "negbin"
               else "use negbin (the default) for this service")
        raise EstimationError(f"{what}: the {model} model did not converge; its parameters are not "
                              f"identified by these data. Fix: {fix}")
    return fit


def _marginal(fit: Fit, p: Design):
    """g-computation: mean events per person-year with everyone treated vs everyone control (exposure 1).

    Returns (diff, se_diff, log ratio, se_log_ratio); SEs by the delta method on the fit's covariance."""
    b = fit.params[fit.cov_names].to_numpy()
    V = fit.vcov.to_numpy()
    Z1, Z0 = p.X.to_numpy().copy(), p.X.to_numpy().copy()
    j = list(p.X.columns).index(p.treatment)
    Z1[:, j], Z0[:, j] = 1.0, 0.0

    def stats_(beta):
        m1, m0 = fit.mean_fn(beta, Z1).mean(), fit.mean_fn(beta, Z0).mean()
        return np.array([m1 - m0, math.log(m1) - math.log(m0)])

    est = stats_(b)
    grad = approx_fprime(b, stats_, centered=True)   # 2 x k
    var = np.einsum("ij,jk,ik->i", grad, V, grad)
    return est[0], math.sqrt(var[0]), est[1], math.sqrt(var[1])


# ---------------------------------------------------------------------------------------------------
# public estimators
# ---------------------------------------------------------------------------------------------------
def _rows(analysis, outcome, p: Design, fit: Fit, model, cluster, conf_level) -> list[dict]:
    method = REGISTRY[model].method(fit.variance, cluster)
    t = fit.test(p.treatment, level=conf_level)
    dof = t["df"]
    few = min(p.clusters_per_arm)
    notes = p.notes + fit.notes + ([f"only {few} {cluster}s in the smaller arm (fewer than {MIN_CLUSTERS_PER_ARM} "
                                    "per arm): cluster-robust inference may be unreliable"]
                                   if few < MIN_CLUSTERS_PER_ARM else [])
    common = dict(n_phb=p.n_phb, n_control=p.n_control, df=dof, n_clusters=fit.n_clusters, n=len(p.y),
                  alpha=fit.alpha, note="; ".join(notes))
    rows = [estimate_row(analysis, outcome, method, math.exp(t["estimate"]), t["se"], math.exp(t["ci_low"]),
                         math.exp(t["ci_high"]), t["p"], **common)]
    diff, se_diff, lratio, se_lratio = _marginal(fit, p)
    lo, hi, pv = t_interval(diff, se_diff, dof, conf_level)
    rows.append(estimate_row(analysis, outcome, f"{method}_marginal_diff", diff, se_diff, lo, hi, pv, **common))
    if model in ("zinb", "hurdle_negbin"):
        lo, hi, pv = t_interval(lratio, se_lratio, dof, conf_level)
        rows.append(estimate_row(analysis, outcome, f"{method}_marginal_ratio", math.exp(lratio), se_lratio,
                                 math.exp(lo), math.exp(hi), pv, **common))
    return rows


def count_model(df: pd.DataFrame, service: str, covariates=("age", "sex", "condition"), model: str = "negbin",
                cluster: str = "site", conf_level: float = 0.95, *, treatment: str = PHB,
                exposure: str | None = EXPOSURE, variance: str = "cr1") -> pd.DataFrame:
    """Rate ratio (PHB / control) and marginal difference for one service's post-consent count.

    Parameters
    ----------
    df : analysis frame with ``<service>_pre``, ``<service>_post``, the treatment and cluster columns, the
        covariates and optionally the exposure column.
    service : e.g. ``"gp_consultations"``; ``log1p(<service>_pre)`` is the model's baseline term (not added
        twice when the plan's covariates already have it).
    covariates : model terms (:mod:`phb_eval.models.design`).
    model : ``"negbin"`` (NB2, default), ``"poisson"``, ``"zinb"`` (zero-inflated NB2, logit zero part) or
        ``"hurdle_negbin"`` (logit hurdle + zero-truncated NB2).
    treatment, cluster, exposure : column names (contract names by default).
    variance : ``"cr1"``, ``"cr2"`` (default; CR1 for zinb/hurdle) or ``"wild_bootstrap"`` (CR2 here).

    Returns
    -------
    DataFrame in the results layout (``analysis="service_use"``, ``outcome=service``), rows:

    - ``<model>_<variance>_<cluster>``: ``estimate`` = rate ratio exp(b_phb); ``se`` on the log scale;
      interval exp(b ± t·se). For ``zinb``/``hurdle_negbin`` the ratio is that of the count component.
    - ``..._marginal_diff``: mean events per person-year with everyone PHB minus everyone control
      (g-computation, exposure 1 year); ``se`` by the delta method on the same covariance.
    - ``..._marginal_ratio`` (``zinb``/``hurdle_negbin`` only): ratio of those two overall means.

    Extra columns: ``df`` (the covariance's df), ``n_clusters``, ``n``, ``alpha`` (NB2 dispersion,
    variance = mu + alpha·mu²; R's theta = 1/alpha), ``note``.

    Notes
    -----
    Complete cases: people without an observed post count (e.g. died without a known date) are left out,
    never counted as 0. When the exposure column is present and below 1 for someone, log(exposure) is an
    offset (in the count component for ``zinb``/``hurdle_negbin``).
    """
    if model not in COUNT_MODELS:
        raise EstimationError(f"unknown count model {model!r}; choose one of {list(COUNT_MODELS)}")
    p = _prepare(df, service, covariates, cluster, treatment=treatment, exposure=exposure)
    fit = _fit(p, model, variance, what=service)
    return rows_frame(_rows("service_use", service, p, fit, model, cluster, conf_level))


def count_regression(df: pd.DataFrame, outcome: str, *, treatment: str = PHB, covariates=(), cluster: str = "site",
                     model: str = "negbin", exposure: str | None = None, baseline: str | None = None,
                     variance: str = "cr1", conf_level: float = 0.95, coefficients: bool = False) -> pd.DataFrame:
    """A count model of any column on any DataFrame, e.g. ``MASS::quine``'s ``Days`` on ``Eth``.

    ``treatment`` may be 0/1 or two-level text (the second sorted level is 1, as R's factor coding).
    Returns the rows of :func:`count_model` (``analysis="count"``); ``coefficients=True`` puts every
    coefficient (term, estimate, se, df, t, p, ci_low, ci_high) in ``.attrs["coefficients"]``."""
    if model not in COUNT_MODELS:
        raise EstimationError(f"unknown count model {model!r}; choose one of {list(COUNT_MODELS)}")
    p = _prepare_counts(df, outcome, treatment=treatment, covariates=covariates, cluster=cluster,
                        baseline=baseline, exposure=exposure, what=outcome)
    fit = _fit(p, model, variance, what=outcome)
    out = rows_frame(_rows("count", outcome, p, fit, model, cluster, conf_level))
    if coefficients:
        out.attrs["coefficients"] = fit.coefficients(conf_level)
    return out


def fit_comparison(df: pd.DataFrame, service: str, covariates=("age", "sex", "condition"),
                   models=COUNT_MODELS, cluster: str = "site", *, treatment: str = PHB,
                   exposure: str | None = EXPOSURE, variance: str = "cr1") -> pd.DataFrame:
    """How well each count model fits one service: likelihood, AIC, dispersion and zero counts.

    Returns
    -------
    DataFrame, one row per model: ``outcome``, ``model``, ``n``, ``k_params``, ``loglik``, ``aic``
    (2k − 2 loglik, the dispersion counted as a parameter as R does), ``alpha`` (NB2 dispersion; NaN for
    Poisson), ``zeros_observed``, ``zeros_predicted`` (sum over people of the fitted P(y = 0) at their
    own exposure), ``converged``, ``note`` (why a model could not be fitted, if so).
    """
    p = _prepare(df, service, covariates, cluster, treatment=treatment, exposure=exposure)
    zeros_obs = int(np.sum(p.y == 0))
    out = []
    for model in models:
        row = {"outcome": service, "model": model, "n": len(p.y), "k_params": np.nan, "loglik": np.nan,
               "aic": np.nan, "alpha": np.nan, "zeros_observed": zeros_obs, "zeros_predicted": np.nan,
               "converged": False, "note": ""}
        try:
            fit = _fit(p, model, variance, what=service)
        except EstimationError as exc:
            row["note"] = str(exc)
        else:
            row.update(k_params=fit.k_params, loglik=fit.loglik, aic=2 * fit.k_params - 2 * fit.loglik,
                       alpha=fit.alpha, zeros_predicted=fit.zeros_predicted, converged=fit.converged)
        out.append(row)
    return pd.DataFrame(out)
