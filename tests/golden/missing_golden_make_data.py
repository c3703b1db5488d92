"""Writes tests/golden/missing_golden_data.csv: a small cohort with missing scores and m = 5 completed copies,
stacked in mice's long format (.imp = 0 is the incomplete data, .imp = 1..5 the imputations; .id = row).

The imputations are a FIXED input: missing_golden.R pools them with mice::pool / pool.scalar and
tests/test_missing.py pools the same rows with phb_eval, so both sides pool identical data.
Run from the repository root: python tests/golden/missing_golden_make_data.py
"""
from pathlib import Path

import numpy as np
import pandas as pd

from phb_eval.missing import impute_chained

rng = np.random.default_rng(4242)
n, sites = 260, 8
site = rng.integers(0, sites, n)
phb = (rng.random(n) < 0.5).astype(int)
condition = rng.choice(["chc", "copd", "mental_health"], n)
sex = rng.choice(["female", "male"], n)
age = np.round(rng.normal(60, 12, n), 1)
site_eff = rng.normal(0, 1.0, sites)[site]
y0 = 15 + site_eff + 0.03 * (age - 60) + rng.normal(0, 3, n)
y1 = 5 + 0.65 * y0 + 1.2 * phb + 0.5 * site_eff + rng.normal(0, 2, n)
y0[rng.random(n) < 0.12] = np.nan
y1[rng.random(n) < 0.15 + 0.1 * phb] = np.nan
df = pd.DataFrame({"site": [f"S{s}" for s in site], "phb": phb, "condition": condition, "sex": sex, "age": age,
                   "y_t0": np.round(y0, 4), "y_t1": np.round(y1, 4)})
completed = impute_chained(df, ["y_t0", "y_t1"], 5, np.random.default_rng(99), iterations=5,
                           predictors=["phb", "site", "age", "sex", "condition"])
long = pd.concat([frame.assign(**{".imp": k, ".id": np.arange(1, n + 1)})
                  for k, frame in enumerate([df, *completed])], ignore_index=True)
long.to_csv(Path(__file__).with_name("missing_golden_data.csv"), index=False)
