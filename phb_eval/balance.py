"""Baseline comparability of the arms: Table 1 with standardised differences, propensity scores and weights.

The SMD formula (stated once, used everywhere):

- continuous: SMD = (mean_phb − mean_control) / sqrt((s²_phb + s²_control) / 2), s² the sample variance (n − 1);
- binary variable or one level of a categorical variable: SMD = (p_phb − p_control) /
  sqrt((p_phb(1 − p_phb) + p_control(1 − p_control)) / 2);
- weighted SMD: the numerator uses weighted means/proportions, the denominator is the SAME unweighted
  pooled SD, so weighting changes only the numerator and before/after values are directly comparable
  (cobalt's practice of computing the denominator in the unweighted sample; we use the pooled SD for every
  estimand, where cobalt's default for the ATT is the treated-arm SD).

Variance ratio (continuous only) = s²_phb / s²_control; weighted variances use the reliability-weight
formula Σw(x − x̄_w)² · Σw / ((Σw)² − Σw²).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import PerfectSeparationWarning

from .errors import EstimationError, PlanError
from .outcomes import design_matrix, is_categorical
from .results import estimate_row, rows_frame

__all__ = ["baseline_table", "balance_rows", "propensity_model", "propensity_scores", "propensity_weights",
           "overlap_diagnostics", "smd", "ESTIMANDS"]

ESTIMANDS = ("att", "ate", "overlap")


def _is_binary(col: pd.Series) -> bool:
    vals = col.dropna()
    return pd.api.types.is_numeric_dtype(col) and len(vals) > 0 and bool(vals.isin([0, 1]).all())


def _wmean(x: np.ndarray, w: np.ndarray) -> float:
    return float(np.sum(w * x) / np.sum(w)) if np.sum(w) > 0 else math.nan


def _wvar(x: np.ndarray, w: np.ndarray) -> float:
    """Reliability-weighted variance (equals the n − 1 sample variance when all weights are equal)."""
    sw, sw2 = np.sum(w), np.sum(w ** 2)
    if sw <= 0 or sw ** 2 - sw2 <= 0:
        return math.nan
    mu = np.sum(w * x) / sw
    return float(np.sum(w * (x - mu) ** 2) * sw / (sw ** 2 - sw2))


def smd(x1: float, x0: float, denom: float) -> float:
    """(x1 − x0) / denom; NaN when the pooled SD is 0 (the variable is constant in both arms)."""
    return (x1 - x0) / denom if denom > 0 else math.nan


def _summary(x1: np.ndarray, x0: np.ndarray, kind: str) -> tuple[dict, float]:
    """Unweighted means (or proportions), SDs, counts, SMD and variance ratio; and the SMD denominator."""
    if kind == "continuous":
        m1, m0 = float(np.mean(x1)), float(np.mean(x0))
        v1 = float(np.var(x1, ddof=1)) if len(x1) > 1 else math.nan
        v0 = float(np.var(x0, ddof=1)) if len(x0) > 1 else math.nan
        denom = math.sqrt((v1 + v0) / 2)
        return ({"mean_phb": m1, "sd_phb": math.sqrt(v1), "mean_control": m0, "sd_control": math.sqrt(v0),
                 "smd": smd(m1, m0, denom), "variance_ratio": v1 / v0 if v0 > 0 else math.nan}, denom)
    p1, p0 = float(np.mean(x1)), float(np.mean(x0))
    denom = math.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)
    return ({"count_phb": int(np.sum(x1)), "pct_phb": 100 * p1, "count_control": int(np.sum(x0)),
             "pct_control": 100 * p0, "mean_phb": p1, "mean_control": p0, "smd": smd(p1, p0, denom),
             "variance_ratio": math.nan}, denom)


def _weighted_summary(x1, x0, w1, w0, kind: str, denom: float) -> dict:
    """Weighted means/proportions (and SDs), the SMD over the UNWEIGHTED denominator, weighted variance ratio."""
    m1, m0 = _wmean(x1, w1), _wmean(x0, w0)
    if kind == "continuous":
        v1, v0 = _wvar(x1, w1), _wvar(x0, w0)
        return {"mean_phb_weighted": m1, "sd_phb_weighted": math.sqrt(v1), "mean_control_weighted": m0,
                "sd_control_weighted": math.sqrt(v0), "smd_weighted": smd(m1, m0, denom),
                "variance_ratio_weighted": v1 / v0 if v0 > 0 else math.nan}
    return {"mean_phb_weighted": m1, "mean_control_weighted": m0, "pct_phb_weighted": 100 * m1,
            "pct_control_weighted": 100 * m0, "smd_weighted": smd(m1, m0, denom), "variance_ratio_weighted": math.nan}


def baseline_table(df: pd.DataFrame, variables, weights=None, *, treatment="phb", threshold=0.1) -> pd.DataFrame:
    """Table 1: per-arm summaries, SMD and variance ratio, before and (when weighted) after weighting.

    Parameters
    ----------
    df : analysis frame.
    variables : covariates and baseline scores. Strings/bools are categorical (one row per level, levels
        sorted); numeric 0/1 columns are binary (one row for level 1); other numbers are continuous.
    weights : column name or Series aligned with ``df`` (e.g. :func:`propensity_weights`); adds the
        ``*_weighted`` columns side by side. Rows with missing weight are left out of the weighted columns.
    threshold : |SMD| above this is flagged (the plan's ``propensity.smd_flag``).

    Returns
    -------
    DataFrame, one row per continuous/binary variable or categorical level: ``variable``, ``level`` (None for
    continuous), ``type`` (continuous/binary/categorical), ``n_phb``, ``n_control`` (observed), ``n_missing_phb``,
    ``n_missing_control``, ``mean_phb``, ``sd_phb``, ``mean_control``, ``sd_control`` (continuous) or
    ``count_*``/``pct_*`` (levels; ``mean_*`` holds the proportion), ``smd``, ``variance_ratio``, ``flag``;
    with weights also ``mean_*_weighted``, ``sd_*_weighted`` / ``pct_*_weighted``, ``smd_weighted``,
    ``variance_ratio_weighted``, ``flag_weighted``.

    Notes
    -----
    Each variable uses the people observed on it (available cases). SMD formulas: see the module docstring —
    the weighted SMD keeps the unweighted pooled-SD denominator.
    """
    if treatment not in df.columns:
        raise EstimationError(f"baseline table: treatment column '{treatment}' is not in the data")
    t = pd.to_numeric(df[treatment], errors="coerce")
    w_all = None
    if weights is not None:
        if isinstance(weights, str):
            w_all = df[weights]
        elif isinstance(weights, pd.Series):
            w_all = weights.reindex(df.index)
        else:
            w_all = pd.Series(np.asarray(weights, float), index=df.index)
        w_all = pd.to_numeric(w_all, errors="coerce").astype(float)
    rows = []
    for var in variables:
        if var not in df.columns:
            raise EstimationError(f"baseline table: variable '{var}' is not in the data; remove it from the list")
        col = df[var]
        arm1, arm0 = t.eq(1), t.eq(0)
        obs = col.notna()
        base = {"variable": var, "n_phb": int((obs & arm1).sum()), "n_control": int((obs & arm0).sum()),
                "n_missing_phb": int((~obs & arm1).sum()), "n_missing_control": int((~obs & arm0).sum())}
        if base["n_phb"] == 0 or base["n_control"] == 0:
            raise EstimationError(f"baseline table: '{var}' is not observed for anyone in the "
                                  f"{'PHB' if base['n_phb'] == 0 else 'control'} arm")
        ok1, ok0 = obs & arm1, obs & arm0
        if w_all is not None:
            wok1, wok0 = ok1 & w_all.notna(), ok0 & w_all.notna()
        if is_categorical(col):
            kind = "categorical"
            levels = [(lvl, col.astype(str) == lvl) for lvl in sorted(col[obs].astype(str).unique())]
        elif _is_binary(col):
            kind = "binary"
            levels = [(1, col == 1)]
        else:
            kind = "continuous"
            levels = [(None, col)]
        for lvl, values in levels:
            v = values.astype(float)
            stat_kind = "continuous" if kind == "continuous" else "level"
            s, denom = _summary(v[ok1].to_numpy(), v[ok0].to_numpy(), stat_kind)
            if w_all is not None:  # weighted columns from the observed rows that carry a weight
                s.update(_weighted_summary(v[wok1].to_numpy(), v[wok0].to_numpy(), w_all[wok1].to_numpy(),
                                           w_all[wok0].to_numpy(), stat_kind, denom))
            row = {**base, "level": lvl if lvl is None else str(lvl), "type": kind, **s}
            row["flag"] = bool(abs(row["smd"]) > threshold) if np.isfinite(row["smd"]) else False
            if w_all is not None:
                row["flag_weighted"] = bool(abs(row["smd_weighted"]) > threshold) if np.isfinite(row["smd_weighted"]) else False
            rows.append(row)
    out = pd.DataFrame(rows)
    first = ["variable", "level", "type", "n_phb", "n_control", "n_missing_phb", "n_missing_control"]
    return out[first + [c for c in out.columns if c not in first]]


def balance_rows(table: pd.DataFrame, *, estimand: str | None = None, stratum="all") -> pd.DataFrame:
    """Results rows (``analysis="balance"``) from :func:`baseline_table`.

    ``outcome`` is the variable, ``level`` an extra column; ``method`` is ``smd_unweighted`` and, for a
    weighted table, ``smd_<estimand>`` (e.g. ``smd_att``); ``estimate`` = SMD. Extra columns:
    ``level``, ``variance_ratio``, ``flag``.
    """
    rows = []
    for rec in table.to_dict("records"):
        common = {"n_phb": rec["n_phb"], "n_control": rec["n_control"], "stratum": stratum, "level": rec["level"]}
        rows.append(estimate_row("balance", rec["variable"], "smd_unweighted", rec["smd"],
                                 variance_ratio=rec["variance_ratio"], flag=rec["flag"], **common))
        if "smd_weighted" in rec:
            if estimand is None:
                raise EstimationError("balance rows: a weighted table needs the estimand to name its method")
            rows.append(estimate_row("balance", rec["variable"], f"smd_{estimand}", rec["smd_weighted"],
                                     variance_ratio=rec["variance_ratio_weighted"], flag=rec["flag_weighted"],
                                     **common))
    return rows_frame(rows)


def _fit_propensity(df: pd.DataFrame, covariates, treatment: str):
    covariates = list(covariates)
    absent = [c for c in [treatment, *covariates] if c not in df.columns]
    if absent:
        raise EstimationError(f"propensity score: column(s) {absent} are not in the data")
    data = df[[treatment, *covariates]].dropna()
    t = pd.to_numeric(data[treatment], errors="coerce")
    if not t.isin([0, 1]).all() or t.nunique() < 2:
        raise EstimationError(f"propensity score: '{treatment}' must be 0/1 with both arms present among the "
                              f"{len(data)} people with complete covariates")
    for cov in covariates:
        if data[cov].nunique() <= 1:
            raise EstimationError(f"propensity score: covariate '{cov}' is constant among the {len(data)} people "
                                  f"with complete covariates; remove it")
    X = design_matrix(data, covariates)
    if np.linalg.matrix_rank(X.to_numpy()) < X.shape[1]:
        raise EstimationError("propensity score: the covariates are collinear; simplify the list")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        try:
            fit = sm.GLM(t.astype(float), X, family=sm.families.Binomial()).fit()
        except PerfectSeparationWarning:
            raise EstimationError("propensity score: the covariates separate the arms perfectly (no overlap); "
                                  "the arms cannot be compared by weighting — drop the separating covariate "
                                  "or restrict the sample") from None
    return fit, X


def propensity(df: pd.DataFrame, covariates, *, treatment="phb") -> tuple[pd.Series, pd.DataFrame]:
    """Scores and coefficient table from one fit: (:func:`propensity_scores`, :func:`propensity_model`)."""
    fit, X = _fit_propensity(df, covariates, treatment)
    return _scores(fit, X, df.index), _coefficients(fit, X)


def _scores(fit, X: pd.DataFrame, index) -> pd.Series:
    ps = pd.Series(np.nan, index=index, name="propensity")
    ps.loc[X.index] = fit.predict(X).to_numpy()
    return ps


def _coefficients(fit, X: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"term": X.columns, "estimate": fit.params.to_numpy(), "se": fit.bse.to_numpy(),
                         "z": fit.tvalues.to_numpy(), "p_value": fit.pvalues.to_numpy(), "n": int(fit.nobs)})


def propensity_model(df: pd.DataFrame, covariates, *, treatment="phb") -> pd.DataFrame:
    """Coefficients of the logistic propensity model ``treatment ~ covariates`` (statsmodels GLM binomial).

    Returns
    -------
    DataFrame with ``term``, ``estimate``, ``se`` (model-based), ``z``, ``p_value``, ``n`` — the same
    numbers as R ``glm(phb ~ ..., family = binomial)`` with treatment-coded factors.
    """
    fit, X = _fit_propensity(df, covariates, treatment)
    return _coefficients(fit, X)


def propensity_scores(df: pd.DataFrame, covariates, *, treatment="phb") -> pd.Series:
    """Fitted probability of being a PHB holder given covariates (logistic regression, statsmodels).

    Returns
    -------
    Series named ``propensity`` aligned with ``df.index``; NaN for people with a missing covariate (they
    get no weight, so weighted analyses exclude them — impute covariates first to keep them).
    """
    fit, X = _fit_propensity(df, covariates, treatment)
    return _scores(fit, X, df.index)


def propensity_weights(ps: pd.Series, phb: pd.Series, estimand: str = "att", trim: float | None = None) -> pd.Series:
    """Balancing weights from propensity scores.

    - ``att``: 1 for PHB holders, ps/(1 − ps) for controls (controls reweighted to resemble holders);
    - ``ate``: 1/ps for holders, 1/(1 − ps) for controls;
    - ``overlap``: 1 − ps for holders, ps for controls (Li, Morgan & Zaslavsky 2018).

    ``trim`` (0 < trim < 0.5) sets the weight to NaN for scores outside [trim, 1 − trim], so weighted
    analyses exclude those people. Weights are not normalised (weighted estimators are scale-invariant).

    Returns
    -------
    Series named ``weight_<estimand>`` aligned with ``ps``; NaN where ps is missing or trimmed.
    """
    if estimand not in ESTIMANDS:
        raise PlanError(f"propensity.estimand {estimand!r} is not known; use one of {list(ESTIMANDS)}")
    if trim is not None and not (0 < trim < 0.5):
        raise PlanError(f"propensity.trim must satisfy 0 < trim < 0.5, got {trim}")
    ps = pd.Series(ps, dtype=float)
    t = pd.Series(phb, index=ps.index).astype(float)
    if ((ps <= 0) | (ps >= 1)).any():
        raise EstimationError("propensity weights: scores of exactly 0 or 1 (no overlap) cannot be weighted; "
                              "use trim or restrict the sample")
    if estimand == "att":
        w = np.where(t == 1, 1.0, ps / (1 - ps))
    elif estimand == "ate":
        w = np.where(t == 1, 1 / ps, 1 / (1 - ps))
    else:
        w = np.where(t == 1, 1 - ps, ps)
    w = pd.Series(w, index=ps.index, name=f"weight_{estimand}")
    w[ps.isna() | t.isna()] = np.nan
    if trim is not None:
        w[(ps < trim) | (ps > 1 - trim)] = np.nan
    return w


def overlap_diagnostics(ps: pd.Series, phb: pd.Series, weights: pd.Series | None = None) -> pd.DataFrame:
    """Common support and effective sample size per arm.

    Returns
    -------
    DataFrame with one row per arm (``group`` = phb/control): ``n``, ``ps_min``, ``ps_median``, ``ps_max``,
    ``support_low``/``support_high`` (common support = [max of the arm minima, min of the arm maxima]),
    ``share_outside_support``, and with weights ``ess`` = (Σw)²/Σw² (Kish) and ``ess_share`` = ess/n.
    """
    ps = pd.Series(ps, dtype=float)
    t = pd.Series(phb, index=ps.index).astype(float)
    ok = ps.notna() & t.isin([0, 1])
    arms = {"phb": ok & (t == 1), "control": ok & (t == 0)}
    if not arms["phb"].any() or not arms["control"].any():
        raise EstimationError("overlap diagnostics need propensity scores in both arms")
    lo = max(ps[a].min() for a in arms.values())
    hi = min(ps[a].max() for a in arms.values())
    rows = []
    for name, sel in arms.items():
        p = ps[sel]
        row = {"group": name, "n": int(sel.sum()), "ps_min": float(p.min()), "ps_median": float(p.median()),
               "ps_max": float(p.max()), "support_low": float(lo), "support_high": float(hi),
               "share_outside_support": float(((p < lo) | (p > hi)).mean())}
        if weights is not None:
            w = pd.Series(weights, index=ps.index).astype(float)[sel].dropna()
            row["ess"] = float(w.sum() ** 2 / (w ** 2).sum()) if len(w) else math.nan
            row["ess_share"] = row["ess"] / row["n"]
        rows.append(row)
    return pd.DataFrame(rows)


def with_missing_indicators(df: pd.DataFrame, columns) -> tuple[pd.DataFrame, list[str]]:
    """Copy of ``df`` where each numeric column with gaps is mean-filled and gains a ``<col>_missing`` 0/1 column.

    The missing-indicator approach for propensity models (Rosenbaum & Rubin 1984): people with a missing
    baseline score keep a propensity score instead of dropping out of every weighted analysis.
    Identical indicators (scores missing together) are kept once. Returns the frame and the model terms.
    """
    out = df.copy()
    names = []
    for col in columns:
        s = pd.to_numeric(out[col], errors="coerce")
        if s.isna().any() and s.notna().any():
            indicator = s.isna().astype(int)
            out[col] = s.fillna(s.mean())
            names.append(col)
            if not any(indicator.equals(out[n]) for n in names if n.endswith("_missing")):
                out[f"{col}_missing"] = indicator      # one indicator per distinct missingness pattern
                names.append(f"{col}_missing")
        else:
            names.append(col)
    return out, names
