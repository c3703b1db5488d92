"""cea(): batched bootstrap vs R lm on the same replicate rows, boot.ci intervals, NMB closed
forms, planted effects, cluster bootstrap, reproducibility, layout, errors."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from phb_eval.cea import (DRAW_COLUMNS, bootstrap_indices, cea, cea_groups, percentile_interval, resolve_effect,
                          stratum_streams)
from phb_eval.errors import EstimationError, PlanError

from cea_helpers import COVS, GOLDEN, load_make_data, our_draws, pick_row, split


def test_committed_inputs_are_what_the_generator_makes(gdata):
    """The fixed data and indices regenerate exactly (so cea() below draws the rows R refitted)."""
    mk = load_make_data()
    made = mk.make_data()
    pd.testing.assert_frame_equal(made.reset_index(drop=True), gdata, check_dtype=False, atol=1e-12)
    committed = pd.read_csv(GOLDEN / "cea_indices.csv")
    regenerated = mk.make_indices(gdata)
    pd.testing.assert_frame_equal(regenerated, committed, check_dtype=False)


def test_replicates_equal_r_lm_per_replicate(golden, gres):
    worst = 0.0
    for key, g in golden["groups"].items():
        for name in g["stats"]:
            stat, stratum = split(name)
            ours, _ = our_draws(gres, stat, stratum)
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
            stat, stratum = split(name)
            _, row = our_draws(gres, stat, stratum)
            assert row["estimate"] == pytest.approx(g["t0"][name], abs=1e-8, rel=1e-12)
    # an independent path: statsmodels formulas on the same people
    d = gdata.dropna(subset=["scrqol_t1", "scrqol_t0", "cost_total", "cost_indirect_pre"])
    fit_e = smf.ols("scrqol_t1 ~ phb + scrqol_t0 + age + C(sex) + C(condition)", d).fit()
    fit_q = smf.ols("qaly ~ phb + eq5d_index_t0 + age + C(sex) + C(condition)", d).fit()
    fit_c = smf.ols("cost_total ~ phb + cost_indirect_pre + age + C(sex) + C(condition)", d).fit()
    est = gres.estimates
    assert pick_row(est, "all", "incremental_effect")["estimate"] == pytest.approx(fit_e.params["phb"], abs=1e-12)
    assert pick_row(est, "all", "incremental_qaly")["estimate"] == pytest.approx(fit_q.params["phb"], abs=1e-12)
    assert pick_row(est, "all", "incremental_cost")["estimate"] == pytest.approx(fit_c.params["phb"], abs=1e-8)
    assert pick_row(est, "all", "incremental_qaly")["n_phb"] + pick_row(est, "all", "incremental_qaly")["n_control"] \
        == fit_q.nobs


def test_percentile_and_bca_equal_boot_ci(golden, gres):
    worst_p = worst_b = 0.0
    for key, g in golden["groups"].items():
        for name in g["stats"]:
            stat, stratum = split(name)
            _, row = our_draws(gres, stat, stratum)
            worst_p = max(worst_p, np.max(np.abs(np.array([row["ci_low"], row["ci_high"]]) - g["perc"][name])))
            worst_b = max(worst_b, np.max(np.abs(np.array([row["ci_low_bca"], row["ci_high_bca"]]) - g["bca"][name])))
    assert worst_p < 1e-8 and worst_b < 1e-8     # measured: 2e-11 and 1.5e-11


def test_nmb_and_probability_closed_forms(gres):
    """Each NMB row: λ·ΔE − ΔC for its effect measure, with its horizon; P(CE), SE, percentile interval and
    EVPI from that measure's paired draws."""
    est, draws = gres.estimates, gres.draws
    for stratum in ["all", "budget_band=<1000", "condition=chc"]:
        dr = draws[draws["stratum"] == stratum]
        dC = pick_row(est, stratum, "incremental_cost")["estimate"]
        for measure, draw, outcome in (("ascot_years", "d_ascot", "incremental_ascot_years"),
                                       ("qaly", "d_qaly", "incremental_qaly")):
            dE = pick_row(est, stratum, outcome)["estimate"]
            for lam in (20000.0, 30000.0):
                row = pick_row(est, stratum, "nmb", lam, measure)
                t = lam * dr[draw].to_numpy() - dr["d_cost"].to_numpy()
                t = t[np.isfinite(t)]
                assert row["estimate"] == pytest.approx(lam * dE - dC, rel=1e-12)
                assert row["method"] == "bootstrap_nmb" and row["horizon_years"] == 1.0
                assert row["prob_cost_effective"] == np.mean(t > 0)
                assert (row["ci_low"], row["ci_high"]) == percentile_interval(t, 0.95)
                assert row["se"] == pytest.approx(np.std(t, ddof=1), rel=1e-12)
                assert row["evpi_per_person"] == pytest.approx(np.mean(np.maximum(t, 0)) - max(t.mean(), 0))
    # two waves 12 months apart, 1-year horizon: ASCOT-years = (s0 + s1)/2, so its baseline-adjusted
    # difference is half the follow-up difference
    assert pick_row(est, "all", "incremental_ascot_years")["estimate"] == \
        pytest.approx(pick_row(est, "all", "incremental_effect")["estimate"] / 2, rel=1e-10)


