"""Make the fixed inputs of the CEA multiple-imputation golden: data with holes, phb-eval's imputed datasets
and its site-bootstrap replicate rows.

Writes ``cea_mi_data.csv`` (``cea_data.csv`` with follow-up SCRQoL, indirect cost and age missing for some
people), ``cea_mi_imputed.csv`` (the m = 5 completed datasets phb-eval analyses, stacked, column ``imp``;
``row`` = 1-based person number) and ``cea_mi_indices.csv`` (per group and replicate, the resampled people as
``row`` numbers: whole arm-site clusters stacked, exactly as ``cea`` draws them). ``cea_mi.R`` refits every
model on every replicate of every imputed dataset in R and pools with ``mice::pool.scalar``. From the
repository root:

    python tests/golden/cea_mi_make_data.py && Rscript tests/golden/cea_mi.R
"""
from pathlib import Path

import numpy as np
import pandas as pd

from phb_eval.cea import bootstrap_indices, cea, stratum_streams

HERE = Path(__file__).parent
SEED = 314                 # cea(..., rng=np.random.default_rng(SEED)); imputation and bootstrap streams spawn from it
M, B = 5, 200
LAMBDAS = [20000.0, 30000.0]
COVARIATES = ["age", "sex", "condition"]
STRATA = ["all", "budget_band"]
COLUMNS = ["participant_id", "phb", "site", "condition", "sex", "age", "budget_band", "scrqol_t0", "scrqol_t1",
           "eq5d_index_t0", "qaly", "cost_indirect_pre", "cost_direct", "cost_indirect", "cost_total"]


def make_data() -> pd.DataFrame:
    d = pd.read_csv(HERE / "cea_data.csv")
    rng = np.random.default_rng(99)
    d.loc[rng.choice(len(d), 12, replace=False), "scrqol_t1"] = np.nan
    gone = rng.choice(len(d), 8, replace=False)
    d.loc[gone, ["cost_indirect", "cost_total"]] = np.nan
    d.loc[rng.choice(len(d), 4, replace=False), "age"] = np.nan
    return d


def run(d: pd.DataFrame):
    return cea(d, COVARIATES, strata=STRATA, B=B, m=M, missing="mi_boot", bootstrap_unit="site",
               lambda_qaly=LAMBDAS, lambda_ascot=LAMBDAS, rng=np.random.default_rng(SEED), quiet=True)


def exports(res):
    """(stacked imputed datasets, replicate rows) of a cea() result."""
    people = res.datasets[0].index
    rownum = pd.Series(np.arange(1, len(people) + 1), index=people)
    stacked = pd.concat([ds[COLUMNS].assign(imp=k + 1, row=np.arange(1, len(ds) + 1))
                         for k, ds in enumerate(res.datasets)], ignore_index=True)
    streams = stratum_streams(np.random.default_rng(SEED).spawn(2)[1])
    lines = []
    for g in res.groups:
        rows = rownum.loc[g["index"]].to_numpy()
        members = [rows[g["units"] == u] for u in range(len(g["unit_strata"]))]
        idx = bootstrap_indices(g["unit_strata"], B, streams(g["key"]))
        for b in range(B):
            lines.append({"group": g["key"], "replicate": b + 1,
                          "rows": " ".join(str(r) for u in idx[b] for r in members[u])})
    return stacked, pd.DataFrame(lines)


if __name__ == "__main__":
    data = make_data()
    data.to_csv(HERE / "cea_mi_data.csv", index=False)
    imputed, indices = exports(run(data))
    imputed.to_csv(HERE / "cea_mi_imputed.csv", index=False, float_format="%.17g")
    indices.to_csv(HERE / "cea_mi_indices.csv", index=False)
