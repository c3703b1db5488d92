"""Speed of the cost-effectiveness bootstrap at the pilot's size: phb-eval's batched bootstrap vs a naive
refit loop (statsmodels OLS per replicate) and vs R's ``boot`` doing the same regression pair.

Work per replicate, "all strata": every model group of the default plan (overall; budget band,
implementation model, their cross and deployment as one indicator model each; six condition subsets),
each refitting six OLS models (effect, ASCOT-years, QALY, total, direct and indirect cost). "Default
plan": every living person with holes multiply imputed (m = 20), the site bootstrap on each imputed dataset
(unit-level moments: one small matrix product per replicate block), all strata, Rubin's rules. "Pair": the overall
stratum only, refitting the effect model and the total-cost model (what the R script times). Cohort:
2,235 people, 20 sites, ~52% PHB, covariates age, sex and condition (7 design columns with intercept,
PHB indicator and baseline). phb-eval times include everything ``cea()`` does (resampling, refits,
intervals, CEAC, tables); naive and R times are for the refits only and are extrapolated from a subset
of replicates. Times exclude interpreter start-up and package loading.

Usage (from the repository root):
    python benchmarks/cea_bootstrap.py [--B 5000] [--naive-reps 40] [--r-reps 500] [--seed 1] [--no-r]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm

from phb_eval.cea import bootstrap_indices, cea, cea_groups, stratum_streams
from phb_eval.outcomes import design_matrix

HERE = Path(__file__).parent
COVARIATES = ["age", "sex", "condition"]
STRATA = ["all", "budget_band", "implementation_model", "budget_band:implementation_model", "condition",
          "deployment"]
MODELS = [("scrqol_t1", "scrqol_t0"), ("qaly", "eq5d_index_t0"), ("cost_total", "cost_indirect_pre"),
          ("cost_direct", "cost_indirect_pre"), ("cost_indirect", "cost_indirect_pre")]


def pilot_cohort(rng: np.random.Generator, n: int = 2235, sites: int = 20) -> pd.DataFrame:
    """A pilot-sized analysis frame with budgets, flexibility, scores, QALYs and costs."""
    site = rng.integers(0, sites, n)
    phb = (rng.random(n) < 0.524).astype(int)
    budget = np.where(phb == 1, np.exp(rng.normal(7.0, 1.2, n)), np.nan)
    band = np.where(phb == 1, np.where(budget >= 1000, ">=1000", "<1000"), None)
    model1 = (rng.random((n, 3)) < 0.7).all(axis=1)
    impl = np.where(phb == 1, np.where(model1, "model1", "model2"), None)
    s0 = np.clip(rng.normal(0.62, 0.18, n), -0.17, 1)
    effect = phb * (0.01 + 0.08 * ((band == ">=1000") & (impl == "model1")))
    e0 = np.clip(rng.normal(0.55, 0.25, n), -0.59, 1)
    pre = rng.gamma(1.2, 2500, n)
    direct = np.where(phb == 1, budget, rng.gamma(1.5, 1500, n))
    indirect = np.maximum(0, 0.7 * pre + rng.normal(0, 1500, n) - 300 * phb)
    df = pd.DataFrame({
        "phb": phb, "site": [f"S{s:02d}" for s in site],
        "condition": rng.choice(["chc", "copd", "diabetes", "mental_health", "neurological", "stroke"], n),
        "sex": rng.choice(["female", "male"], n), "age": np.round(rng.normal(62, 15, n), 1),
        "budget_band": band, "implementation_model": impl,
        "deployment": np.where(phb == 1, rng.choice(["direct_payment", "notional", "third_party"], n), None),
        "scrqol_t0": s0, "scrqol_t1": 0.25 + 0.6 * s0 + effect + rng.normal(0, 0.12, n),
        "eq5d_index_t0": e0, "qaly": 0.5 * (e0 + 0.2 + 0.6 * e0 + rng.normal(0, 0.15, n)),
        "cost_indirect_pre": pre, "cost_direct": direct, "cost_indirect": indirect, "cost_total": direct + indirect})
    df.loc[rng.random(n) < 0.1, "scrqol_t1"] = np.nan
    return df


def time_ours(df, B, seed, strata, pair_only=False, **kw):
    """Complete cases and the person bootstrap by default (what the naive loop and R time)."""
    data = df.drop(columns=["qaly", "cost_direct", "cost_indirect"]) if pair_only else df
    kw = {"missing": "complete_case", "bootstrap_unit": "person", **kw}
    start = time.perf_counter()
    res = cea(data, COVARIATES, strata=strata, B=B, rng=np.random.default_rng(seed), quiet=True, **kw)
    return time.perf_counter() - start, res


def time_full(df, B, m, seed):
    """The plan's default CEA: every living person, m imputations, site bootstrap, all strata."""
    holes = df.copy()
    rng = np.random.default_rng(seed + 1)
    for col, share in (("cost_indirect", 0.08), ("eq5d_index_t0", 0.05), ("qaly", 0.12)):
        holes.loc[rng.random(len(df)) < share, col] = np.nan
    holes["cost_total"] = holes["cost_direct"] + holes["cost_indirect"]
    holes["participant_id"] = [f"P{i:05d}" for i in range(len(df))]
    start = time.perf_counter()
    res = cea(holes, COVARIATES, strata=STRATA, B=B, m=m, missing="mi_boot", bootstrap_unit="site",
              rng=np.random.default_rng(seed), quiet=True)
    return time.perf_counter() - start, res


