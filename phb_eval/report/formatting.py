"""Numbers and names for people: labels of outcomes and methods, and presentation rounding.

Everything upstream keeps full precision; rounding happens only here, when a number is shown.
Rules: £ amounts with thousands separators and no pence; p-values as ``< 0.001`` or three decimals;
other estimates to about two significant digits of their standard error (so an index measured to
±0.01 shows three decimals and a cost measured to ±£200 shows none); negative numbers with a true minus.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import pandas as pd

__all__ = ["OUTCOMES", "METHODS", "short_method", "outcome_label", "method_label", "is_missing", "fmt_number", "fmt_gbp",
           "fmt_p", "fmt_count", "decimals_for", "fmt_estimate", "fmt_interval", "is_money",
           "format_table", "MINUS"]

MINUS = "\u2212"

# outcome -> (label, better direction, reading note). Direction "higher"/"lower": which way is good for
# the person; the note makes the sign explicit in sentences and tables.
OUTCOMES = {
    "scrqol": ("care-related quality of life (ASCOT SCRQoL index)", "higher", "higher = better"),
    "ascot_raw": ("care-related quality of life (ASCOT unweighted score, 0\u201324)", "higher", "higher = better"),
    "ghq12_likert": ("psychological distress (GHQ-12, Likert 0\u201336)", "lower", "lower = less distress"),
    "ghq12_ghq": ("psychological distress (GHQ-12, GHQ scoring 0\u201312)", "lower", "lower = less distress"),
    "ghq12_modified_likert": ("psychological distress (GHQ-12, modified Likert 0\u201324)", "lower",
                              "lower = less distress"),
    "ghq12_cghq": ("psychological distress (GHQ-12, C-GHQ 0\u201312)", "lower", "lower = less distress"),
    "ghq12_caseness": ("probable mental ill-health (GHQ-12 caseness)", "lower", "lower = fewer cases"),
    "eq5d_index": ("health-related quality of life (EQ-5D index)", "higher", "higher = better"),
    "eq_vas": ("self-rated health (EQ VAS, 0\u2013100)", "higher", "higher = better"),
    "qaly": ("QALYs over follow-up (EQ-5D)", "higher", "higher = better"),
    "carer_scrqol": ("carers' care-related quality of life (ASCOT-Carer index)", "higher", "higher = better"),
    "carer_ascot_raw": ("carers' care-related quality of life (ASCOT-Carer unweighted, 0\u201321)", "higher",
                        "higher = better"),
    "carer_health": ("carers' self-rated health (1 very good \u2013 5 very bad)", "lower", "lower = better health"),
    "carer_health_good": ("carers in good or very good health", "higher", "higher = better"),
    "mortality": ("deaths before follow-up", "lower", "lower = fewer deaths"),
    "inpatient_days": ("inpatient bed days", "lower", "ratio < 1 = fewer"),
    "inpatient_admissions": ("inpatient admissions", "lower", "ratio < 1 = fewer"),
    "ae_attendances": ("A&E attendances", "lower", "ratio < 1 = fewer"),
    "gp_consultations": ("GP consultations", "lower", "ratio < 1 = fewer"),
    "outpatient_attendances": ("outpatient attendances", "lower", "ratio < 1 = fewer"),
    "community_nurse_visits": ("community nurse visits", "lower", "ratio < 1 = fewer"),
    "practice_nurse_consultations": ("practice nurse consultations", "lower", "ratio < 1 = fewer"),
    "cost_direct": ("direct cost (budget or care package)", "lower", "£ per person per year"),
    "direct_cost": ("direct cost (budget or care package)", "lower", "£ per person per year"),
    "cost_indirect": ("indirect cost (health services)", "lower", "£ per person per year"),
    "indirect_cost": ("indirect cost (health services)", "lower", "£ per person per year"),
    "cost_total": ("total cost", "lower", "£ per person per year"),
    "total_cost": ("total cost", "lower", "£ per person per year"),
    "delta_cost": ("incremental cost", "lower", "£ per person per year"),
    "delta_effect": ("incremental effect", "higher", "PHB \u2212 control"),
    "icer": ("incremental cost-effectiveness ratio", None, "£ per unit of effect"),
    "nmb": ("incremental net monetary benefit", "higher", "£ per person; > 0 = cost-effective"),
}
BINARY = {"ghq12_caseness", "carer_health_good", "mortality"}

METHODS = {  # methods outside the estimator registry (registered ones: models.registry.describe_method)
    "bootstrap_nmb": "bootstrap of net monetary benefit",
}

MONEY_WORDS = ("gbp", "cost", "nmb", "budget", "spend", "saving", "impact", "\u00a3", "double_running",
               "decommission", "lambda", "icer", "indirect_change", "discounted_net", "cumulative_discounted")


def outcome_label(outcome) -> str:
    """Readable name of an outcome code (the code itself when unknown)."""
    return OUTCOMES.get(str(outcome), (str(outcome).replace("_", " "), None, None))[0]


SHORT_METHODS: dict = {}  # registered estimators take their short names from models.registry


def short_method(method) -> str:
    """A few words for a method code, for figure axes (registered estimators: from the registry)."""
    from ..models.registry import short_method as registered
    return registered(method) or SHORT_METHODS.get(str(method), str(method))


def method_label(method) -> str:
    """Readable description of a method code: the registry's for estimators, so it names the covariance
    that ran (the code itself when unknown)."""
    from ..models.registry import describe_method
    return describe_method(method) or METHODS.get(str(method), str(method).replace("_", " "))


def is_missing(x) -> bool:
    if x is None or x is pd.NA or x is pd.NaT:
        return True
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return math.isnan(float(x))
    return False


def _num(x):
    """A float for numeric values, None for missing or non-numeric (e.g. a suppressed '*')."""
    if is_missing(x) or isinstance(x, (bool, np.bool_)):
        return None
    if isinstance(x, numbers.Real):
        return float(x)
    return None


def _minus(text: str) -> str:
    return text.replace("-", MINUS) if text.startswith("-") else text


def fmt_number(x, decimals: int = 3) -> str:
    """Fixed decimals, thousands separators, true minus; '*' and other text pass through."""
    v = _num(x)
    if v is None:
        return "" if is_missing(x) else str(x)
    if not math.isfinite(v):
        return "\u221e" if v > 0 else MINUS + "\u221e"
    text = f"{v:,.{decimals}f}"
    if float(text.replace(",", "")) == 0:
        text = text.lstrip("-")
    return _minus(text)


def fmt_gbp(x, decimals: int = 0) -> str:
    """£ with thousands separators: £1,234 and −£1,234."""
    v = _num(x)
    if v is None:
        return "" if is_missing(x) else str(x)
    text = f"{abs(v):,.{decimals}f}"
    return (MINUS if v < 0 and float(text.replace(",", "")) != 0 else "") + "\u00a3" + text


def fmt_p(p) -> str:
    """p < 0.001, else three decimals."""
    v = _num(p)
    if v is None:
        return "" if is_missing(p) else str(p)
    return "< 0.001" if v < 0.001 else f"{v:.3f}"


def fmt_count(n) -> str:
    v = _num(n)
    if v is None:
        return "" if is_missing(n) else str(n)
    return f"{int(round(v)):,}"


def decimals_for(se=None, estimate=None, low=None, high=None) -> int:
    """About two significant digits of the standard error (or of a quarter of the interval width)."""
    s = _num(se)
    if s is None or s <= 0:
        lo, hi = _num(low), _num(high)
        if lo is not None and hi is not None and hi > lo:
            s = (hi - lo) / 4
    if s is None or s <= 0 or not math.isfinite(s):
        e = _num(estimate)
        if e is None or e == 0 or not math.isfinite(e):
            return 3
        return int(min(4, max(0, 2 - math.floor(math.log10(abs(e))))))
    return int(min(4, max(0, 1 - math.floor(math.log10(s)))))


def is_money(analysis, outcome, method="") -> bool:
    """Whether an estimate row is in £ (cost and net-benefit rows, budget impact)."""
    a, o = str(analysis), str(outcome)
    return a in ("cost", "budget_impact") or o in ("nmb", "icer") or "cost" in o or "gbp" in o \
        or (a == "cea" and "prob" not in o and "effect" not in o and "qaly" not in o)


def fmt_estimate(row, value=None) -> str:
    """One estimate (or one of its interval ends) of a results row, rounded for people."""
    value = row.get("estimate") if value is None else value
    if is_money(row.get("analysis"), row.get("outcome"), row.get("method")):
        return fmt_gbp(value)
    if row.get("analysis") == "service_use":  # rate ratios
        return fmt_number(value, 2)
    return fmt_number(value, decimals_for(row.get("se"), row.get("estimate"), row.get("ci_low"),
                                          row.get("ci_high")))


def fmt_interval(row) -> str:
    lo, hi = row.get("ci_low"), row.get("ci_high")
    if _num(lo) is None or _num(hi) is None:
        return ""
    return f"{fmt_estimate(row, lo)} to {fmt_estimate(row, hi)}"


def _column_kind(name: str, series: pd.Series) -> str:
    n = name.lower()
    if n == "p" or n.startswith("p_") or n.endswith("_p") or n == "p_value":
        return "p"
    if any(w in n for w in MONEY_WORDS) and "prob" not in n and "share" not in n:
        return "gbp"
    if n in ("n", "count", "phb", "control", "n_phb", "n_control", "year", "years", "n_clusters",
             "n_tests", "df") or n.startswith("n_") or n.endswith("_n") or n.endswith("_count"):
        return "count"
    return "number"


def format_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of a published table with every cell as text for people (columns kept as they are).

    £ columns (names with cost, gbp, nmb, budget, …) get £ and separators, p-value columns ``< 0.001``,
    count columns thousands separators, other numbers about four significant digits.
    """
    out = pd.DataFrame(index=frame.index)
    for col in frame.columns:
        s = frame[col]
        kind = _column_kind(str(col), s)
        if kind == "p":
            out[col] = [fmt_p(v) for v in s]
        elif kind == "gbp":
            out[col] = [fmt_gbp(v) for v in s]
        elif kind == "count":
            out[col] = [fmt_count(v) if _num(v) is None or float(_num(v)).is_integer() else fmt_number(v, 2)
                        for v in s]
        else:
            out[col] = [_fmt_generic(v) for v in s]
    return out.reset_index(drop=True)


def _fmt_generic(v) -> str:
    x = _num(v)
    if x is None:
        if is_missing(v):
            return ""
        if isinstance(v, (bool, np.bool_)):
            return "yes" if v else "no"
        if isinstance(v, pd.Timestamp):
            return v.strftime("%Y-%m-%d")
        return str(v)
    if x.is_integer() and abs(x) < 1e15:
        return _minus(f"{int(x):,}")
    if abs(x) >= 1000:
        return fmt_number(x, 0)
    if abs(x) >= 1:
        return fmt_number(x, 2)
    return fmt_number(x, 3)
