"""Figures for the report: love plot, forest plots, CE plane, CEAC (seaborn on matplotlib, Agg).

Each function takes tidy rows or tables and returns a ``matplotlib.figure.Figure`` built without pyplot
(an Agg canvas attached to a plain Figure), so nothing touches global state and nothing needs closing.
``standard_figures`` makes every figure the report can draw from a ``Results``.

Expected inputs
---------------
- balance rows (``analysis=balance``): ``outcome`` = variable, ``estimate`` = SMD, ``method`` = which
  SMD (e.g. unweighted / weighted); rows whose method mentions ``smd`` are used when any do.
- effect rows: results rows with ``estimate``, ``ci_low``, ``ci_high`` (``outcome``, ``method``).
- CE-plane draws: a table with ``stratum`` and incremental effect and cost per replicate, named
  ``delta_effect`` / ``delta_cost`` (also accepted: ``d_effect``/``d_cost``, ``effect``/``cost``,
  ``incremental_effect``/``incremental_cost``).
- CEAC: a table with ``stratum``, ``lambda_gbp`` and ``prob_cost_effective`` (also accepted:
  ``probability``, ``p_cost_effective``).
"""
from __future__ import annotations

import io
import textwrap

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from .formatting import outcome_label, short_method

__all__ = ["love_plot", "forest_plot", "ce_plane", "ceac_plot", "subgroup_forest", "figure_png", "headline_rows",
           "standard_figures", "figure_specs", "DPI", "draw_columns", "ceac_columns"]

DPI = 120
PALETTE = "colorblind"
MAX_POINTS_PER_STRATUM = 1500  # CE-plane scatter: a regular thinning keeps the PNG small and deterministic

EFFECT_ALIASES = ("delta_effect", "d_effect", "incremental_effect", "effect")
COST_ALIASES = ("delta_cost", "d_cost", "incremental_cost", "cost")
PROB_ALIASES = ("prob_cost_effective", "p_cost_effective", "probability", "prob_ce")
LAMBDA_ALIASES = ("lambda_gbp", "lambda", "wtp")


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def _pick(columns, aliases):
    for a in aliases:
        if a in columns:
            return a
    return None


def draw_columns(draws: pd.DataFrame):
    """(effect column, cost column) of a CE-plane draws table, or (None, None)."""
    return _pick(draws.columns, EFFECT_ALIASES), _pick(draws.columns, COST_ALIASES)


def ceac_columns(ceac: pd.DataFrame):
    """(lambda column, probability column) of a CEAC table, or (None, None)."""
    return _pick(ceac.columns, LAMBDA_ALIASES), _pick(ceac.columns, PROB_ALIASES)


def _gbp_axis(value, _pos=None):
    sign = "\u2212" if value < 0 else ""
    return f"{sign}\u00a3{abs(value):,.0f}"


def love_plot(balance_rows: pd.DataFrame, threshold: float = 0.1, title: str = "Baseline balance") -> Figure:
    """Standardised mean differences per variable, one marker per SMD kind, with ±threshold lines."""
    rows = balance_rows.copy()
    if "method" in rows and rows["method"].astype(str).str.contains("smd", case=False).any():
        rows = rows[rows["method"].astype(str).str.contains("smd", case=False)]
    rows = rows[pd.to_numeric(rows["estimate"], errors="coerce").notna()].copy()
    rows["estimate"] = rows["estimate"].astype(float)
    rows["variable"] = rows["outcome"].astype(str)
    rows["kind"] = rows["method"].astype(str) if "method" in rows else "smd"
    order = list(dict.fromkeys(rows["variable"]))
    fig = _figure(7.0, max(2.5, 0.32 * len(order) + 1.4))
    ax = fig.add_subplot()
    sns.scatterplot(data=rows, x="estimate", y="variable", hue="kind", style="kind", ax=ax, s=55,
                    palette=PALETTE, zorder=3)
    ax.set_yticks(range(len(order)), order)
    ax.axvline(0, color="0.3", lw=0.8)
    for t in (-threshold, threshold):
        ax.axvline(t, color="0.5", lw=0.8, ls="--")
    ax.set_xlabel(f"standardised mean difference (PHB \u2212 control); dashed: \u00b1{threshold:g}")
    ax.set_ylabel("")
    ax.set_title(title)
    ax.grid(axis="y", color="0.92")
    if ax.get_legend() is not None:
        ax.get_legend().set_title("")
    return fig


