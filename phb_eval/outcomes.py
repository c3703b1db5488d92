"""Adjusted PHB − control comparisons of person-level outcomes with cluster-robust (CR1) errors by site.

Estimators (one tidy results row each, ``analysis="outcome"``):

- :func:`ancova` — follow-up score on the PHB indicator, the baseline score and covariates
  (``ancova_cr1_site``; ``ancova_ipw_cr1_site`` when propensity weights are given);
- :func:`did` — change score on the PHB indicator and covariates (``did_cr1_site``);
- :func:`binary_effects` — risk difference (linear probability model) and odds ratio (logit) for 0/1
  outcomes (``ancova_rd_cr1_site`` / ``logit_or_cr1_site``, ``_ipw_`` when weighted);
- :func:`ancova_mi` — ANCOVA on each imputed dataset pooled by Rubin's rules (``ancova_cr1_site_mi``);
- :func:`unadjusted` — means per arm and wave, Welch differences and Hedges' g.

A design that cannot be estimated (outcome column absent, an arm empty after exclusions, one site,
a constant covariate, collinear covariates, a binary outcome that is not 0/1) raises
:class:`~phb_eval.errors.EstimationError` with a sentence naming the outcome, column and fix; the
pipeline turns it into a "skipped" sentence. No estimator returns a silent NaN estimate.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pingouin as pg
import statsmodels.api as sm
from scipy import stats
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

from .errors import EstimationError
from .missing import pool_rubin, single_thread_blas
from .results import estimate_row, rows_frame, t_interval

__all__ = ["ancova", "did", "binary_effects", "ancova_mi", "unadjusted", "design_matrix", "resolve_columns"]

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
    """Intercept plus ``terms``; string/bool columns become treatment-coded dummies.

    The reference level is the first level in sorted (code-point) order, which is R's default
    ``contr.treatment`` for a factor built from the same strings in the C locale. Dummy names follow
    patsy: ``sex[T.male]``. Levels are taken from ``data`` (the analysed rows), so a level absent after
    exclusions gets no column.
    """
    cols = [pd.Series(1.0, index=data.index, name="Intercept")]
    for term in terms:
        col = data[term]
        if is_categorical(col):
            levels = sorted(col.astype(str).unique())
            as_str = col.astype(str)
            for lvl in levels[1:]:
                cols.append((as_str == lvl).astype(float).rename(f"{term}[T.{lvl}]"))
        else:
            cols.append(col.astype(float).rename(term))
    return pd.concat(cols, axis=1)


def _weights_series(df: pd.DataFrame, weights) -> pd.Series | None:
    if weights is None:
        return None
    if isinstance(weights, str):
        if weights not in df.columns:
            raise EstimationError(f"weights column '{weights}' is not in the analysis data")
        w = df[weights]
    elif isinstance(weights, pd.Series):
        w = weights.reindex(df.index)
    else:
        w = pd.Series(np.asarray(weights, dtype=float), index=df.index)
        if len(w) != len(df):
            raise EstimationError(f"weights have length {len(w)} but the data have {len(df)} rows")
    w = pd.to_numeric(w, errors="coerce").astype(float)
    if (w < 0).any():
        raise EstimationError(f"weights must be non-negative; found {int((w < 0).sum())} negative value(s)")
    return w


def _full_rank(X: np.ndarray, tol: float = 1e-10) -> bool:
    """Full column rank from the R factor of a QR decomposition (cheaper than an SVD on tall designs)."""
    scale = np.sqrt((X ** 2).sum(axis=0))
    if np.any(scale == 0):
        return False
    r = np.abs(np.diag(np.linalg.qr(X / scale, mode="r")))
    return bool(r.min() > tol * r.max())


class _Prepared:
    """Analysed rows, response, design, cluster codes and weights of one model (internal)."""

    def __init__(self, data, y, X, groups, w, n_clusters):
        self.data, self.y, self.X, self.groups, self.w, self.n_clusters = data, y, X, groups, w, n_clusters
        self.n_phb = int((data["__t"] == 1).sum())
        self.n_control = int((data["__t"] == 0).sum())


def _prepare(df, what, y, base_col, covariates, *, treatment, cluster, weights, change=False) -> _Prepared:
    """Complete cases and design checks shared by every estimator (raises EstimationError)."""
    needed = [y, treatment, cluster, *covariates] + ([base_col] if base_col else [])
    absent = [c for c in dict.fromkeys(needed) if c not in df.columns]
    if absent:
        raise EstimationError(f"{what}: column(s) {absent} not in the analysis data; "
                              f"supply them or remove them from the plan's covariates")
    w = _weights_series(df, weights)
    data = df[list(dict.fromkeys(needed))].copy()
    data["__t"] = pd.to_numeric(data[treatment], errors="coerce")
    if w is not None:
        data["__w"] = w
    data = data.dropna()
    if w is not None:
        data = data[data["__w"] > 0]
    bad_t = ~data["__t"].isin([0, 1])
    if bad_t.any():
        raise EstimationError(f"{what}: treatment column '{treatment}' must be 0/1; found "
                              f"{sorted(data.loc[bad_t, '__t'].unique())[:5]}")
    n1, n0 = int((data["__t"] == 1).sum()), int((data["__t"] == 0).sum())
    if n1 == 0 or n0 == 0:
        empty = "PHB" if n1 == 0 else "control"
        raise EstimationError(f"{what}: no {empty} participants left after excluding incomplete rows "
                              f"({n1} PHB, {n0} control with {needed} observed); the comparison needs both arms")
    groups = pd.factorize(data[cluster].astype(str))[0]
    n_clusters = int(groups.max() + 1)
    if n_clusters < 2:
        raise EstimationError(f"{what}: all {len(data)} analysed people are in one {cluster} "
                              f"({data[cluster].iloc[0]!r}), so cluster-robust errors by {cluster} cannot be "
                              f"estimated; analyse more than one {cluster}")
    for cov in covariates:
        if data[cov].nunique() <= 1:
            raise EstimationError(f"{what}: covariate '{cov}' is constant ({data[cov].iloc[0]!r}) among the "
                                  f"{len(data)} people analysed; remove it from the plan's covariates")
    resp = data[y].astype(float) - (data[base_col].astype(float) if change else 0.0)
    terms = ["__t"] + ([] if (change or base_col is None) else [base_col]) + list(covariates)
    X = design_matrix(data, terms).rename(columns={"__t": treatment})
    if X.shape[0] <= X.shape[1] or not _full_rank(X.to_numpy()):
        raise EstimationError(f"{what}: the model is not identifiable on the {len(data)} analysed people "
                              f"({X.shape[1]} coefficients; collinear covariates?); simplify the plan's covariates")
    return _Prepared(data, resp.rename("y"), X, groups, data["__w"] if w is not None else None, n_clusters)


def _fit_ols(p: _Prepared):
    """OLS/WLS with CR1 cluster covariance: G/(G−1)·(N−1)/(N−K), statsmodels' default for
    cov_type='cluster', identical to sandwich::vcovCL(type='HC1') and Stata's vce(cluster)."""
    model = sm.OLS(p.y, p.X) if p.w is None else sm.WLS(p.y, p.X, weights=p.w)
    with single_thread_blas():
        return model.fit(method="qr", cov_type="cluster", cov_kwds={"groups": p.groups})


