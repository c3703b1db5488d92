"""Service use: count models of post-consent use -> rate ratios and marginal differences.

Each service (``<service>_pre`` / ``<service>_post`` in the analysis frame) is modelled as the
post-consent count on the PHB indicator, ``log1p(<service>_pre)`` and the plan's covariates, with
cluster-robust (CR1) errors by site. Four count models are offered; ``negbin`` is the default.

Matching R
----------
``negbin`` reproduces ``MASS::glm.nb`` + ``sandwich::vcovCL(type = "HC1")``: the NB2 dispersion is
estimated jointly with the coefficients by maximum likelihood (statsmodels ``NegativeBinomial``), then
the coefficients and their covariance come from a statsmodels GLM with the dispersion fixed at that
estimate. That is exactly what ``glm.nb`` hands to ``sandwich``: a GLM whose score and bread cover the
regression coefficients only, the bread being the *expected* information (IRLS weights), with K = number
of coefficients in the (N-1)/(N-K) factor. The sandwich of the discrete ``NegativeBinomial`` fit (and
Stata's ``nbreg, vce(cluster)``) uses the *observed* information over (coefficients, dispersion) and counts
the dispersion in K; with a log link, which is not canonical for NB2, observed and expected information
differ, so those standard errors differ from R's (by up to ~10% on the golden data); coefficients agree.

For ``zinb`` and ``hurdle_negbin`` the CR1 covariance is the full M-estimation sandwich over every
parameter including the dispersion (statsmodels' convention). R's ``vcovCL`` on ``pscl`` fits leaves theta
out of the score and the (N-1)/(N-K) factor, so its standard errors differ by several percent; the tests
reproduce R's numbers from our fit when the same convention is applied, to show that is the only cause.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.special import expit
from statsmodels.discrete.count_model import ZeroInflatedNegativeBinomialP
from statsmodels.discrete.truncated_model import TruncatedLFNegativeBinomialP
from statsmodels.tools.numdiff import approx_fprime
from statsmodels.tools.sm_exceptions import ConvergenceWarning, HessianInversionWarning

from .contract import OPTIONAL_SERVICES, SERVICES
from .errors import DataError, EstimationError, describe
from .outcomes import design_matrix as _design_matrix
from .results import estimate_row, rows_frame, t_interval

__all__ = ["COUNT_MODELS", "count_model", "fit_comparison", "services_present", "design_matrix"]

COUNT_MODELS = ("negbin", "poisson", "zinb", "hurdle_negbin")
PHB = "phb"
PRE = "log1p_pre"
_MAXITER = 400


# ---------------------------------------------------------------------------------------------------
# data preparation
# ---------------------------------------------------------------------------------------------------
def services_present(df: pd.DataFrame, services=None) -> list[str]:
    """Services with both ``_pre`` and ``_post`` columns (contract order), optionally restricted."""
    candidates = list(services) if services is not None else SERVICES + OPTIONAL_SERVICES
    return [s for s in candidates if f"{s}_pre" in df.columns and f"{s}_post" in df.columns]


def design_matrix(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """:func:`phb_eval.outcomes.design_matrix` (intercept ``const``), refusing a column with one value only.

    Raises ``EstimationError`` for such a column: its effect cannot be estimated."""
    for col in columns:
        s = frame[col]
        if s.nunique(dropna=True) < 2:
            raise EstimationError(
                f"covariate '{col}' has a single value ({s.dropna().iloc[0]!r}) among the people analysed, "
                "so its effect cannot be estimated. Fix: drop it from the plan's covariates for this analysis")
    return _design_matrix(frame, columns).rename(columns={"Intercept": "const"})


@dataclass
class _Prepared:
    service: str
    y: np.ndarray
    X: pd.DataFrame
    offset: np.ndarray | None
    groups: np.ndarray
    n_groups: int
    n_phb: int
    n_control: int
    dropped: int
    notes: list = field(default_factory=list)


def _prepare(df: pd.DataFrame, service: str, covariates, cluster: str) -> _Prepared:
    pre, post = f"{service}_pre", f"{service}_post"
    covariates = list(covariates or [])
    needed = [post, pre, PHB, cluster, *covariates]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(describe(column=missing[0], rule=f"the {service} count model needs column(s) {missing}",
                                 fix="supply them in the analysis frame or remove them from the plan"))
    frame = df[needed + (["exposure_post_years"] if "exposure_post_years" in df.columns else [])].copy()
    for col in (pre, post):
        vals = pd.to_numeric(frame[col], errors="coerce")
        bad = vals.notna() & ((vals < 0) | (vals != np.floor(vals)))
        if frame[col].notna().sum() != vals.notna().sum() or bad.any():
            idx = (bad | (vals.isna() & frame[col].notna())).idxmax()
            raise DataError(describe(row=idx, column=col, value=frame[col].loc[idx],
                                     rule="a service count must be a whole number of events >= 0",
                                     fix="correct the value, or leave it empty if it was not observed"))
        frame[col] = vals
    # Offset only when some people were observed for part of the window (death date known).
    use_offset = False
    if "exposure_post_years" in frame.columns:
        expo = pd.to_numeric(frame["exposure_post_years"], errors="coerce")
        bad = expo.notna() & (expo <= 0)
        if bad.any():
            idx = bad.idxmax()
            raise DataError(describe(row=idx, column="exposure_post_years", value=expo.loc[idx],
                                     rule="exposure must be > 0 years", fix="check consent_date and death_date"))
        frame["exposure_post_years"] = expo
        observed = frame[post].notna()
        use_offset = bool((expo[observed] < 1).any())
        if not use_offset:
            frame = frame.drop(columns="exposure_post_years")
    n_all = len(frame)
    frame = frame.dropna()  # complete cases: a missing post count is never zero-filled
    notes = []
    if len(frame) < n_all:
        notes.append(f"{n_all - len(frame)} people without an observed {post} or covariate were left out "
                     "(complete cases)")
    n_phb = int((frame[PHB] == 1).sum())
    n_control = int((frame[PHB] == 0).sum())
    if n_phb == 0 or n_control == 0:
        raise EstimationError(f"{service}: no {'PHB holders' if n_phb == 0 else 'controls'} with an observed "
                              f"{post} count, so the arms cannot be compared")
    groups = frame[cluster].astype(str)
    n_groups = groups.nunique()
    if n_groups < 2:
        raise EstimationError(f"{service}: cluster-robust errors by '{cluster}' need at least 2 clusters; "
                              f"the data have {n_groups}")
    if (frame[post] == 0).all():
        raise EstimationError(f"{service}: every observed {post} count is 0, so no rate can be modelled")
    X = design_matrix(frame.assign(**{PRE: np.log1p(frame[pre])}), [PHB, PRE, *covariates])
    if np.linalg.matrix_rank(X.to_numpy()) < X.shape[1]:
        raise EstimationError(f"{service}: the covariates {covariates} are collinear among the people "
                              "analysed (e.g. a category with everyone in one arm). Fix: simplify the covariates")
    offset = np.log(frame["exposure_post_years"].to_numpy(float)) if use_offset else None
    if use_offset:
        notes.append("offset log(exposure_post_years) for people observed for part of the window")
    return _Prepared(service, frame[post].to_numpy(float), X.reset_index(drop=True), offset,
                     pd.factorize(groups)[0], n_groups, n_phb, n_control, n_all - len(frame), notes)


# ---------------------------------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------------------------------
@dataclass
class _Fit:
    model: str
    params: pd.Series               # every parameter
    cov: pd.DataFrame               # CR1 covariance of the parameters used by mean_fn (and the PHB term)
    ratio_term: str                 # parameter whose exp() is the reported rate ratio
    mean_fn: Callable               # params -> mean events per person-year, predicted at exposure 1
    loglik: float
    k_params: int
    alpha: float
    zeros_predicted: float
    converged: bool
    notes: list = field(default_factory=list)


def _cr1_factor(n: int, k: int, g: int) -> float:
    """Small-sample factor of statsmodels' cluster covariance and R vcovCL(type='HC1')."""
    return g / (g - 1) * (n - 1) / (n - k)


