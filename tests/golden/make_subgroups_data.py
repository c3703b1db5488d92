"""Writes tests/golden/subgroups_data.csv: a fixed cohort with planted subgroup heterogeneity.

Run from the repository root: python tests/golden/make_subgroups_data.py
"""
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.default_rng(7)
n, sites = 600, 12
site = rng.integers(0, sites, n)
phb = (rng.random(n) < 0.5).astype(int)
condition = rng.choice(["chc", "copd", "mental_health"], n)
sex = rng.choice(["female", "male"], n)
age = rng.normal(60, 12, n).round(1)
band = np.where(phb == 1, rng.choice(["<1000", ">=1000"], n), None)
site_eff = rng.normal(0, 1.0, sites)[site]
y0 = rng.normal(16, 3, n) + site_eff
effect = np.where(band == ">=1000", 1.5, np.where(band == "<1000", -0.5, 0.0))
effect = effect + np.where((phb == 1) & (condition == "chc"), 1.0, 0.0)
y1 = 4 + 0.7 * y0 + 0.02 * age + 0.5 * (sex == "male") + effect + site_eff * 0.5 + rng.normal(0, 2, n)
y1[rng.random(n) < 0.05] = np.nan
df = pd.DataFrame({"participant_id": [f"P{i:04d}" for i in range(n)], "site": [f"S{s:02d}" for s in site],
                   "phb": phb, "condition": condition, "sex": sex, "age": age, "budget_band": band,
                   "ascot_raw_t0": y0.round(3), "ascot_raw_t1": np.round(y1, 3)})
df.to_csv(Path(__file__).with_name("subgroups_data.csv"), index=False)
