"""Make the fixed inputs of the CEA golden test: a small cohort and the bootstrap replicate indices.

Writes ``cea_data.csv`` (100 people) and ``cea_indices.csv`` (B = 200 replicates for the groups
``all``, ``budget_band`` and ``condition=chc``: one line per group and replicate, the resampled people as
1-based row numbers of ``cea_data.csv``), drawn exactly as ``phb_eval.cea.cea`` draws them with the same
seed. ``cea_golden.R`` refits the models in R on these rows. Run from the repository root:

    python tests/golden/cea_make_data.py && Rscript tests/golden/cea_golden.R
"""
from pathlib import Path

import numpy as np
import pandas as pd

from phb_eval.cea import bootstrap_indices, cea_groups, stratum_streams

HERE = Path(__file__).parent
SEED = 20240601          # data
BOOT_SEED = 7            # bootstrap: cea(..., rng=np.random.default_rng(BOOT_SEED))
B = 200
COVARIATES = ["age", "sex", "condition"]
STRATA = ["all", "budget_band", "condition"]
GROUPS = ["all", "budget_band", "condition=chc"]


def make_data() -> pd.DataFrame:
    rng = np.random.default_rng(SEED)
    n1, n0 = 55, 45
    n = n1 + n0
    phb = np.r_[np.ones(n1, int), np.zeros(n0, int)]
    # chc / copd / mental_health, plus 2 people with stroke and 1 with 'other': rare covariate levels that
    # are absent from many replicates (rank-deficient replicates) and a person with leverage 1 (jackknife).
    condition = rng.choice(["chc", "copd", "mental_health"], n)
    condition[[3, 60]] = "stroke"
    condition[70] = "other"
    sex = rng.choice(["female", "male"], n)
    age = np.round(rng.normal(60, 14, n), 1)
    budget = np.where(phb == 1, np.round(np.exp(rng.normal(7.0, 0.9, n)), 2), np.nan)
    band = np.where(phb == 1, np.where(budget >= 1000, ">=1000", "<1000"), None).astype(object)
    band[[5, 9]] = None                                  # two PHB holders without a recorded budget
    budget[[5, 9]] = np.nan
    s0 = np.round(np.clip(rng.normal(0.6, 0.18, n), -0.17, 1), 4)
    s1 = np.round(0.25 + 0.6 * s0 + 0.03 * phb + 0.04 * phb * (band == ">=1000") + rng.normal(0, 0.1, n), 4)
    e0 = np.round(np.clip(rng.normal(0.55, 0.25, n), -0.59, 1), 4)
    qaly = np.round(0.5 * (e0 + np.clip(0.2 + 0.6 * e0 + rng.normal(0, 0.15, n), -0.59, 1)), 4)
    qaly[rng.choice(n, 8, replace=False)] = np.nan       # QALY model: complete cases within the person set
    e0[[11, 80]] = np.nan
    pre = np.round(rng.gamma(1.2, 2500, n), 2)
    direct = np.round(np.where(phb == 1, np.nan_to_num(budget, nan=800.0), rng.gamma(1.5, 1500, n)), 2)
    indirect = np.round(np.maximum(0, 0.7 * pre + rng.normal(0, 1500, n) - 300 * phb), 2)
    return pd.DataFrame({
        "participant_id": [f"G{i:03d}" for i in range(n)], "phb": phb, "site": [f"S{i % 6}" for i in range(n)],
        "condition": condition, "sex": sex, "age": age, "budget_band": band,
        "scrqol_t0": s0, "scrqol_t1": s1, "eq5d_index_t0": e0, "qaly": qaly,
        "cost_indirect_pre": pre, "cost_direct": direct, "cost_indirect": indirect,
        "cost_total": np.round(direct + indirect, 2)})


def make_indices(df: pd.DataFrame) -> pd.DataFrame:
    streams = stratum_streams(np.random.default_rng(BOOT_SEED))
    rownum = pd.Series(np.arange(1, len(df) + 1), index=df.index)
    lines = []
    for g in cea_groups(df, COVARIATES, strata=STRATA):
        if g["key"] not in GROUPS:
            continue
        idx = bootstrap_indices(g["resample"], B, streams(g["key"]))
        rows = rownum.loc[g["index"]].to_numpy()[idx]
        for b in range(B):
            lines.append({"group": g["key"], "replicate": b + 1, "rows": " ".join(map(str, rows[b]))})
    return pd.DataFrame(lines)


if __name__ == "__main__":
    data = make_data()
    data.to_csv(HERE / "cea_data.csv", index=False)
    make_indices(data).to_csv(HERE / "cea_indices.csv", index=False)