def _cluster_sandwich(scores: np.ndarray, hessian: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """CR1 sandwich H^-1 M H^-1 from per-observation scores.

    Hand-written only for the hurdle model, whose two parts are fitted separately by statsmodels
    (``HurdleCountModel`` has no offset, no logit zero part and no robust covariance) and need one
    joint covariance with the cross-part score products inside each cluster."""
    n, k = scores.shape
    summed = pd.DataFrame(scores).groupby(groups).sum().to_numpy()
    meat = summed.T @ summed * _cr1_factor(n, k, summed.shape[0])
    bread = np.linalg.inv(-hessian)
    return bread @ meat @ bread


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", HessianInversionWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def _ok(fit) -> bool:
    """Converged with finite parameters and likelihood (statsmodels can report convergence on NaN)."""
    return (bool(fit.mle_retvals.get("converged", False)) and bool(np.all(np.isfinite(fit.params)))
            and bool(np.isfinite(fit.llf)))


def _fit_negbin(p: _Prepared) -> _Fit:
    X, y = p.X, p.y
    model = sm.NegativeBinomial(y, X, loglike_method="nb2", offset=p.offset)
    disc = _quiet(model.fit, method="newton", maxiter=200, tol=1e-12, disp=0)
    converged = _ok(disc)
    if not converged:  # Newton from the default start can overshoot to NaN: BFGS first, then polish with Newton
        rough = _quiet(model.fit, method="bfgs", maxiter=_MAXITER, disp=0)
        polished = _quiet(model.fit, start_params=rough.params, method="newton", maxiter=200, tol=1e-12, disp=0)
        disc = polished if _ok(polished) else rough
        converged = _ok(disc)
    alpha = float(disc.params["alpha"])
    # Bread from the expected information (IRLS weights), as R's sandwich does for a glm object.
    glm = _quiet(sm.GLM(y, X, family=sm.families.NegativeBinomial(alpha=alpha), offset=p.offset).fit,
                 start_params=disc.params[X.columns].to_numpy(), method="newton", optim_hessian="eim",
                 tol=1e-12, maxiter=200, disp=0, cov_type="cluster", cov_kwds={"groups": p.groups})
    mu = np.asarray(glm.fittedvalues)
    return _Fit("negbin", pd.Series(glm.params, index=X.columns), pd.DataFrame(glm.cov_params(), X.columns, X.columns),
                PHB, lambda b, Z: np.exp(Z[:, :len(b)] @ b), float(disc.llf), X.shape[1] + 1, alpha,
                float(np.sum((1 + alpha * mu) ** (-1 / alpha))), converged)


def _fit_poisson(p: _Prepared) -> _Fit:
    X, y = p.X, p.y
    glm = _quiet(sm.GLM(y, X, family=sm.families.Poisson(), offset=p.offset).fit, tol=1e-13, maxiter=200,
                 cov_type="cluster", cov_kwds={"groups": p.groups})
    mu = np.asarray(glm.fittedvalues)
    return _Fit("poisson", pd.Series(glm.params, index=X.columns), pd.DataFrame(glm.cov_params(), X.columns, X.columns),
                PHB, lambda b, Z: np.exp(Z @ b), float(glm.llf), X.shape[1], math.nan,
                float(np.sum(np.exp(-mu))), bool(glm.converged))


def _fit_zinb(p: _Prepared) -> _Fit:
    X, y = p.X, p.y
    k = X.shape[1]
    model = ZeroInflatedNegativeBinomialP(y, X, exog_infl=X, offset=p.offset, inflation="logit", p=2)
    first = _quiet(model.fit, method="bfgs", maxiter=_MAXITER, disp=0)
    # A (near-)singular Hessian at the BFGS optimum means the zero part is not identified (e.g. no
    # excess zeros): stop here rather than let Newton wander. Otherwise polish with Newton.
    if not np.isfinite(first.llf) or np.linalg.cond(_quiet(model.hessian, np.asarray(first.params))) > 1e12:
        raise np.linalg.LinAlgError("singular Hessian at the optimum: the zero component is not identified")
    res = _quiet(model.fit, start_params=first.params, method="newton", maxiter=50, tol=1e-12, disp=0,
                 cov_type="cluster", cov_kwds={"groups": p.groups})
    converged = bool(res.mle_retvals.get("converged", False)) and np.isfinite(res.llf)
    names = list(res.params.index)
    params = pd.Series(np.asarray(res.params), index=names)
    cov = pd.DataFrame(np.asarray(res.cov_params()), names, names)
    alpha = float(params["alpha"])
    infl = np.arange(k)               # statsmodels order: inflate_*, count terms, alpha
    cnt = np.arange(k, 2 * k)

    def mean_fn(b, Z):
        return (1 - expit(Z @ b[infl])) * np.exp(Z @ b[cnt])

    Xa = X.to_numpy()
    off = p.offset if p.offset is not None else 0.0
    pi = expit(Xa @ params.to_numpy()[infl])
    mu = np.exp(Xa @ params.to_numpy()[cnt] + off)
    zeros = float(np.sum(pi + (1 - pi) * (1 + alpha * mu) ** (-1 / alpha)))
    return _Fit("zinb", params, cov, PHB, mean_fn, float(res.llf), len(names), alpha, zeros, converged,
                ["rate ratio from the count component; the zero component is a logit on the same regressors"])


def _fit_hurdle(p: _Prepared) -> _Fit:
    X, y = p.X, p.y
    Xa = X.to_numpy()
    k = X.shape[1]
    pos = y > 0
    zero = sm.Logit(pos.astype(float), X)
    zres = _quiet(zero.fit, method="newton", maxiter=200, tol=1e-12, disp=0)
    count = TruncatedLFNegativeBinomialP(y[pos], X[pos], offset=None if p.offset is None else p.offset[pos], p=2)
    first = _quiet(count.fit, method="bfgs", maxiter=_MAXITER, disp=0)
    cres = _quiet(count.fit, start_params=first.params, method="newton", maxiter=200, tol=1e-12, disp=0)
    converged = bool(zres.mle_retvals.get("converged", False)) and bool(cres.mle_retvals.get("converged", False))
    zp, cp = np.asarray(zres.params), np.asarray(cres.params)
    names = [f"zero_{c}" for c in X.columns] + list(X.columns) + ["alpha"]
    params = pd.Series(np.concatenate([zp, cp]), index=names)
    # joint scores (count-part scores are 0 for people at the hurdle) and block-diagonal Hessian
    scores = np.zeros((len(y), len(names)))
    scores[:, :k] = zero.score_obs(zp)
    scores[pos, k:] = count.score_obs(cp)
    hess = np.zeros((len(names), len(names)))
    hess[:k, :k] = zero.hessian(zp)
    hess[k:, k:] = count.hessian(cp)
    cov = pd.DataFrame(_cluster_sandwich(scores, hess, p.groups), names, names)
    alpha = float(cp[-1])

    def mean_fn(b, Z):
        mu = np.exp(Z @ b[k:2 * k])
        a = b[-1]
        return expit(Z @ b[:k]) * mu / (1 - (1 + a * mu) ** (-1 / a))

    zeros = float(np.sum(1 - expit(Xa @ zp)))
    return _Fit("hurdle_negbin", params, cov, PHB, mean_fn, float(zres.llf + cres.llf), len(names), alpha,
                zeros, converged,
                ["rate ratio from the truncated count component; the hurdle is a logit on the same regressors"])


_FITTERS = {"negbin": _fit_negbin, "poisson": _fit_poisson, "zinb": _fit_zinb, "hurdle_negbin": _fit_hurdle}


def _fit(p: _Prepared, model: str) -> _Fit:
    if model not in _FITTERS:
        raise EstimationError(f"unknown count model {model!r}; choose one of {list(COUNT_MODELS)}")
    try:
        fit = _quiet(_FITTERS[model], p)   # optimiser warnings become the checks below
    except np.linalg.LinAlgError as exc:
        raise EstimationError(f"{p.service}: the {model} model could not be estimated ({exc}); "
                              "the data may not identify it. Fix: use "
                              f"{'poisson' if model == 'negbin' else 'negbin'} for this service") from None
    ok = np.isfinite(fit.params.to_numpy()).all()
    if not ok or not fit.converged or not np.isfinite(fit.cov.loc[fit.ratio_term, fit.ratio_term]):
        fix = ("use poisson (robust errors) for this service, or fewer covariates" if model == "negbin"
               else "use negbin (the default) for this service")
        raise EstimationError(f"{p.service}: the {model} model did not converge; its parameters are not "
                              f"identified by these data. Fix: {fix}")
    return fit


def _marginal(fit: _Fit, p: _Prepared):
    """g-computation: mean events per person-year with everyone PHB vs everyone control (exposure 1).

    Returns (diff, se_diff, log ratio, se_log_ratio); SEs by the delta method on the CR1 covariance."""
    names = list(fit.cov.index)
    b = fit.params[names].to_numpy()
    V = fit.cov.to_numpy()
    Z1, Z0 = p.X.to_numpy().copy(), p.X.to_numpy().copy()
    j = list(p.X.columns).index(PHB)
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
def count_model(df: pd.DataFrame, service: str, covariates=("age", "sex", "condition"), model: str = "negbin",
                cluster: str = "site", conf_level: float = 0.95) -> pd.DataFrame:
    """Rate ratio (PHB / control) and marginal difference for one service's post-consent count.

    Parameters
    ----------
    df : analysis frame with ``<service>_pre``, ``<service>_post``, ``phb``, the cluster column, the
        covariates and optionally ``exposure_post_years``.
    service : e.g. ``"gp_consultations"``.
    covariates : column names; text columns are treatment-coded (alphabetically first level = reference).
    model : ``"negbin"`` (NB2, default), ``"poisson"``, ``"zinb"`` (zero-inflated NB2, logit zero part) or
        ``"hurdle_negbin"`` (logit hurdle + zero-truncated NB2).
    cluster : column whose values are the clusters for CR1 errors.
    conf_level : confidence level of the intervals.

    Returns
    -------
    DataFrame in the results layout (``analysis="service_use"``, ``outcome=service``), rows:

    - ``<model>_cr1_site``: ``estimate`` = rate ratio exp(b_phb); ``se`` on the log scale; interval
      exp(b ± t·se). For ``zinb``/``hurdle_negbin`` the ratio is that of the count component.
    - ``<model>_cr1_site_marginal_diff``: mean events per person-year with everyone PHB minus everyone
      control (g-computation, exposure 1 year); ``se`` by the delta method on the CR1 covariance.
    - ``<model>_cr1_site_marginal_ratio`` (``zinb``/``hurdle_negbin`` only): ratio of those two overall
      means (for NB and Poisson it equals the rate ratio); ``se`` on the log scale.

    Extra columns: ``df`` (clusters − 1, the t degrees of freedom), ``n``, ``alpha`` (NB2 dispersion,
    variance = mu + alpha·mu²; R's theta = 1/alpha), ``note``.

    Notes
    -----
    Complete cases: people without an observed post count (e.g. died without a known date) are left out,
    never counted as 0. When ``exposure_post_years`` is present and below 1 for someone, log(exposure)
    is an offset (in the count component for ``zinb``/``hurdle_negbin``).
    """
    p = _prepare(df, service, covariates, cluster)
    fit = _fit(p, model)
    base = f"{model}_cr1_{cluster}"
    dof = p.n_groups - 1
    notes = "; ".join(p.notes + fit.notes)
    common = dict(n_phb=p.n_phb, n_control=p.n_control, df=dof, n=len(p.y), alpha=fit.alpha, note=notes)
    b = float(fit.params[fit.ratio_term])
    se = math.sqrt(float(fit.cov.loc[fit.ratio_term, fit.ratio_term]))
    lo, hi, pv = t_interval(b, se, dof, conf_level)
    rows = [estimate_row("service_use", service, base, math.exp(b), se, math.exp(lo), math.exp(hi), pv, **common)]
    diff, se_diff, lratio, se_lratio = _marginal(fit, p)
    lo, hi, pv = t_interval(diff, se_diff, dof, conf_level)
    rows.append(estimate_row("service_use", service, f"{base}_marginal_diff", diff, se_diff, lo, hi, pv, **common))
    if model in ("zinb", "hurdle_negbin"):
        lo, hi, pv = t_interval(lratio, se_lratio, dof, conf_level)
        rows.append(estimate_row("service_use", service, f"{base}_marginal_ratio", math.exp(lratio), se_lratio,
                                 math.exp(lo), math.exp(hi), pv, **common))
    return rows_frame(rows)


def fit_comparison(df: pd.DataFrame, service: str, covariates=("age", "sex", "condition"),
                   models=COUNT_MODELS, cluster: str = "site") -> pd.DataFrame:
    """How well each count model fits one service: likelihood, AIC, dispersion and zero counts.

    Returns
    -------
    DataFrame, one row per model: ``outcome``, ``model``, ``n``, ``k_params``, ``loglik``, ``aic``
    (2k − 2 loglik, the dispersion counted as a parameter as R does), ``alpha`` (NB2 dispersion; NaN for
    Poisson), ``zeros_observed``, ``zeros_predicted`` (sum over people of the fitted P(y = 0) at their
    own exposure), ``converged``, ``note`` (why a model could not be fitted, if so).
    """
    p = _prepare(df, service, covariates, cluster)
    zeros_obs = int(np.sum(p.y == 0))
    out = []
    for model in models:
        row = {"outcome": service, "model": model, "n": len(p.y), "k_params": np.nan, "loglik": np.nan,
               "aic": np.nan, "alpha": np.nan, "zeros_observed": zeros_obs, "zeros_predicted": np.nan,
               "converged": False, "note": ""}
        try:
            fit = _fit(p, model)
        except EstimationError as exc:
            row["note"] = str(exc)
        else:
            row.update(k_params=fit.k_params, loglik=fit.loglik, aic=2 * fit.k_params - 2 * fit.loglik,
                       alpha=fit.alpha, zeros_predicted=fit.zeros_predicted, converged=fit.converged)
        out.append(row)
    return pd.DataFrame(out)
