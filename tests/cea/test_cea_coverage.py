"""Slow: on simulated pilots with site effects and outcomes and costs missing at random, the default CEA
(imputation + site bootstrap, Rubin's rules) covers the planted overall NMB per QALY and per ASCOT-year at
λ = £20,000 in ≥ 90% of 50 runs, and the net-benefit regression flags the planted high-budget flexible cell.
Small m and B (m = 5, B = 200) keep it to about a minute."""
import numpy as np
import pandas as pd
import pytest

from phb_eval.cea import cea

LAM = 20000.0
BASE, TOP = 0.02, 0.25            # planted follow-up gain: 0.25 for budgets >= £1,000 under model 1, else 0.02
COST = 800.0                      # planted extra cost of a budget


def _pilot(rng, n=800, sites=12):
    site = rng.integers(0, sites, n)
    phb = (rng.random(n) < 0.5).astype(int)
    band = np.where(phb == 1, rng.choice(["<1000", ">=1000"], n), None)
    model = np.where(phb == 1, rng.choice(["model1", "model2"], n), None)
    tau = phb * np.where((band == ">=1000") & (model == "model1"), TOP, BASE)
    us, uq, uc = rng.normal(0, 0.03, sites), rng.normal(0, 0.03, sites), rng.normal(0, 300, sites)
    s0, e0 = rng.uniform(0.3, 0.9, n), rng.uniform(0.2, 0.9, n)
    d = pd.DataFrame({
        "participant_id": [f"C{i:04d}" for i in range(n)], "phb": phb, "site": [f"S{s:02d}" for s in site],
        "sex": rng.choice(["female", "male"], n), "age": rng.normal(60, 12, n), "budget_band": band,
        "implementation_model": model, "scrqol_t0": s0, "scrqol_t1": 0.3 + 0.5 * s0 + us[site] + tau + rng.normal(0, 0.1, n),
        "eq5d_index_t0": e0, "eq5d_index_t1": 0.2 + 0.6 * e0 + uq[site] + tau / 2 + rng.normal(0, 0.12, n),
        "cost_indirect_pre": rng.gamma(2, 1000, n)})
    d["cost_total"] = 3000 + 0.3 * d["cost_indirect_pre"] + COST * phb + uc[site] + rng.normal(0, 1500, n)
    low = d["scrqol_t0"] < 0.5                                   # missing at random given the baseline
    d.loc[rng.random(n) < np.where(low, 0.3, 0.1), "scrqol_t1"] = np.nan
    d.loc[rng.random(n) < 0.15, "eq5d_index_t1"] = np.nan
    d.loc[rng.random(n) < 0.1, "cost_total"] = np.nan
    return d


@pytest.mark.slow
def test_intervals_cover_planted_nmb_and_interaction_flags_the_top_cell():
    mean_tau = 0.75 * BASE + 0.25 * TOP                           # over PHB holders (cells equally likely)
    truth = {"ascot_years": LAM * mean_tau / 2 - COST,            # AUC over a year of two waves = (s0 + s1)/2
             "qaly": LAM * mean_tau / 4 - COST}
    hits = {k: 0 for k in truth}
    flagged = top = 0
    runs = 50
    for seed in range(runs):
        d = _pilot(np.random.default_rng(seed))
        res = cea(d, ["age", "sex"], strata=["all"], B=200, m=5, lambda_qaly=[LAM], lambda_ascot=[LAM],
                  imputation={"iterations": 5}, rng=np.random.default_rng(1000 + seed), quiet=True)
        nmb = res.estimates[(res.estimates["outcome"] == "nmb") & (res.estimates["stratum"] == "all")]
        for _, r in nmb.iterrows():
            hits[r["effect_measure"]] += r["ci_low"] <= truth[r["effect_measure"]] <= r["ci_high"]
        tests = res.nbr_tests[res.nbr_tests["effect_measure"] == "ascot_years"].set_index("test")
        flagged += tests.loc["interaction", "p_value"] < 0.05
        cells = res.nbr[res.nbr["effect_measure"] == "ascot_years"].set_index("cell")["estimate"]
        top += cells.idxmax() == "budget_band=>=1000;implementation_model=model1"
    print(f"coverage {hits} of {runs}; top cell {top}, interaction flagged {flagged}")
    assert hits["ascot_years"] / runs >= 0.90 and hits["qaly"] / runs >= 0.90, hits
    assert top == runs and flagged / runs >= 0.90, (top, flagged)
