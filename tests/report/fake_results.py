"""A realistic Results of a compare run, built by hand so the report can be tested without the estimators.

Numbers resemble the pilot (SCRQoL gain, lower GHQ-12, fewer inpatient days, higher direct cost); every
interval is computed from its estimate and SE with the t(G − 1) rule the estimators use, bootstrap draws
come from a seeded generator and the CEAC is computed from those draws.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from phb_eval.plan import load_plan, plan_to_dict
from phb_eval.results import Results, estimate_row, t_interval

G = 20  # sites
PHB_IDS = [f"PHB-{i:04d}" for i in range(1, 61)]
CONTROL_IDS = [f"CTL-{i:04d}" for i in range(1, 61)]
ALL_IDS = PHB_IDS + CONTROL_IDS
LAMBDAS = [20000.0, 25000.0, 30000.0, 35000.0]


def _row(analysis, outcome, method, est, se, n1, n0, stratum="all", df=G - 1, conf=0.95, **extra):
    lo, hi, p = t_interval(est, se, df, conf)
    return estimate_row(analysis, outcome, method, est, se, lo, hi, p, n_phb=n1, n_control=n0, stratum=stratum,
                        df=df, n_clusters=G, **extra)


def _ratio_row(analysis, outcome, method, log_rr, se, n1, n0, stratum="all"):
    lo, hi, p = t_interval(log_rr, se, G - 1, 0.95)
    return estimate_row(analysis, outcome, method, float(np.exp(log_rr)), se, float(np.exp(lo)), float(np.exp(hi)),
                        p, n_phb=n1, n_control=n0, stratum=stratum, df=G - 1, n_clusters=G)


def build_results() -> Results:
    rows = []
    # balance: SMDs before and after weighting
    for var, smd, smdw in [("age", 0.12, 0.02), ("sex=male", -0.05, -0.01), ("condition=chc", 0.21, 0.03),
                           ("condition=mental_health", -0.08, 0.0), ("scrqol_t0", -0.15, -0.04),
                           ("ghq12_likert_t0", 0.09, 0.01), ("eq5d_index_t0", -0.03, 0.02)]:
        rows.append(estimate_row("balance", var, "smd_unweighted", smd, n_phb=1171, n_control=1064))
        rows.append(estimate_row("balance", var, "smd_att", smdw, n_phb=1171, n_control=1064))
    # effects: every estimator for the primary outcomes, the default one for the rest
    effects = {"scrqol": (0.041, 0.011), "ascot_raw": (0.62, 0.21), "ghq12_likert": (-1.23, 0.47),
               "eq5d_index": (0.008, 0.014), "eq_vas": (1.9, 1.6), "carer_ascot_raw": (0.55, 0.30),
               "carer_health": (-0.11, 0.06)}
    for k, (outcome, (est, se)) in enumerate(effects.items()):
        methods = ["ancova_cr1_site", "ancova_mi_cr1_site", "did_cr1_site", "ancova_ipw_cr1_site"] \
            if outcome in ("scrqol", "ascot_raw", "ghq12_likert", "eq5d_index") else ["ancova_cr1_site"]
        for j, m in enumerate(methods):
            rows.append(_row("outcome", outcome, m, est * (1 + 0.05 * j), se * (1 + 0.03 * j), 980 - 7 * k,
                             890 - 5 * k))
    rows.append(_row("outcome", "ghq12_caseness", "ancova_rd_cr1_site", -0.052, 0.021, 951, 862))
    rows.append(_ratio_row("outcome", "ghq12_caseness", "logit_or_cr1_site", np.log(0.74), 0.12, 951, 862))
    rows.append(_row("outcome", "mortality", "ancova_rd_cr1_site", 0.021, 0.013, 1171, 1064))
    rows.append(_row("outcome", "scrqol", "unadjusted_t1", 0.052, 0.012, 980, 890, df=np.inf))
    rows.append(_row("outcome", "scrqol", "hedges_g_t1", 0.21, 0.05, 980, 890, df=np.inf))
    # service use: rate ratios
    for svc, lrr, se in [("inpatient_days", np.log(0.78), 0.09), ("ae_attendances", np.log(0.91), 0.07),
                         ("gp_consultations", np.log(0.97), 0.05)]:
        rows.append(_ratio_row("service_use", svc, "negbin_cr1_site", lrr, se, 1080, 990))
    rows.append(_row("service_use", "inpatient_days", "negbin_cr1_site_marginal_diff", -0.61, 0.25, 1080, 990))
    # costs (£ per person per year)
    for c, est, se in [("cost_direct", 2512.4, 410.0), ("cost_indirect", -812.7, 290.0), ("cost_total", 1699.7, 520.0)]:
        rows.append(_row("cost", c, "ols_cr1_site", est, se, 1080, 990))
    # subgroups: level rows and interaction tests (one level too small, as in real data)
    for var, levels in [("budget_band", {"<1000": (0.018, 0.014), ">=1000": (0.071, 0.016)}),
                        ("implementation_model", {"model1": (0.069, 0.015), "model2": (-0.012, 0.017)}),
                        ("condition", {"chc": (0.09, 0.03), "mental_health": (0.06, 0.025), "copd": (0.01, 0.03)})]:
        for lvl, (est, se) in levels.items():
            rows.append(_row("subgroup", "scrqol", "ancova_cr1_site", est, se, 480, 890, stratum=f"{var}={lvl}",
                             note="level-specific PHB indicator vs all controls, one adjusted model"))
        rows.append(estimate_row("subgroup", "scrqol", "interaction_wald_cr1_site",
                                 7.9 if var != "condition" else 3.1,
                                 p_value=0.0049 if var != "condition" else 0.21, stratum=var, n_phb=960,
                                 n_control=890, df=len(levels) - 1, n_clusters=G,
                                 note="Wald chi-square that the PHB effect is equal across levels"))
    rows.append(estimate_row("subgroup", "scrqol", "ancova_cr1_site", float("nan"), stratum="condition=stroke",
                             n_phb=6, n_control=9, note="not estimable: fewer than 10 people in an arm"))
    # cost-effectiveness from seeded bootstrap draws
    rng = np.random.default_rng(20120601)
    strata = {"all": (0.041, 1700.0), "budget_band=<1000": (0.018, 300.0), "budget_band=>=1000": (0.071, 3100.0),
              "implementation_model=model1": (0.069, 1500.0), "implementation_model=model2": (-0.012, 1900.0)}
    draws = []
    for s, (de, dc) in strata.items():
        e = rng.normal(de, 0.012, 400)
        c = rng.normal(dc, 450.0, 400)
        draws.append(pd.DataFrame({"stratum": s, "replicate": np.arange(1, 401), "delta_effect": e, "delta_cost": c}))
        rows.append(estimate_row("cea", "delta_cost", "bootstrap_nmb", dc, float(c.std(ddof=1)),
                                 *np.quantile(c, [0.025, 0.975]), stratum=s, n_phb=480, n_control=890))
        rows.append(estimate_row("cea", "delta_effect", "bootstrap_nmb", de, float(e.std(ddof=1)),
                                 *np.quantile(e, [0.025, 0.975]), stratum=s, n_phb=480, n_control=890))
        for lam in LAMBDAS:
            nmb = lam * e - c
            rows.append(estimate_row("cea", "nmb", "bootstrap_nmb", lam * de - dc, float(nmb.std(ddof=1)),
                                     *np.quantile(nmb, [0.025, 0.975]), stratum=s, n_phb=480, n_control=890,
                                     lambda_gbp=lam, prob_cost_effective=float((nmb > 0).mean())))
    draws = pd.concat(draws, ignore_index=True)
    grid = np.arange(0.0, 100001.0, 5000.0)
    ceac = pd.DataFrame([{"stratum": s, "lambda_gbp": lam,
                          "prob_cost_effective": float(((lam * d.delta_effect - d.delta_cost) > 0).mean())}
                         for s, d in draws.groupby("stratum", sort=False) for lam in grid])
    # budget impact
    bi = pd.DataFrame({"year": [1, 2, 3, 4, 5], "holders": [2800, 5600, 8400, 11200, 14000],
                       "direct_spend_gbp": [7.0e6, 14.0e6, 21.0e6, 28.0e6, 35.0e6],
                       "indirect_savings_gbp": [-2.3e6, -4.6e6, -6.8e6, -9.1e6, -11.4e6],
                       "net_impact_gbp": [4.7e6, 9.4e6, 14.2e6, 18.9e6, 23.6e6]})
    for r in bi.itertuples():
        rows.append(estimate_row("budget_impact", "net_impact", "projection", r.net_impact_gbp,
                                 stratum=f"year={r.year}"))

    res = Results()
    res.add(rows)
    res.tables["flow"] = pd.DataFrame({
        "stage": ["recruited", "died before follow-up", "lost to follow-up (alive, no follow-up answers)",
                  "followed up", "included by imputation (alive at follow-up)", "analysed, complete cases: scrqol",
                  "analysed, complete cases: carer_health"],
        "phb": [1171, 102, 89, 980, 1069, 980, 6], "control": [1064, 70, 104, 890, 994, 890, 3]})
    res.tables["balance"] = pd.DataFrame({
        "variable": ["age", "scrqol_t0", "condition=stroke"], "phb_n": [1171, 1103, 5],
        "phb_mean": [61.2, 0.612, 0.004], "phb_sd": [17.9, 0.21, np.nan],
        "control_n": [1064, 1010, 12], "control_mean": [59.1, 0.644, 0.011], "control_sd": [18.4, 0.20, np.nan],
        "smd": [0.12, -0.15, -0.08]})
    res.tables["cea_draws"] = draws
    res.tables["ceac"] = ceac
    res.tables["budget_impact"] = bi
    res.tables["score_summary"] = pd.DataFrame({"score": ["scrqol_t0", "scrqol_t1"], "n": [2113, 1870],
                                                "mean": [0.627, 0.651], "sd": [0.205, 0.198]})
    # two long names sharing their first 31 characters: the workbook must still have unique sheet names
    res.tables["service_use_model_comparison_inpatient_days"] = pd.DataFrame(
        {"model": ["negbin", "poisson"], "aic": [10234.5, 15877.1], "zeros_observed": [512, 512],
         "zeros_predicted": [498.2, 201.7]})
    res.tables["service_use_model_comparison_ae_attendances"] = pd.DataFrame(
        {"model": ["negbin", "poisson"], "aic": [5234.5, 5877.1], "zeros_observed": [900, 900],
         "zeros_predicted": [887.0, 712.9]})
    res.table_specs = {
        "flow": {"count_columns": ["phb", "control"]},
        "balance": {"count_columns": ["phb_n", "control_n"],
                    "mean_columns": {"phb_mean": "phb_n", "phb_sd": "phb_n",
                                     "control_mean": "control_n", "control_sd": "control_n"}},
        "cea_draws": {"disclose": False, "xlsx": False},
        "ceac": {"disclose": False},
        "budget_impact": {"disclose": False},
        "service_use_model_comparison_inpatient_days": {"disclose": False},
        "service_use_model_comparison_ae_attendances": {"disclose": False},
    }
    fig = Figure(figsize=(5, 3))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.fill_between(bi["year"], bi["net_impact_gbp"] * 0.8, bi["net_impact_gbp"] * 1.2, alpha=0.3)
    ax.plot(bi["year"], bi["net_impact_gbp"])
    ax.set_title("Net budget impact")
    res.figures["budget_impact_fan"] = fig
    res.warnings += ["data: participants.csv row 17 column 'age': value 130 for participant PHB-0017 is outside "
                     "16-110; read as missing",
                     "scrqol: 14 people answered fewer than 8 ASCOT items at follow-up"]
    res.skipped += ["carer_scrqol: no carer ASCOT weights file; carer_ascot_raw analysed instead"]
    plan = load_plan()
    res.meta.update({
        "inputs": {"cohort/participants.csv": hashlib.sha256(b"participants").hexdigest()},
        "plan": plan_to_dict(plan), "seed": plan.seed,
        "timings": {"validate": 0.41, "score": 0.22, "estimate": 3.9},
        "command": ["phb-eval", "compare", "cohort/participants.csv", "--out", "reports/run1"],
        "participant_ids": ALL_IDS,
    })
    return res
