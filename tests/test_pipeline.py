"""compare/subgroups end to end on simulated cohorts read back from real files.

The estimators have their own golden tests against R; here we check that the pipeline feeds them the
right frame (its rows equal a direct call), that planted effects are recovered, that the same seed gives
identical numbers, and that what cannot be estimated is said, not hidden.
"""
import numpy as np
import pandas as pd
import pytest

from phb_eval import outcomes, pipeline
from phb_eval.io import load_cohort
from phb_eval.plan import load_plan
from phb_eval.models.registry import REGISTRY
from phb_eval.simulate import simulate_pilot, write_simulation

FAST = {"cea": {"bootstrap": 200}, "imputation": {"m": 5, "iterations": 5}}
TAG = {"cr1": "cr1", "cr2": "cr2", "wild_bootstrap": "wcb"}[load_plan(None).variance]   # the default variance


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("small")
    paths = write_simulation(simulate_pilot(n_phb=400, n_control=400, sites=10, seed=7, events=True), out)
    return paths


@pytest.fixture(scope="module")
def small_results(small):
    plan = load_plan(None, FAST)
    cohort = load_cohort(data=small["cohort"], events=small["events"], plan=plan)
    return plan, cohort, pipeline.compare(cohort, plan, subgroups=True, quiet=True)


def _rows(est, analysis, outcome=None, method=None, stratum="all"):
    sel = est["analysis"].eq(analysis) & est["stratum"].eq(stratum)
    if outcome:
        sel &= est["outcome"].eq(outcome)
    if method:
        sel &= est["method"].eq(method)
    return est[sel]


def test_every_planned_estimator_gives_a_row_per_outcome(small_results):
    plan, _, res = small_results
    est = res.estimates
    for outcome in ("scrqol", "ascot_raw", "ghq12_likert", "eq5d_index", "eq_vas", "carer_ascot_raw", "carer_health"):
        for name in plan.estimators:
            method = REGISTRY[name].method(plan.variance, plan.cluster)
            assert len(_rows(est, "outcome", outcome, method)) == 1, (outcome, method)
    for outcome in ("ghq12_caseness", "carer_health_good", "mortality"):
        assert len(_rows(est, "outcome", outcome, f"ancova_rd_{TAG}_site")) == 1
        assert len(_rows(est, "outcome", outcome, f"logit_or_{TAG}_site")) == 1
    assert not _rows(est, "balance").empty
    assert not _rows(est, "service_use", method=f"negbin_{TAG}_site").empty
    assert not _rows(est, "cost", "total_cost", f"ols_{TAG}_site").empty
    assert not est[est["analysis"].eq("cea") & est["outcome"].eq("nmb")].empty
    assert not est[est["analysis"].eq("subgroup") & est["method"].eq(f"interaction_wald_{TAG}_site")].empty
    for name in ("flow", "balance", "propensity_model", "overlap", "cost_breakdown", "cea", "ceac", "cea_draws"):
        assert name in res.tables, name


def test_pipeline_row_equals_direct_estimator_call(small_results):
    plan, cohort, res = small_results
    frame, _ = pipeline.prepare(cohort, plan)
    direct = outcomes.ancova(frame, "ascot_raw", plan.covariates, variance=plan.variance)
    row = _rows(res.estimates, "outcome", "ascot_raw", direct["method"].iloc[0]).iloc[0]
    assert row["estimate"] == pytest.approx(direct["estimate"].iloc[0], rel=1e-12)
    assert row["se"] == pytest.approx(direct["se"].iloc[0], rel=1e-12)


def test_same_seed_identical_numbers(small, small_results):
    plan, _, res = small_results
    again = pipeline.compare(load_cohort(data=small["cohort"], events=small["events"], plan=plan), plan,
                             subgroups=True, quiet=True)
    a, b = res.estimates, again.estimates
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_flow_counts_add_up(small_results):
    _, cohort, res = small_results
    flow = res.tables["flow"].set_index("stage")
    for arm in ("phb", "control"):
        recruited = flow.loc["recruited", arm]
        assert recruited == (cohort.frame["group"] == arm).sum()
        parts = (flow.loc["died before follow-up", arm] + flow.loc["lost to follow-up (alive, no follow-up answers)", arm]
                 + flow.loc["followed up", arm])
        assert parts == recruited


def test_mi_and_complete_case_agree_under_mar_on_pilot_sized_cohort(tmp_path):
    """Pilot-sized simulation: ANCOVA, MI, DiD and IPW all land near the planted ATT for ASCOT."""
    sim = simulate_pilot(seed=2012)
    paths = write_simulation(sim, tmp_path)
    plan = load_plan(None, {"cea": {"bootstrap": 50}, "imputation": {"m": 10, "iterations": 5},
                            "service_use": {"services": ["gp_consultations"]}})
    res = pipeline.compare(load_cohort(data=paths["cohort"], plan=plan), plan, quiet=True)
    truth = sim.truth["effects"]["att"]["ascot_raw"]["all"]
    for name in plan.estimators:
        method = REGISTRY[name].method(plan.variance, plan.cluster)
        row = _rows(res.estimates, "outcome", "ascot_raw", method).iloc[0]
        # within 2.5 SE of the truth: a wrong pipeline (e.g. a stalled imputation) misses by far more
        assert abs(row["estimate"] - truth) < 2.5 * row["se"], (method, row["estimate"], truth)


