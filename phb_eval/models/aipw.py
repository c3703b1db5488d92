"""Doubly robust (AIPW), inverse-probability-weighted (IPW) and regression-adjustment (RA) effects.

One engine for every outcome family: a logistic propensity model e(X) on the adjustment set (optionally with
site fixed effects), an outcome model per arm (linear, logit, NB2 with log exposure offset, gamma-log), and
the effect's own estimating equations, all solved and stacked into one M-estimator whose cluster-robust
sandwich accounts for the estimated nuisance models (Stefanski & Boos 2002; Lunceford & Davidian 2004).

Estimands (potential means per unit of exposure E: E = 1, or person-years for counts with an offset):

- **ATT** (default), with w = e/(1 − e) for controls and m0 the control-arm outcome model:
  mean1 = Σ_T Y / Σ_T E; mean0 = Σ_T m0 / Σ_T E + Σ_C w(Y − m0) / Σ_C w E (AIPW, normalised weights);
  IPW drops the m0 terms (Σ_C wY / Σ_C wE), RA drops the weighted residual term.
- **ATE** (as statsmodels' ``TreatmentEffect`` and Stata's ``teffects``): mean_a = [Σ m_a + Σ_{T=a} (Y − m_a)/p_a]
  / Σ E with p_1 = e, p_0 = 1 − e (AIPW); IPW with normalised weights; RA the mean of m_a.

Contrasts: difference mean1 − mean0 and ratio mean1 / mean0 (risk ratio, rate ratio; se on the log scale).

Variance: the stacked estimating equations g_i(θ) (propensity score equations, outcome-model score
equations, the effect equations) give V = A⁻¹ B A⁻ᵀ with A = Σ ∂g_i/∂θ (central differences) and
B = G/(G − 1) Σ_g (Σ_{i∈g} g_i)(Σ_{i∈g} g_i)ᵀ over clusters g; t on G − 1 degrees of freedom. This is R's
``sandwich::vcovCL(type = "HC0", cadjust = TRUE)`` on the stacked equations. Written here because no
maintained Python library stacks a non-linear outcome model with a propensity model for the ATT
(statsmodels' ``TreatmentEffect`` covers linear outcome models and the ATE for AIPW, without clusters).
The site bootstrap (:func:`site_bootstrap`) resamples whole sites and refits everything.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from scipy.special import digamma, expit
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

from ..errors import EstimationError
from .design import _treatment_codes, design_matrix, model_columns, parse_terms, term_variables

__all__ = ["OUTCOME_MODELS", "ESTIMANDS", "ESTIMATORS", "EffectFit", "fit_effect", "site_bootstrap"]

OUTCOME_MODELS = ("linear", "logit", "negbin", "gamma_log")
ESTIMANDS = ("att", "ate")
ESTIMATORS = ("aipw", "ipw", "ra")
_PS_BOUND = 1e-8


# ---------------------------------------------------------------------------------------------------------
# outcome models: fit, mean at each person's exposure, per-person score
# ---------------------------------------------------------------------------------------------------------
def _mean(model: str, p: np.ndarray, X: np.ndarray, off: np.ndarray) -> np.ndarray:
    k = X.shape[1]
    eta = X @ p[:k]
    if model == "linear":
        return eta
    if model == "logit":
        return expit(eta)
    with np.errstate(over="ignore"):
        return np.exp(eta + off)


def _score(model: str, p: np.ndarray, y: np.ndarray, X: np.ndarray, off: np.ndarray) -> np.ndarray:
    """Per-person score of the outcome model (n × parameters); NB2 adds the dispersion column."""
    mu = _mean(model, p, X, off)
    if model in ("linear", "logit"):
        return X * (y - mu)[:, None]
    if model == "gamma_log":
        return X * ((y - mu) / mu)[:, None]
    a = p[-1]                                        # NB2: Var = mu + a mu^2 (Cameron & Trivedi 2013, 3.3)
    sb = X * ((y - mu) / (1 + a * mu))[:, None]
    sa = (digamma(1 / a) - digamma(y + 1 / a) + np.log1p(a * mu)) / a ** 2 + (y - mu) / (a * (1 + a * mu))
    return np.column_stack([sb, sa])


def _n_params(model: str, k: int) -> int:
    return k + (model == "negbin")


def _quiet_fit(fn, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(**kw)


def _fit_outcome(model: str, y, X, off, what: str) -> np.ndarray:
    if model == "linear":
        return np.linalg.lstsq(X, y, rcond=None)[0]
    if model == "logit":
        if np.unique(y).size < 2:
            raise EstimationError(f"{what}: the outcome is the same for everyone in this arm, so its logistic "
                                  "outcome model cannot be fitted")
        with warnings.catch_warnings():
            warnings.simplefilter("error", PerfectSeparationWarning)
            try:
                res = _quiet_fit(sm.GLM(y, X, family=sm.families.Binomial()).fit, tol=1e-12, maxiter=200)
            except (PerfectSeparationWarning, np.linalg.LinAlgError):
                raise EstimationError(f"{what}: the covariates separate the outcome in one arm; the logistic "
                                      "outcome model is not estimable — use fewer covariates") from None
        return np.asarray(res.params)
    if model == "gamma_log":
        if (y <= 0).any():
            raise EstimationError(f"{what}: {int((y <= 0).sum())} people have a value of 0 or less; the gamma "
                                  "outcome model needs positive values. Fix: use the ols cost model")
        start = np.r_[math.log(y.mean()), np.zeros(X.shape[1] - 1)]
        res = _quiet_fit(sm.GLM(y, X, family=sm.families.Gamma(sm.families.links.Log())).fit, start_params=start,
                         tol=1e-12, maxiter=400)
        return np.asarray(res.params)
    if (y == 0).all():
        raise EstimationError(f"{what}: every count in this arm is 0, so no rate can be modelled")
    nb = sm.NegativeBinomial(y, X, offset=off, loglike_method="nb2")
    start = np.r_[math.log(max(y.sum(), 0.5) / np.exp(off).sum()), np.zeros(X.shape[1] - 1), 1.0]
    best = None
    for method in ("newton", "bfgs", "nm"):
        try:
            res = _quiet_fit(nb.fit, start_params=start if best is None else best, method=method, disp=0,
                             maxiter=5000 if method == "nm" else 300)
        except (np.linalg.LinAlgError, ValueError, OverflowError):
            continue
        p = np.asarray(res.params)
        if np.all(np.isfinite(p)) and p[-1] > 1e-8:
            best = p
            if np.max(np.abs(_score(model, p, y, X, off).sum(0))) < 1e-4 * len(y):
                break
    if best is None:
        raise EstimationError(f"{what}: the negative binomial outcome model did not converge. Fix: fewer "
                              "covariates")
    return best


# ---------------------------------------------------------------------------------------------------------
# the stacked estimating equations
# ---------------------------------------------------------------------------------------------------------
@dataclass
class _Stack:
    """Data and layout of one effect's stacked estimating equations."""

    y: np.ndarray
    t: np.ndarray
    E: np.ndarray            # exposure (1 unless a count with an offset)
    X: np.ndarray            # outcome design
    Z: np.ndarray            # propensity design
    keep: np.ndarray         # 1 = in the effect equations (0 = trimmed)
    model: str
    estimand: str
    estimator: str
    blocks: dict = field(default_factory=dict)

    def __post_init__(self):
        k, kz = self.X.shape[1], self.Z.shape[1]
        q = _n_params(self.model, k)
        pos = 0
        if self.estimator != "ra":
            self.blocks["ps"] = slice(pos, pos + kz)
            pos += kz
        arms = () if self.estimator == "ipw" else ((0,) if self.estimand == "att" else (0, 1))
        for a in arms:
            self.blocks[f"m{a}"] = slice(pos, pos + q)
            pos += q
        self.psi = (["p1", "a", "b"] if self.estimator == "aipw" else ["p1", "b"] if self.estimator == "ipw"
                    else ["p1", "a"]) if self.estimand == "att" else ["v1", "v0"]
        self.blocks["psi"] = slice(pos, pos + len(self.psi))
        self.size = pos + len(self.psi)
        self.off = np.log(self.E)

    def propensity(self, theta):
        if "ps" not in self.blocks:
            return None
        return np.clip(expit(self.Z @ theta[self.blocks["ps"]]), _PS_BOUND, 1 - _PS_BOUND)

    def moments(self, theta) -> np.ndarray:
        y, t, E, X, keep = self.y, self.t, self.E, self.X, self.keep
        cols = []
        e = self.propensity(theta)
        if e is not None:
            cols.append(self.Z * (t - e)[:, None])
        mu = {}
        for a in (0, 1):
            name = f"m{a}"
            if name in self.blocks:
                p = theta[self.blocks[name]]
                arm = (t == a) * keep
                cols.append(_score(self.model, p, y, X, self.off) * arm[:, None])
                mu[a] = _mean(self.model, p, X, self.off)
        psi = dict(zip(self.psi, theta[self.blocks["psi"]]))
        g = []
        if self.estimand == "att":
            g.append(keep * t * (y - psi["p1"] * E))
            if "a" in psi:
                g.append(keep * t * (mu[0] - psi["a"] * E))
            if "b" in psi:
                w = e / (1 - e)
                r = y - mu[0] if self.estimator == "aipw" else y
                g.append(keep * (1 - t) * w * (r - psi["b"] * E))
        else:
            for a, name in ((1, "v1"), (0, "v0")):
                arm = t if a == 1 else 1 - t
                if self.estimator == "ipw":
                    pa = e if a == 1 else 1 - e
                    g.append(keep * arm / pa * (y - psi[name] * E))
                elif self.estimator == "ra":
                    g.append(keep * (mu[a] - psi[name] * E))
                else:
                    pa = e if a == 1 else 1 - e
                    g.append(keep * (mu[a] + arm * (y - mu[a]) / pa - psi[name] * E))
        return np.column_stack(cols + [np.column_stack(g)])

    def potential_means(self, theta):
        """(mean with the budget, mean without it) and their gradients in θ."""
        psi = theta[self.blocks["psi"]]
        d1, d0 = np.zeros(self.size), np.zeros(self.size)
        j = self.blocks["psi"].start
        if self.estimand == "ate":
            d1[j], d0[j + 1] = 1.0, 1.0
            return psi[0], psi[1], d1, d0
        d1[j] = 1.0
        d0[j + 1:j + len(psi)] = 1.0
        return psi[0], float(psi[1:].sum()), d1, d0