def time_naive(df, reps, seed):
    """statsmodels OLS refitted per replicate, per model group and model (designs prebuilt: generous)."""
    groups = cea_groups(df, COVARIATES, strata=STRATA)
    streams = stratum_streams(np.random.default_rng(seed))
    prepared = []
    for g in groups:
        data = df.loc[g["index"]]
        covs = [c for c in COVARIATES if not (g["kind"] == "within" and g["key"].startswith(c + "="))]
        C = design_matrix(data, covs).to_numpy(float)
        if g["kind"] == "phb_only":
            parts = g["key"].split(":")
            label = data[parts].astype(str).apply(lambda r: ";".join(f"{p}={v}" for p, v in zip(parts, r)), axis=1)
            ind = np.column_stack([((data["phb"] == 1) & (label == lb)).to_numpy(float) for lb in g["labels"]])
        else:
            ind = data[["phb"]].to_numpy(float)
        designs = []
        for y, base in MODELS:
            X = np.column_stack([C, ind, data[base].to_numpy(float)])
            yv = data[y].to_numpy(float)
            ok = np.isfinite(yv) & np.isfinite(X).all(axis=1)
            designs.append((X, yv, ok))
        idx = bootstrap_indices(g["resample"], reps, streams(g["key"]))
        prepared.append((designs, idx))
    start = time.perf_counter()
    for b in range(reps):
        for designs, idx in prepared:
            rows = idx[b]
            for X, yv, ok in designs:
                r = rows[ok[rows]]
                sm.OLS(yv[r], X[r]).fit()
    return time.perf_counter() - start


def time_r(df, reps, seed):
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cohort.csv"
        df.to_csv(path, index=False)
        out = subprocess.run(["Rscript", str(HERE / "cea_bootstrap.R"), str(path), str(reps), str(seed)],
                             capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--B", type=int, default=5000)
    ap.add_argument("--naive-reps", type=int, default=40)
    ap.add_argument("--r-reps", type=int, default=500)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--m", type=int, default=20, help="imputed datasets in the full (default-plan) scenario")
    ap.add_argument("--no-r", action="store_true")
    args = ap.parse_args(argv)
    df = pilot_cohort(np.random.default_rng(args.seed))
    n_groups = len(cea_groups(df, COVARIATES, strata=STRATA))
    print(f"cohort: {len(df):,} people, {int(df['phb'].sum()):,} PHB; {n_groups} model groups for the default strata")

    t_all, res = time_ours(df, args.B, args.seed, STRATA)
    t_pair, _ = time_ours(df, args.B, args.seed, ["all"], pair_only=True)
    t_full, _ = time_full(df, args.B, args.m, args.seed)
    t_naive = time_naive(df, args.naive_reps, args.seed)
    r = None if args.no_r else time_r(df, args.r_reps, args.seed)

    ours_all = args.B / t_all
    ours_pair = args.B / t_pair
    naive_all = args.naive_reps / t_naive
    rows = [("phb-eval batched, all strata (6 models x %d groups)" % n_groups, args.B, t_all, ours_all, 1.0),
            ("naive statsmodels loop, all strata", args.naive_reps, t_naive, naive_all, ours_all / naive_all),
            ("phb-eval batched, overall stratum, effect+cost pair", args.B, t_pair, ours_pair, 1.0),
            (f"default plan: MI m={args.m} + site bootstrap, all strata", args.B * args.m, t_full,
             args.B * args.m / t_full, 1.0)]
    if r is not None:
        r_rate = r["reps"] / r["seconds"]
        rows.append(("R boot + lm, overall stratum, effect+cost pair", r["reps"], r["seconds"], r_rate,
                     ours_pair / r_rate))
    print(f"{'scenario':55s} {'reps':>6s} {'seconds':>9s} {'reps/s':>10s} {'phb-eval x':>10s}")
    for name, reps, secs, rate, ratio in rows:
        print(f"{name:55s} {reps:6d} {secs:9.2f} {rate:10.1f} {ratio:10.1f}")
    print(f"full CEA as the default plan runs it (imputation m = {args.m}, B = {args.B:,} per dataset, site "
          f"bootstrap, all strata): {t_full:.1f} s")
    print(f"time for {args.B:,} replicates, all strata: phb-eval {t_all:.1f} s; naive loop "
          f"{args.B / naive_all:.0f} s (extrapolated)"
          + (f"; R boot, pair only {args.B / r_rate:.0f} s (extrapolated)" if r is not None else ""))
    return res


if __name__ == "__main__":
    main()