def test_missing_scrqol_is_said_plainly(tmp_path, small):
    frame = pd.read_csv(small["cohort"])
    frame = frame.drop(columns=[c for c in frame.columns if "scrqol" in c])
    path = tmp_path / "no_scrqol.csv"
    frame.to_csv(path, index=False)
    plan = load_plan(None, {**FAST, "estimators": ["ancova"], "cea": {"bootstrap": 50, "strata": ["all"]}})
    res = pipeline.compare(load_cohort(data=path, plan=plan), plan, quiet=True)
    assert _rows(res.estimates, "outcome", "scrqol").empty
    assert any("scrqol" in s and "weights" in s for s in res.skipped)
    assert res.meta["cea_effect"] == "ascot_raw"


def test_unknown_covariate_is_warned_not_ignored(small):
    plan = load_plan(None, {**FAST, "covariates": ["age", "sex", "condition", "income"],
                            "estimators": ["ancova"], "cea": {"bootstrap": 50, "strata": ["all"]}})
    res = pipeline.compare(load_cohort(data=small["cohort"], plan=plan), plan, quiet=True)
    assert any("income" in w for w in res.warnings)


def test_subgroups_detect_planted_heterogeneity(small):
    plan = load_plan(None, {"subgroups": {"variables": ["budget_band", "implementation_model"],
                                          "outcomes": ["ascot_raw"]}})
    res = pipeline.subgroups(load_cohort(data=small["cohort"], plan=plan), plan)
    tests = res.estimates[res.estimates["method"].eq(f"interaction_wald_{TAG}_site")]
    assert set(tests["stratum"]) == {"budget_band", "implementation_model"}
    assert (tests["p_value"] < 0.05).all()
    assert tests["p_adjusted"].notna().all()
    assert not _rows(res.estimates, "outcome", "ascot_raw", f"ancova_{TAG}_site").empty


@pytest.mark.slow
def test_mi_intervals_cover_the_planted_effect_on_simulated_pilots():
    """95% intervals of ancova_mi_cr1_site cover the simulator's planted ATT on ASCOT in ≥ 90% of 50 pilots."""
    from phb_eval.derive import analysis_frame
    from phb_eval.instruments import score_all
    from phb_eval.results import Results
    plan = load_plan(None, {"imputation": {"m": 10, "iterations": 5}})
    covs = list(plan.covariates)
    hits = 0
    for seed in range(50):
        sim = simulate_pilot(seed=seed)
        frame = analysis_frame(score_all(sim.cohort, plan).frame, plan)
        imputed = pipeline._impute(frame, plan, covs, ["ascot_raw"], np.random.default_rng(seed), Results(), "t0", "t1")
        row = outcomes.ancova_mi(imputed["ascot_raw"], "ascot_raw", covs, variance=plan.variance).iloc[0]
        hits += row["ci_low"] <= sim.truth["effects"]["att"]["ascot_raw"]["all"] <= row["ci_high"]
    assert hits / 50 >= 0.90, hits


def test_cea_high_budget_flexible_stratum_shows_the_larger_planted_effect(tmp_path):
    """The simulated pilot plants the largest effect for budgets >= £1,000 with all three flexibilities."""
    sim = simulate_pilot(seed=2012)
    paths = write_simulation(sim, tmp_path)
    plan = load_plan(None, {"estimators": ["ancova"], "cea": {"bootstrap": 200,
                            "strata": ["budget_band:implementation_model"]}})
    res = pipeline.compare(load_cohort(data=paths["cohort"], plan=plan), plan, quiet=True)
    eff = res.estimates[res.estimates["analysis"].eq("cea") & res.estimates["outcome"].eq("incremental_effect")]
    eff = eff.set_index("stratum")["estimate"]
    best, worst = "budget_band=>=1000;implementation_model=model1", "budget_band=<1000;implementation_model=model2"
    assert eff[best] == eff.max() and eff[worst] == eff.min()
    truth = sim.truth["effects"]["att"]["scrqol"]
    assert truth[best] > truth[worst]
    nmb = res.estimates[res.estimates["outcome"].eq("nmb") & res.estimates["lambda_gbp"].eq(20000)
                        & res.estimates["effect_measure"].eq("ascot_years")].set_index("stratum")
    assert nmb.loc[best, "estimate"] > nmb.loc[worst, "estimate"]
