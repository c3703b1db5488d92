"""Output assembly: results rows, the one-row-per-stratum table, draws, CEAC/CEAF, EVPI and the methods text.

With one dataset (complete cases) a statistic's interval is the bootstrap percentile interval (BCa alongside).
With m imputed datasets each bootstrapped (``mi_boot``), the estimate, SE and interval pool the m point
estimates and their bootstrap variances by Rubin's rules (Schomaker & Heumann 2018, "MI Boot"); the
probability cost-effective, CEAC, CEAF and EVPI use the m × B draws stacked.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..missing import pool_rubin
from ..results import estimate_row
from .decision import QUADRANTS, ceac_ceaf, icer_quadrant, quadrant_meaning
from .intervals import bca_interval, percentile_interval
from .strata import comparison as _comparison
from .voi import evpi_per_person

__all__ = ["stratum_outputs", "not_estimable_rows", "table_row", "method_text", "MODELS", "DRAW_COLUMNS",
           "MEASURES", "ASCOT_YEARS", "QALY", "Context"]

ASCOT_YEARS = "_cea_ascot_years"    # working columns: areas under the curve over the horizon (see qaly.py)
QALY = "_cea_qaly"
# draw name, outcome row name, outcome column (template), baseline column (template); {e}=effect, {b}=baseline wave
MODELS = (
    ("d_effect", "incremental_effect", "{e}_{f}", "{e}_{b}"),
    ("d_ascot", "incremental_ascot_years", ASCOT_YEARS, "{e}_{b}"),
    ("d_qaly", "incremental_qaly", QALY, "eq5d_index_{b}"),
    ("d_cost", "incremental_cost", "cost_total", "cost_indirect_pre"),
    ("d_cost_direct", "incremental_cost_direct", "cost_direct", "cost_indirect_pre"),
    ("d_cost_indirect", "incremental_cost_indirect", "cost_indirect", "cost_indirect_pre"),
)
DRAW_COLUMNS = [m[0] for m in MODELS]
# effect measure of net benefit -> its draw
MEASURES = {"qaly": "d_qaly", "ascot_years": "d_ascot"}


@dataclass
class Context:
    """Settings every stratum's outputs need."""

    eff: str
    lambdas: dict            # measure -> list of λ
    headline: str
    horizon: float
    lam_grid: np.ndarray
    conf_level: float
    B: int


def _stat(points, draws, L, conf_level, df_complete):
    """Estimate, SE and interval of one statistic from per-dataset points and bootstrap draws."""
    fins = [t[np.isfinite(t)] for t in draws]
    n_rep = int(sum(t.size for t in fins))
    if len(points) == 1:
        t, t0 = fins[0], float(points[0])
        lo, hi = percentile_interval(t, conf_level) if t.size else (math.nan, math.nan)
        blo, bhi = bca_interval(t, t0, L, conf_level) if t.size and L is not None else (math.nan, math.nan)
        se = float(np.std(t, ddof=1)) if t.size > 1 else math.nan
        return dict(estimate=t0, se=se, ci_low=lo, ci_high=hi, ci_low_bca=blo, ci_high_bca=bhi, n_replicates=n_rep,
                    ci_method="percentile", df=math.nan)
    u = [float(np.var(t, ddof=1)) if t.size > 1 else math.nan for t in fins]
    if not (np.all(np.isfinite(points)) and np.all(np.isfinite(u))):
        return dict(estimate=math.nan, se=math.nan, ci_low=math.nan, ci_high=math.nan, ci_low_bca=math.nan,
                    ci_high_bca=math.nan, n_replicates=n_rep, ci_method="rubin", df=math.nan)
    p = pool_rubin(points, u, df_complete, conf_level)
    return dict(estimate=p["qbar"], se=p["se"], ci_low=p["ci_low"], ci_high=p["ci_high"], ci_low_bca=math.nan,
                ci_high_bca=math.nan, n_replicates=n_rep, ci_method="rubin", df=p["df"], fmi=p["fmi"])


def _draw_of(fitted, draw, j):
    return [d[draw][:, j] if draw in d else np.full(1, np.nan) for d in fitted["draws"]]


def _point_of(fitted, draw, j):
    return [s[draw]["point"][j] if draw in s else math.nan for s in fitted["specs"]]


