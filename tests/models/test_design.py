"""The design of the modelling core: plan terms read once, checked sentences, one model matrix per fit."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phb_eval.errors import EstimationError, PlanError
from phb_eval.models.design import build_design, design_matrix, parse_terms, split_available


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(5)
    n = 240
    df = pd.DataFrame({
        "participant_id": [f"P{i:03d}" for i in range(n)],
        "phb": rng.integers(0, 2, n), "site": rng.integers(1, 13, n),
        "age": rng.normal(60, 10, n).round(), "sex": rng.choice(["female", "male"], n),
        "condition": rng.choice(["chc", "copd", "diabetes"], n),
        "ghq12_likert_t0": rng.integers(0, 36, n).astype(float),
        "inpatient_days_pre": rng.poisson(3, n).astype(float),
        "y_t0": rng.normal(10, 2, n)})
    df["y_t1"] = df["y_t0"] + 0.5 * df["phb"] + rng.normal(0, 1, n)
    df.loc[::17, "ghq12_likert_t0"] = np.nan          # a covariate with missing values
    return df


def test_terms_of_every_allowed_kind(frame):
    terms = parse_terms(["age", "sex", "ghq12_likert_t0", "log1p(inpatient_days_pre)", "site", "sex:age"],
                        cluster="site")
    assert [t.text for t in terms] == ["age", "sex", "ghq12_likert_t0", "log1p(inpatient_days_pre)", "C(site)",
                                       "sex:age"]
    d = build_design(frame, "y_t1", covariates=terms, baseline="y_t0")
    cols = d.columns
    assert cols[:3] == ["Intercept", "phb", "y_t0"]
    assert "log1p(inpatient_days_pre)" in cols and "sex[T.male]" in cols and "sex[T.male]:age" in cols
    assert sum(c.startswith("C(site)[T.") for c in cols) == 11          # 12 sites: fixed effects
    assert d.n_dropped == int(frame["ghq12_likert_t0"].isna().sum())   # complete cases, counted
    np.testing.assert_allclose(d.X["log1p(inpatient_days_pre)"], np.log1p(d.data["inpatient_days_pre"]))


def test_baseline_is_not_entered_twice(frame):
    d = build_design(frame, "y_t1", covariates=["y_t0", "age"], baseline="y_t0")
    assert d.columns.count("y_t0") == 1
    d = build_design(frame, "y_t1", covariates=["log1p(inpatient_days_pre)"],
                     baseline="log1p( inpatient_days_pre )")
    assert d.columns.count("log1p(inpatient_days_pre)") == 1


def test_text_treatment_is_coded_second_level_as_one(frame):
    df = frame.assign(arm=np.where(frame["phb"] == 1, "phb", "control"))
    a = build_design(df, "y_t1", treatment="arm", covariates=["age"])
    b = build_design(frame, "y_t1", covariates=["age"])
    np.testing.assert_array_equal(a.X["arm"].to_numpy(), b.X["phb"].to_numpy())


@pytest.mark.parametrize("term, message", [
    ("participant_id", "identifier"), ("log1p(participant_id)", "identifier"),
    ("__import__('os').system('true')", "may not use|cannot read|not a model term"),
    ("age.real", "Attribute"), ("open(age)", "may not use"), ("-1", "cannot remove the intercept"),
    ("log1p(age", "not a model term"), ("C(age, 3)", "C\\(\\) takes one column"), ("", "not a model term"),
])
def test_bad_terms_are_plan_errors(term, message):
    with pytest.raises(PlanError, match=message):
        parse_terms([term])


def test_absent_columns_and_bad_values_are_sentences(frame):
    ok, absent = split_available(parse_terms(["age", "income", "log1p(income)"]), frame.columns)
    assert [t.text for t in ok] == ["age"] and len(absent) == 2
    with pytest.raises(EstimationError, match="not in the analysis data"):
        build_design(frame, "y_t1", covariates=["income"])
    with pytest.raises(EstimationError, match="infinite or undefined|cannot be evaluated"):
        design_matrix(frame.assign(z=0.0), ["log(z)"])
    with pytest.raises(EstimationError, match="one site"):
        build_design(frame.assign(site=1), "y_t1", covariates=["age"])


ALLOWED = ["age", "sex", "condition", "ghq12_likert_t0", "log1p(inpatient_days_pre)", "site", "C(site)",
           "sex:age", "condition*age", "sqrt(age)", "y_t0", "income", "log(age)", "participant_id", "C(sex)"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(ALLOWED), max_size=6))
def test_random_covariate_combinations_never_give_a_traceback(frame, covs):
    """Any combination of allowed terms either fits or raises one of the project's sentences."""
    from phb_eval import outcomes
    try:
        terms = parse_terms(covs, cluster="site")
        terms, _ = split_available(terms, frame.columns)
        out = outcomes.ancova(frame, "y", terms, variance="cr1")
    except (PlanError, EstimationError) as exc:
        assert str(exc)
    else:
        assert np.isfinite(out["estimate"].iloc[0]) and out["n_clusters"].iloc[0] == 12
