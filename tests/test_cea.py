"""Cost-effectiveness: batched bootstrap vs R (same replicate rows), boot.ci intervals, closed forms,
quadrant labels, strata, planted effects and reproducibility."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from statsmodels.stats.outliers_influence import OLSInfluence

from phb_eval.cea import (DRAW_COLUMNS, batched_wls, bca_interval, bootstrap_indices, cea, cea_groups,
                          ceac_lambdas, icer_quadrant, iter_bootstrap_indices, loo_change, percentile_interval,
                          replicate_counts, resolve_effect, stratum_streams)
from phb_eval.errors import EstimationError, PlanError

GOLDEN = Path(__file__).parent / "golden"
COVS = ["age", "sex", "condition"]
OUTCOME_OF = {"d_effect": "incremental_effect", "d_qaly": "incremental_qaly", "d_cost": "incremental_cost",
              "d_cost_direct": "incremental_cost_direct", "d_cost_indirect": "incremental_cost_indirect"}


def _load_make_data():
    spec = importlib.util.spec_from_file_location("cea_make_data", GOLDEN / "cea_make_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def golden():
    return json.loads((GOLDEN / "cea_golden.json").read_text())


@pytest.fixture(scope="module")
def gdata():
    return pd.read_csv(GOLDEN / "cea_data.csv")


@pytest.fixture(scope="module")
def gres(gdata, golden):
    mk = _load_make_data()
    return cea(gdata, mk.COVARIATES, strata=mk.STRATA, B=golden["B"], lambdas=golden["lambdas"],
               rng=np.random.default_rng(mk.BOOT_SEED), quiet=True)


def _row(est, stratum, outcome, lam=None):
    sel = (est["stratum"] == stratum) & (est["outcome"] == outcome)
    if lam is not None:
        sel &= est["lambda_gbp"] == lam
    hit = est[sel]
    assert len(hit) == 1, (stratum, outcome, lam)
    return hit.iloc[0]


def _split(name):
    stat, stratum = name.split("|")
    return stat, stratum


def _ours(res, stat, stratum):
    """Our per-replicate values and results row for a golden statistic name."""
    dr = res.draws[res.draws["stratum"] == stratum].sort_values("replicate")
    if stat.startswith("nmb_"):
        lam = float(stat[4:])
        return lam * dr["d_effect"].to_numpy() - dr["d_cost"].to_numpy(), _row(res.estimates, stratum, "nmb", lam)
    return dr[stat].to_numpy(), _row(res.estimates, stratum, OUTCOME_OF[stat])


# ---------------------------------------------------------------------------------------------------------
# against R on the same replicate rows
# ---------------------------------------------------------------------------------------------------------
def test_committed_inputs_are_what_the_generator_makes(gdata):
    """The fixed data and indices regenerate exactly (so cea() below draws the rows R refitted)."""
    mk = _load_make_data()
    made = mk.make_data()
    pd.testing.assert_frame_equal(made.reset_index(drop=True), gdata, check_dtype=False, atol=1e-12)
    committed = pd.read_csv(GOLDEN / "cea_indices.csv")
    regenerated = mk.make_indices(gdata)
    pd.testing.assert_frame_equal(regenerated, committed, check_dtype=False)


def test_replicates_equal_r_lm_per_replicate(golden, gres):
    worst = 0.0
    for key, g in golden["groups"].items():
        for name in g["stats"]:
            stat, stratum = _split(name)
            ours, _ = _ours(gres, stat, stratum)
            theirs = np.asarray(g["t"][name], dtype=float)
            assert ours.shape == theirs.shape == (golden["B"],)
            worst = max(worst, float(np.max(np.abs(ours - theirs))))
    assert worst < 1e-8          # measured: 5e-11 (costs in £), 2e-15 (scores)


def test_rank_deficient_replicates_are_in_the_comparison(gdata):
    """The one person with condition 'other' is absent from many 'all' replicates: X'WX is singular there
    (R's lm aliases the dummy); those replicates still match R (previous test)."""
    committed = pd.read_csv(GOLDEN / "cea_indices.csv")
    other_row = int(np.flatnonzero(gdata["condition"].to_numpy() == "other")[0]) + 1
    rows = committed.loc[committed["group"] == "all", "rows"].str.split()
    absent = sum(str(other_row) not in r for r in rows)
    assert absent > 20


def test_point_estimates_equal_r_and_statsmodels(golden, gres, gdata):
    for key, g in golden["groups"].items():
        for name in g["stats"]:
            stat, stratum = _split(name)
            _, row = _ours(gres, stat, stratum)
            assert row["estimate"] == pytest.approx(g["t0"][name], abs=1e-8, rel=1e-12)
    # an independent path: statsmodels formulas on the same people
    d = gdata.dropna(subset=["scrqol_t1", "scrqol_t0", "cost_total", "cost_indirect_pre"])
    fit_e = smf.ols("scrqol_t1 ~ phb + scrqol_t0 + age + C(sex) + C(condition)", d).fit()
    fit_q = smf.ols("qaly ~ phb + eq5d_index_t0 + age + C(sex) + C(condition)", d).fit()
    fit_c = smf.ols("cost_total ~ phb + cost_indirect_pre + age + C(sex) + C(condition)", d).fit()
    est = gres.estimates
    assert _row(est, "all", "incremental_effect")["estimate"] == pytest.approx(fit_e.params["phb"], abs=1e-12)
    assert _row(est, "all", "incremental_qaly")["estimate"] == pytest.approx(fit_q.params["phb"], abs=1e-12)
    assert _row(est, "all", "incremental_cost")["estimate"] == pytest.approx(fit_c.params["phb"], abs=1e-8)
    assert _row(est, "all", "incremental_qaly")["n_phb"] + _row(est, "all", "incremental_qaly")["n_control"] \
        == fit_q.nobs


def test_percentile_and_bca_equal_boot_ci(golden, gres):
    worst_p = worst_b = 0.0
    for key, g in golden["groups"].items():
        for name in g["stats"]:
            stat, stratum = _split(name)
            _, row = _ours(gres, stat, stratum)
            worst_p = max(worst_p, np.max(np.abs(np.array([row["ci_low"], row["ci_high"]]) - g["perc"][name])))
            worst_b = max(worst_b, np.max(np.abs(np.array([row["ci_low_bca"], row["ci_high_bca"]]) - g["bca"][name])))
    assert worst_p < 1e-8 and worst_b < 1e-8     # measured: 2e-11 and 1.5e-11


def test_interval_functions_on_r_replicates(golden):
    """percentile_interval/bca_interval fed R's own t, t0 and jackknife L reproduce boot.ci."""
    g = golden["groups"]["all"]
    for name in g["stats"]:
        t = np.asarray(g["t"][name], dtype=float)
        assert percentile_interval(t, golden["conf"]) == pytest.approx(g["perc"][name], abs=1e-10, rel=1e-12)
        assert bca_interval(t, g["t0"][name], g["L"][name], golden["conf"]) == \
            pytest.approx(g["bca"][name], abs=1e-10, rel=1e-12)


# ---------------------------------------------------------------------------------------------------------
# closed forms
# ---------------------------------------------------------------------------------------------------------
def test_nmb_and_probability_closed_forms(gres):
    est, draws = gres.estimates, gres.draws
    for stratum in ["all", "budget_band=<1000", "condition=chc"]:
        dr = draws[draws["stratum"] == stratum]
        dE = _row(est, stratum, "incremental_effect")["estimate"]
        dC = _row(est, stratum, "incremental_cost")["estimate"]
        for lam in (20000.0, 30000.0):
            row = _row(est, stratum, "nmb", lam)
            t = lam * dr["d_effect"].to_numpy() - dr["d_cost"].to_numpy()
            assert row["estimate"] == lam * dE - dC
            assert row["method"] == "bootstrap_nmb" and row["lambda_gbp"] == lam
            assert row["prob_cost_effective"] == np.mean(t > 0)
            assert (row["ci_low"], row["ci_high"]) == percentile_interval(t, 0.95)
            assert row["se"] == pytest.approx(np.std(t, ddof=1), rel=1e-12)


def test_ceac_at_zero_is_probability_of_saving_money(gres):
    for stratum, part in gres.ceac.groupby("stratum"):
        dr = gres.draws[gres.draws["stratum"] == stratum]
        at0 = part.loc[part["lambda_gbp"] == 0, "prob_cost_effective"].item()
        assert at0 == np.mean(dr["d_cost"] < 0)
        at20k = part.loc[part["lambda_gbp"] == 20000, "prob_cost_effective"].item()
        assert at20k == _row(gres.estimates, stratum, "nmb", 20000.0)["prob_cost_effective"]
    grid = gres.ceac.loc[gres.ceac["stratum"] == "all", "lambda_gbp"].to_numpy()
    assert grid[0] == 0 and grid[-1] == 100000 and np.all(np.diff(grid) == 1000)


def test_ceac_grid():
    assert ceac_lambdas(5000, 1000).tolist() == [0, 1000, 2000, 3000, 4000, 5000]
    assert ceac_lambdas(2500, 1000).tolist() == [0, 1000, 2000, 2500]


@pytest.mark.parametrize("d_effect,d_cost,label,icer", [
    (0.05, -100.0, "dominant", np.nan),
    (-0.05, 100.0, "dominated", np.nan),
    (0.05, 1000.0, "NE trade-off", 20000.0),
    (-0.05, -1000.0, "SW trade-off", 20000.0),
    (0.0, 50.0, "no effect difference", np.nan),
    (0.05, 0.0, "dominant", np.nan),
    (np.nan, 10.0, "not estimable", np.nan),
])
def test_quadrant_labels(d_effect, d_cost, label, icer):
    got_label, got_icer = icer_quadrant(d_effect, d_cost)
    assert got_label == label
    assert (np.isnan(got_icer) and np.isnan(icer)) or got_icer == pytest.approx(icer)


def test_quadrants_vectorised_and_never_negative_icer(gres):
    labels, icers = icer_quadrant([0.1, -0.1, 0.1, -0.1], [-1.0, 1.0, 1.0, -1.0])
    assert labels.tolist() == ["dominant", "dominated", "NE trade-off", "SW trade-off"]
    assert np.isnan(icers[:2]).all() and (icers[2:] == 10).all()
    rows = gres.estimates[gres.estimates["outcome"] == "icer"]
    vals = rows["estimate"].dropna()
    assert (vals > 0).all()
    for _, r in rows[rows["note"].fillna("").str.startswith("not estimable") == False].iterrows():  # noqa: E712
        dE = _row(gres.estimates, r["stratum"], "incremental_effect")["estimate"]
        dC = _row(gres.estimates, r["stratum"], "incremental_cost")["estimate"]
        assert r["quadrant"] == icer_quadrant(dE, dC)[0]
        shares = r[["share_dominant", "share_dominated", "share_ne", "share_sw"]].astype(float)
        assert shares.sum() == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------------------------
# the batched pieces against statsmodels
# ---------------------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.SingularMatrixWarning")
def test_batched_wls_equals_statsmodels_wls():
    rng = np.random.default_rng(3)
    n = 60
    X = np.column_stack([np.ones(n), rng.normal(50, 10, n), rng.integers(0, 2, n), rng.normal(size=n) * 1000])
    X[:3, 2] = 0
    lvl = np.zeros(n)
    lvl[:3] = 1                                   # a rare dummy: absent when its 3 rows get weight 0
    X = np.column_stack([X, lvl])
    Y = np.column_stack([X @ [1, 0.1, 2, 0.001, 0.5] + rng.normal(size=n), rng.gamma(2, 500, n)])
    W = rng.poisson(1.0, (25, n)).astype(float)
    W[0, :3] = 0                                  # rank-deficient replicate
    got = batched_wls(X, Y, W, [1, 2])
    for b in range(W.shape[0]):
        keep = W[b] > 0
        for k in range(Y.shape[1]):
            fit = sm.WLS(Y[keep, k], X[keep], weights=W[b, keep]).fit()      # pinv: min-norm if singular
            np.testing.assert_allclose(got[b, k], fit.params[[1, 2]], rtol=1e-10, atol=1e-9)


def test_batched_wls_flags_inestimable_coefficient():
    X = np.column_stack([np.ones(6), [0, 0, 1, 1, 0, 1], [1.0, 2, 3, 4, 5, 7]])
    y = np.array([1.0, 2, 3, 5, 4, 6])
    W = np.array([[1, 1, 0, 0, 1, 0.0]])         # the dummy is all zero among weighted rows
    got = batched_wls(X, y, W, [1, 2])
    assert np.isnan(got[0, 0, 0]) and np.isfinite(got[0, 0, 1])


def test_loo_change_equals_statsmodels_dfbeta():
    rng = np.random.default_rng(4)
    n = 40
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n), rng.normal(3000, 800, n)])
    y = X @ [1, 2, 0.5, 0.01] + rng.normal(size=n)
    ours = loo_change(X, y, [1, 2, 3])
    theirs = OLSInfluence(sm.OLS(y, X).fit()).dfbeta[:, [1, 2, 3]]
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-12)


