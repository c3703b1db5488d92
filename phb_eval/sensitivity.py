"""Sensitivity to unmeasured confounding: E-values (VanderWeele & Ding 2017, Ann Intern Med 167:268-274).

The E-value is the minimum strength of association, on the risk-ratio scale, that an unmeasured
confounder would need with both the treatment and the outcome, conditional on the measured covariates,
to fully explain away an observed association:

- risk ratio RR > 1: E = RR + sqrt(RR·(RR − 1)); RR < 1: the same formula on 1/RR; RR = 1: E = 1;
- the confidence limit closer to 1 gets the same formula; if the interval includes 1 its E-value is 1;
- odds ratio: a rare outcome (< 15%) uses OR as RR; a common outcome RR ≈ sqrt(OR) (the paper's Table);
- rate ratios (counts) are taken as risk ratios, as the paper does for rare outcomes and rates;
- mean difference: standardised d = difference / SD of the outcome, then RR ≈ exp(0.91·d) with limits
  exp(0.91·d_limit) (the paper's exp(0.91·d ± 1.78·s_d) at 95% with a normal interval).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

__all__ = ["evalue_rr", "evalue", "evalue_table", "COMMON_OUTCOME"]

COMMON_OUTCOME = 0.15     # the paper's threshold for a "common" outcome when converting an OR


def evalue_rr(rr: float) -> float:
    """E-value of a risk ratio (NaN for a missing or non-positive ratio)."""
    if rr is None or not np.isfinite(rr) or rr <= 0:
        return math.nan
    r = rr if rr >= 1 else 1 / rr
    return float(r + math.sqrt(r * (r - 1)))


def _as_rr(estimate, ci_low, ci_high, kind, *, sd=None, baseline_risk=None):
    """(rr, rr_low, rr_high, how) on the risk-ratio scale for one kind of effect."""
    if kind in ("rr", "rate_ratio"):
        return estimate, ci_low, ci_high, "ratio used directly"
    if kind == "or":
        if baseline_risk is not None and np.isfinite(baseline_risk) and baseline_risk < COMMON_OUTCOME:
            return estimate, ci_low, ci_high, "odds ratio of a rare outcome used as a risk ratio"
        return (math.sqrt(estimate), math.sqrt(ci_low), math.sqrt(ci_high),
                "odds ratio of a common outcome converted by RR = sqrt(OR)")
    if kind == "difference":
        if sd is None or not np.isfinite(sd) or sd <= 0:
            return math.nan, math.nan, math.nan, "no outcome SD to standardise the difference"
        return (math.exp(0.91 * estimate / sd), math.exp(0.91 * ci_low / sd), math.exp(0.91 * ci_high / sd),
                f"difference standardised by the outcome SD ({sd:.4g}), RR = exp(0.91 d)")
    raise ValueError(f"unknown effect kind {kind!r}; use rr, rate_ratio, or, difference")


def evalue(estimate: float, ci_low: float = math.nan, ci_high: float = math.nan, kind: str = "rr", *,
           sd: float | None = None, baseline_risk: float | None = None) -> dict:
    """E-values of an estimate and of its confidence limit closer to the null.

    ``kind``: ``rr``/``rate_ratio`` (ratio), ``or`` (with ``baseline_risk`` the outcome's risk, to decide
    rare vs common), ``difference`` (with ``sd`` the outcome's SD). Returns ``rr``, ``rr_ci_low``,
    ``rr_ci_high``, ``evalue_estimate``, ``evalue_ci`` (1 when the interval includes the null) and
    ``conversion`` (how the estimate was put on the risk-ratio scale).
    """
    rr, lo, hi, how = _as_rr(estimate, ci_low, ci_high, kind, sd=sd, baseline_risk=baseline_risk)
    e_est = evalue_rr(rr)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        e_ci = math.nan
    elif lo <= 1 <= hi:
        e_ci = 1.0
    else:
        e_ci = evalue_rr(lo if rr > 1 else hi)
    return {"rr": rr, "rr_ci_low": lo, "rr_ci_high": hi, "evalue_estimate": e_est, "evalue_ci": e_ci,
            "conversion": how}


def _sentence(label: str, e: dict) -> str:
    if not np.isfinite(e["evalue_estimate"]):
        return f"{label}: no E-value ({e['conversion']})."
    text = (f"{label}: an unmeasured factor would need to be associated with both budget uptake and the outcome "
            f"by a risk ratio of {e['evalue_estimate']:.2f} each, beyond the measured covariates, to explain "
            "this estimate away")
    if e["evalue_ci"] == 1.0:
        return text + "; the confidence interval already includes no effect."
    if np.isfinite(e["evalue_ci"]):
        return text + f", and of {e['evalue_ci']:.2f} to move the confidence interval to include no effect."
    return text + "."


def evalue_table(rows: pd.DataFrame, *, sds: dict | None = None, risks: dict | None = None,
                 labels: dict | None = None) -> pd.DataFrame:
    """E-values for estimate rows (one per row), with one plain sentence each.

    The kind of each row follows from its ``scale``: ``log`` rows are ratios (service use: rate ratios;
    ``_ratio`` methods: risk ratios; ``logit_or`` methods: odds ratios converted with ``risks[outcome]``),
    other rows are differences standardised by ``sds[outcome]``.

    Returns columns ``analysis``, ``outcome``, ``method``, ``estimate``, ``ci_low``, ``ci_high``, ``kind``,
    ``rr``, ``rr_ci_low``, ``rr_ci_high``, ``evalue_estimate``, ``evalue_ci``, ``conversion``, ``sentence``.
    """
    sds, risks, labels = sds or {}, risks or {}, labels or {}
    out = []
    for r in rows.to_dict("records"):
        est = r.get("estimate")
        if est is None or not np.isfinite(est):
            continue
        scale = str(r.get("scale", ""))
        method = str(r.get("method", ""))
        if scale == "log" or r.get("analysis") == "service_use" and "marginal" not in method:
            kind = "or" if "_or_" in f"{method}_" or method.startswith("logit") else (
                "rate_ratio" if r.get("analysis") == "service_use" else "rr")
        else:
            kind = "difference"
        e = evalue(est, r.get("ci_low", math.nan), r.get("ci_high", math.nan), kind,
                   sd=sds.get(r["outcome"]), baseline_risk=risks.get(r["outcome"]))
        label = labels.get(r["outcome"], str(r["outcome"]))
        out.append({"analysis": r.get("analysis"), "outcome": r["outcome"], "method": method, "estimate": est,
                    "ci_low": r.get("ci_low"), "ci_high": r.get("ci_high"), "kind": kind, **e,
                    "sentence": _sentence(label, e)})
    cols = ["analysis", "outcome", "method", "estimate", "ci_low", "ci_high", "kind", "rr", "rr_ci_low",
            "rr_ci_high", "evalue_estimate", "evalue_ci", "conversion", "sentence"]
    return pd.DataFrame(out, columns=cols)