def stratum_outputs(fitted, j, label, g, ctx: Context):
    """Rows, table row, draws, CEAC/CEAF and EVPI of stratum ``label`` (indicator ``j`` of group ``g``)."""
    kind = g.kind
    is_phb = g.data["phb"].to_numpy() == 1
    n1_all, n0_all = int((g.indicators[:, j] == 1).sum()), int((~is_phb).sum())
    if fitted.get("failed"):
        why = f"not estimable: {fitted['failed']}"
        return {"rows": not_estimable_rows(label, kind, n1_all, n0_all, why, ctx),
                "table": table_row(label, kind, n1_all, n0_all, {}, ctx, note=why),
                "draws": None, "ceac": None, "evpi": None}
    specs0 = fitted["specs"][0]
    dfc = fitted["df_complete"]
    single = len(fitted["specs"]) == 1
    method = "ols_bootstrap" if single else "ols_mi_bootstrap"
    common = dict(stratum=label, comparison=_comparison(kind), horizon_years=ctx.horizon)
    effect_of = {"d_effect": ctx.eff, "d_ascot": "ascot_years", "d_qaly": "qaly"}
    rows, summary = [], {}
    for draw, outcome, _, _ in MODELS:
        s = specs0.get(draw)
        em = effect_of.get(draw, "")
        if s is None or not np.isfinite(s["point"][j]):
            why = "not estimable: " + ("column absent" if s is None else "too few people with it observed")
            rows.append(estimate_row("cea", outcome, method, math.nan, n_phb=None if s is None else s["n1"][j],
                                     n_control=None if s is None else s["n0"], effect_measure=em, **common,
                                     lambda_gbp=math.nan, note=why))
            continue
        st = _stat(_point_of(fitted, draw, j), _draw_of(fitted, draw, j), s["L"][:, j] if "L" in s else None,
                   ctx.conf_level, dfc)
        summary[outcome] = st
        want = ctx.B * len(fitted["specs"])
        note = "" if st["n_replicates"] == want else f"{want - st['n_replicates']} replicates not estimable, left out"
        rows.append(_row(outcome, method, st, s["n1"][j], s["n0"], em, common, math.nan, note))
    sc = specs0["d_cost"]
    n1, n0 = sc["n1"][j], sc["n0"]
    tC = np.concatenate(_draw_of(fitted, "d_cost", j))
    ceac_parts, evpi_rows, nmb_rows = [], [], []
    for measure in sorted(MEASURES, key=lambda x: x != ctx.headline):     # headline first
        draw = MEASURES[measure]
        if draw not in specs0 or not np.isfinite(specs0[draw]["point"][j]):
            continue
        pE, pC = _point_of(fitted, draw, j), _point_of(fitted, "d_cost", j)
        tE = np.concatenate(_draw_of(fitted, draw, j))
        both = np.isfinite(tE) & np.isfinite(tC)
        dE0, dC0 = summary[MODELS_OUT[draw]]["estimate"], summary["incremental_cost"]["estimate"]
        quad, icer = icer_quadrant(dE0, dC0)
        rq, _ = icer_quadrant(tE[both], tC[both])
        shares = {f"share_{q.split()[0].lower()}": float(np.mean(rq == q)) if rq.size else math.nan
                  for q in QUADRANTS[:4]}
        rows.append(estimate_row("cea", "icer", method, icer, n_phb=n1, n_control=n0, effect_measure=measure,
                                 **common, lambda_gbp=math.nan, quadrant=quad,
                                 icer_meaning=quadrant_meaning(quad, measure), n_replicates=int(both.sum()),
                                 **shares, note="ICER shown only for trade-offs; see NMB and CEAC for uncertainty"))
        summary[f"icer_{measure}"] = dict(estimate=icer, quadrant=quad)
        for lam in ctx.lambdas.get(measure, []):
            d_points = [lam * e - c for e, c in zip(pE, pC)]
            d_draws = [lam * e - c for e, c in zip(_draw_of(fitted, draw, j), _draw_of(fitted, "d_cost", j))]
            L = lam * specs0[draw]["L"][:, j] - sc["L"][:, j] if "L" in sc else None
            st = _stat(d_points, d_draws, L, ctx.conf_level, dfc)
            t = lam * tE[both] - tC[both]
            prob = float(np.mean(t > 0)) if t.size else math.nan
            ev = evpi_per_person(t)
            summary[f"nmb_{measure}_{lam:g}"] = dict(prob=prob, evpi=ev, **st)
            nmb_rows.append(_row("nmb", "bootstrap_nmb" if single else "mi_bootstrap_nmb", st, n1, n0, measure,
                                 common, lam, f"NMB = λ·Δ{measure} − Δcost over {ctx.horizon:g} year(s); "
                                 "P(cost-effective) = share of replicates with NMB > 0", prob_cost_effective=prob,
                                 evpi_per_person=ev, headline=measure == ctx.headline))
            evpi_rows.append({"stratum": label, "effect_measure": measure, "horizon_years": ctx.horizon,
                              "lambda_gbp": lam, "evpi_per_person": ev, "n_replicates": int(both.sum())})
        if both.any():
            prob, optimal, p_opt = ceac_ceaf(ctx.lam_grid, tE[both], tC[both])
        else:
            prob = p_opt = np.full(ctx.lam_grid.size, np.nan)
            optimal = np.full(ctx.lam_grid.size, "not estimable")
        ceac_parts.append(pd.DataFrame({"stratum": label, "effect_measure": measure, "lambda_gbp": ctx.lam_grid,
                                        "prob_cost_effective": prob, "optimal": optimal,
                                        "prob_optimal": p_opt}))
    rows.extend(nmb_rows)
    table = table_row(label, kind, n1, n0, summary, ctx, n_replicates=int(np.isfinite(tC).sum()))
    return {"rows": rows, "table": table, "draws": _published_draws(fitted, j, label, ctx.B),
            "ceac": pd.concat(ceac_parts, ignore_index=True) if ceac_parts else None,
            "evpi": pd.DataFrame(evpi_rows) if evpi_rows else None}