def test_bootstrap_indices_keep_strata_sizes():
    strata = np.array(["a"] * 5 + ["b"] * 3 + ["a"] * 2)
    idx = bootstrap_indices(strata, 50, np.random.default_rng(0))
    assert idx.shape == (50, 10)
    counts = replicate_counts(idx, 10)
    assert (counts.sum(axis=1) == 10).all()
    assert (counts[:, strata == "b"].sum(axis=1) == 3).all()
    assert np.array_equal(idx, bootstrap_indices(strata, 50, np.random.default_rng(0)))


def test_replicates_do_not_depend_on_block_size():
    """Blocks bound memory without changing any replicate."""
    strata = np.repeat(["a", "b", "c"], [7, 4, 9])
    whole = bootstrap_indices(strata, 23, np.random.default_rng(2))
    for chunk in (1, 5, 7, 23, 100):
        blocks = list(iter_bootstrap_indices(strata, 23, np.random.default_rng(2), chunk))
        assert len(blocks) == -(-23 // chunk)
        assert np.array_equal(np.vstack(blocks), whole)


# ---------------------------------------------------------------------------------------------------------
# strata, planted effects, cluster bootstrap, reproducibility, errors
# ---------------------------------------------------------------------------------------------------------
def _cohort(rng, n=2235, sites=20, big=0.08, base=0.01):
    """A pilot-sized frame with the PHB effect on scrqol planted as ``base`` + ``big`` for budgets of
    £1,000 or more held under model 1, and PHB savings on indirect costs."""
    site = rng.integers(0, sites, n)
    phb = (rng.random(n) < 0.524).astype(int)
    budget = np.where(phb == 1, np.exp(rng.normal(7.0, 1.2, n)), np.nan)
    band = np.where(phb == 1, np.where(budget >= 1000, ">=1000", "<1000"), None)
    model1 = (rng.random((n, 3)) < 0.7).all(axis=1)
    impl = np.where(phb == 1, np.where(model1, "model1", "model2"), None)
    s0 = np.clip(rng.normal(0.62, 0.18, n), -0.17, 1)
    effect = phb * (base + big * ((band == ">=1000") & (impl == "model1")))
    pre = rng.gamma(1.2, 2500, n)
    direct = np.where(phb == 1, budget, rng.gamma(1.5, 1500, n))
    indirect = np.maximum(0, 0.7 * pre + rng.normal(0, 1500, n) - 300 * phb)
    e0 = np.clip(rng.normal(0.55, 0.25, n), -0.59, 1)
    df = pd.DataFrame({
        "phb": phb, "site": [f"S{s:02d}" for s in site],
        "condition": rng.choice(["chc", "copd", "diabetes", "mental_health", "neurological", "stroke"], n),
        "sex": rng.choice(["female", "male"], n), "age": rng.normal(62, 15, n), "budget_band": band,
        "implementation_model": impl,
        "deployment": np.where(phb == 1, rng.choice(["direct_payment", "notional", "third_party"], n), None),
        "scrqol_t0": s0, "scrqol_t1": 0.25 + 0.6 * s0 + effect + rng.normal(0, 0.12, n),
        "eq5d_index_t0": e0, "qaly": 0.5 * (e0 + 0.2 + 0.6 * e0 + rng.normal(0, 0.15, n)),
        "cost_indirect_pre": pre, "cost_direct": direct, "cost_indirect": indirect, "cost_total": direct + indirect})
    df.loc[rng.random(n) < 0.1, "scrqol_t1"] = np.nan
    return df


@pytest.fixture(scope="module")
def pilot():
    return _cohort(np.random.default_rng(11))


def test_planted_effect_largest_in_high_budget_model1(pilot):
    res = cea(pilot, COVS, strata=["all", "budget_band:implementation_model"], B=200,
              rng=np.random.default_rng(1), quiet=True)
    eff = res.estimates[res.estimates["outcome"] == "incremental_effect"].set_index("stratum")
    top = "budget_band=>=1000;implementation_model=model1"
    others = [s for s in eff.index if s not in ("all", top)]
    assert len(others) == 3
    assert eff.loc[top, "estimate"] > eff.loc[others, "estimate"].max()
    assert eff.loc[top, "ci_low"] > eff.loc[others, "ci_high"].max()          # clearly separated
    assert abs(eff.loc[top, "estimate"] - 0.09) < 4 * eff.loc[top, "se"]        # planted 0.01 + 0.08
    assert eff.loc[top, "comparison"].startswith("stratum's PHB holders vs all controls")
    assert eff.loc[top, "n_control"] == eff.loc["all", "n_control"]             # all controls in the model


def test_phb_only_strata_use_one_model_with_indicators(pilot):
    """The level estimates are the coefficients of stratum-specific PHB indicators in one model."""
    res = cea(pilot, COVS, strata=["budget_band"], B=20, rng=np.random.default_rng(1), quiet=True)
    d = pilot.dropna(subset=["scrqol_t1", "scrqol_t0", "cost_total", "cost_indirect_pre"]).copy()
    d = d[(d["phb"] == 0) | d["budget_band"].notna()]
    d["lo"] = ((d["phb"] == 1) & (d["budget_band"] == "<1000")).astype(float)
    d["hi"] = ((d["phb"] == 1) & (d["budget_band"] == ">=1000")).astype(float)
    fit = smf.ols("cost_total ~ lo + hi + cost_indirect_pre + age + C(sex) + C(condition)", d).fit()
    assert _row(res.estimates, "budget_band=<1000", "incremental_cost")["estimate"] == \
        pytest.approx(fit.params["lo"], rel=1e-10)
    assert _row(res.estimates, "budget_band=>=1000", "incremental_cost")["estimate"] == \
        pytest.approx(fit.params["hi"], rel=1e-10)


def test_small_stratum_not_estimable(gres):
    row = _row(gres.estimates, "condition=other", "incremental_effect")
    assert np.isnan(row["estimate"]) and "fewer than 10" in row["note"]
    assert "condition=other" not in set(gres.draws["stratum"])
    tab = gres.table.set_index("stratum")
    assert tab.loc["condition=other", "quadrant"] == "not estimable"
    assert tab.loc["all", "quadrant"] in ("dominant", "dominated", "NE trade-off", "SW trade-off")


def test_cluster_bootstrap_equals_refits_on_resampled_sites(gdata):
    """Replicates resample whole (arm, site) clusters; each equals OLS refitted on the stacked clusters."""
    B = 6
    res = cea(gdata, ["age", "sex"], strata=["all"], B=B, cluster_bootstrap=True, rng=np.random.default_rng(5),
              quiet=True)
    (g,) = cea_groups(gdata, ["age", "sex"], strata=["all"], cluster="site")
    stream = stratum_streams(np.random.default_rng(5))(g["key"])
    idx = bootstrap_indices(g["unit_strata"], B, stream)
    people = gdata.loc[g["index"]].reset_index(drop=True)
    draws = res.draws.sort_values("replicate")
    for b in range(B):
        stacked = pd.concat([people[g["units"] == u] for u in idx[b]], ignore_index=True)
        fit = smf.ols("cost_total ~ phb + cost_indirect_pre + age + C(sex)", stacked).fit()
        assert draws["d_cost"].iloc[b] == pytest.approx(fit.params["phb"], rel=1e-9)
    row = _row(res.estimates, "all", "nmb", 20000.0)
    assert np.isfinite(row["ci_low_bca"]) and np.isfinite(row["ci_low"])


def test_same_seed_identical_numbers(gdata):
    kw = dict(strata=["all", "budget_band"], B=50, quiet=True)
    a = cea(gdata, COVS, rng=np.random.default_rng(9), **kw)
    b = cea(gdata, COVS, rng=np.random.default_rng(9), **kw)
    c = cea(gdata, COVS, rng=np.random.default_rng(10), **kw)
    pd.testing.assert_frame_equal(a.estimates, b.estimates)
    pd.testing.assert_frame_equal(a.draws, b.draws)
    pd.testing.assert_frame_equal(a.ceac, b.ceac)
    assert not a.draws[DRAW_COLUMNS].equals(c.draws[DRAW_COLUMNS])
    # a stratum's replicates do not depend on which other strata are requested
    alone = cea(gdata, COVS, rng=np.random.default_rng(9), strata=["budget_band"], B=50, quiet=True)
    pd.testing.assert_frame_equal(alone.draws.reset_index(drop=True),
                                  a.draws[a.draws["stratum"] != "all"].reset_index(drop=True))


def test_outputs_layout_and_input_untouched(gdata, gres):
    before = gdata.copy()
    cea(gdata, COVS, strata=["all"], B=20, rng=np.random.default_rng(1), quiet=True)
    pd.testing.assert_frame_equal(before, gdata)
    est = gres.estimates
    assert (est["analysis"] == "cea").all()
    assert set(est["outcome"]) == {"incremental_cost", "incremental_cost_direct", "incremental_cost_indirect",
                                   "incremental_effect", "incremental_qaly", "icer", "nmb"}
    assert (est["effect_measure"] == "scrqol").all()
    nmb = est[est["outcome"] == "nmb"]
    assert nmb["lambda_gbp"].notna().all() and set(nmb["lambda_gbp"]) == {20000.0, 30000.0}
    assert list(gres.draws.columns) == ["stratum", "replicate", *DRAW_COLUMNS]
    assert list(gres.ceac.columns) == ["stratum", "lambda_gbp", "prob_cost_effective"]
    assert gres.table["stratum"].tolist()[:3] == ["all", "budget_band=<1000", "budget_band=>=1000"]
    assert {"nmb_20000", "prob_ce_20000", "nmb_30000_ci_low", "icer", "quadrant"} <= set(gres.table.columns)
    assert "all controls" in gres.method and "within" in gres.method
    # copd: too few controls with a QALY → that model only is not estimable, with a note
    q = _row(est, "condition=copd", "incremental_qaly")
    assert np.isnan(q["estimate"]) and any("condition=copd" in n and "qaly" in n for n in gres.notes)
    assert np.isfinite(_row(est, "condition=copd", "incremental_cost")["estimate"])


def test_effect_falls_back_to_ascot_raw(gdata):
    d = gdata.drop(columns=["scrqol_t0", "scrqol_t1"]).assign(ascot_raw_t0=gdata["scrqol_t0"] * 24,
                                                               ascot_raw_t1=gdata["scrqol_t1"] * 24)
    assert resolve_effect(d) == "ascot_raw"
    res = cea(d, COVS, strata=["all"], B=20, rng=np.random.default_rng(1), quiet=True)
    assert (res.estimates["effect_measure"] == "ascot_raw").all() and res.effect == "ascot_raw"
    ref = cea(gdata, COVS, strata=["all"], B=20, rng=np.random.default_rng(1), quiet=True)
    assert _row(res.estimates, "all", "incremental_effect")["estimate"] == \
        pytest.approx(24 * _row(ref.estimates, "all", "incremental_effect")["estimate"], rel=1e-10)


def test_errors_name_the_problem(gdata):
    with pytest.raises(EstimationError, match="cost_total"):
        cea(gdata.drop(columns=["cost_total"]), COVS, rng=np.random.default_rng(1), B=20)
    with pytest.raises(EstimationError, match="scrqol_t1"):
        cea(gdata.drop(columns=["scrqol_t1"]), COVS, effect="scrqol", rng=np.random.default_rng(1), B=20)
    with pytest.raises(PlanError, match="conf_level"):
        cea(gdata, COVS, rng=np.random.default_rng(1), B=20, conf_level=1.5)
    res = cea(gdata.drop(columns=["qaly"]), COVS, strata=["all", "nonexistent"], B=20,
              rng=np.random.default_rng(1), quiet=True)
    assert any("nonexistent" in n for n in res.notes) and any("qaly" in n for n in res.notes)
    assert np.isnan(_row(res.estimates, "all", "incremental_qaly")["estimate"])
