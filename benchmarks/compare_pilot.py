"""Speed of the multiply-imputed ANCOVA on a pilot-sized cohort: phb-eval vs R (mice + lm + vcovCL + pool).

The work timed on each side (same data, same settings): multiple imputation by chained equations with
predictive mean matching (m imputations, 10 cycles; arm, site, age, sex and condition as predictors) of
the baseline and follow-up score of each outcome in turn (default: the four primary outcomes), then per
outcome and imputation an ANCOVA with CR1 errors by site, pooled by Rubin's rules (Barnard–Rubin df with
complete-data df G − 1). Times exclude interpreter start-up and package loading. The cohort mirrors the
pilot: 2,235 people, 20 sites, about 1,171 PHB holders, site effects and missing follow-up (MAR).

Then, unless ``--no-full``, the full default compare at pilot size end to end: a fresh
``phb-eval compare`` process on the simulated pilot (CSV cohort and events, default plan: m = 20,
B = 5,000, every stratum), from start-up to the last output written, with each stage's time (read from
the one line per stage it logs on stderr).

Usage (from the repository root):
    python benchmarks/compare_pilot.py [--m 20] [--iterations 10] [--scores 4] [--seed 1] [--no-r] [--no-full]
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from phb_eval import outcomes
from phb_eval.missing import impute_chained

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))   # national_scale.run_compare
COVARIATES = ["age", "sex", "condition"]
PREDICTORS = ["phb", "site", *COVARIATES]
# score -> (mean, sd) of the baseline value: rough pilot-like scales
SCORES = {"scrqol": (0.65, 0.2), "ascot_raw": (16.0, 4.0), "ghq12_likert": (14.0, 6.0), "eq5d_index": (0.55, 0.3)}


def pilot_cohort(rng: np.random.Generator, n: int = 2235, sites: int = 20, n_phb: int = 1171,
                 scores=tuple(SCORES)) -> pd.DataFrame:
    """A pilot-sized analysis frame with site effects, confounded arms and MAR missing follow-up."""
    site = rng.integers(0, sites, n)
    phb = np.zeros(n, dtype=int)
    phb[rng.choice(n, n_phb, replace=False)] = 1
    condition = rng.choice(["chc", "copd", "diabetes", "mental_health", "neurological", "stroke"], n)
    sex = rng.choice(["female", "male"], n)
    age = np.round(rng.normal(62, 15, n), 1)
    u = rng.normal(0, 0.3, sites)[site]
    frame = {"participant_id": [f"B{i:05d}" for i in range(n)], "site": [f"S{s:02d}" for s in site], "phb": phb,
             "condition": condition, "sex": sex, "age": age}
    for name in scores:
        mu, sd = SCORES[name]
        z0 = rng.normal(0, 1, n) + u
        z1 = 0.6 * z0 + 0.15 * phb + 0.4 * u + rng.normal(0, 0.7, n)
        y0, y1 = mu + sd * z0, mu + sd * z1
        y0[rng.random(n) < 0.08] = np.nan
        y1[rng.random(n) < 1 / (1 + np.exp(-(-1.5 + 0.3 * phb - 0.4 * z0)))] = np.nan
        frame[f"{name}_t0"], frame[f"{name}_t1"] = y0, y1
    return pd.DataFrame(frame)


def run_python(df: pd.DataFrame, scores, m: int, iterations: int, seed: int):
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    rows = []
    for s in scores:  # one imputation model per outcome, as the pipeline does
        completed = impute_chained(df, [f"{s}_t0", f"{s}_t1"], m, rng, iterations=iterations, method="pmm",
                                   predictors=PREDICTORS)
        rows.append(outcomes.ancova_mi(completed, s, COVARIATES))
    return time.perf_counter() - start, pd.concat(rows, ignore_index=True).set_index("outcome")


def run_full_compare() -> dict:
    """``phb-eval compare`` (default plan) on the simulated pilot in a fresh process: wall time including
    start-up and every output, peak memory, seconds per stage."""
    from national_scale import run_compare

    from phb_eval.simulate import simulate_pilot, write_simulation
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_simulation(simulate_pilot(seed=2012, events=True), tmp)
        return run_compare(paths["cohort"], paths["events"])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--m", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--scores", type=int, default=4, help="how many outcome scores in the set (1-4)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-r", action="store_true", help="time phb-eval only")
    ap.add_argument("--no-full", action="store_true", help="skip the end-to-end compare on the simulated pilot")
    args = ap.parse_args(argv)
    scores = list(SCORES)[: max(1, min(args.scores, len(SCORES)))]
    df = pilot_cohort(np.random.default_rng(args.seed), scores=scores)
    py_seconds, py_rows = run_python(df, scores, args.m, args.iterations, args.seed)
    print(f"cohort: {len(df)} people, {df['site'].nunique()} sites, {int(df['phb'].sum())} PHB; "
          f"scores {scores}; m = {args.m}, {args.iterations} iterations")
    import os
    print(f"cores: {len(os.sched_getaffinity(0))} usable of {os.cpu_count()}")
    print(f"phb-eval: {py_seconds:8.2f} s")
    if not args.no_full:
        full = run_full_compare()
        print(f"full default compare on the simulated pilot (2,235 people, events; m = 20, B = 5,000, every "
              f"stratum), end to end: {full['wall']:.1f} s, peak memory {full['peak_mb']:,.0f} MB")
        for name, sec in sorted(full["stages"].items(), key=lambda kv: -kv[1]):
            if sec >= 0.05:
                print(f"    {name:<32}{sec:8.2f} s")
    r_result = None
    if not args.no_r and shutil.which("Rscript"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "pilot.csv"
            df.to_csv(path, index=False)
            proc = subprocess.run(["Rscript", str(HERE / "compare_pilot.R"), str(path), str(args.m),
                                   str(args.iterations), *scores], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"R run failed:\n{proc.stderr}", file=sys.stderr)
        else:
            r_result = json.loads(proc.stdout.strip().splitlines()[-1])
    elif not args.no_r:
        print("Rscript not found: R side skipped")
    if r_result is not None:
        r_seconds = float(r_result["seconds"])
        print(f"R (mice + lm + vcovCL + pool): {r_seconds:8.2f} s")
        print(f"ratio R / phb-eval: {r_seconds / py_seconds:.1f}x")
        print(f"{'score':<14}{'phb-eval est':>14}{'se':>10}{'R est':>12}{'se':>10}")
        for s in scores:
            r = r_result["estimates"][s]
            print(f"{s:<14}{py_rows.loc[s, 'estimate']:>14.4f}{py_rows.loc[s, 'se']:>10.4f}"
                  f"{r['estimate']:>12.4f}{r['se']:>10.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
