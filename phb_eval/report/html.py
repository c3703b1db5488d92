"""The evaluation report as one self-contained HTML page (and the same content as Markdown).

Every sentence with a number is generated from the estimate rows, and the methods section from the
plan and the rows that exist, so the text cannot disagree with what ran. The page has inline styles,
figures as ``data:image/png;base64`` URIs, and no scripts, fonts or links to anywhere.

Where sections find their material
----------------------------------
- summary: ``stratum=all`` rows of ``analysis`` outcome (first plan estimator with a row), service_use,
  cost, cea (``outcome=nmb``) and prespecified subgroup interaction rows.
- flow: table ``flow`` (or ``participant_flow``), layout of ``phb_eval.flow.participant_flow``.
- balance: table ``balance`` (or ``baseline``/``table1``) and ``analysis=balance`` rows (SMDs); figure ``love_plot``.
- effects: ``analysis=outcome`` rows; figure ``forest_effects``.
- service use and costs: ``analysis=service_use`` and ``analysis=cost`` rows; tables ``cost_breakdown``,
  ``service_use_fit``; figure ``service_use_forest``.
- cost-effectiveness: ``analysis=cea`` rows (``lambda_gbp`` and optional ``prob_cost_effective`` columns);
  tables ``cea``, ``ceac``; figures ``ce_plane``, ``ceac``.
- subgroups: ``analysis=subgroup`` rows (``p_adjusted`` when present); figure ``subgroup_forest``.
- budget impact: ``analysis=budget_impact`` rows and table ``budget_impact`` (section omitted when absent).
- other tables and figures: anything not named above. Figures whose name starts with a section id
  (``cea_``, ``budget_impact_``, ``balance_`` …) go to that section.

A section with nothing to show says "Not run" with the matching sentences from ``Results.skipped``.
"""
from __future__ import annotations

import base64
import math
import re
from pathlib import Path

import jinja2
import pandas as pd
import yaml

from ..plan import Plan, plan_to_dict
from ..models.registry import split_method
from .figures import headline_rows
from .formatting import (BINARY, OUTCOMES, fmt_count, fmt_estimate, fmt_gbp, fmt_interval, fmt_number, fmt_p,
                         format_table, is_missing, method_label, outcome_label)

__all__ = ["render_html", "render_markdown", "build_context", "SECTION_TITLES", "disclosure_sentence",
           "MAX_TABLE_ROWS"]

TEMPLATES = Path(__file__).parent / "templates"
ADJUST_NAMES = {"holm": "Holm", "bh": "Benjamini\u2013Hochberg"}
MAX_TABLE_ROWS = 80  # longer tables are published in tables/ and only referred to in the page

SECTION_TITLES = {
    "summary": "Summary of findings",
    "plan": "Analysis plan and assumptions",
    "flow": "Participant flow",
    "balance": "Baseline balance",
    "effects": "Effects on outcomes",
    "service_use": "Service use and costs",
    "cea": "Cost-effectiveness",
    "subgroups": "Subgroups",
    "budget_impact": "Budget impact",
    "warnings": "Warnings and analyses not run",
    "methods": "Methods",
    "other": "Other tables and figures",
}
TABLE_ROLES = {
    "flow": ("flow", "participant_flow"),
    "balance": ("balance", "baseline", "table1"),
    "service_use": ("cost_breakdown", "service_use_fit"),
    "cea": ("cea", "ceac"),
    "budget_impact": ("budget_impact", "budget_impact_tornado"),
}
TABLE_TITLES = {"flow": "participants per arm at each stage", "participant_flow": "participants per arm at each stage",
                "balance": "baseline characteristics by arm", "baseline": "baseline characteristics by arm",
                "table1": "baseline characteristics by arm", "cost_breakdown": "costs by arm",
                "service_use_fit": "service-use model fit", "cea": "cost-effectiveness by stratum",
                "ceac": "acceptability curve values", "budget_impact": "budget impact by year",
                "budget_impact_tornado": "one-way sensitivity (tornado)"}
