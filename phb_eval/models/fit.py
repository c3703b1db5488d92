"""Fits of every estimator on a :class:`~phb_eval.models.design.Design`, each with its cluster covariance.

One function per model family; each returns a :class:`Fit` holding every coefficient and the covariance
chosen by the plan's ``variance`` (``cr1``, ``cr2`` or ``wild_bootstrap``) from
:mod:`phb_eval.models.variance`:

- :func:`fit_ols` — OLS/WLS (ANCOVA, DiD, IPW-weighted ANCOVA, linear probability model, cost OLS);
  the only family with the wild cluster bootstrap;
- :func:`fit_logit`, :func:`fit_poisson`, :func:`fit_gamma_log` — GLMs (bread = expected information, as
  R's ``sandwich`` for a ``glm``);
- :func:`fit_negbin` — NB2: dispersion by maximum likelihood, then the GLM with that dispersion fixed
  (what ``MASS::glm.nb`` hands to ``sandwich``); falls back to BFGS from a simple start (log mean, zero
  slopes, α = 1) when Newton fails or stops at a singular Hessian;
- :func:`fit_zinb`, :func:`fit_hurdle_negbin` — M-estimation sandwich over every parameter (CR1 only:
  CR2's leverage adjustment is defined for linear models and GLMs).

Every numerical failure raises :class:`~phb_eval.errors.EstimationError` with a sentence, which the
pipeline lists under "analyses not run".
"""
from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Callable

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from scipy.special import expit
from statsmodels.tools.sm_exceptions import ConvergenceWarning, HessianInversionWarning, PerfectSeparationWarning

from ..errors import EstimationError
from .design import Design

__all__ = ["Fit", "fit_ols", "fit_logit", "fit_poisson", "fit_negbin", "fit_zinb", "fit_hurdle_negbin",
           "fit_gamma_log", "FITTERS", "VARIANCES", "variance_tag", "covariance_from_scores"]

VARIANCES = ("cr1", "cr2", "wild_bootstrap")
_TAGS = {"cr1": "cr1", "cr2": "cr2", "wild_bootstrap": "wcb"}
_MAXITER = 400


def variance_tag(variance: str) -> str:
    """The short name of a variance setting inside a method name (``wild_bootstrap`` -> ``wcb``)."""
    return _TAGS[variance]


# ---------------------------------------------------------------------------------------------------------
# covariance: variance.py when it is there, else a CR1 sandwich with the same interface
# ---------------------------------------------------------------------------------------------------------
def _variance_module():
    """phb_eval.models.variance's two entry points (None while that module is absent)."""
    try:
        from .variance import ClusterCovariance, wild_cluster_bootstrap
    except ImportError:
        return None
    return SimpleNamespace(ClusterCovariance=ClusterCovariance, wild_cluster_bootstrap=wild_cluster_bootstrap)


class _CR1:
    """CR1 sandwich H⁻¹MH⁻¹·G/(G−1)·(N−1)/(N−K) with t(G−1) tests: the interface of
    ``variance.ClusterCovariance`` for the CR1 case (used only when that module is absent)."""

    def __init__(self, bread_inv, scores, cluster, n_params=None):
        n, k = scores.shape
        k = n_params or k
        codes = pd.factorize(pd.Series(cluster).astype(str))[0]
        G = int(codes.max() + 1)
        summed = np.zeros((G, scores.shape[1]))
        np.add.at(summed, codes, scores)
        meat = summed.T @ summed * (G / (G - 1) * (n - 1) / (n - k))
        self.vcov = bread_inv @ meat @ bread_inv
        self.n_clusters = G
        self.kind = "cr1"

    def se(self):
        return np.sqrt(np.diag(self.vcov))

    def coef_test(self, beta, index_or_contrast, level=0.95, null=0.0):
        c = np.zeros(len(beta))
        if np.ndim(index_or_contrast) == 0:
            c[int(index_or_contrast)] = 1.0
        else:
            c = np.asarray(index_or_contrast, float)
        est = float(c @ beta)
        se = float(math.sqrt(c @ self.vcov @ c))
        dof = self.n_clusters - 1
        t = (est - null) / se
        q = stats.t.ppf(0.5 + level / 2, dof)
        return dict(estimate=est, se=se, df=float(dof), t=t, p=float(2 * stats.t.sf(abs(t), dof)),
                    ci_low=est - q * se, ci_high=est + q * se)

    def wald_test(self, beta, R, r=None):
        R = np.atleast_2d(np.asarray(R, float))
        q = R.shape[0]
        d = R @ beta - (np.zeros(q) if r is None else np.asarray(r, float))
        stat = float(d @ np.linalg.solve(R @ self.vcov @ R.T, d)) / q
        df2 = self.n_clusters - 1
        return dict(statistic=stat, df1=float(q), df2=float(df2), p=float(stats.f.sf(stat, q, df2)), test="F")