def _interval_panel(ax, frame: pd.DataFrame, labels, ref: float, log: bool, money: bool):
    y = np.arange(len(frame))[::-1]
    est = frame["estimate"].astype(float).to_numpy()
    lo = pd.to_numeric(frame["ci_low"], errors="coerce").to_numpy(dtype=float)
    hi = pd.to_numeric(frame["ci_high"], errors="coerce").to_numpy(dtype=float)
    has = np.isfinite(lo) & np.isfinite(hi)
    ax.hlines(y[has], lo[has], hi[has], color="0.25", lw=1.6)
    ax.plot(est, y, "s", color=sns.color_palette(PALETTE)[0], ms=6, zorder=3)
    ax.axvline(ref, color="0.4", lw=0.8, ls="--")
    ax.set_yticks(y, labels)
    ax.set_ylim(-0.7, len(frame) - 0.3)
    if log:
        ax.set_xscale("log")
    if money:
        ax.xaxis.set_major_formatter(FuncFormatter(_gbp_axis))


def forest_plot(effect_rows: pd.DataFrame, overall: dict | None = None, title: str = "Effects",
                label_col: str = "method", log: bool = False, ref: float | None = None,
                money: bool = False) -> Figure:
    """Point estimates with intervals; one panel per outcome (each outcome keeps its own scale).

    ``overall`` (a row with estimate/ci_low/ci_high) is drawn as a diamond under a single-outcome plot.
    ``log`` is for ratios (reference line at 1).
    """
    rows = effect_rows[pd.to_numeric(effect_rows["estimate"], errors="coerce").notna()].copy()
    rows["estimate"] = rows["estimate"].astype(float)
    ref = (1.0 if log else 0.0) if ref is None else ref
    outcomes = list(dict.fromkeys(rows["outcome"].astype(str))) if "outcome" in rows else ["estimate"]
    sizes = [max(1, int((rows["outcome"].astype(str) == o).sum())) + (1 if overall is not None else 0)
             for o in outcomes] if "outcome" in rows else [len(rows)]
    fig = _figure(7.5, max(2.2, 0.34 * sum(sizes) + 0.75 * len(outcomes) + 0.6))
    axes = fig.subplots(len(outcomes), 1, squeeze=False, gridspec_kw={"height_ratios": sizes})[:, 0]
    for ax, outcome in zip(axes, outcomes):
        part = rows[rows["outcome"].astype(str) == outcome] if "outcome" in rows else rows
        labels = [short_method(v) if label_col == "method" else str(v) for v in part[label_col]]
        if overall is not None:
            part = pd.concat([part, pd.DataFrame([overall])], ignore_index=True)
            labels.append(str(overall.get("label", "overall")))
        _interval_panel(ax, part, labels, ref, log, money)
        if overall is not None:
            ax.plot([float(overall["estimate"])], [0], "D", color="black", ms=8, zorder=4)
        ax.set_title(textwrap.shorten(outcome_label(outcome), 70, placeholder="\u2026"), fontsize=9, loc="left")
    fig.suptitle(title)
    return fig


def subgroup_forest(rows: pd.DataFrame, overall: pd.DataFrame | None = None,
                    title: str = "Effects by subgroup") -> Figure:
    """Level-specific effects per outcome, grouped by subgroup variable, with the interaction p in the label.

    ``rows``: subgroup results rows (level rows ``stratum = variable=level`` and interaction rows
    ``stratum = variable`` with method ``interaction_wald_<variance>_<cluster>``). ``overall``: optional outcome rows
    (``stratum = all``) drawn as a diamond per outcome.
    """
    inter = rows[rows["method"].astype(str).str.startswith("interaction")]
    levels = rows[~rows.index.isin(inter.index) & rows["stratum"].astype(str).str.contains("=")]
    levels = levels[pd.to_numeric(levels["estimate"], errors="coerce").notna()].copy()
    levels["estimate"] = levels["estimate"].astype(float)
    p_of = {(str(r.outcome), str(r.stratum)): r.p_value for r in inter.itertuples()}
    outcomes = list(dict.fromkeys(levels["outcome"].astype(str)))
    sizes = [int((levels["outcome"].astype(str) == o).sum()) + 1 for o in outcomes] or [1]
    fig = _figure(7.5, max(2.2, 0.32 * sum(sizes) + 0.8 * max(1, len(outcomes)) + 0.6))
    axes = fig.subplots(max(1, len(outcomes)), 1, squeeze=False, gridspec_kw={"height_ratios": sizes})[:, 0]
    for ax, outcome in zip(axes, outcomes):
        part = levels[levels["outcome"].astype(str) == outcome].copy()
        part["variable"] = part["stratum"].astype(str).str.split("=", n=1).str[0]
        part = part.sort_values("variable", kind="stable")
        labels, seen = [], set()
        for r in part.itertuples():
            p = p_of.get((outcome, r.variable)) if r.variable not in seen else None
            seen.add(r.variable)
            ptxt = "" if p is None or pd.isna(p) else (" (interaction p < 0.001)" if p < 0.001
                                                       else f" (interaction p = {p:.3f})")
            labels.append(f"{r.stratum}{ptxt}")
        if overall is not None:
            ov = overall[(overall["outcome"].astype(str) == outcome)]
            if not ov.empty:
                part = pd.concat([part, ov.iloc[[0]]], ignore_index=True)
                labels.append("all (overall)")
        _interval_panel(ax, part, labels, 0.0, False, False)
        if overall is not None and labels and labels[-1] == "all (overall)":
            ax.plot([float(part["estimate"].iloc[-1])], [0], "D", color="black", ms=8, zorder=4)
        ax.set_title(outcome_label(outcome), fontsize=9, loc="left")
    fig.suptitle(title)
    return fig


