"""Writes tests/golden/outcomes_golden_data.csv: a fixed cohort for the outcome and balance golden tests.

Confounded arms (PHB more likely for younger people and some conditions), site effects, missing
follow-up, a continuous score (y), a 0/1 score (b) at both waves and mortality (died).
Run from the repository root: python tests/golden/outcomes_golden_make_data.py
"""
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.default_rng(20240611)
n, sites = 420, 9
site = rng.integers(0, sites, n)
condition = rng.choice(["chc", "copd", "diabetes", "mental_health"], n, p=[0.3, 0.2, 0.25, 0.25])
sex = rng.choice(["female", "male"], n)
age = np.round(rng.normal(62, 14, n), 1)
lin = -0.3 + 0.03 * (62 - age) + np.select([condition == "chc", condition == "mental_health"], [0.8, 0.4], 0.0)
phb = (rng.random(n) < 1 / (1 + np.exp(-lin))).astype(int)
site_eff = rng.normal(0, 0.06, sites)[site]
y0 = 0.55 + 0.1 * (condition == "copd") - 0.002 * (age - 62) + site_eff + rng.normal(0, 0.15, n)
y1 = 0.2 + 0.6 * y0 + 0.04 * phb + 0.03 * (sex == "male") + 0.7 * site_eff + rng.normal(0, 0.1, n)
b0 = (rng.random(n) < 0.35 + 0.1 * (condition == "mental_health")).astype(float)
p1 = 1 / (1 + np.exp(-(-0.8 + 1.2 * b0 - 0.35 * phb + 4 * site_eff)))
b1 = (rng.random(n) < p1).astype(float)
died = (rng.random(n) < 1 / (1 + np.exp(-(-2.6 + 0.03 * (age - 62) + 0.3 * phb)))).astype(int)
y0[rng.random(n) < 0.06] = np.nan
y1[(rng.random(n) < 0.12 + 0.08 * phb) | (died == 1)] = np.nan
b1[(rng.random(n) < 0.1) | (died == 1)] = np.nan
df = pd.DataFrame({"participant_id": [f"G{i:04d}" for i in range(n)], "site": [f"S{s:02d}" for s in site],
                   "phb": phb, "condition": condition, "sex": sex, "age": age,
                   "y_t0": np.round(y0, 6), "y_t1": np.round(y1, 6), "b_t0": b0, "b_t1": b1, "died": died})
df.to_csv(Path(__file__).with_name("outcomes_golden_data.csv"), index=False)
