"""Writes tests/golden/aipw_data.csv: confounded arms, four outcome types, 15 clusters (seed 13)."""
from pathlib import Path

import numpy as np
import pandas as pd

rng = np.random.default_rng(13)
n = 600
site = rng.integers(0, 15, n)
x1 = rng.normal(size=n)
x2 = rng.normal(size=n) + 0.1 * site / 15
t = (rng.random(n) < 1 / (1 + np.exp(-(-0.2 + 0.7 * x1 - 0.4 * x2)))).astype(int)
expo = np.where(rng.random(n) < 0.1, rng.uniform(0.2, 1, n), 1.0)
mu = np.exp(0.3 + 0.4 * x1 + 0.2 * x2 - 0.2 * t) * expo
frame = pd.DataFrame({
    "site": [f"s{s:02d}" for s in site], "phb": t, "x1": x1.round(6), "x2": x2.round(6),
    "y_cont": (1 + x1 + 0.5 * x2 + t * (0.5 + 0.3 * x1) + rng.normal(size=n)).round(6),
    "y_bin": (rng.random(n) < 1 / (1 + np.exp(-(-0.3 + 0.8 * x1 + 0.4 * t)))).astype(int),
    "y_count": rng.negative_binomial(1.5, 1.5 / (1.5 + mu)), "expo": expo.round(6),
    "y_cost": (np.exp(7 + 0.3 * x1 - 0.2 * t) * rng.gamma(2.0, 0.5, n)).round(2)})
frame.to_csv(Path(__file__).with_name("aipw_data.csv"), index=False)