def covariance_from_scores(bread_inv, scores, cluster, kind="cr1"):
    """Cluster covariance of an M-estimator from per-observation scores and the inverse bread."""
    mod = _variance_module()
    if mod is not None:
        return mod.ClusterCovariance.from_scores(bread_inv, scores, cluster, kind=kind)
    return _CR1(bread_inv, scores, cluster)


def _ols_covariance(X, resid, cluster, weights, kind):
    mod = _variance_module()
    if mod is not None:
        return mod.ClusterCovariance.from_ols(X, resid, cluster, weights=weights, kind=kind)
    if kind != "cr1":
        raise EstimationError(f"the {kind.upper()} covariance needs phb_eval.models.variance, which is not "
                              "installed; set variance: cr1 in the plan")
    w = np.ones(len(resid)) if weights is None else np.asarray(weights, float)
    bread_inv = np.linalg.inv(X.T @ (X * w[:, None]))
    return _CR1(bread_inv, X * (w * resid)[:, None], cluster)


def _glm_covariance(result, cluster, kind):
    mod = _variance_module()
    if mod is not None:
        return mod.ClusterCovariance.from_glm_result(result, cluster, kind=kind)
    if kind != "cr1":
        raise EstimationError(f"the {kind.upper()} covariance needs phb_eval.models.variance, which is not "
                              "installed; set variance: cr1 in the plan")
    params = np.asarray(result.params)
    scores = result.model.score_obs(params, scale=result.scale)
    hess = result.model.hessian(params, scale=result.scale, observed=False)
    return _CR1(np.linalg.inv(-hess), scores, cluster)


