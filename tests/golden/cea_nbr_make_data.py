"""Make the fixed input of the net-benefit-regression golden: a cohort with budget bands, implementation
models and 8 sites (``cea_nbr_data.csv``); ``cea_nbr.R`` fits the same regressions with lm + clubSandwich.
From the repository root:  python tests/golden/cea_nbr_make_data.py && Rscript tests/golden/cea_nbr.R
"""
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
LAMBDAS = [20000.0, 30000.0]


def make_data(n: int = 240, seed: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    phb = (rng.random(n) < 0.55).astype(int)
    band = np.where(phb == 1, rng.choice(["<1000", ">=1000"], n), None)
    model = np.where(phb == 1, rng.choice(["model1", "model2"], n), None)
    site = rng.integers(0, 8, n)
    s0 = np.round(rng.uniform(0.3, 0.9, n), 4)
    e0 = np.round(rng.uniform(0.1, 0.9, n), 4)
    gain = phb * (0.01 + 0.05 * ((band == ">=1000") & (model == "model1")))
    site_eff = rng.normal(0, 0.03, 8)[site]
    return pd.DataFrame({
        "participant_id": [f"N{i:03d}" for i in range(n)], "phb": phb, "site": [f"S{s}" for s in site],
        "sex": rng.choice(["female", "male"], n), "condition": rng.choice(["chc", "copd", "mental_health"], n),
        "age": np.round(rng.normal(60, 12, n), 1), "budget_band": band, "implementation_model": model,
        "scrqol_t0": s0, "scrqol_t1": np.round(np.clip(0.3 + 0.5 * s0 + gain + site_eff + rng.normal(0, 0.1, n), 0, 1), 4),
        "eq5d_index_t0": e0, "eq5d_index_t1": np.round(0.2 + 0.6 * e0 + 0.5 * gain + rng.normal(0, 0.15, n), 4),
        "cost_indirect_pre": np.round(rng.gamma(1.5, 2000, n), 2),
        "cost_total": np.round(rng.gamma(2.0, 1500, n) + 400 * phb, 2)})


if __name__ == "__main__":
    make_data().to_csv(HERE / "cea_nbr_data.csv", index=False)
