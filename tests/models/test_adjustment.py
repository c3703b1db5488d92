"""Every estimator accepts the plan's adjustment set: baseline scores of another instrument, baseline
service use, site fixed effects and a covariate with missing values; compare runs with such a plan."""
import numpy as np
import pandas as pd
import pytest
import yaml

from phb_eval import costs, outcomes, pipeline, service_use, subgroups
from phb_eval.cli import main
from phb_eval.errors import EstimationError
from phb_eval.io import load_cohort
from phb_eval.plan import load_plan
from phb_eval.results import Results
from phb_eval.simulate import simulate_pilot, write_simulation

RICH = ["age", "sex", "condition", "ghq12_likert_t0", "log1p(inpatient_days_pre)", "C(site)", "sex:age"]
FAST = {"cea": {"bootstrap": 50, "strata": ["all"]}, "imputation": {"m": 3, "iterations": 3},
        "covariates": RICH, "service_use": {"services": ["gp_consultations"]}}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("rich")
    paths = write_simulation(simulate_pilot(n_phb=300, n_control=300, sites=12, seed=21), out)
    frame = pd.read_csv(paths["cohort"])
    frame.loc[frame.index % 13 == 0, "age"] = np.nan          # a covariate with missing values
    frame.to_csv(paths["cohort"], index=False)
    return paths


@pytest.fixture(scope="module")
def frame(sim):
    plan = load_plan(None, FAST)
    prepared, _ = pipeline.prepare(load_cohort(data=sim["cohort"], plan=plan), plan)
    assert prepared["age"].isna().any() and prepared["ghq12_likert_t0"].notna().any()
    return prepared


def _finite(rows):
    est = rows.loc[rows["estimate"].notna()]
    assert not est.empty
    assert np.isfinite(est[["estimate", "se"]].to_numpy(float)).all()
    assert (est["n_clusters"] == 12).all()


@pytest.mark.parametrize("variance", ["cr1", "cr2"])
def test_outcome_estimators_take_the_rich_set(frame, variance):
    pytest.importorskip("phb_eval.models.variance") if variance == "cr2" else None
    w = pd.Series(1.0, index=frame.index)
    for rows in (outcomes.ancova(frame, "ascot_raw", RICH, variance=variance),
                 outcomes.did(frame, "ascot_raw", RICH, variance=variance),
                 outcomes.ancova(frame, "ascot_raw", RICH, weights=w, variance=variance),
                 outcomes.binary_effects(frame, "ghq12_caseness", RICH, variance=variance)):
        _finite(rows)
        assert rows["method"].str.contains(f"_{variance}_site").all()
    # the rows analysed are those with every covariate observed (complete cases)
    n = outcomes.ancova(frame, "ascot_raw", RICH, variance=variance).iloc[0]
    assert n["n_phb"] + n["n_control"] < frame[["ascot_raw_t1", "ascot_raw_t0"]].dropna().shape[0]


def test_imputation_fills_the_missing_covariate(frame):
    plan = load_plan(None, FAST)
    res = Results()
    sets = pipeline._impute(frame, plan, RICH, ["ascot_raw"], np.random.default_rng(1), res, "t0", "t1")
    imputed = sets["ascot_raw"]
    assert all(f["age"].notna().all() for f in imputed)
    assert any("age" in n and "imputed" in n for n in res.meta["notes"])
    row = outcomes.ancova_mi(imputed, "ascot_raw", RICH, variance="cr1").iloc[0]
    assert np.isfinite(row["estimate"]) and row["method"] == "ancova_mi_cr1_site"
    complete = outcomes.ancova(frame, "ascot_raw", RICH, variance="cr1").iloc[0]
    assert row["n_phb"] + row["n_control"] > complete["n_phb"] + complete["n_control"]