def ce_plane(draws: pd.DataFrame, lambdas, effect_label: str = "incremental effect",
             title: str = "Cost-effectiveness plane") -> Figure:
    """Bootstrap replicates of (incremental effect, incremental cost) per stratum, with one line per λ."""
    e_col, c_col = draw_columns(draws)
    if e_col is None or c_col is None:
        raise ValueError(f"CE-plane draws need effect and cost columns ({EFFECT_ALIASES} / {COST_ALIASES}); "
                         f"got {list(draws.columns)}")
    data = draws.copy()
    if "stratum" not in data:
        data["stratum"] = "all"
    parts = []
    for _, part in data.groupby("stratum", sort=False):
        step = max(1, int(np.ceil(len(part) / MAX_POINTS_PER_STRATUM)))
        parts.append(part.iloc[::step])
    data = pd.concat(parts, ignore_index=True)
    fig = _figure(7.0, 5.2)
    ax = fig.add_subplot()
    sns.scatterplot(data=data, x=e_col, y=c_col, hue="stratum", s=7, alpha=0.45, linewidth=0,
                    palette=PALETTE, ax=ax)
    xs = np.asarray(ax.get_xlim())
    lam = [float(v) for v in lambdas]
    for v, ls in zip(lam, ["-", "--", "-.", ":"] * (len(lam) // 4 + 1)):
        ax.plot(xs, v * xs, color="0.25", lw=0.9, ls=ls, label=f"\u03bb = {_gbp_axis(v)}")
    ax.set_xlim(*xs)
    ax.axhline(0, color="0.5", lw=0.7)
    ax.axvline(0, color="0.5", lw=0.7)
    ax.yaxis.set_major_formatter(FuncFormatter(_gbp_axis))
    ax.set_xlabel(f"{effect_label} (PHB \u2212 control)")
    ax.set_ylabel("incremental cost per person per year")
    ax.set_title(title)
    ax.legend(fontsize=7, markerscale=2, loc="best")
    return fig


def ceac_plot(ceac: pd.DataFrame, lambdas=(), title: str = "Cost-effectiveness acceptability curves") -> Figure:
    """Probability that PHBs are cost-effective against λ, one curve per stratum; plan λ values marked."""
    l_col, p_col = ceac_columns(ceac)
    if l_col is None or p_col is None:
        raise ValueError(f"a CEAC table needs {LAMBDA_ALIASES[0]} and {PROB_ALIASES[0]}; got {list(ceac.columns)}")
    data = ceac.copy()
    if "stratum" not in data:
        data["stratum"] = "all"
    data[l_col] = data[l_col].astype(float)
    data[p_col] = data[p_col].astype(float)
    fig = _figure(7.0, 4.4)
    ax = fig.add_subplot()
    sns.lineplot(data=data, x=l_col, y=p_col, hue="stratum", palette=PALETTE, ax=ax, lw=1.4)
    for v in lambdas:
        ax.axvline(float(v), color="0.7", lw=0.8, ls=":")
    ax.set_ylim(-0.02, 1.02)
    ax.xaxis.set_major_formatter(FuncFormatter(_gbp_axis))
    ax.set_xlabel("willingness to pay per unit of effect (\u03bb)")
    ax.set_ylabel("probability cost-effective")
    ax.set_title(title)
    if ax.get_legend() is not None:
        ax.get_legend().set_title("")
    return fig


def _rows(estimates: pd.DataFrame, analysis: str) -> pd.DataFrame:
    if estimates is None or estimates.empty or "analysis" not in estimates:
        return pd.DataFrame()
    return estimates[estimates["analysis"] == analysis]


DESCRIPTIVE = ("unadjusted", "hedges", "logit_or")  # not adjusted differences: kept out of effect forests


def headline_rows(outcome_rows: pd.DataFrame, estimators) -> pd.DataFrame:
    """Per outcome, the ``stratum=all`` row of the first plan estimator that produced one.

    ``estimators`` are bare estimator names (``ancova``, ``negbin``) or full method names. For 0/1 outcomes
    an estimator's risk-difference variant (``ancova_rd_cr2_site`` for ``ancova``)
    counts as that estimator; descriptive rows (unadjusted means, Hedges' g, odds ratios) are used only
    when nothing else exists.
    """
    from ..models.registry import split_method
    rows = outcome_rows[outcome_rows["stratum"].astype(str) == "all"]
    chosen = []
    rd = {"ancova": "ancova_rd", "ancova_ipw": "ancova_ipw_rd"}

    def main_estimator(m):
        parts = split_method(m)
        return parts[0] if parts and "_marginal" not in parts[2] else None

    for _, part in rows.groupby("outcome", sort=False):
        methods = part["method"].astype(str)
        named = methods.map(main_estimator)
        pick = None
        for est in estimators:
            for hit in (part[methods == est], part[named == est], part[named == rd.get(est)]):
                if not hit.empty:
                    pick = hit.iloc[[0]]
                    break
            if pick is not None:
                break
        if pick is None:
            adjusted = part[~methods.str.startswith(DESCRIPTIVE)]
            pick = (adjusted if not adjusted.empty else part).iloc[[0]]
        chosen.append(pick)
    return pd.concat(chosen, ignore_index=True) if chosen else rows.iloc[0:0]


def figure_specs(results, plan, tables: dict | None = None) -> dict:
    """Every standard figure the data allow, not yet drawn: name -> (function, args, kwargs).

    Drawing is left to the caller, so the writer can draw each figure once, in a worker process if it likes
    (``report.render``); ``standard_figures`` draws them all here.
    """
    est = results.estimates
    tables = results.tables if tables is None else tables
    specs = {}
    bal = _rows(est, "balance")
    if not bal.empty and pd.to_numeric(bal["estimate"], errors="coerce").notna().any():
        specs["love_plot"] = (love_plot, (bal,), {"threshold": plan.propensity.smd_flag})
    out = _rows(est, "outcome")
    if not out.empty:
        out = out[(out["stratum"].astype(str) == "all") & ~out["method"].astype(str).str.startswith(DESCRIPTIVE)]
    if not out.empty and pd.to_numeric(out["estimate"], errors="coerce").notna().any():
        order = {m: i for i, m in enumerate(plan.outcomes)}
        out = out.assign(_o=out["outcome"].map(order).fillna(len(order))).sort_values("_o", kind="stable")
        specs["forest_effects"] = (forest_plot, (out.drop(columns="_o"),),
                                   {"title": f"Adjusted differences, PHB \u2212 control "
                                             f"({plan.confidence_level:.0%} CI)"})
    su = _rows(est, "service_use")
    if not su.empty:
        main = headline_rows(su, plan.service_use.models)
        main = main[pd.to_numeric(main["estimate"], errors="coerce") > 0] if not main.empty else main
        if not main.empty:
            specs["service_use_forest"] = (forest_plot, (main,),
                                           {"title": "Service use: rate ratio PHB / control", "log": True})
    draws = next((tables[n] for n in ("cea_draws", "ce_plane", "ce_draws") if n in tables), None)
    headline = "qaly" if getattr(plan.cea, "headline", "qaly") == "qaly" else "ascot_years"
    head_draw = {"qaly": "d_qaly", "ascot_years": "d_ascot"}[headline]
    if draws is not None and head_draw in draws and draws[head_draw].notna().any():
        draws = draws.assign(d_effect=draws[head_draw])        # the plane of the headline effect measure
    if draws is not None and not draws.empty and None not in draw_columns(draws):
        specs["ce_plane"] = (ce_plane, (draws, plan.cea.lambdas), {})
    ceac = tables.get("ceac")
    if ceac is not None and "effect_measure" in ceac and (ceac["effect_measure"] == headline).any():
        ceac = ceac[ceac["effect_measure"] == headline]
    if ceac is not None and not ceac.empty and None not in ceac_columns(ceac):
        specs["ceac"] = (ceac_plot, (ceac, plan.cea.lambdas), {})
    sg = _rows(est, "subgroup")
    if not sg.empty and pd.to_numeric(sg["estimate"], errors="coerce").notna().any():
        overall = headline_rows(_rows(est, "outcome"), plan.estimators) if not _rows(est, "outcome").empty else None
        specs["subgroup_forest"] = (subgroup_forest, (sg,), {"overall": overall})
    return specs


def standard_figures(results, plan, tables: dict | None = None) -> dict:
    """Every standard figure the data allow: name -> Figure (names as the report expects them)."""
    return {name: fn(*args, **kwargs) for name, (fn, args, kwargs) in figure_specs(results, plan, tables).items()}