MODELS_OUT = {m[0]: m[1] for m in MODELS}


def _row(outcome, method, st, n1, n0, measure, common, lam, note, **extra):
    return estimate_row("cea", outcome, method, st["estimate"], st["se"], st["ci_low"], st["ci_high"],
                        n_phb=n1, n_control=n0, effect_measure=measure, **common, lambda_gbp=lam,
                        ci_method=st["ci_method"], ci_low_bca=st["ci_low_bca"], ci_high_bca=st["ci_high_bca"],
                        df=st["df"], n_replicates=st["n_replicates"], note=note, **extra)


def _published_draws(fitted, j, label, B):
    """B CE-plane draws per stratum: with m imputed datasets, replicate b comes from dataset b mod m
    (a systematic sample of the stacked m × B draws, so the table stays B rows per stratum)."""
    M = len(fitted["draws"])
    which = np.arange(B) % M
    dr = pd.DataFrame({"stratum": label, "replicate": np.arange(1, B + 1)})
    if M > 1:
        dr["imputation"] = which + 1
    for d in DRAW_COLUMNS:
        if d in fitted["draws"][0]:
            stacked = np.stack([fitted["draws"][k][d][:, j] for k in range(M)])    # (M, B)
            dr[d] = stacked[which, np.arange(B)]
        else:
            dr[d] = np.nan
    return dr


def not_estimable_rows(label, kind, n1, n0, why, ctx: Context):
    common = dict(comparison=_comparison(kind), horizon_years=ctx.horizon, note=why)
    em = {"d_effect": ctx.eff, "d_ascot": "ascot_years", "d_qaly": "qaly"}
    rows = [estimate_row("cea", outcome, "ols_bootstrap", math.nan, stratum=label, n_phb=n1, n_control=n0,
                         lambda_gbp=math.nan, effect_measure=em.get(d, ""), **common) for d, outcome, _, _ in MODELS]
    for measure, lams in ctx.lambdas.items():
        rows.append(estimate_row("cea", "icer", "ols_bootstrap", math.nan, stratum=label, n_phb=n1, n_control=n0,
                                 lambda_gbp=math.nan, quadrant="not estimable", effect_measure=measure, **common))
        rows += [estimate_row("cea", "nmb", "bootstrap_nmb", math.nan, stratum=label, n_phb=n1, n_control=n0,
                              lambda_gbp=lam, effect_measure=measure, headline=measure == ctx.headline, **common)
                 for lam in lams]
    return rows


def table_row(label, kind, n1, n0, summary, ctx: Context, note="", n_replicates=None) -> dict:
    row = {"stratum": label, "comparison": _comparison(kind), "effect_measure": ctx.eff,
           "horizon_years": ctx.horizon, "n_phb": n1, "n_control": n0, "n_replicates": n_replicates}
    for outcome in ("incremental_cost", "incremental_cost_direct", "incremental_cost_indirect",
                    "incremental_effect", "incremental_ascot_years", "incremental_qaly"):
        s = summary.get(outcome, {})
        row[outcome] = s.get("estimate", math.nan)
        row[f"{outcome}_ci_low"] = s.get("ci_low", math.nan)
        row[f"{outcome}_ci_high"] = s.get("ci_high", math.nan)
    for measure, lams in ctx.lambdas.items():
        ic = summary.get(f"icer_{measure}", {})
        row[f"icer_{measure}"] = ic.get("estimate", math.nan)
        row[f"quadrant_{measure}"] = ic.get("quadrant", "not estimable")
        for lam in lams:
            s = summary.get(f"nmb_{measure}_{lam:g}", {})
            key = f"nmb_{measure}_{lam:g}"
            row[key] = s.get("estimate", math.nan)
            row[f"{key}_ci_low"] = s.get("ci_low", math.nan)
            row[f"{key}_ci_high"] = s.get("ci_high", math.nan)
            row[f"prob_ce_{measure}_{lam:g}"] = s.get("prob", math.nan)
    row["note"] = note
    return row