def _jacobian(stack: _Stack, theta) -> np.ndarray:
    """A = Σ_i ∂g_i/∂θ by central differences (step 1e-6 · max(1, |θ_j|))."""
    A = np.empty((stack.size, stack.size))
    for j in range(stack.size):
        h = 1e-6 * max(1.0, abs(theta[j]))
        up, dn = theta.copy(), theta.copy()
        up[j] += h
        dn[j] -= h
        A[:, j] = (stack.moments(up).sum(0) - stack.moments(dn).sum(0)) / (2 * h)
    return A


def _start(stack: _Stack, what: str) -> np.ndarray:
    """Each block solved in turn: propensity GLM, outcome model(s), then the effect equations in closed form."""
    theta = np.zeros(stack.size)
    if "ps" in stack.blocks:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PerfectSeparationWarning)
            try:
                res = _quiet_fit(sm.GLM(stack.t, stack.Z, family=sm.families.Binomial()).fit, tol=1e-12,
                                 maxiter=200)
            except (PerfectSeparationWarning, np.linalg.LinAlgError):
                raise EstimationError(f"{what}: the covariates separate the arms (no overlap); the propensity "
                                      "model cannot be fitted — drop the separating covariate or site effects") from None
        theta[stack.blocks["ps"]] = res.params
    for a in (0, 1):
        name = f"m{a}"
        if name in stack.blocks:
            sel = (stack.t == a) & (stack.keep == 1)
            if sel.sum() <= stack.X.shape[1] or np.linalg.matrix_rank(stack.X[sel]) < stack.X.shape[1]:
                raise EstimationError(f"{what}: the outcome model is not identifiable in the "
                                      f"{'PHB' if a else 'control'} arm ({int(sel.sum())} people, "
                                      f"{stack.X.shape[1]} coefficients; a category with no one in this arm?); "
                                      "simplify the covariates")
            theta[stack.blocks[name]] = _fit_outcome(stack.model, stack.y[sel], stack.X[sel], stack.off[sel],
                                                     f"{what} ({'PHB' if a else 'control'} outcome model)")
    # the effect equations are linear in ψ: solve each from the others
    sl = stack.blocks["psi"]
    g = stack.moments(theta)[:, sl]
    for i, name in enumerate(stack.psi):
        probe = theta.copy()
        probe[sl.start + i] = 1.0
        slope = (g[:, i] - stack.moments(probe)[:, sl][:, i]).sum()
        theta[sl.start + i] = g[:, i].sum() / slope if slope != 0 else math.nan
    return theta