HIDDEN_TABLES = ("cea_draws", "ce_plane", "ce_draws")  # plotted, published as CSV, too long for a page
FIGURE_ROLES = {
    "love_plot": "balance", "forest_effects": "effects", "service_use_forest": "service_use",
    "ce_plane": "cea", "ceac": "cea", "subgroup_forest": "subgroups",
    "budget_impact_fan": "budget_impact", "budget_impact_tornado": "budget_impact",
}
FIGURE_CAPTIONS = {
    "love_plot": "Standardised mean differences at baseline (love plot).",
    "forest_effects": "Adjusted PHB \u2212 control differences at follow-up, by outcome and estimator.",
    "service_use_forest": "Rate ratios of service use, PHB / control (log scale; < 1 = fewer).",
    "ce_plane": "Cost-effectiveness plane: bootstrap replicates of incremental effect and cost, with \u03bb lines.",
    "ceac": "Cost-effectiveness acceptability curves by stratum.",
    "subgroup_forest": "PHB effects within subgroups, with the joint interaction p-value.",
    "budget_impact_fan": "Net budget impact by year with its uncertainty band (from the bootstrap draws).",
    "budget_impact_tornado": "One-way sensitivity of the cumulative net budget impact in the final year.",
}
NOT_RUN_KEYWORDS = {
    "flow": ("flow",),
    "balance": ("balance", "propensity", "smd"),
    "effects": ("ancova", "did_", "ipw", "imputation", "outcome"),
    "service_use": ("service", "negbin", "poisson", "count", "cost"),
    "cea": ("cost-effective", "cea", "nmb", "bootstrap", "ceac", "net benefit"),
    "subgroups": ("subgroup",),
    "budget_impact": ("budget impact", "budget-impact", "budget_impact"),
}
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1d1d1f;
line-height:1.45;background:#fafafa}
main{max-width:1040px;margin:0 auto;padding:1.2rem 1.6rem 3rem;background:#fff}
h1{font-size:1.7rem;margin:.4rem 0}h2{font-size:1.3rem;border-bottom:2px solid #005eb8;padding-bottom:.2rem;
margin-top:2.2rem}h3{font-size:1.05rem;margin-top:1.4rem}
.meta{color:#555;font-size:.9rem}.banner{background:#fff4e5;border-left:4px solid #e07b00;padding:.6rem .9rem}
.notrun{color:#6b6b6b;font-style:italic}
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.86rem}
th,td{border-bottom:1px solid #ddd;padding:.25rem .55rem;text-align:right;vertical-align:top}
th{background:#eef3f9;text-align:center}td:first-child,th:first-child{text-align:left}
td.text{text-align:left}caption{caption-side:top;text-align:left;font-weight:600;padding:.2rem 0}
figure{margin:1rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.86rem;color:#444}nav ol{columns:2;font-size:.92rem}
ul.findings li{margin:.35rem 0}details pre{background:#f4f4f4;padding:.6rem;overflow:auto;font-size:.8rem}
.note{font-size:.85rem;color:#444}
"""


# ----------------------------------------------------------------------------------------------- helpers
def _rows(est: pd.DataFrame, analysis: str) -> pd.DataFrame:
    if est is None or est.empty or "analysis" not in est:
        return pd.DataFrame(columns=getattr(est, "columns", []))
    return est[est["analysis"].astype(str) == analysis].reset_index(drop=True)


def _finite(x) -> bool:
    try:
        return x is not None and not is_missing(x) and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _conf(plan: Plan) -> str:
    return f"{plan.confidence_level * 100:g}%"


def _months(plan: Plan) -> str:
    m = plan.data.waves.get(plan.data.followup_wave)
    return f"{m:g} months" if m is not None else f"follow-up ({plan.data.followup_wave})"


def _p_phrase(p) -> str:
    if not _finite(p):
        return ""
    txt = fmt_p(p)
    return f"p {txt}" if txt.startswith("<") else f"p = {txt}"


def _ci_phrase(row, plan) -> str:
    parts = []
    ci = fmt_interval(row)
    if ci:
        parts.append(f"{_conf(plan)} CI {ci}")
    p = _p_phrase(row.get("p_value"))
    if p:
        parts.append(p)
    return f" ({'; '.join(parts)})" if parts else ""


def _includes_null(row, null=0.0) -> bool:
    lo, hi = row.get("ci_low"), row.get("ci_high")
    return _finite(lo) and _finite(hi) and float(lo) <= null <= float(hi)


def _is_ratio(row) -> bool:
    m = str(row.get("method", ""))
    if row.get("analysis") == "service_use":
        return "diff" not in m
    return "odds" in m or "_or_" in m or m.startswith("logit_or") or m.endswith("_or") or "ratio" in m


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def disclosure_sentence(plan: Plan, results=None) -> str:
    """The disclosure rule as run (from results.meta['disclosure'] when the writer set it)."""
    info = (results.meta.get("disclosure") if results is not None else None) or {}
    if info.get("sentence"):
        return str(info["sentence"])
    if not plan.disclosure.enabled:
        return "Disclosure control was turned off by the plan (disclosure.enabled: false): small numbers are shown."
    try:
        from ..disclosure import describe_rule
        return describe_rule(plan.disclosure)
    except ImportError:  # disclosure module not installed in this build
        return (f"Disclosure control ({plan.disclosure.rule}): counts from 1 to {plan.disclosure.min_count - 1} "
                f"shown as *, other counts rounded to the nearest {plan.disclosure.rounding_base}.")


# ------------------------------------------------------------------------------------ headline sentences
def _paren(parts) -> str:
    parts = [p for p in parts if p]
    return f" ({'; '.join(parts)})" if parts else ""


def _ci_parts(row, plan, scale=1.0, unit="") -> list:
    lo, hi = row.get("ci_low"), row.get("ci_high")
    parts = []
    if _finite(lo) and _finite(hi):
        if scale == 1.0:
            parts.append(f"{_conf(plan)} CI {fmt_interval(row)}")
        else:
            parts.append(f"{_conf(plan)} CI {fmt_number(float(lo) * scale, 1)} to {fmt_number(float(hi) * scale, 1)}"
                         f"{unit}")
    parts.append(_p_phrase(row.get("p_value")))
    return parts


def _verdict(row, better, null, note=None) -> str:
    if _includes_null(row, null):
        return "; the interval includes no difference"
    est = float(row["estimate"])
    if better is None or est == null:
        return ""
    good = (est > null) == (better == "higher")
    lead = f"; {note}, so this favours " if note else "; this favours "
    return lead + ("PHB holders" if good else "controls")


def outcome_sentence(row, plan) -> str:
    """One plain sentence for an adjusted difference, with the direction made explicit."""
    outcome = str(row["outcome"])
    label, better, note = OUTCOMES.get(outcome, (outcome_label(outcome), None, None))
    est = float(row["estimate"])
    when = f" at {_months(plan)}" if outcome not in ("mortality", "qaly") else ""
    who = "" if str(row.get("stratum", "all")) == "all" else f" ({row['stratum']})"
    carer = outcome.startswith("carer")
    subject = (f"{_capital(label)} (carers of PHB holders{who} compared with carers of controls){when}" if carer
               else f"PHB holders'{who} {label}{when}")
    than = "" if carer else " than controls'"
    if _is_ratio(row):
        text = (f"{_capital(label)}{who}: the odds for PHB holders were {fmt_estimate(row)} times those of controls "
                "after adjustment" + _paren(_ci_parts(row, plan)))
        return text + _verdict(row, better, 1.0, note) + "."
    if outcome in BINARY:
        word = "higher" if est > 0 else "lower"
        text = (f"{_capital(label)}{who}{when}: {fmt_number(abs(est) * 100, 1)} percentage points {word} for PHB "
                "holders than for controls after adjustment" + _paren(_ci_parts(row, plan, 100.0, " points")))
        return text + _verdict(row, better, 0.0, note) + "."
    word = "higher" if est > 0 else "lower"
    text = (f"{_capital(subject)} was {fmt_estimate(row, abs(est))} {word}{than} after adjustment"
            + _paren(_ci_parts(row, plan)))
    return text + _verdict(row, better, 0.0, note) + "."


def service_sentence(row, plan) -> str:
    label = outcome_label(row["outcome"])
    rr = float(row["estimate"])
    pct = abs(1 - rr) * 100
    word = "fewer" if rr < 1 else "more"
    return (f"{_capital(label)}: PHB holders had {fmt_number(rr, 2)} times the rate of controls after adjustment"
            + _paren([f"{fmt_number(pct, 0)}% {word}"] + _ci_parts(row, plan)) + _verdict(row, "lower", 1.0) + ".")


def cost_sentence(row, plan) -> str:
    label = outcome_label(row["outcome"])
    est = float(row["estimate"])
    word = "higher" if est > 0 else "lower"
    return (f"{_capital(label)} was {fmt_gbp(abs(est))} per person per year {word} for PHB holders than for "
            "controls" + _paren([f"{plan.costs.price_year} prices"] + _ci_parts(row, plan))
            + ("; the interval includes no difference" if _includes_null(row) else "") + ".")


def nmb_sentence(rows: pd.DataFrame, plan, effect_label: str) -> str:
    parts = []
    for r in rows.to_dict("records"):
        lam = r.get("lambda_gbp")
        bit = f"{fmt_gbp(r['estimate'])} at \u03bb = {fmt_gbp(lam)}" if _finite(lam) else fmt_gbp(r["estimate"])
        ci = fmt_interval(r)
        if ci:
            bit += f" ({_conf(plan)} CI {ci}"
            prob = r.get("prob_cost_effective")
            bit += f"; probability cost-effective {fmt_number(prob, 2)})" if _finite(prob) else ")"
        parts.append(bit)
    return (f"Incremental net monetary benefit per PHB holder (all strata together, effect measured on "
            f"{effect_label}): " + "; ".join(parts) + ". Positive values favour PHBs.")


def _effect_label(results, plan) -> str:
    if (results.meta.get("cea_settings") or {}).get("headline") == "qaly":
        return outcome_label("qaly")            # the NMB sentences quote the headline measure
    eff = results.meta.get("cea_effect") or (plan.cea.effect if plan.cea.effect != "auto" else None)
    if eff is None:
        cea = _rows(results.estimates, "cea")
        for cand in ("scrqol", "ascot_raw", "qaly"):
            if not cea.empty and (cea["outcome"].astype(str) == cand).any():
                eff = cand
                break
    if eff is None:
        return ("the plan's effect measure (the SCRQoL index when available, otherwise the unweighted ASCOT "
                "score)")
    return outcome_label(eff)


def headline(results, plan) -> list[str]:
    """Sentences for the summary: primary outcomes first, then services, costs, net benefit, subgroups."""
    est = results.estimates
    out = []
    eff = _rows(est, "outcome")
    if not eff.empty:
        main = headline_rows(eff, plan.estimators)
        main = main[main["estimate"].map(_finite)]
        order = list(plan.primary_outcomes) + [o for o in plan.outcomes if o not in plan.primary_outcomes]
        main = main.assign(_o=main["outcome"].map({o: i for i, o in enumerate(order)}).fillna(len(order)))
        main = main[main["outcome"].isin(plan.primary_outcomes)] if main["outcome"].isin(
            plan.primary_outcomes).any() else main
        for r in main.sort_values("_o", kind="stable").drop(columns="_o").to_dict("records"):
            out.append(outcome_sentence(r, plan) + f" [{method_label(r['method'])}]")
    su = _rows(est, "service_use")
    if not su.empty:
        main = headline_rows(su, plan.service_use.models)
        for r in main[main["estimate"].map(_finite)].to_dict("records"):
            out.append(service_sentence(r, plan))
    co = _rows(est, "cost")
    if not co.empty:
        main = headline_rows(co, plan.costs.models)
        for r in main[main["estimate"].map(_finite)].to_dict("records"):
            out.append(cost_sentence(r, plan))
    cea = _rows(est, "cea")
    if not cea.empty and "headline" in cea and cea["headline"].eq(True).any():
        cea = cea[(cea["outcome"].astype(str) != "nmb") | cea["headline"].eq(True)]     # the plan's headline measure
    if not cea.empty:
        nmb = cea[(cea["outcome"].astype(str) == "nmb") & (cea["stratum"].astype(str) == "all")]
        nmb = nmb[nmb["estimate"].map(_finite)]
        if not nmb.empty:
            if "lambda_gbp" in nmb:
                nmb = nmb.sort_values("lambda_gbp", kind="stable")
            out.append(nmb_sentence(nmb, plan, _effect_label(results, plan)))
        strata = strata_nmb_sentence(cea, plan)
        if strata:
            out.append(strata)
        tests = nbr_sentence(results.tables.get("nbr_tests"), cea, plan)
        if tests:
            out.append(tests)
    sg = _rows(est, "subgroup")
    if not sg.empty:
        inter = sg[sg["method"].astype(str).str.startswith("interaction") & sg["p_value"].map(_finite)]
        inter = inter[inter["stratum"].astype(str).isin(plan.subgroups.prespecified)]
        for r in inter.to_dict("records"):
            p = r.get("p_adjusted") if _finite(r.get("p_adjusted")) else r["p_value"]
            adj = " (adjusted for multiplicity)" if _finite(r.get("p_adjusted")) else ""
            verdict = "differed" if float(p) < 1 - plan.confidence_level else "showed no clear evidence of differing"
            out.append(f"The PHB effect on {outcome_label(r['outcome'])} {verdict} across levels of "
                       f"{r['stratum']} (prespecified; interaction {_p_phrase(p)}{adj}).")
    bi = results.meta.get("budget_impact") or {}
    if bi.get("settings"):
        out.append(budget_impact_sentence(bi))
    return out


def strata_nmb_sentence(cea: pd.DataFrame, plan) -> str:
    """Net benefit at the first λ for the budget-band and implementation-model strata (the pilot's headline)."""
    lam = min(plan.cea.lambdas) if plan.cea.lambdas else None
    rows = cea[(cea["outcome"].astype(str) == "nmb") & cea["estimate"].map(_finite)
               & cea["stratum"].astype(str).str.match(r"^(budget_band|implementation_model)=[^;]*$")]
    if lam is None or "lambda_gbp" not in rows or rows.empty:
        return ""
    rows = rows[rows["lambda_gbp"] == lam]
    parts = [f"{r['stratum']}: {fmt_gbp(r['estimate'])}"
             + (f" (P(cost-effective) {float(r['prob_cost_effective']):.2f})" if _finite(r.get("prob_cost_effective")) else "")
             for r in rows.to_dict("records")]
    return (f"By stratum, incremental net monetary benefit per PHB holder at λ = {fmt_gbp(lam)}: "
            + "; ".join(parts) + ".") if parts else ""


def nbr_sentence(tests, cea: pd.DataFrame, plan) -> str:
    """The net-benefit-regression tests (budget size, flexibility, their interaction) at the first λ of the
    headline measure, beside the per-stratum net benefit."""
    if tests is None or tests.empty:
        return ""
    nmb = cea[cea["outcome"].astype(str) == "nmb"] if not cea.empty else cea
    measure = nmb["effect_measure"].iloc[0] if not nmb.empty and "effect_measure" in nmb else tests["effect_measure"].iloc[0]
    rows = tests[tests["effect_measure"] == measure]
    if rows.empty:
        return ""
    lam = rows["lambda_gbp"].min()
    rows = rows[rows["lambda_gbp"] == lam].set_index("test")
    label = {"budget_size": "budget size", "flexibility": "flexibility (implementation model)",
             "interaction": "budget size × flexibility"}
    parts = [f"{label[t]} (F = {fmt_number(rows.loc[t, 'statistic'], 2)} on {rows.loc[t, 'df1']:g} and "
             f"{fmt_number(rows.loc[t, 'df2'], 1)} df, {_p_phrase(rows.loc[t, 'p_value'])})"
             for t in label if t in rows.index]
    unit = "QALY" if measure == "qaly" else "ASCOT-year"
    return (f"Net-benefit regression at λ = {fmt_gbp(lam)} per {unit} (budget band × implementation model "
            f"cells against all controls, cluster-robust by {plan.cluster}) tests whether net benefit differs by "
            + "; by ".join(parts) + ".") if parts else ""


def budget_impact_sentence(bi: dict) -> str:
    """One sentence on the projection: horizon, cumulative discounted position and the cost-neutral year."""
    st = bi["settings"]
    final = bi.get("final_cumulative_discounted")
    year = bi.get("cost_neutral_year")
    text = f"Budget impact over {st.get('years')} years ({st.get('uptake')} uptake): "
    if _finite(final):
        text += f"cumulative discounted net impact {fmt_gbp(final)} ({bi.get('price_year', '')} prices); "
    text += (f"cost-neutral from year {year}" if year else "not cost-neutral within the horizon")
    if _finite(bi.get("prob_cost_neutral_by_final_year")):
        text += f" (probability cost-neutral by the final year {float(bi['prob_cost_neutral_by_final_year']):.2f})"
    return text + "."


# --------------------------------------------------------------------------------------------- tables
def _table(frame: pd.DataFrame, title: str, *, note: str = "", csv: str | None = None,
           formatted: bool = False) -> dict:
    n = len(frame)
    shown = frame if n <= MAX_TABLE_ROWS else frame.iloc[:0]
    text = shown if formatted else format_table(shown)
    text = text.astype(str)
    if n > MAX_TABLE_ROWS:
        note = (note + " " if note else "") + f"{n:,} rows: too long to show here; see tables/{csv or title}.csv."
    html = text.to_html(index=False, escape=True, border=0, na_rep="", classes=None) if n <= MAX_TABLE_ROWS else ""
    return {"title": title, "note": note, "html": html, "md": _md_table(text) if n <= MAX_TABLE_ROWS else "",
            "csv": csv}


def _md_escape(v: str) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _md_table(frame: pd.DataFrame) -> str:
    # a pipe table written directly: pandas' to_markdown needs the optional tabulate package
    if frame.empty and len(frame.columns) == 0:
        return ""
    head = "| " + " | ".join(_md_escape(c) for c in frame.columns) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(_md_escape(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _estimate_table(rows: pd.DataFrame, plan, *, money=False, ratio=False, reading=True,
                    extra=()) -> pd.DataFrame:
    """Results rows as a table for people: estimate (CI), p, n per arm."""
    out = []
    for r in rows.to_dict("records"):
        item = {"outcome": outcome_label(r["outcome"]), "method": method_label(r["method"])}
        if str(r.get("stratum", "all")) != "all" or (rows["stratum"].astype(str) != "all").any():
            item["stratum"] = str(r.get("stratum"))
        if "lambda_gbp" in extra:
            item["\u03bb"] = fmt_gbp(r.get("lambda_gbp")) if _finite(r.get("lambda_gbp")) else ""
        item["estimate"] = fmt_estimate(r) if _finite(r.get("estimate")) else (r.get("note") or "not estimable")
        item[f"{_conf(plan)} CI"] = fmt_interval(r)
        item["p"] = fmt_p(r.get("p_value"))
        for col in extra:
            if col == "lambda_gbp":
                continue
            if col in r:
                v = r.get(col)
                item[col.replace("_", " ")] = (fmt_p(v) if col.startswith("p_") else
                                               fmt_number(v, 2) if isinstance(v, float) else
                                               "" if is_missing(v) else str(v))
        item["n PHB"] = fmt_count(r.get("n_phb"))
        item["n control"] = fmt_count(r.get("n_control"))
        if reading:
            m = str(r.get("method", ""))
            item["reading"] = ("difference per person-year; < 0 = fewer" if r.get("analysis") == "service_use"
                               and "diff" in m else "odds ratio (PHB / control)" if _is_ratio(r)
                               and r.get("analysis") == "outcome" else
                               OUTCOMES.get(str(r["outcome"]), ("", "", ""))[2] or "")
        out.append(item)
    return pd.DataFrame(out)


def _order(rows: pd.DataFrame, plan) -> pd.DataFrame:
    order = {o: i for i, o in enumerate(plan.outcomes)}
    meth = {m: i for i, m in enumerate(plan.estimators)}
    strat = rows["stratum"].astype(str)
    return rows.assign(_a=rows["outcome"].map(order).fillna(len(order)), _s=(strat != "all").astype(int),
                       _m=rows["method"].map(lambda m: meth.get((split_method(m) or (m,))[0], len(meth)))).sort_values(
        ["_a", "_s", "_m"], kind="stable").drop(columns=["_a", "_s", "_m"])


def _cea_pivot(cea: pd.DataFrame, plan) -> pd.DataFrame:
    """Net monetary benefit per stratum (rows) and λ (columns): '£x (£lo to £hi)'."""
    nmb = cea[cea["outcome"].astype(str) == "nmb"]
    if nmb.empty or "lambda_gbp" not in nmb:
        return pd.DataFrame()
    strata = list(dict.fromkeys(nmb["stratum"].astype(str)))
    strata = (["all"] if "all" in strata else []) + [s for s in strata if s != "all"]
    lams = sorted(nmb["lambda_gbp"].dropna().astype(float).unique())
    out = []
    for s in strata:
        item = {"stratum": s}
        for lam in lams:
            hit = nmb[(nmb["stratum"].astype(str) == s) & (nmb["lambda_gbp"].astype(float) == lam)]
            if hit.empty:
                item[f"\u03bb = {fmt_gbp(lam)}"] = ""
                continue
            r = hit.iloc[0].to_dict()
            cell = fmt_gbp(r["estimate"]) if _finite(r["estimate"]) else (r.get("note") or "not estimable")
            ci = fmt_interval(r)
            cell += f" ({ci})" if ci else ""
            if _finite(r.get("prob_cost_effective")):
                cell += f"; P(CE) {fmt_number(r['prob_cost_effective'], 2)}"
            item[f"\u03bb = {fmt_gbp(lam)}"] = cell
        out.append(item)
    return pd.DataFrame(out)


# ------------------------------------------------------------------------------------------- methods
def _n_clusters(results) -> int | None:
    est = results.estimates
    if "n_clusters" in est and pd.to_numeric(est["n_clusters"], errors="coerce").notna().any():
        return int(pd.to_numeric(est["n_clusters"], errors="coerce").max())
    g = results.meta.get("n_clusters")
    return int(g) if g is not None else None


def _and(items) -> str:
    items = [str(i) for i in items]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else "none"


def methods_paragraphs(results, plan) -> list[str]:
    """Methods text generated from the plan and from the analyses that produced rows."""
    est = results.estimates
    ran = set(est["method"].astype(str)) if not est.empty else set()
    analyses = set(est["analysis"].astype(str)) if not est.empty else set()
    covs = _and(plan.covariates) if plan.covariates else "no covariates"
    g = _n_clusters(results)
    gtxt = f" (G = {g} {plan.cluster}s, so {g - 1} degrees of freedom)" if g else ""
    paras = [
        f"Plan \u201c{plan.name}\u201d: {plan.description}",
        f"Outcomes were measured at baseline ({plan.data.baseline_wave}) and at {_months(plan)} after consent "
        f"({plan.data.followup_wave}). Covariates: {covs}; text covariates are treatment-coded with the first "
        "level in alphabetical order as the reference.",
    ]
    from ..models.registry import estimator_sentence, estimators_in, variance_sentence, variances_in
    if "outcome" in analyses:
        out_methods = set(est.loc[est["analysis"].astype(str) == "outcome", "method"].astype(str))
        ran_est = estimators_in(out_methods)
        rd = {"ancova": "ancova_rd", "ancova_ipw": "ancova_ipw_rd"}
        done = [e for e in plan.estimators if e in ran_est or rd.get(e) in ran_est]
        missing = [e for e in plan.estimators if e not in done]
        names = {e: next((m for m in sorted(out_methods) if m.startswith(e + "_") and
                          estimators_in([m]) == {e}), None) for e in done}
        txt = "Effects are adjusted PHB \u2212 control differences at follow-up, estimated by " + \
            "; ".join(estimator_sentence(e, plan, names[e]) for e in done) + "."
        if done:
            txt += f" The summary quotes {names[done[0]] or done[0]}, the first estimator in the plan."
        if missing:
            txt += f" Planned but produced no rows: {_and(missing)} (see Warnings and analyses not run)."
        paras.append(txt)
    ran_variances = variances_in(ran) or [plan.variance]
    wb = plan.wild_bootstrap
    paras.append(
        "Standard errors are " + "; ".join(variance_sentence(v, plan.cluster, wb.B, wb.weights)
                                           for v in ran_variances)
        + (f"{gtxt}" if "cr1" in ran_variances else (f" (G = {g} {plan.cluster}s)" if g else ""))
        + (". A model that does not support the plan's setting says which covariance it used in its note, "
           "and its method name carries it" if len(ran_variances) > 1 else "")
        + f". Intervals are {_conf(plan)} confidence intervals; p-values are two-sided.")
    if "balance" in analyses:
        paras.append(f"Baseline balance: standardised mean differences (PHB \u2212 control); |SMD| above "
                     f"{plan.propensity.smd_flag:g} is flagged.")
    paras.append(f"Instruments: EQ-5D-{plan.instruments.eq5d_version} valued with {plan.instruments.eq5d_value_set}; "
                 f"GHQ-12 scored {_and(plan.instruments.ghq12_scorings)}, caseness at a GHQ score of "
                 f"{plan.instruments.ghq12_caseness_threshold} or more.")
    if "service_use" in analyses:
        paras.append(f"Service use: {_and(plan.service_use.models)} models of each post-consent count on the PHB "
                     "indicator, log(1 + pre-consent count) and the covariates, with the standard errors "
                     f"above; estimates are rate ratios (PHB / control), intervals exponentiated from the "
                     "log scale.")
    if "cost" in analyses or "cea" in analyses:
        src = plan.costs.unit_costs or "the unit costs shipped in phb_eval/config"
        paras.append(f"Costs are \u00a3 per person per year at {plan.costs.price_year} prices (unit costs: {src}; "
                     f"inflation: {plan.costs.inflation_index or 'NHS Cost Inflation Index'}); cost differences "
                     f"from {_and(plan.costs.models)} models with the same covariates and error model.")
    if "cea" in analyses:
        lams = _and(fmt_gbp(v) for v in plan.cea.lambdas)
        paras.append(
            f"Cost-effectiveness: incremental net monetary benefit NMB = \u03bb\u00b7\u0394E \u2212 \u0394C with "
            f"\u0394E on {_effect_label(results, plan)} and \u03bb = {lams} per unit; uncertainty from "
            f"B = {plan.cea.bootstrap:,} bootstrap replicates of people stratified by arm"
            f"{' and clustered by ' + plan.cluster if plan.cea.cluster_bootstrap else ''}; acceptability curves "
            f"from \u00a30 to {fmt_gbp(plan.cea.ceac_max)} in steps of {fmt_gbp(plan.cea.ceac_step)}. "
            f"Strata: {_and(plan.cea.strata)}; a PHB-only stratum (budget band, implementation model, deployment) "
            "compares its holders with all controls through stratum-specific PHB indicators in one model. "
            f"Budget bands cut at {_and(fmt_gbp(c) for c in plan.strata.budget_cuts)} a year; implementation "
            + "; ".join(f"{k} = {_and(v)} all present" for k, v in plan.strata.implementation_model.items())
            + f", otherwise {plan.strata.otherwise_label}.")
    if "subgroup" in analyses:
        paras.append(
            "Subgroups: one adjusted model per outcome and subgroup variable with a PHB indicator per level; the "
            "joint Wald test (same covariance, F/HTZ reference) that the effect is equal across levels is the interaction test; p-values "
            f"adjusted by {ADJUST_NAMES[plan.subgroups.adjust]} "
            f"({'over all outcomes' if plan.subgroups.family == 'all' else 'within each outcome'}); prespecified: "
            f"{_and(plan.subgroups.prespecified)}; levels with fewer than {plan.subgroups.min_cell} people in an "
            "arm are not estimated.")
    ran_bi = results.meta.get("budget_impact") or {}
    if ran_bi.get("method"):          # the settings as run (the demo and --from-results fill in values)
        paras.append(ran_bi["method"])
    elif "budget_impact" in analyses or "budget_impact" in results.tables:
        bi = plan.budget_impact
        paras.append(f"Budget impact over {bi.years} years: {bi.uptake} uptake, double running "
                     f"{fmt_gbp(bi.double_running_per_new_holder)} per new holder for {bi.double_running_years:g} "
                     f"year(s), discounting at {bi.discount_rate * 100:g}% a year.")
    notes = [str(n) for n in results.meta.get("notes") or []]
    if notes:
        paras.append("Notes from this run: " + "; ".join(notes) + ".")
    paras.append(f"Random numbers come from one generator seeded with {results.meta.get('seed', plan.seed)}; "
                 "the same data, plan and seed give identical numbers.")
    rule = disclosure_sentence(plan, results)
    paras.append(rule if rule.lower().startswith("disclosure") else "Disclosure control: " + rule)
    return paras


def _plan_settings(plan: Plan, disclosure_on: bool) -> pd.DataFrame:
    rows = [("estimators", _and(plan.estimators)), ("primary outcomes", _and(plan.primary_outcomes)),
            ("covariates", _and(plan.covariates)), ("cluster", plan.cluster),
            ("confidence level", _conf(plan)), ("seed", str(plan.seed)),
            ("imputation", f"m = {plan.imputation.m}, {plan.imputation.method}"),
            ("propensity estimand", plan.propensity.estimand),
            ("budget cuts (\u00a3/year)", _and(fmt_gbp(c) for c in plan.strata.budget_cuts)),
            ("price year", plan.costs.price_year), ("\u03bb", _and(fmt_gbp(v) for v in plan.cea.lambdas)),
            ("bootstrap replicates", f"{plan.cea.bootstrap:,}"),
            ("disclosure control", "on" if disclosure_on else "off")]
    return pd.DataFrame(rows, columns=["setting", "value"])


# -------------------------------------------------------------------------------------------- context
def _not_run(results, key: str) -> str:
    words = NOT_RUN_KEYWORDS.get(key, ())
    hits = [s for s in results.skipped if any(w in str(s).lower() for w in words)]
    return "Not run: " + ("; ".join(str(h) for h in hits) if hits else "this run produced no rows for it.")


def _figure_entry(name: str, png: bytes, mode: str) -> dict:
    src = (f"data:image/png;base64,{base64.b64encode(png).decode('ascii')}" if mode == "data"
           else f"figures/{name}.png")
    return {"name": name, "src": src, "caption": FIGURE_CAPTIONS.get(name, name.replace("_", " ") + ".")}


def build_context(results, plan: Plan, figures_png: dict, image_mode: str = "data",
                  table_files: dict | None = None) -> dict:
    """Everything the templates show: title, banner, and a list of sections (each with text, tables, figures)."""
    est = results.estimates if results.estimates is not None else pd.DataFrame()
    table_files = table_files or {}
    figs = {k: v for k, v in figures_png.items()}
    used_tables, used_figs = set(), set()

    def fig(name):
        if name in figs:
            used_figs.add(name)
            return [_figure_entry(name, figs[name], image_mode)]
        return []

    def role_figs(key):
        names = [n for n in figs if n not in used_figs and (FIGURE_ROLES.get(n) == key or n.startswith(key + "_"))]
        return [e for n in names for e in fig(n)]

    def named(key):
        out = []
        for name in TABLE_ROLES.get(key, ()):
            if name in results.tables and name not in used_tables:
                used_tables.add(name)
                out.append(_table(results.tables[name], TABLE_TITLES.get(name, name.replace("_", " ")),
                                  csv=table_files.get(name, name)))
        return out

    sections = []

    def add(key, paragraphs=(), tables=(), figures=(), items=(), omit_if_empty=False, not_run=None):
        empty = not (paragraphs or tables or figures or items)
        if empty and omit_if_empty and not any(w in str(s).lower() for s in results.skipped
                                               for w in NOT_RUN_KEYWORDS.get(key, ())):
            return
        sections.append({"id": key, "title": SECTION_TITLES[key], "paragraphs": list(paragraphs),
                         "tables": list(tables), "figures": list(figures), "bullets": list(items),
                         "not_run": (not_run or _not_run(results, key)) if empty else None})

    # summary
    flow = next((results.tables[n] for n in TABLE_ROLES["flow"] if n in results.tables), None)
    intro = []
    if flow is not None and "stage" in flow and {"phb", "control"} <= set(flow.columns):
        rec = flow[flow["stage"].astype(str) == "recruited"]
        if not rec.empty:
            intro.append(f"{fmt_count(rec['phb'].iloc[0])} PHB holders and {fmt_count(rec['control'].iloc[0])} "
                         f"controls were recruited" + (f" in {_n_clusters(results)} {plan.cluster}s." if
                                                       _n_clusters(results) else "."))
    intro.append(f"Differences are PHB \u2212 control after adjustment, with {_conf(plan)} confidence intervals "
                 "(CI); each sentence says which direction is better.")
    findings = headline(results, plan) or ["No estimates were produced in this run; see Warnings and analyses not run."]
    add("summary", paragraphs=intro, items=findings)

    # plan
    assumptions = list(plan.assumptions) or ["The plan declares no settings as assumptions."]
    add("plan", paragraphs=[f"Plan \u201c{plan.name}\u201d: {plan.description}",
                            "Settings chosen without a public source (assumptions):"],
        items=assumptions, tables=[_table(_plan_settings(plan, (results.meta.get("disclosure") or {}).get("applied", plan.disclosure.enabled)), "key settings", formatted=True)])

    # flow
    add("flow", tables=named("flow"),
        paragraphs=["Died: died before follow-up. Lost to follow-up: alive with no follow-up answers. "
                    "Analysed: follow-up score, baseline score and every covariate observed."]
        if flow is not None else [])

    # balance
    bal = _rows(est, "balance")
    tabs = named("balance")
    if not bal.empty:
        smd = bal.copy()
        tbl = pd.DataFrame({"variable": smd["outcome"].astype(str), "measure": smd["method"].astype(str),
                            "stratum": smd["stratum"].astype(str),
                            "value": [fmt_number(v, 3) for v in smd["estimate"]],
                            f"|SMD| > {plan.propensity.smd_flag:g}": [
                                ("yes" if abs(float(v)) > plan.propensity.smd_flag else "")
                                if _finite(v) and "smd" in str(m).lower() else ""
                                for v, m in zip(smd["estimate"], smd["method"])]})
        if (tbl["stratum"] == "all").all():
            tbl = tbl.drop(columns="stratum")
        tabs.append(_table(tbl, "balance measures", formatted=True, csv="estimates"))
    add("balance", tables=tabs, figures=role_figs("balance"))

    # effects
    eff = _rows(est, "outcome")
    tabs = [_table(_estimate_table(_order(eff, plan), plan, extra=[c for c in ("note",) if c in eff]),
                   "adjusted differences (PHB \u2212 control)", formatted=True, csv="estimates")] if not eff.empty else []
    add("effects", tables=tabs, figures=role_figs("effects"))

    # service use and costs
    su, co = _rows(est, "service_use"), _rows(est, "cost")
    tabs = []
    if not su.empty:
        tabs.append(_table(_estimate_table(su, plan, reading=True, extra=[c for c in ("note",) if c in su]),
                           "service use: rate ratios (PHB / control)",
                           formatted=True, csv="estimates"))
    if not co.empty:
        tabs.append(_table(_estimate_table(co, plan, reading=False, extra=[c for c in ("note",) if c in co]),
                           f"costs: differences, \u00a3 per person per year ({plan.costs.price_year} prices)",
                           formatted=True, csv="estimates"))
    tabs += named("service_use")
    add("service_use", tables=tabs, figures=role_figs("service_use"))

    # cost-effectiveness
    cea = _rows(est, "cea")
    tabs = []
    if not cea.empty:
        piv = _cea_pivot(cea, plan)
        if not piv.empty:
            tabs.append(_table(piv, "net monetary benefit per stratum (\u00a3 per person; CI; probability "
                                    "cost-effective)", formatted=True, csv="estimates"))
        ordered = cea.assign(_s=(cea["stratum"].astype(str) != "all").astype(int)).sort_values(
            ["_s", "stratum"], kind="stable").drop(columns="_s")
        extra = [c for c in ("lambda_gbp", "prob_cost_effective", "quadrant", "icer_label", "note") if c in cea]
        tabs.append(_table(_estimate_table(ordered, plan, reading=False, extra=extra),
                           "cost-effectiveness rows", formatted=True, csv="estimates"))
    tabs += named("cea")
    add("cea", tables=tabs, figures=role_figs("cea"))

    # subgroups
    sg = _rows(est, "subgroup")
    tabs = []
    if not sg.empty:
        extra = [c for c in ("p_adjusted", "prespecified", "note") if c in sg]
        tabs.append(_table(_estimate_table(_order(sg, plan), plan, reading=False, extra=extra),
                           "effects within subgroups and interaction tests", formatted=True, csv="estimates",
                           note="Interaction rows: estimate = F statistic (HTZ with CR2, Wald/q on G \u2212 1 df with CR1) "
                                "of equal effects across levels."))
    add("subgroups", tables=tabs, figures=role_figs("subgroups"))

    # budget impact (omitted when absent and not mentioned)
    bi = _rows(est, "budget_impact")
    tabs = [_table(_estimate_table(bi, plan, reading=False), "budget impact rows", formatted=True,
                   csv="estimates")] if not bi.empty else []
    tabs += named("budget_impact")
    add("budget_impact", tables=tabs, figures=role_figs("budget_impact"), omit_if_empty=True)

    # warnings
    items = [f"Warning: {w}" for w in results.warnings] + [f"Not run: {s}" for s in results.skipped]
    add("warnings", items=items or ["No warnings were raised and every planned analysis ran."])

    # methods
    add("methods", paragraphs=methods_paragraphs(results, plan))

    # other tables and figures
    others = [_table(df, name, csv=table_files.get(name, name)) for name, df in results.tables.items()
              if name not in used_tables and name not in HIDDEN_TABLES]
    other_figs = [e for n in list(figs) if n not in used_figs for e in fig(n)]
    if others or other_figs:
        add("other", tables=others, figures=other_figs)

    disc = results.meta.get("disclosure") or {}
    banner = None
    if disc.get("applied") is False or not plan.disclosure.enabled:
        banner = "Disclosure control was OFF for this run: small numbers are not suppressed. Do not publish."
    return {
        "title": f"Personal health budget evaluation \u2014 {plan.name}",
        "css": CSS,
        "banner": banner,
        "subtitle": " \u00b7 ".join(x for x in (
            f"phb-eval {results.meta.get('phb_eval_version', '')}".strip(),
            str(results.meta.get("created", "")), f"seed {results.meta.get('seed', plan.seed)}") if x),
        "sections": sections,
        "plan_yaml": yaml.safe_dump(plan_to_dict(plan), sort_keys=False, allow_unicode=True),
    }


def _md_safe(value) -> str:
    """Text for report.md with HTML tags made inert (``<script>`` -> ``&lt;script>``); '<1000' stays as is."""
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", str(value))


def _env(autoescape: bool) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=autoescape,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              keep_trailing_newline=True, finalize=None if autoescape else _md_safe)


def render_html(results, plan: Plan, figures_png: dict, table_files: dict | None = None) -> str:
    """The report as one self-contained HTML document (figures embedded as base64 PNG)."""
    ctx = build_context(results, plan, figures_png, image_mode="data", table_files=table_files)
    ctx["css"] = jinja2.utils.markupsafe.Markup(ctx["css"])  # our own constant, not user text
    for s in ctx["sections"]:
        for t in s["tables"]:
            t["html"] = jinja2.utils.markupsafe.Markup(t["html"])
    return _env(True).get_template("report.html.j2").render(**ctx)


def render_markdown(results, plan: Plan, figures_png: dict, table_files: dict | None = None) -> str:
    """The same report as Markdown; figures are relative links to figures/<name>.png."""
    ctx = build_context(results, plan, figures_png, image_mode="file", table_files=table_files)
    return _env(False).get_template("report.md.j2").render(**ctx)