# ---------------------------------------------------------------------------------------------------------
# the fit object
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Fit:
    """Every coefficient of one model, its covariance and how it was obtained.

    ``variance`` is the covariance actually used (a model that does not support the plan's setting uses
    CR1 and says so in ``notes``). ``mean_fn(beta, Z)`` gives the model's mean per person at exposure 1
    (for g-computation); ``cov_names`` are the parameters the covariance covers.
    """

    model: str
    params: pd.Series
    cov: object
    design: Design
    variance: str
    cov_names: list = None
    mean_fn: Callable | None = None
    loglik: float = math.nan
    k_params: int = 0
    alpha: float = math.nan
    zeros_predicted: float = math.nan
    converged: bool = True
    notes: list = field(default_factory=list)
    bootstrap: dict | None = None

    def __post_init__(self):
        if self.cov_names is None:
            self.cov_names = list(self.params.index)

    @property
    def vcov(self) -> pd.DataFrame:
        return pd.DataFrame(np.asarray(self.cov.vcov), self.cov_names, self.cov_names)

    @property
    def n_clusters(self) -> int:
        return int(self.cov.n_clusters)

    def _beta(self):
        return self.params[self.cov_names].to_numpy(float)

    def test(self, name: str, level: float = 0.95, null: float = 0.0) -> dict:
        """Estimate, se, df, t, p and interval of one coefficient (wild bootstrap: p and interval by test
        inversion, se from CR2)."""
        j = self.cov_names.index(name)
        out = dict(self.cov.coef_test(self._beta(), j, level=level, null=null))
        if self.variance == "wild_bootstrap":
            out.update(self._wild(j, level, null))
        return {k: float(v) for k, v in out.items()}

    def contrast(self, c, level: float = 0.95) -> dict:
        return {k: float(v) for k, v in self.cov.coef_test(self._beta(), np.asarray(c, float), level=level).items()}

    def wald(self, R, r=None) -> dict:
        """Joint test R·β = r with the fit's covariance (CR2: HTZ; CR1: F on G − 1 df)."""
        return dict(self.cov.wald_test(self._beta(), np.atleast_2d(R), r))

    def _wild(self, j, level, null):
        mod = _variance_module()
        if mod is None:
            raise EstimationError("the wild cluster bootstrap needs phb_eval.models.variance")
        d, b = self.design, self.bootstrap or {}
        X, y = d.X.to_numpy(float), d.y.to_numpy(float)
        if d.weights is not None:          # WLS = OLS on sqrt(w)-scaled data
            sw = np.sqrt(d.weights.to_numpy(float))
            X, y = X * sw[:, None], y * sw
        res = mod.wild_cluster_bootstrap(y, X, d.cluster, j, B=int(b.get("B", 999)),
                                         weights=b.get("weights", "rademacher"), seed=int(b.get("seed", 0)),
                                         null=null, level=level)
        return dict(p=res["p"], ci_low=res["ci_low"], ci_high=res["ci_high"], df=math.nan)

    def coefficients(self, level: float = 0.95) -> pd.DataFrame:
        """Every coefficient with se, df, t, p and interval (the covariance's own small-sample df)."""
        rows = []
        for name in self.cov_names:
            t = self.cov.coef_test(self._beta(), self.cov_names.index(name), level=level)
            rows.append({"term": name, **{k: float(v) for k, v in t.items()}})
        return pd.DataFrame(rows)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", HessianInversionWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def _kind(variance: str) -> str:
    if variance not in VARIANCES:
        raise EstimationError(f"unknown variance {variance!r}; choose one of {', '.join(VARIANCES)}")
    return "cr2" if variance == "wild_bootstrap" else variance


def _glm_variance(variance: str, notes: list) -> str:
    """GLMs take CR1 or CR2; a wild-bootstrap plan uses CR2 for them (said in the row's note)."""
    if variance == "wild_bootstrap":
        notes.append("the wild cluster bootstrap is for linear models; this model uses CR2 with Satterthwaite df")
        return "cr2"
    return _kind(variance)


# ---------------------------------------------------------------------------------------------------------
# linear models
# ---------------------------------------------------------------------------------------------------------
def fit_ols(design: Design, variance: str = "cr1", *, bootstrap: dict | None = None, what: str = "model") -> Fit:
    """OLS (WLS with the design's weights) with the plan's cluster covariance.

    CR1 equals ``sandwich::vcovCL(type = "HC1")``; CR2 is clubSandwich's ``vcovCR(type = "CR2")`` with the
    working model's weights; ``wild_bootstrap`` reports the CR2 se with p and interval from the restricted
    wild cluster bootstrap (``bootstrap`` = ``{B, weights, seed}``)."""
    X, y = design.X.to_numpy(float), design.y.to_numpy(float)
    w = None if design.weights is None else design.weights.to_numpy(float)
    model = sm.OLS(y, X) if w is None else sm.WLS(y, X, weights=w)
    res = model.fit(method="qr")
    beta = np.asarray(res.params)
    if not np.all(np.isfinite(beta)):
        raise EstimationError(f"{what}: least squares gave non-finite coefficients")
    resid = y - X @ beta
    cov = _ols_covariance(X, resid, design.cluster, w, _kind(variance))
    return Fit("ols", pd.Series(beta, design.columns), cov, design, variance, loglik=float(res.llf),
               k_params=X.shape[1], mean_fn=lambda b, Z: Z @ b, bootstrap=bootstrap)


