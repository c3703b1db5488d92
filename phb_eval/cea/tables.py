"""Output assembly: results rows, the one-row-per-stratum table, draws, CEAC and the methods paragraph."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..results import estimate_row
from .decision import QUADRANTS, icer_quadrant, quadrant_meaning
from .intervals import bca_interval, percentile_interval
from .strata import comparison as _comparison

__all__ = ["stratum_outputs", "not_estimable_rows", "table_row", "method_text", "MODELS", "DRAW_COLUMNS"]

# draw name, outcome row name, follow-up column (template), baseline column (template); {e}=effect, {b}=baseline wave
MODELS = (
    ("d_effect", "incremental_effect", "{e}_{f}", "{e}_{b}"),
    ("d_qaly", "incremental_qaly", "qaly", "eq5d_index_{b}"),
    ("d_cost", "incremental_cost", "cost_total", "cost_indirect_pre"),
    ("d_cost_direct", "incremental_cost_direct", "cost_direct", "cost_indirect_pre"),
    ("d_cost_indirect", "incremental_cost_indirect", "cost_indirect", "cost_indirect_pre"),
)
DRAW_COLUMNS = [m[0] for m in MODELS]


def _interval_set(t, t0, L, conf_level):
    fin = np.isfinite(t)
    lo, hi = percentile_interval(t[fin], conf_level) if fin.any() else (math.nan, math.nan)
    blo, bhi = bca_interval(t[fin], t0, L, conf_level) if fin.any() else (math.nan, math.nan)
    se = float(np.std(t[fin], ddof=1)) if fin.sum() > 1 else math.nan
    return dict(se=se, ci_low=lo, ci_high=hi, ci_low_bca=blo, ci_high_bca=bhi, n_replicates=int(fin.sum()))


def stratum_outputs(fitted, j, label, g, eff, lambdas, lam_grid, conf_level, B):
    kind = g.kind
    is_phb = g.data["phb"].to_numpy() == 1
    n1_all, n0_all = int((g.indicators[:, j] == 1).sum()), int((~is_phb).sum())
    if fitted.get("failed"):
        why = f"not estimable: {fitted['failed']}"
        return {"rows": not_estimable_rows(label, kind, n1_all, n0_all, why, eff, lambdas),
                "table": table_row(label, kind, eff, n1_all, n0_all, {}, lambdas, note=why),
                "draws": None, "ceac": None}
    specs, draws = fitted["specs"], fitted["draws"]
    common = dict(stratum=label, effect_measure=eff, comparison=_comparison(kind), ci_method="percentile")
    rows, summary = [], {}
    for draw, outcome, _, _ in MODELS:
        s = specs.get(draw)
        if s is None or not np.isfinite(s["point"][j]):
            why = "not estimable: " + ("column absent" if s is None else "too few people with it observed")
            rows.append(estimate_row("cea", outcome, "ols_bootstrap", math.nan,
                                     n_phb=None if s is None else s["n1"][j], n_control=None if s is None else s["n0"],
                                     **common,
                                     lambda_gbp=math.nan, note=why))
            continue
        t = draws[draw][:, j]
        iv = _interval_set(t, s["point"][j], s["L"][:, j], conf_level)
        summary[outcome] = dict(estimate=float(s["point"][j]), **iv)
        note = "" if iv["n_replicates"] == B else f"{B - iv['n_replicates']} replicates not estimable, left out"
        rows.append(estimate_row("cea", outcome, "ols_bootstrap", s["point"][j], iv["se"], iv["ci_low"],
                                 iv["ci_high"], n_phb=s["n1"][j], n_control=s["n0"],
                                 **common, lambda_gbp=math.nan,
                                 ci_low_bca=iv["ci_low_bca"], ci_high_bca=iv["ci_high_bca"],
                                 n_replicates=iv["n_replicates"], note=note))
    se_, sc = specs["d_effect"], specs["d_cost"]
    dE0, dC0 = float(se_["point"][j]), float(sc["point"][j])
    tE, tC = draws["d_effect"][:, j], draws["d_cost"][:, j]
    both = np.isfinite(tE) & np.isfinite(tC)
    tE, tC = tE[both], tC[both]
    LE, LC = se_["L"][:, j], sc["L"][:, j]
    n1, n0 = se_["n1"][j], se_["n0"]
    quad, icer = icer_quadrant(dE0, dC0)
    rq, _ = icer_quadrant(tE, tC)
    shares = {f"share_{q.split()[0].lower()}": float(np.mean(rq == q)) if rq.size else math.nan
              for q in QUADRANTS[:4]}
    rows.append(estimate_row("cea", "icer", "ols_bootstrap", icer, n_phb=n1, n_control=n0,
                             **common, lambda_gbp=math.nan,
                             quadrant=quad, icer_meaning=quadrant_meaning(quad, eff), n_replicates=int(both.sum()),
                             **shares, note="ICER shown only for trade-offs; see NMB and CEAC for uncertainty"))
    summary["icer"] = dict(estimate=icer, quadrant=quad)
    for lam in lambdas:
        t = lam * tE - tC
        t0 = lam * dE0 - dC0
        iv = _interval_set(t, t0, lam * LE - LC, conf_level)
        prob = float(np.mean(t > 0)) if t.size else math.nan
        summary[f"nmb_{lam:g}"] = dict(estimate=t0, prob=prob, **iv)
        rows.append(estimate_row("cea", "nmb", "bootstrap_nmb", t0, iv["se"], iv["ci_low"], iv["ci_high"],
                                 n_phb=n1, n_control=n0, **common,
                                 lambda_gbp=lam, prob_cost_effective=prob, ci_low_bca=iv["ci_low_bca"],
                                 ci_high_bca=iv["ci_high_bca"], n_replicates=iv["n_replicates"],
                                 note=f"NMB = λ·Δ{eff} − Δcost; P(cost-effective) = share of replicates with NMB > 0"))
    dr = pd.DataFrame({"stratum": label, "replicate": np.arange(1, draws["d_effect"].shape[0] + 1)})
    for d in DRAW_COLUMNS:
        dr[d] = draws[d][:, j] if d in draws else np.nan
    if both.any():
        prob = (lam_grid[:, None] * tE[None, :] - tC[None, :] > 0).mean(axis=1)
    else:
        prob = np.full(lam_grid.size, np.nan)
    ceac = pd.DataFrame({"stratum": label, "lambda_gbp": lam_grid, "prob_cost_effective": prob})
    table = table_row(label, kind, eff, n1, n0, summary, lambdas, n_replicates=int(both.sum()))
    return {"rows": rows, "table": table, "draws": dr, "ceac": ceac}


def not_estimable_rows(label, kind, n1, n0, why, eff, lambdas):
    common = dict(effect_measure=eff, comparison=_comparison(kind), ci_method="percentile", note=why)
    rows = [estimate_row("cea", outcome, "ols_bootstrap", math.nan, stratum=label, n_phb=n1, n_control=n0,
                         lambda_gbp=math.nan, **common) for _, outcome, _, _ in MODELS]
    rows.append(estimate_row("cea", "icer", "ols_bootstrap", math.nan, stratum=label, n_phb=n1, n_control=n0,
                             lambda_gbp=math.nan, quadrant="not estimable", **common))
    rows += [estimate_row("cea", "nmb", "bootstrap_nmb", math.nan, stratum=label, n_phb=n1, n_control=n0,
                          lambda_gbp=lam, **common) for lam in lambdas]
    return rows


def table_row(label, kind, eff, n1, n0, summary, lambdas, note="", n_replicates=None) -> dict:
    row = {"stratum": label, "comparison": _comparison(kind), "effect_measure": eff, "n_phb": n1, "n_control": n0,
           "n_replicates": n_replicates}
    for outcome in ("incremental_cost", "incremental_cost_direct", "incremental_cost_indirect",
                    "incremental_effect", "incremental_qaly"):
        s = summary.get(outcome, {})
        row[outcome] = s.get("estimate", math.nan)
        row[f"{outcome}_ci_low"] = s.get("ci_low", math.nan)
        row[f"{outcome}_ci_high"] = s.get("ci_high", math.nan)
    ic = summary.get("icer", {})
    row["icer"] = ic.get("estimate", math.nan)
    row["quadrant"] = ic.get("quadrant", "not estimable")
    row["icer_meaning"] = quadrant_meaning(row["quadrant"], eff)
    for lam in lambdas:
        s = summary.get(f"nmb_{lam:g}", {})
        row[f"nmb_{lam:g}"] = s.get("estimate", math.nan)
        row[f"nmb_{lam:g}_ci_low"] = s.get("ci_low", math.nan)
        row[f"nmb_{lam:g}_ci_high"] = s.get("ci_high", math.nan)
        row[f"prob_ce_{lam:g}"] = s.get("prob", math.nan)
    row["note"] = note
    return row


def method_text(eff, B, cluster_bootstrap, cluster, conf_level, lambdas, covariates, min_per_arm, bw, fw) -> str:
    unit = (f"{cluster}s within arm" if cluster_bootstrap
            else "people within arm (and within stratum in PHB-only models)")
    lam = ", ".join(f"£{v:,.0f}" for v in lambdas)
    covs = ", ".join(covariates) if covariates else "no covariates"
    return (
        f"Incremental effects and costs are adjusted PHB − control differences from ordinary least squares: "
        f"{eff}_{fw} on the PHB indicator, {eff}_{bw} and {covs}; qaly on the indicator, eq5d_index_{bw} and the "
        f"same covariates; cost_total, cost_direct and cost_indirect on the indicator, cost_indirect_pre and the "
        f"same covariates. Strata defined only for PHB holders (budget band, implementation model, their cross, "
        f"deployment) are compared with all controls through stratum-specific PHB indicators in one adjusted model "
        f"per variable (controls are the reference); strata defined for both arms (condition) are compared within "
        f"the stratum. People analysed have the effect at both waves, total and baseline indirect cost and the "
        f"covariates observed; the QALY and cost-component models use the complete cases for their own columns "
        f"among them. Uncertainty: non-parametric bootstrap ({B:,} replicates) resampling {unit}, every model "
        f"re-estimated on every replicate; {conf_level:.0%} percentile intervals (BCa alongside, acceleration from "
        f"jackknife influence values in closed form). Net monetary benefit = λ·Δ{eff} − Δcost at λ = {lam} per "
        f"unit of {eff}; the probability cost-effective is the share of replicates with positive net benefit. "
        f"ICERs are labelled by quadrant and shown only for trade-offs. Strata with fewer than {min_per_arm} people "
        f"in an arm are reported as not estimable."
    )