_MISSING_TEXT = {
    "complete_case": "People analysed have the ASCOT score at every wave the horizon needs, total and baseline "
                     "indirect cost and the covariates observed (complete cases); the QALY and cost-component "
                     "models use the complete cases for their own columns among them.",
    "boot_mi": "Every participant alive at follow-up is analysed: each bootstrap replicate is imputed once by "
               "chained equations and re-estimated (bootstrap-then-impute, Brand et al. 2019); the point estimate "
               "is the mean over {m} imputations of the observed data and intervals are percentiles of the "
               "replicates.",
    "mi_boot": "Every participant alive at follow-up is analysed: missing scores, costs and numeric covariates are "
               "multiply imputed by chained equations ({m} datasets) and each imputed dataset is bootstrapped; "
               "estimates, SEs and intervals pool the datasets' estimates and bootstrap variances by Rubin's rules "
               "(impute-then-bootstrap, the approach Schomaker & Heumann 2018 found valid and efficient, and "
               "cheaper than re-imputing every replicate); probabilities, curves and EVPI use the stacked draws.",
}
_UNIT_TEXT = {
    "person": "people within arm (and within stratum in PHB-only models)",
    "site": "{cluster}s within arm (the cluster bootstrap; a PHB-only stratum's size then varies by replicate)",
    "two_stage": "{cluster}s within arm, then people within each drawn {cluster} (two-stage bootstrap, Davison & "
                 "Hinkley 1997; outcomes shrunk so the resampled between- and within-{cluster} variances match "
                 "their estimates, Ng, Grieve & Carpenter 2013)",
}


def method_text(ctx: Context, missing, m, unit, cluster, covariates, min_per_arm, bw, fw) -> str:
    covs = ", ".join(covariates) if covariates else "no covariates"
    lam = "; ".join(f"per {'QALY' if k == 'qaly' else 'ASCOT-year'} " + ", ".join(f"£{v:,.0f}" for v in vals)
                    for k, vals in ctx.lambdas.items())
    interval = ("Rubin's-rules t intervals (Barnard–Rubin degrees of freedom)" if missing == "mi_boot"
                else "percentile intervals (BCa alongside, acceleration from jackknife influence values in closed "
                     "form)")
    return (
        f"Effects over a horizon of {ctx.horizon:g} year(s) from the baseline wave: QALYs as the area under the "
        f"EQ-5D index curve across the plan's waves and ASCOT-years as the area under the {ctx.eff} curve, each "
        f"adjusted for its baseline value in the regression (Manca et al. 2005). Incremental effects and costs are "
        f"adjusted PHB − control differences from a seemingly unrelated regression of cost and effect on the PHB "
        f"indicator, the baseline value and {covs} (with the same regressors in each equation SUR equals "
        f"equation-by-equation OLS, which is how it is solved); costs (cost_total, cost_direct, cost_indirect) "
        f"adjust for cost_indirect_pre; {ctx.eff}_{fw} (adjusted for {ctx.eff}_{bw}) is shown as the follow-up "
        f"difference. Strata defined only for PHB holders (budget band, implementation model, their cross, "
        f"deployment) are compared with all controls through stratum-specific PHB indicators in one adjusted model "
        f"per variable (controls are the reference); strata defined for both arms (condition) are compared within "
        f"the stratum. " + _MISSING_TEXT[missing].format(m=m) + " "
        f"Uncertainty: non-parametric bootstrap ({ctx.B:,} replicates per dataset) resampling "
        + _UNIT_TEXT[unit].format(cluster=cluster) + f", cost and effect re-estimated together on every replicate; "
        f"{ctx.conf_level:.0%} {interval}. Net monetary benefit = λ·ΔE − ΔC for each effect measure at λ {lam}; "
        f"the headline is {'QALYs' if ctx.headline == 'qaly' else 'ASCOT-years'}. The probability cost-effective "
        f"is the share of replicates with positive net benefit; the acceptability frontier marks the option with "
        f"the highest expected net benefit; EVPI per person = E[max(NMB, 0)] − max(E[NMB], 0) over the draws. "
        f"ICERs are labelled by quadrant and shown only for trade-offs. Strata with fewer than {min_per_arm} people "
        f"in an arm are reported as not estimable."
    )
