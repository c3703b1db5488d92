"""Helpers shared by the CEA tests: golden data loader, row lookup, a pilot-sized synthetic frame."""
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from phb_eval.cea import MEASURES

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
COVS = ["age", "sex", "condition"]
OUTCOME_OF = {"d_effect": "incremental_effect", "d_ascot": "incremental_ascot_years", "d_qaly": "incremental_qaly", "d_cost": "incremental_cost",
              "d_cost_direct": "incremental_cost_direct", "d_cost_indirect": "incremental_cost_indirect"}


def load_make_data():
    spec = importlib.util.spec_from_file_location("cea_make_data", GOLDEN / "cea_make_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def pick_row(est, stratum, outcome, lam=None, measure=None):
    sel = (est["stratum"] == stratum) & (est["outcome"] == outcome)
    if lam is not None:
        sel &= est["lambda_gbp"] == lam
    if measure is not None:
        sel &= est["effect_measure"] == measure
    hit = est[sel]
    assert len(hit) == 1, (stratum, outcome, lam)
    return hit.iloc[0]


def split(name):
    stat, stratum = name.split("|")
    return stat, stratum


def our_draws(res, stat, stratum):
    """Our per-replicate values and results row for a golden statistic name."""
    dr = res.draws[res.draws["stratum"] == stratum].sort_values("replicate")
    if stat.startswith("nmb_"):
        measure, lam = stat[4:].rsplit("_", 1)
        lam = float(lam)
        effect = dr[MEASURES[measure]].to_numpy()
        return lam * effect - dr["d_cost"].to_numpy(), pick_row(res.estimates, stratum, "nmb", lam, measure)
    return dr[stat].to_numpy(), pick_row(res.estimates, stratum, OUTCOME_OF[stat])


def cohort(rng, n=2235, sites=20, big=0.08, base=0.01):
    """A pilot-sized frame with the PHB effect on scrqol planted as ``base`` + ``big`` for budgets of
    £1,000 or more held under model 1, and PHB savings on indirect costs."""
    site = rng.integers(0, sites, n)
    phb = (rng.random(n) < 0.524).astype(int)
    budget = np.where(phb == 1, np.exp(rng.normal(7.0, 1.2, n)), np.nan)
    band = np.where(phb == 1, np.where(budget >= 1000, ">=1000", "<1000"), None)
    model1 = (rng.random((n, 3)) < 0.7).all(axis=1)
    impl = np.where(phb == 1, np.where(model1, "model1", "model2"), None)
    s0 = np.clip(rng.normal(0.62, 0.18, n), -0.17, 1)
    effect = phb * (base + big * ((band == ">=1000") & (impl == "model1")))
    pre = rng.gamma(1.2, 2500, n)
    direct = np.where(phb == 1, budget, rng.gamma(1.5, 1500, n))
    indirect = np.maximum(0, 0.7 * pre + rng.normal(0, 1500, n) - 300 * phb)
    e0 = np.clip(rng.normal(0.55, 0.25, n), -0.59, 1)
    df = pd.DataFrame({
        "phb": phb, "site": [f"S{s:02d}" for s in site],
        "condition": rng.choice(["chc", "copd", "diabetes", "mental_health", "neurological", "stroke"], n),
        "sex": rng.choice(["female", "male"], n), "age": rng.normal(62, 15, n), "budget_band": band,
        "implementation_model": impl,
        "deployment": np.where(phb == 1, rng.choice(["direct_payment", "notional", "third_party"], n), None),
        "scrqol_t0": s0, "scrqol_t1": 0.25 + 0.6 * s0 + effect + rng.normal(0, 0.12, n),
        "eq5d_index_t0": e0, "qaly": 0.5 * (e0 + 0.2 + 0.6 * e0 + rng.normal(0, 0.15, n)),
        "cost_indirect_pre": pre, "cost_direct": direct, "cost_indirect": indirect, "cost_total": direct + indirect})
    df.loc[rng.random(n) < 0.1, "scrqol_t1"] = np.nan
    return df
