"""The analysis plan: defaults, merging, and errors that name the key path and allowed values."""
import pytest
import yaml

from phb_eval.errors import PlanError
from phb_eval.plan import ANALYSES_DIR, Plan, load_plan


def test_default_yaml_equals_schema_defaults():
    # The commented default file and the schema must never drift apart.
    assert load_plan() == Plan()


def test_pilot_plan_validates_and_states_assumptions():
    plan = load_plan(ANALYSES_DIR / "pilot_2012.yaml")
    assert plan.confidence_level == 0.90
    assert plan.strata.budget_cuts == [1000.0]
    assert plan.strata.implementation_model == {"model1": ["knew_budget", "flexible_spend", "chose_deployment"]}
    assert len(plan.assumptions) >= 5


def test_user_plan_merges_over_defaults(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("cea:\n  bootstrap: 200\ncovariates: [age]\n")
    plan = load_plan(p)
    assert plan.cea.bootstrap == 200
    assert plan.cea.lambdas == [20000.0, 25000.0, 30000.0, 35000.0]  # untouched default
    assert plan.covariates == ["age"]


@pytest.mark.parametrize("text, key, hint", [
    ("confidence_level: 1.5\n", "confidence_level", "less than 1"),
    ("estimators: [ancova_magic]\n", "estimators.0", "ancova_cr1_site"),
    ("instruments:\n  eq5d_version: 4L\n", "instruments.eq5d_version", "'3L'"),
    ("cea:\n  bootstrapp: 10\n", "cea.bootstrapp", "unknown setting"),
    ("strata:\n  budget_cuts: [1000, 500]\n", "strata.budget_cuts", "strictly increasing"),
    ("strata:\n  implementation_model: {m1: [knew_amount]}\n", "strata.implementation_model", "knew_budget"),
    ("instruments:\n  eq5d_version: 5L\n", "instruments", "england_devlin2018"),
])
def test_invalid_plan_names_key_and_allowed_values(tmp_path, text, key, hint):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(PlanError) as err:
        load_plan(p)
    msg = str(err.value)
    assert key in msg and hint in msg and str(p) in msg


def test_unreadable_plans_get_one_sentence(tmp_path):
    with pytest.raises(PlanError, match="not found"):
        load_plan(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(PlanError, match="not valid YAML"):
        load_plan(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(PlanError, match="mapping"):
        load_plan(listy)