# ---------------------------------------------------------------------------------------------------------
# GLMs
# ---------------------------------------------------------------------------------------------------------
def _glm_fit(design, family, what, variance, *, start=None, **fit_kw) -> tuple:
    notes = []
    kind = _glm_variance(variance, notes)
    kw = {} if design.weights is None else {"var_weights": design.weights.to_numpy(float)}
    model = sm.GLM(design.y.to_numpy(float), design.X.to_numpy(float), family=family, offset=design.offset, **kw)
    res = _quiet(model.fit, start_params=start, tol=1e-12, maxiter=200, **fit_kw)
    if not (np.all(np.isfinite(res.params)) and np.isfinite(res.llf)):
        raise EstimationError(f"{what}: the model did not converge to finite coefficients")
    cov = _glm_covariance(res, design.cluster, kind)
    if not np.all(np.isfinite(np.diag(np.asarray(cov.vcov)))):
        raise EstimationError(f"{what}: the model did not converge to finite standard errors")
    return res, cov, kind, notes


def fit_logit(design: Design, variance: str = "cr1", *, what: str = "logit") -> Fit:
    """Logistic regression (weights as prior weights); separation raises EstimationError."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        try:
            res, cov, kind, notes = _glm_fit(design, sm.families.Binomial(), what, variance)
        except (PerfectSeparationWarning, np.linalg.LinAlgError) as exc:
            raise EstimationError(f"{what}: the logistic model has (quasi-)complete separation, so the odds "
                                  f"ratio is not estimable ({exc}); report the risk difference only") from None
    return Fit("logit", pd.Series(np.asarray(res.params), design.columns), cov, design, kind, notes=notes,
               loglik=float(res.llf), k_params=design.X.shape[1], mean_fn=lambda b, Z: expit(Z @ b))


def fit_poisson(design: Design, variance: str = "cr1", *, what: str = "poisson") -> Fit:
    """Poisson GLM, log link (offset log exposure when the design has one)."""
    res, cov, kind, notes = _glm_fit(design, sm.families.Poisson(), what, variance)
    mu = np.asarray(res.fittedvalues)
    return Fit("poisson", pd.Series(np.asarray(res.params), design.columns), cov, design, kind, notes=notes,
               loglik=float(res.llf), k_params=design.X.shape[1], mean_fn=lambda b, Z: np.exp(Z @ b),
               zeros_predicted=float(np.sum(np.exp(-mu))), converged=bool(res.converged))


def fit_gamma_log(design: Design, variance: str = "cr1", *, what: str = "gamma GLM") -> Fit:
    """Gamma GLM with log link, started from (log mean, zero slopes); needs positive responses."""
    y = design.y.to_numpy(float)
    if (y <= 0).any():
        raise EstimationError(f"{what}: {int((y <= 0).sum())} people have a value of 0 or less (£0 or less for a cost); the gamma "
                              "model needs positive values. Fix: use the ols model for this outcome")
    start = np.r_[math.log(y.mean()), np.zeros(design.X.shape[1] - 1)]
    res, cov, kind, notes = _glm_fit(design, sm.families.Gamma(sm.families.links.Log()), what, variance,
                                     start=start, method="newton", optim_hessian="eim", disp=0)
    return Fit("gamma_log", pd.Series(np.asarray(res.params), design.columns), cov, design, kind, notes=notes,
               loglik=float(res.llf), k_params=design.X.shape[1] + 1, mean_fn=lambda b, Z: np.exp(Z @ b))


def _ok(fit) -> bool:
    """Converged with finite parameters and likelihood (statsmodels can report convergence on NaN)."""
    return (bool(fit.mle_retvals.get("converged", False)) and bool(np.all(np.isfinite(fit.params)))
            and bool(np.isfinite(fit.llf)))


def _singular(model, params) -> bool:
    try:
        h = _quiet(model.hessian, np.asarray(params))
        return not np.all(np.isfinite(h)) or np.linalg.cond(h) > 1e12
    except (np.linalg.LinAlgError, ValueError, FloatingPointError):
        return True


def simple_start(y, X, offset=None, alpha: bool = True) -> np.ndarray:
    """Log of the mean count (per unit exposure), zero slopes and α = 1: a start every optimiser can leave."""
    off = 0.0 if offset is None else float(np.mean(offset))
    start = np.zeros(X.shape[1])
    start[0] = math.log(max(float(np.mean(y)), 1e-8)) - off
    return np.r_[start, 1.0] if alpha else start


def fit_negbin(design: Design, variance: str = "cr1", *, what: str = "negative binomial") -> Fit:
    """NB2 by maximum likelihood, then the GLM at that dispersion for coefficients and covariance.

    Newton from statsmodels' start first; when it fails or stops at a singular Hessian, BFGS from the
    simple start (log mean, zero slopes, α = 1), polished by Newton when that converges."""
    X, y = design.X, design.y.to_numpy(float)
    Xa = X.to_numpy(float)
    model = sm.NegativeBinomial(y, Xa, loglike_method="nb2", offset=design.offset)
    notes = []
    try:
        disc = _quiet(model.fit, method="newton", maxiter=200, tol=1e-12, disp=0)
        good = _ok(disc) and not _singular(model, disc.params)
    except (np.linalg.LinAlgError, ValueError, OverflowError):
        disc, good = None, False
    if not good:
        start = simple_start(y, Xa, design.offset)
        rough = _quiet(model.fit, start_params=start, method="bfgs", maxiter=_MAXITER, disp=0)
        try:
            polished = _quiet(model.fit, start_params=rough.params, method="newton", maxiter=200, tol=1e-12, disp=0)
        except (np.linalg.LinAlgError, ValueError, OverflowError):
            polished = rough
        disc = polished if _ok(polished) else rough
        if not (np.all(np.isfinite(disc.params)) and np.isfinite(disc.llf)):
            raise EstimationError(f"{what}: the model did not converge from statsmodels' start or from the "
                                  "simple start (log mean, zero slopes, alpha = 1). Fix: use poisson (robust "
                                  "errors) for this outcome, or fewer covariates")
        notes.append("Newton failed from the default start; fitted by BFGS from a simple start")
    params = np.asarray(disc.params)
    alpha = float(params[-1])
    if not (alpha > 0 and np.isfinite(alpha)):
        raise EstimationError(f"{what}: the dispersion estimate is not positive ({alpha:.3g}); the counts are "
                              "not overdispersed. Fix: use poisson for this outcome")
    kind_notes = []
    kind = _glm_variance(variance, kind_notes)
    glm = sm.GLM(y, Xa, family=sm.families.NegativeBinomial(alpha=alpha), offset=design.offset)
    res = _quiet(glm.fit, start_params=params[:-1], method="newton", optim_hessian="eim", tol=1e-12,
                 maxiter=200, disp=0)
    cov = _glm_covariance(res, design.cluster, kind)
    mu = np.asarray(res.fittedvalues)
    return Fit("negbin", pd.Series(np.asarray(res.params), design.columns), cov, design, kind,
               mean_fn=lambda b, Z: np.exp(Z[:, :len(b)] @ b), loglik=float(disc.llf), k_params=Xa.shape[1] + 1,
               alpha=alpha, zeros_predicted=float(np.sum((1 + alpha * mu) ** (-1 / alpha))),
               converged=bool(_ok(disc)), notes=notes + kind_notes)


def _scores_only(variance: str, notes: list) -> str:
    if variance != "cr1":
        notes.append("CR2 and the wild bootstrap are defined for linear models and GLMs; this model's "
                     "covariance is CR1 (M-estimation sandwich over every parameter)")
    return "cr1"


def fit_zinb(design: Design, variance: str = "cr1", *, what: str = "zero-inflated negative binomial") -> Fit:
    """Zero-inflated NB2 (logit zero part on the same regressors); CR1 sandwich over every parameter."""
    from statsmodels.discrete.count_model import ZeroInflatedNegativeBinomialP

    X, y = design.X, design.y.to_numpy(float)
    Xa = X.to_numpy(float)
    k = Xa.shape[1]
    notes = []
    kind = _scores_only(variance, notes)
    model = ZeroInflatedNegativeBinomialP(y, Xa, exog_infl=Xa, offset=design.offset, inflation="logit", p=2)
    first = _quiet(model.fit, method="bfgs", maxiter=_MAXITER, disp=0)
    # A (near-)singular Hessian at the BFGS optimum means the zero part is not identified (e.g. no
    # excess zeros): stop here rather than let Newton wander. Otherwise polish with Newton.
    if not np.isfinite(first.llf) or _singular(model, first.params):
        raise np.linalg.LinAlgError("singular Hessian at the optimum: the zero component is not identified")
    res = _quiet(model.fit, start_params=first.params, method="newton", maxiter=50, tol=1e-12, disp=0)
    converged = bool(res.mle_retvals.get("converged", False)) and bool(np.isfinite(res.llf))
    names = [f"inflate_{c}" for c in X.columns] + list(X.columns) + ["alpha"]
    p = np.asarray(res.params)
    scores = _quiet(model.score_obs, p)
    hess = _quiet(model.hessian, p)
    cov = covariance_from_scores(np.linalg.inv(-hess), scores, design.cluster, kind)
    alpha = float(p[-1])
    infl, cnt = np.arange(k), np.arange(k, 2 * k)

    def mean_fn(b, Z):
        return (1 - expit(Z @ b[infl])) * np.exp(Z @ b[cnt])

    off = design.offset if design.offset is not None else 0.0
    pi = expit(Xa @ p[infl])
    mu = np.exp(Xa @ p[cnt] + off)
    zeros = float(np.sum(pi + (1 - pi) * (1 + alpha * mu) ** (-1 / alpha)))
    return Fit("zinb", pd.Series(p, names), cov, design, kind, mean_fn=mean_fn, loglik=float(res.llf),
               k_params=len(names), alpha=alpha, zeros_predicted=zeros, converged=converged,
               notes=notes + ["rate ratio from the count component; the zero component is a logit on the same "
                              "regressors"])


def fit_hurdle_negbin(design: Design, variance: str = "cr1", *, what: str = "hurdle negative binomial") -> Fit:
    """Logit hurdle + zero-truncated NB2, fitted part by part, one joint CR1 sandwich.

    The truncated part is fitted from statsmodels' start, and when that fails (counts in the tens of
    thousands overflow it) by Nelder–Mead from the simple start (log mean of the positive counts, zero
    slopes, α = 1), each polished by Newton."""
    from statsmodels.discrete.truncated_model import TruncatedLFNegativeBinomialP

    X, y = design.X, design.y.to_numpy(float)
    Xa = X.to_numpy(float)
    k = Xa.shape[1]
    notes = []
    kind = _scores_only(variance, notes)
    pos = y > 0
    if pos.sum() <= k + 1 or pos.all():
        raise EstimationError(f"{what}: {int(pos.sum())} of {len(y)} counts are positive; the hurdle needs both "
                              "zeros and enough positive counts. Fix: use negbin for this outcome")
    zero = sm.Logit(pos.astype(float), Xa)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        try:
            zres = _quiet(zero.fit, method="newton", maxiter=200, tol=1e-12, disp=0)
        except (PerfectSeparationWarning, np.linalg.LinAlgError) as exc:
            raise EstimationError(f"{what}: the hurdle (zero vs positive) part has separation ({exc})") from None
    off = None if design.offset is None else design.offset[pos]
    count = TruncatedLFNegativeBinomialP(y[pos], Xa[pos], offset=off, p=2)
    cres = None
    with np.errstate(all="ignore"):
        for start, method in ((None, "bfgs"), (simple_start(y[pos], Xa[pos], off), "nm")):
            try:
                first = _quiet(count.fit, start_params=start, method=method, maxiter=_MAXITER * (10 if method == "nm"
                                                                                             else 1), disp=0)
                cres = _quiet(count.fit, start_params=first.params, method="newton", maxiter=200, tol=1e-12,
                              disp=0)
            except (np.linalg.LinAlgError, ValueError, OverflowError):
                continue
            if _ok(cres):
                break
            if start is not None:
                notes.append("the truncated count part was fitted from a simple start (log mean, zero slopes, "
                             "alpha = 1)")
    if cres is None:
        raise EstimationError(f"{what}: the truncated count part could not be fitted. Fix: use negbin")
    converged = bool(zres.mle_retvals.get("converged", False)) and _ok(cres)
    zp, cp = np.asarray(zres.params), np.asarray(cres.params)
    names = [f"zero_{c}" for c in X.columns] + list(X.columns) + ["alpha"]
    scores = np.zeros((len(y), len(names)))
    scores[:, :k] = zero.score_obs(zp)
    hess = np.zeros((len(names), len(names)))
    hess[:k, :k] = zero.hessian(zp)
    with np.errstate(all="ignore"):
        scores[pos, k:] = count.score_obs(cp)
        hess[k:, k:] = count.hessian(cp)
    if not (np.all(np.isfinite(scores)) and np.all(np.isfinite(hess))):
        raise EstimationError(f"{what}: the truncated count part did not converge to finite values. Fix: use "
                              "negbin for this outcome")
    try:
        bread_inv = np.linalg.inv(-hess)
    except np.linalg.LinAlgError:
        raise EstimationError(f"{what}: singular information matrix; the data do not identify the model. "
                              "Fix: use negbin for this outcome") from None
    cov = covariance_from_scores(bread_inv, scores, design.cluster, kind)
    alpha = float(cp[-1])

    def mean_fn(b, Z):
        with np.errstate(over="ignore"):
            mu = np.exp(Z @ b[k:2 * k])
            a = b[-1]
            return expit(Z @ b[:k]) * mu / -np.expm1(-np.log1p(a * mu) / a)

    return Fit("hurdle_negbin", pd.Series(np.concatenate([zp, cp]), names), cov, design, kind, mean_fn=mean_fn,
               loglik=float(zres.llf + cres.llf), k_params=len(names), alpha=alpha,
               zeros_predicted=float(np.sum(1 - expit(Xa @ zp))), converged=converged,
               notes=notes + ["rate ratio from the truncated count component; the hurdle is a logit on the same "
                              "regressors"])


def _as_sentences(fn):
    """A numerical failure inside a fit (singular matrix, overflow, NaN from the optimiser) becomes an
    EstimationError naming the model, so the pipeline lists it under "analyses not run"."""
    @functools.wraps(fn)
    def wrapped(design, variance="cr2", **kw):
        try:
            return fn(design, variance, **kw)
        except (np.linalg.LinAlgError, ValueError, OverflowError, FloatingPointError, ZeroDivisionError) as exc:
            what = kw.get("what") or fn.__name__.replace("fit_", "")
            raise EstimationError(f"{what}: the model could not be estimated on these data ({exc}); simplify the "
                                  "plan's covariates or choose another model") from None
    return wrapped


fit_ols, fit_logit, fit_poisson, fit_gamma_log, fit_negbin, fit_zinb, fit_hurdle_negbin = map(
    _as_sentences, (fit_ols, fit_logit, fit_poisson, fit_gamma_log, fit_negbin, fit_zinb, fit_hurdle_negbin))

FITTERS = {"ols": fit_ols, "logit": fit_logit, "poisson": fit_poisson, "negbin": fit_negbin, "zinb": fit_zinb,
           "hurdle_negbin": fit_hurdle_negbin, "gamma_log": fit_gamma_log}