@pytest.mark.parametrize("model", ["negbin", "poisson", "zinb", "hurdle_negbin"])
def test_count_models_take_the_rich_set(frame, model):
    try:
        rows = service_use.count_model(frame, "gp_consultations", RICH, model=model, variance="cr1")
    except EstimationError as exc:
        # a zero part with site fixed effects is not identified when a site has no zeros: a sentence
        assert model in ("zinb", "hurdle_negbin") and "not" in str(exc)
        return
    _finite(rows)


def test_costs_and_subgroups_take_the_rich_set(frame):
    rows = costs.cost_effects(frame, RICH, models=("ols", "glm_gamma_log"), outcomes=("indirect_cost",),
                              variance="cr1")
    assert rows["method"].str.startswith(("ols_cr1_site", "glm_gamma_log_cr1_site")).all()
    assert np.isfinite(rows.loc[rows["method"] == "ols_cr1_site", "estimate"]).all()
    sg = subgroups.subgroup_effects(frame, "ascot_raw", "sex", RICH, variance="cr1", min_cell=5)
    inter = sg[sg["method"].str.startswith("interaction_wald_")]
    assert len(inter) == 1 and inter["test"].iloc[0] == "F" and inter["df2"].iloc[0] == 11
    assert np.isfinite(inter["p_value"]).all()


def test_compare_with_the_rich_plan_exits_0(sim, tmp_path, capsys):
    plan = tmp_path / "rich.yaml"
    plan.write_text(yaml.safe_dump({**FAST, "missing": "impute"}))
    with pytest.raises(SystemExit) as exit_:
        main(["compare", str(sim["cohort"]), "--plan", str(plan), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert exit_.value.code == 0, err
    assert "Traceback" not in err


def test_a_term_that_cannot_be_used_stops_compare_with_a_sentence(sim, tmp_path, capsys):
    plan = tmp_path / "bad.yaml"
    plan.write_text(yaml.safe_dump({**FAST, "covariates": ["age", "participant_id"]}))
    with pytest.raises(SystemExit) as exit_:
        main(["compare", str(sim["cohort"]), "--plan", str(plan), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "participant_id" in err and "identifier" in err
    assert "Traceback" not in err


def test_complete_case_plan_counts_the_people_dropped(sim):
    plan = load_plan(None, {**FAST, "missing": "complete_case", "estimators": ["ancova", "ancova_mi"],
                            "variance": "cr1"})
    res = pipeline.compare(load_cohort(data=sim["cohort"], plan=plan), plan, quiet=True)
    n_missing = int(pd.read_csv(sim["cohort"])["age"].isna().sum())
    note = next(n for n in res.meta["notes"] if n.startswith("covariates:") and "complete_case" in n)
    assert int(note.split()[1]) >= n_missing             # age, or a baseline score of the set, missing
    mi = res.estimates[res.estimates["method"].eq("ancova_mi_cr1_site")]
    assert not mi.empty                                  # MI still runs, on people with every covariate


def test_wild_bootstrap_plan_runs_and_names_what_ran(sim):
    pytest.importorskip("phb_eval.models.variance")
    plan = load_plan(None, {**FAST, "variance": "wild_bootstrap", "wild_bootstrap": {"B": 199},
                            "estimators": ["ancova", "ancova_mi"], "service_use": {"services": ["gp_consultations"],
                                                                                   "models": ["negbin", "zinb"]}})
    res = pipeline.compare(load_cohort(data=sim["cohort"], plan=plan), plan, quiet=True)
    methods = set(res.estimates["method"])
    assert {"ancova_wcb_site", "ancova_mi_cr2_site", "negbin_cr2_site"} <= methods
    row = res.estimates[res.estimates["method"].eq("ancova_wcb_site")].iloc[0]
    assert 0 < row["p_value"] <= 1 and row["ci_low"] < row["estimate"] < row["ci_high"]


def test_a_covariate_of_one_arm_only_is_warned_and_left_out(frame):
    plan = load_plan(None, {**FAST, "covariates": ["age", "budget_band"]})
    res = Results()
    assert pipeline._covariates(frame, plan, res) == ["age"]
    assert any("budget_band" in w and "one arm only" in w for w in res.warnings)