@dataclass
class EffectFit:
    """Solved stacked equations of one effect: θ, its cluster covariance and the potential means."""

    theta: np.ndarray
    vcov: np.ndarray
    stack: _Stack
    n_clusters: int
    n_phb: int
    n_control: int
    n_trimmed: int
    propensity: pd.Series | None
    notes: list = field(default_factory=list)

    @property
    def df(self) -> float:
        return float(self.n_clusters - 1)

    def means(self):
        m1, m0, _, _ = self.stack.potential_means(self.theta)
        return float(m1), float(m0)

    def contrast(self, scale: str, level: float = 0.95) -> dict:
        """Difference (``scale="difference"``) or ratio (``"ratio"``, se on the log scale) with t(G − 1)."""
        m1, m0, d1, d0 = self.stack.potential_means(self.theta)
        if scale == "difference":
            est, grad = m1 - m0, d1 - d0
        else:
            if m1 <= 0 or m0 <= 0:
                raise EstimationError("a ratio needs positive potential means; report the difference")
            est, grad = math.log(m1) - math.log(m0), d1 / m1 - d0 / m0
        se = float(math.sqrt(max(grad @ self.vcov @ grad, 0.0)))
        q = stats.t.ppf(0.5 + level / 2, self.df)
        lo, hi = est - q * se, est + q * se
        p = float(2 * stats.t.sf(abs(est / se), self.df)) if se > 0 else math.nan
        if scale == "ratio":
            return dict(estimate=math.exp(est), se=se, ci_low=math.exp(lo), ci_high=math.exp(hi), p=p,
                        df=self.df)
        return dict(estimate=float(est), se=se, ci_low=lo, ci_high=hi, p=p, df=self.df)