def test_planted_effect_largest_in_high_budget_model1(pilot):
    res = cea(pilot, COVS, strata=["all", "budget_band:implementation_model"], B=200, missing="complete_case", bootstrap_unit="person",
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


def test_cluster_bootstrap_equals_refits_on_resampled_sites(gdata):
    """Replicates resample whole (arm, site) clusters; each equals OLS refitted on the stacked clusters."""
    B = 6
    res = cea(gdata, ["age", "sex"], strata=["all"], B=B, cluster_bootstrap=True, missing="complete_case",
              rng=np.random.default_rng(5),
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
    row = pick_row(res.estimates, "all", "nmb", 20000.0, "ascot_years")
    assert np.isfinite(row["ci_low_bca"]) and np.isfinite(row["ci_low"])


def test_same_seed_identical_numbers(gdata):
    kw = dict(strata=["all", "budget_band"], B=50, quiet=True, missing="complete_case")
    a = cea(gdata, COVS, rng=np.random.default_rng(9), **kw)
    b = cea(gdata, COVS, rng=np.random.default_rng(9), **kw)
    c = cea(gdata, COVS, rng=np.random.default_rng(10), **kw)
    pd.testing.assert_frame_equal(a.estimates, b.estimates)
    pd.testing.assert_frame_equal(a.draws, b.draws)
    pd.testing.assert_frame_equal(a.ceac, b.ceac)
    assert not a.draws[DRAW_COLUMNS].equals(c.draws[DRAW_COLUMNS])
    # a stratum's replicates do not depend on which other strata are requested
    alone = cea(gdata, COVS, rng=np.random.default_rng(9), strata=["budget_band"], B=50, quiet=True,
                missing="complete_case")
    pd.testing.assert_frame_equal(alone.draws.reset_index(drop=True),
                                  a.draws[a.draws["stratum"] != "all"].reset_index(drop=True))


def test_outputs_layout_and_input_untouched(gdata, gres):
    before = gdata.copy()
    cea(gdata, COVS, strata=["all"], B=20, rng=np.random.default_rng(1), quiet=True)
    cea(gdata, COVS, strata=["all"], B=20, rng=np.random.default_rng(1), quiet=True, missing="complete_case")
    pd.testing.assert_frame_equal(before, gdata)
    est = gres.estimates
    assert (est["analysis"] == "cea").all()
    assert set(est["outcome"]) == {"incremental_cost", "incremental_cost_direct", "incremental_cost_indirect",
                                   "incremental_effect", "incremental_ascot_years", "incremental_qaly", "icer", "nmb"}
    nmb = est[est["outcome"] == "nmb"]
    assert set(nmb["effect_measure"]) == {"qaly", "ascot_years"} and (nmb["horizon_years"] == 1.0).all()
    assert nmb["lambda_gbp"].notna().all() and set(nmb["lambda_gbp"]) == {20000.0, 30000.0}
    assert (nmb["headline"] == (nmb["effect_measure"] == "qaly")).all()
    assert (est.loc[est["outcome"] == "incremental_effect", "effect_measure"] == "scrqol").all()
    assert list(gres.draws.columns) == ["stratum", "replicate", *DRAW_COLUMNS]
    assert list(gres.ceac.columns) == ["stratum", "effect_measure", "lambda_gbp", "prob_cost_effective", "optimal",
                                       "prob_optimal"]
    assert gres.table["stratum"].tolist()[:3] == ["all", "budget_band=<1000", "budget_band=>=1000"]
    assert {"nmb_qaly_20000", "prob_ce_ascot_years_20000", "nmb_ascot_years_30000_ci_low", "icer_qaly",
            "quadrant_ascot_years"} <= set(gres.table.columns)
    assert "all controls" in gres.method and "within" in gres.method
    # copd: too few controls with a QALY → that model only is not estimable, with a note
    q = pick_row(est, "condition=copd", "incremental_qaly")
    assert np.isnan(q["estimate"]) and any("condition=copd" in n and "qaly" in n for n in gres.notes)
    assert np.isfinite(pick_row(est, "condition=copd", "incremental_cost")["estimate"])


def test_effect_falls_back_to_ascot_raw(gdata):
    d = gdata.drop(columns=["scrqol_t0", "scrqol_t1"]).assign(ascot_raw_t0=gdata["scrqol_t0"] * 24,
                                                               ascot_raw_t1=gdata["scrqol_t1"] * 24)
    assert resolve_effect(d) == "ascot_raw"
    res = cea(d, COVS, strata=["all"], B=20, rng=np.random.default_rng(1), quiet=True, missing="complete_case")
    eff_rows = res.estimates[res.estimates["outcome"] == "incremental_effect"]
    assert (eff_rows["effect_measure"] == "ascot_raw").all() and res.effect == "ascot_raw"
    ref = cea(gdata, COVS, strata=["all"], B=20, rng=np.random.default_rng(1), quiet=True, missing="complete_case")
    assert pick_row(res.estimates, "all", "incremental_effect")["estimate"] == \
        pytest.approx(24 * pick_row(ref.estimates, "all", "incremental_effect")["estimate"], rel=1e-10)


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
    assert np.isnan(pick_row(res.estimates, "all", "incremental_qaly")["estimate"])