def _fit_logit(p: _Prepared, what: str):
    """Logit GLM with CR1 cluster covariance (as vcovCL(glm, type='HC1')); weights as prior weights."""
    kwargs = {} if p.w is None else {"var_weights": p.w}
    model = sm.GLM(p.y, p.X, family=sm.families.Binomial(), **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        # statsmodels flags cluster covariances with var_weights as "not fully supported"; for the logit
        # they agree with R vcovCL(glm(weights = w), type = "HC1") to 1e-12 (tests/golden/outcomes_golden.R)
        warnings.filterwarnings("ignore", message="cov_type not fully supported with var_weights")
        try:
            fit = model.fit(cov_type="cluster", cov_kwds={"groups": p.groups}, tol=1e-12, maxiter=200)
        except (PerfectSeparationWarning, np.linalg.LinAlgError) as exc:
            raise EstimationError(f"{what}: the logistic model has (quasi-)complete separation, so the odds "
                                  f"ratio is not estimable ({exc}); report the risk difference only") from None
    if not np.all(np.isfinite(fit.bse)):
        raise EstimationError(f"{what}: the logistic model did not converge to finite standard errors")
    return fit


def _method(base: str, weighted: bool) -> str:
    return base.replace("ancova_", "ancova_ipw_", 1).replace("did_", "did_ipw_", 1).replace(
        "logit_", "logit_ipw_", 1) if weighted else base


def _effect_row(outcome, method, fit, p: _Prepared, treatment, conf_level, stratum, **extra):
    est, se = float(fit.params[treatment]), float(fit.bse[treatment])
    dof = p.n_clusters - 1
    lo, hi, pv = t_interval(est, se, dof, conf_level)
    return estimate_row("outcome", outcome, method, est, se, lo, hi, pv, n_phb=p.n_phb, n_control=p.n_control,
                        stratum=stratum, df=dof, n_clusters=p.n_clusters, **extra)


# ---------------------------------------------------------------------------------------------------------
# estimators
# ---------------------------------------------------------------------------------------------------------
def ancova(df: pd.DataFrame, outcome: str, covariates, *, baseline=True, cluster="site", conf_level=0.95,
           weights=None, stratum="all", treatment="phb", followup_wave="t1", baseline_wave="t0") -> pd.DataFrame:
    """Baseline-adjusted PHB − control difference at follow-up (ANCOVA) with CR1 errors by site.

    Parameters
    ----------
    df : analysis frame (one row per person).
    outcome : score stem, e.g. ``"scrqol"``; the response is ``<outcome>_<followup_wave>``.
    covariates : column names; string columns are treatment-coded (first sorted level = reference).
    baseline : True adjusts for ``<outcome>_<baseline_wave>`` (required), False omits it, None uses it if present.
    weights : column name or Series aligned with ``df`` (e.g. propensity weights); gives the weighted
        (doubly robust) estimator ``ancova_ipw_cr1_site``. Rows with missing or zero weight are excluded.

    Returns
    -------
    DataFrame with one results row: ``estimate`` (adjusted difference), ``se`` (CR1), ``ci_low``,
    ``ci_high``, ``p_value`` (t with G − 1 df), ``n_phb``, ``n_control``, plus ``df`` and ``n_clusters``.

    Notes
    -----
    Complete cases on response, baseline, covariates, cluster (and weights). CR1 = G/(G−1)·(N−1)/(N−K)
    sandwich, as R ``sandwich::vcovCL(type="HC1")`` and Stata; inference from t with G − 1 df.
    """
    y_col, base_col = resolve_columns(df, outcome, baseline, followup_wave=followup_wave, baseline_wave=baseline_wave)
    method = _method("ancova_cr1_site", weights is not None)
    p = _prepare(df, f"{method} for {outcome}", y_col, base_col, list(covariates), treatment=treatment,
                 cluster=cluster, weights=weights)
    fit = _fit_ols(p)
    return rows_frame([_effect_row(outcome, method, fit, p, treatment, conf_level, stratum,
                                   adjusted_for_baseline=base_col is not None)])


def did(df: pd.DataFrame, outcome: str, covariates, *, cluster="site", conf_level=0.95, weights=None,
        stratum="all", treatment="phb", followup_wave="t1", baseline_wave="t0") -> pd.DataFrame:
    """Difference in differences: change score (follow-up − baseline) on PHB and covariates, CR1 by site.

    Returns
    -------
    One results row (``method="did_cr1_site"``, ``did_ipw_cr1_site`` when weighted) with the columns of
    :func:`ancova`.

    Notes
    -----
    Complete cases on both waves and covariates. Equivalent to ANCOVA with the baseline coefficient
    fixed at 1; it is unbiased under parallel trends rather than under conditional exchangeability at baseline.
    """
    y_col, base_col = resolve_columns(df, outcome, True, followup_wave=followup_wave, baseline_wave=baseline_wave)
    method = _method("did_cr1_site", weights is not None)
    p = _prepare(df, f"{method} for {outcome}", y_col, base_col, list(covariates), treatment=treatment,
                 cluster=cluster, weights=weights, change=True)
    fit = _fit_ols(p)
    return rows_frame([_effect_row(outcome, method, fit, p, treatment, conf_level, stratum)])


def binary_effects(df: pd.DataFrame, outcome: str, covariates, *, baseline=None, cluster="site", conf_level=0.95,
                   weights=None, stratum="all", treatment="phb", followup_wave="t1",
                   baseline_wave="t0") -> pd.DataFrame:
    """Risk difference and odds ratio of a 0/1 outcome (caseness, carer health good, mortality).

    Parameters
    ----------
    baseline : None (default) adjusts for the baseline value when the column exists (caseness, carer
        health) and not otherwise (mortality); True requires it; False omits it.

    Returns
    -------
    Two results rows:

    - ``ancova_rd_cr1_site``: linear probability model coefficient (risk difference), CR1 se, t(G − 1).
    - ``logit_or_cr1_site``: ``estimate`` = odds ratio exp(b); ``se`` is the CR1 se of log(OR);
      ``ci_low``/``ci_high`` = exp(b ∓ t·se); p from t(G − 1) on the log scale (column ``scale="log"``).

    ``_ipw_`` is inserted into both method names when weights are given.
    """
    y_col, base_col = resolve_columns(df, outcome, baseline, followup_wave=followup_wave, baseline_wave=baseline_wave)
    weighted = weights is not None
    what = f"binary effects for {outcome}"
    p = _prepare(df, what, y_col, base_col, list(covariates), treatment=treatment, cluster=cluster, weights=weights)
    if not p.y.isin([0, 1]).all():
        raise EstimationError(f"{what}: '{y_col}' must be coded 0/1; found values such as "
                              f"{sorted(p.y[~p.y.isin([0, 1])].unique())[:5]}")
    if p.y.nunique() < 2:
        raise EstimationError(f"{what}: '{y_col}' is {int(p.y.iloc[0])} for every analysed person, so no "
                              f"risk difference or odds ratio can be estimated")
    rd_method = "ancova_ipw_rd_cr1_site" if weighted else "ancova_rd_cr1_site"
    rows = [_effect_row(outcome, rd_method, _fit_ols(p), p, treatment, conf_level, stratum,
                        scale="risk_difference")]
    or_method = _method("logit_or_cr1_site", weighted)
    logit = _fit_logit(p, what)
    row = _effect_row(outcome, or_method, logit, p, treatment, conf_level, stratum, scale="log")
    row.update(estimate=math.exp(row["estimate"]), ci_low=math.exp(row["ci_low"]), ci_high=math.exp(row["ci_high"]),
               note="odds ratio; se is on the log-odds scale")
    rows.append(row)
    return rows_frame(rows)


def _mi_fit(frame, k, outcome, method, covariates, *, baseline, cluster, weights, treatment, followup_wave,
            baseline_wave):
    y_col, base_col = resolve_columns(frame, outcome, baseline, followup_wave=followup_wave,
                                      baseline_wave=baseline_wave)
    p = _prepare(frame, f"{method} for {outcome} (imputation {k + 1})", y_col, base_col, list(covariates),
                 treatment=treatment, cluster=cluster, weights=weights)
    return p, _fit_ols(p)


def ancova_mi(imputed, outcome: str, covariates, *, baseline=True, cluster="site", conf_level=0.95,
              weights=None, stratum="all", treatment="phb", followup_wave="t1", baseline_wave="t0") -> pd.DataFrame:
    """ANCOVA with CR1 errors fitted on each imputed dataset, pooled by Rubin's rules.

    Parameters
    ----------
    imputed : list of completed analysis frames (from :func:`phb_eval.missing.impute_chained`).
    Other parameters as :func:`ancova`.

    Returns
    -------
    One results row, ``method="ancova_cr1_site_mi"`` (``ancova_ipw_cr1_site_mi`` when weighted): ``estimate`` =
    pooled difference, ``se`` = sqrt(total variance), CI and p from t with the Barnard–Rubin df; extra
    columns ``df``, ``df_complete``, ``n_clusters``, ``m``, ``ubar``, ``b``, ``riv``, ``lambda``, ``fmi``.

    Notes
    -----
    The complete-data df given to Barnard–Rubin is G − 1, the df of the CR1 t test each imputation would
    use (mirrored in R by ``pool.scalar(Q, U, n = G, k = 1)`` or ``pool(..., dfcom = G - 1)``).
    ``n_phb``/``n_control`` are those analysed in the first imputed dataset.
    """
    imputed = list(imputed)
    if len(imputed) < 2:
        raise EstimationError(f"ancova_cr1_site_mi for {outcome}: Rubin's rules need at least 2 imputed datasets, "
                              f"got {len(imputed)}")
    method = _method("ancova_cr1_site", weights is not None) + "_mi"
    est, var, first, ncl = [], [], None, set()
    with single_thread_blas():
        fits = [_mi_fit(frame, k, outcome, method, covariates, baseline=baseline, cluster=cluster, weights=weights,
                        treatment=treatment, followup_wave=followup_wave, baseline_wave=baseline_wave)
                for k, frame in enumerate(imputed)]
    for p, fit in fits:
        est.append(float(fit.params[treatment]))
        var.append(float(fit.bse[treatment]) ** 2)
        first = p if first is None else first
        ncl.add(p.n_clusters)
    if len(ncl) != 1:
        raise EstimationError(f"{method} for {outcome}: the number of {cluster}s differs between imputed "
                              f"datasets ({sorted(ncl)}); impute every covariate used by the model")
    G = ncl.pop()
    pooled = pool_rubin(est, var, G - 1, conf_level=conf_level)
    return rows_frame([estimate_row("outcome", outcome, method, pooled["qbar"], pooled["se"], pooled["ci_low"],
                                    pooled["ci_high"], pooled["p_value"], n_phb=first.n_phb,
                                    n_control=first.n_control, stratum=stratum, df=pooled["df"],
                                    df_complete=G - 1, n_clusters=G, m=pooled["m"], ubar=pooled["ubar"],
                                    b=pooled["b"], riv=pooled["riv"], **{"lambda": pooled["lambda"]},
                                    fmi=pooled["fmi"])])


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
