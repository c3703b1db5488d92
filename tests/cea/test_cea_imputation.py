"""Multiple imputation + site bootstrap (cea.missing = mi_boot) against R: the same imputed datasets and
replicate rows refitted by lm, pooled by mice::pool.scalar (tests/golden/cea_mi.R)."""
import importlib.util
import json

import numpy as np
import pandas as pd
import pytest

from phb_eval.cea import cea, percentile_interval

from cea_helpers import GOLDEN, pick_row

OUTCOME = {"d_ascot": "incremental_ascot_years", "d_qaly": "incremental_qaly", "d_cost": "incremental_cost"}


def _make():
    spec = importlib.util.spec_from_file_location("cea_mi_make_data", GOLDEN / "cea_mi_make_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def mi():
    mk = _make()
    data = pd.read_csv(GOLDEN / "cea_mi_data.csv")
    res = mk.run(data)
    return mk, data, res, json.loads((GOLDEN / "cea_mi_golden.json").read_text())


def _name(stat):
    name, stratum = stat.split("|")
    return name, stratum


def test_committed_inputs_are_what_phb_eval_makes(mi):
    mk, data, res, _ = mi
    pd.testing.assert_frame_equal(mk.make_data(), data, check_dtype=False)
    imputed, indices = mk.exports(res)
    committed = pd.read_csv(GOLDEN / "cea_mi_imputed.csv")
    pd.testing.assert_frame_equal(imputed.reset_index(drop=True), committed, check_dtype=False, rtol=1e-15)
    pd.testing.assert_frame_equal(indices, pd.read_csv(GOLDEN / "cea_mi_indices.csv"), check_dtype=False)
    # every living person is analysed (none died here), and holes were filled
    assert len(res.datasets) == mk.M and all(len(d) == len(data) for d in res.datasets)
    assert data["scrqol_t1"].isna().sum() == 12 and not res.datasets[0]["scrqol_t1"].isna().any()


def test_replicates_equal_r_lm_on_each_imputed_dataset(mi):
    """Published draws: replicate b comes from imputed dataset b mod m; each equals R's lm on its rows."""
    _, _, res, golden = mi
    worst = 0.0
    for g in golden["groups"].values():
        for stat in g["stats"]:
            name, stratum = _name(stat)
            if name not in OUTCOME:
                continue
            dr = res.draws[res.draws["stratum"] == stratum].sort_values("replicate")
            theirs = np.array([g["t"][stat][k - 1][b - 1] for b, k in zip(dr["replicate"], dr["imputation"])])
            worst = max(worst, float(np.max(np.abs(dr[name].to_numpy() - theirs))))
    assert worst < 1e-8


def test_pooled_estimates_se_and_interval_equal_mice_pool_scalar(mi):
    _, _, res, golden = mi
    est = res.estimates
    n = 0
    for g in golden["groups"].values():
        for stat in g["stats"]:
            name, stratum = _name(stat)
            if name.startswith("nmb_"):
                measure, lam = name[4:].rsplit("_", 1)
                row = pick_row(est, stratum, "nmb", float(lam), measure)
            else:
                row = pick_row(est, stratum, OUTCOME[name])
            p = g["pooled"][stat]
            assert row["estimate"] == pytest.approx(p["qbar"], abs=1e-6, rel=1e-9)
            assert row["se"] == pytest.approx(p["se"], abs=1e-6, rel=1e-9)
            assert row["df"] == pytest.approx(p["df"], rel=1e-6)
            assert [row["ci_low"], row["ci_high"]] == pytest.approx(p["ci"], abs=1e-6, rel=1e-9)
            assert row["ci_method"] == "rubin"
            n += 1
    assert n == 3 * (3 + 4)           # 3 strata × (3 increments + 4 NMB rows)


def test_probability_from_stacked_draws_and_method_says_mi(mi):
    _, _, res, _ = mi
    row = pick_row(res.estimates, "all", "nmb", 20000.0, "qaly")
    assert row["n_replicates"] == res.settings["m"] * res.settings["B"]
    assert 0 <= row["prob_cost_effective"] <= 1
    assert res.settings["missing"] == "mi_boot" and res.settings["bootstrap_unit"] == "site"
    assert "Rubin's rules" in res.method and "Schomaker & Heumann 2018" in res.method


def test_boot_mi_imputes_each_replicate_and_takes_percentiles(mi):
    """Brand et al. 2019: bootstrap, then impute each replicate once; point = mean over the m imputations."""
    mk, data, res_mi, _ = mi
    res = cea(data, mk.COVARIATES, strata=["all"], B=40, m=3, missing="boot_mi", lambda_qaly=mk.LAMBDAS,
              lambda_ascot=mk.LAMBDAS, imputation={"iterations": 5}, rng=np.random.default_rng(2), quiet=True)
    row = pick_row(res.estimates, "all", "nmb", 20000.0, "ascot_years")
    assert row["ci_method"] == "percentile" and row["n_replicates"] == 40
    dr = res.draws[res.draws["stratum"] == "all"]
    t = 20000.0 * dr["d_ascot"].to_numpy() - dr["d_cost"].to_numpy()
    assert (row["ci_low"], row["ci_high"]) == percentile_interval(t, 0.95)
    assert row["ci_low"] < row["estimate"] < row["ci_high"]
    assert "Brand et al. 2019" in res.method and res.settings["missing"] == "boot_mi"