def _cluster_vcov(A: np.ndarray, scores: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """A⁻¹ B A⁻ᵀ with B the cluster-summed score outer product times G/(G − 1)."""
    G = int(codes.max() + 1)
    summed = np.zeros((G, scores.shape[1]))
    np.add.at(summed, codes, scores)
    B = summed.T @ summed * (G / (G - 1))
    Ainv = np.linalg.inv(A)
    return Ainv @ B @ Ainv.T


def _prepare(df, response, *, treatment, covariates, propensity_covariates, cluster, exposure, baseline, what):
    """Complete cases over every column either model reads; outcome and propensity designs on those rows."""
    out_terms = parse_terms(([baseline] if baseline else []) + list(covariates), cluster=cluster)
    ps_terms = parse_terms(list(propensity_covariates), cluster=cluster)
    needed = list(dict.fromkeys([response, treatment, cluster, *term_variables(out_terms),
                                 *term_variables(ps_terms)] + ([exposure] if exposure else [])))
    data = model_columns(df, needed, what)
    data["__t"] = _treatment_codes(df[treatment], treatment, None, what)
    data[response] = pd.to_numeric(data[response], errors="coerce")
    data = data.dropna()
    n1, n0 = int((data["__t"] == 1).sum()), int((data["__t"] == 0).sum())
    if n1 == 0 or n0 == 0:
        raise EstimationError(f"{what}: no {'PHB' if n1 == 0 else 'control'} participants with the outcome and "
                              "every covariate observed; the comparison needs both arms")
    codes, uniques = pd.factorize(data[cluster].astype(str))
    if len(uniques) < 2:
        raise EstimationError(f"{what}: everyone analysed is in one {cluster}; cluster-robust errors need at "
                              f"least 2 {cluster}s")
    X = design_matrix(data, out_terms).to_numpy(float)
    Z = design_matrix(data, ps_terms).to_numpy(float)
    if exposure:
        E = data[exposure].astype(float).to_numpy()
        if (E <= 0).any():
            raise EstimationError(f"{what}: exposure column '{exposure}' must be > 0")
    else:
        E = np.ones(len(data))
    return data, X, Z, E, codes


def _prepare_with_sites(df, response, *, propensity_covariates, cluster, what, **kw):
    """:func:`_prepare`, leaving site fixed effects out of the propensity model (with a note) when a site
    has people of only one arm among those analysed: its effect would be infinite (no overlap there)."""
    fe = f"C({cluster})"
    terms = [t.text for t in parse_terms(list(propensity_covariates), cluster=cluster)]
    data, X, Z, E, codes = _prepare(df, response, propensity_covariates=propensity_covariates, cluster=cluster,
                                    what=what, **kw)
    notes = []
    if fe in terms:
        arms = data.groupby(data[cluster].astype(str))["__t"].agg(["min", "max"])
        single = arms.index[arms["min"] == arms["max"]].tolist()
        if single:
            Z = design_matrix(data, [t for t in terms if t != fe]).to_numpy(float)
            notes.append(f"site effects left out of the propensity model: {len(single)} {cluster}(s) have "
                         "people of one arm only among those analysed")
    return data, X, Z, E, codes, notes


def fit_effect(df: pd.DataFrame, response: str, *, model: str = "linear", estimand: str = "att",
               estimator: str = "aipw", covariates=(), propensity_covariates=None, baseline: str | None = None,
               treatment: str = "phb", cluster: str = "site", exposure: str | None = None,
               trim: float | None = None, what: str | None = None) -> EffectFit:
    """Solve the stacked equations of one effect and its cluster-robust covariance.

    Parameters
    ----------
    response : outcome column (a score at follow-up, a 0/1 outcome, a post-consent count, a cost).
    model : outcome model: ``linear`` (OLS), ``logit``, ``negbin`` (NB2, log link, offset log exposure)
        or ``gamma_log``; fitted separately in each arm (controls only for the ATT).
    estimand : ``att`` (PHB holders) or ``ate`` (everyone analysed).
    estimator : ``aipw`` (doubly robust), ``ipw`` (weighting only) or ``ra`` (outcome model only).
    covariates : outcome-model terms (:mod:`phb_eval.models.design`); ``baseline`` adds the outcome's own
        baseline term first (not twice).
    propensity_covariates : propensity-model terms (default: ``baseline`` + ``covariates``).
    exposure : column of person-years (> 0): counts are modelled with offset log(exposure) and the
        potential means are per person-year.
    trim : people with a propensity score outside [trim, 1 − trim] are left out of the effect.

    Raises EstimationError with a sentence when a model cannot be fitted.
    """
    what = what or f"{estimator} for {response}"
    if model not in OUTCOME_MODELS or estimand not in ESTIMANDS or estimator not in ESTIMATORS:
        raise EstimationError(f"{what}: unknown setting (model {model!r}, estimand {estimand!r}, estimator "
                              f"{estimator!r}); choose from {OUTCOME_MODELS}, {ESTIMANDS}, {ESTIMATORS}")
    if propensity_covariates is None:
        propensity_covariates = ([baseline] if baseline else []) + list(covariates)
    data, X, Z, E, codes, notes = _prepare_with_sites(df, response, treatment=treatment, covariates=covariates,
                                                      propensity_covariates=propensity_covariates, cluster=cluster,
                                                      exposure=exposure if model == "negbin" else None,
                                                      baseline=baseline, what=what)
    y, t = data[response].to_numpy(float), data["__t"].to_numpy(float)
    if model == "logit" and not np.isin(y, (0, 1)).all():
        raise EstimationError(f"{what}: '{response}' must be coded 0/1 for the logistic outcome model")
    if model == "negbin" and ((y < 0) | (y != np.floor(y))).any():
        raise EstimationError(f"{what}: '{response}' must hold whole counts >= 0 for the count outcome model")
    stack = _Stack(y, t, E, X, Z, np.ones(len(y)), model, estimand, estimator)
    if trim is not None and "ps" in stack.blocks:
        e = stack.propensity(_start(stack, what))
        stack.keep = ((e >= trim) & (e <= 1 - trim)).astype(float)
        if stack.keep.sum() < len(y):
            notes.append(f"{int(len(y) - stack.keep.sum())} people with a propensity score outside "
                         f"[{trim:g}, {1 - trim:g}] were left out")
    theta = _start(stack, what)
    e0 = stack.propensity(theta)
    if e0 is not None and ((e0 < 1e-6) | (e0 > 1 - 1e-6)).any():
        raise EstimationError(f"{what}: {int(((e0 < 1e-6) | (e0 > 1 - 1e-6)).sum())} people have a propensity "
                              "score of 0 or 1 (no overlap); use trim, or fewer covariates")
    for _ in range(4):          # Newton polish of the whole stack: every equation solved to round-off
        A = _jacobian(stack, theta)
        gsum = stack.moments(theta).sum(0)
        if np.max(np.abs(gsum)) < 1e-10 * len(y):
            break
        try:
            theta = theta - np.linalg.solve(A, gsum)
        except np.linalg.LinAlgError:
            raise EstimationError(f"{what}: the stacked estimating equations are singular; simplify the "
                                  "covariates") from None
    if not np.all(np.isfinite(theta)):
        raise EstimationError(f"{what}: the estimating equations did not converge to finite values")
    A = _jacobian(stack, theta)
    try:
        vcov = _cluster_vcov(-A, stack.moments(theta), codes)
    except np.linalg.LinAlgError:
        raise EstimationError(f"{what}: singular derivative of the estimating equations; simplify the "
                              "covariates") from None
    e = stack.propensity(theta)
    ps = None if e is None else pd.Series(e, index=data.index, name="propensity")
    keep = stack.keep == 1
    return EffectFit(theta, vcov, stack, int(codes.max() + 1), int(((t == 1) & keep).sum()),
                     int(((t == 0) & keep).sum()), int((~keep).sum()), ps, notes)


def site_bootstrap(df: pd.DataFrame, response: str, *, B: int, rng: np.random.Generator, scale: str = "difference",
                   level: float = 0.95, cluster: str = "site", **kwargs) -> dict:
    """Percentile interval and se (sd of the replicates) from resampling whole sites with replacement.

    Every replicate refits the propensity and outcome models (``fit_effect``'s arguments); a replicate that
    cannot be fitted (e.g. one arm missing) is redrawn up to B times, and the count of failures is returned.
    ``scale="ratio"`` gives the se of the log ratio and a ratio interval.
    """
    point = fit_effect(df, response, cluster=cluster, **kwargs)
    est = point.contrast(scale, level)["estimate"]
    sites = df[cluster].dropna().unique()
    by_site = {s: idx for s, idx in df.groupby(cluster).groups.items()}
    draws, failed = [], 0
    while len(draws) < B and failed < B:
        pick = rng.choice(sites, size=len(sites), replace=True)
        parts = [df.loc[by_site[s]].assign(**{cluster: f"{s}#{k}"}) for k, s in enumerate(pick)]
        try:
            fit = _point_only(pd.concat(parts, ignore_index=True), response, cluster=cluster, **kwargs)
        except EstimationError:
            failed += 1
            continue
        m1, m0 = fit
        draws.append(m1 - m0 if scale == "difference" else math.log(m1 / m0))
    if len(draws) < max(20, B // 2):
        raise EstimationError(f"site bootstrap for {response}: only {len(draws)} of {B} replicates could be "
                              "fitted; use the cr1 variance")
    d = np.asarray(draws)
    lo, hi = np.quantile(d, [(1 - level) / 2, (1 + level) / 2])
    if scale == "ratio":
        lo, hi = math.exp(lo), math.exp(hi)
    return dict(estimate=est, se=float(d.std(ddof=1)), ci_low=float(lo), ci_high=float(hi),
                p=float(min(1.0, 2 * min((d <= 0).mean(), (d >= 0).mean()))),
                df=math.nan, B=len(d), failed=failed, n_clusters=point.n_clusters, fit=point)


def _point_only(df, response, *, model="linear", estimand="att", estimator="aipw", covariates=(),
                propensity_covariates=None, baseline=None, treatment="phb", cluster="site", exposure=None,
                trim=None, what=None):
    """Potential means without the Newton polish and covariance (bootstrap replicates)."""
    what = what or f"{estimator} for {response}"
    if propensity_covariates is None:
        propensity_covariates = ([baseline] if baseline else []) + list(covariates)
    data, X, Z, E, _, _ = _prepare_with_sites(df, response, treatment=treatment, covariates=covariates,
                                              propensity_covariates=propensity_covariates, cluster=cluster,
                                              exposure=exposure if model == "negbin" else None, baseline=baseline,
                                              what=what)
    stack = _Stack(data[response].to_numpy(float), data["__t"].to_numpy(float), E, X, Z, np.ones(len(data)),
                   model, estimand, estimator)
    if trim is not None and "ps" in stack.blocks:
        e = stack.propensity(_start(stack, what))
        stack.keep = ((e >= trim) & (e <= 1 - trim)).astype(float)
    m1, m0, _, _ = stack.potential_means(_start(stack, what))
    return float(m1), float(m0)
