"""The analysis plan: defaults, merging, and errors that name the key path and allowed values."""
import os

import pytest
import yaml

from phb_eval.errors import PhbEvalError, PlanError
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
    ("estimators: [ancova_magic]\n", "estimators.0", "'ancova'"),
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


# ---- issue 18, finding 7 and 9: a plan can exhaust memory; duplicate keys (last one wins) ----------------
def test_yaml_alias_bomb_is_refused(tmp_path):
    rows = ["a: &a [x, x, x, x, x, x, x, x, x]"] + [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]"
                                                    for p, c in zip("abcdefgh", "bcdefghi")]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(rows) + "\nname: *i\n")  # 9**9 = 387 million strings if expanded
    with pytest.raises(PlanError, match=r"line 1: YAML anchors and aliases .* not allowed"):
        load_plan(bomb)
    merge = tmp_path / "merge.yaml"
    merge.write_text("base: &base {m: 3}\nimputation:\n  <<: *base\n")
    with pytest.raises(PlanError, match="anchors and aliases"):
        load_plan(merge)


def test_duplicate_yaml_keys_are_refused_naming_key_and_line(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("cea:\n  bootstrap: 100\n  ceac_step: 500\n  bootstrap: 200\n")
    with pytest.raises(PlanError, match=r"line 4: the setting 'bootstrap' is given twice \(first on line 2\)"):
        load_plan(path)


@pytest.mark.parametrize("settings, key", [
    ({"cea": {"ceac_step": 0.001}}, "CEAC points"),
    ({"cea": {"ceac_max": 1e9}}, "CEAC points"),
    ({"cea": {"bootstrap": 100_001}}, "cea.bootstrap"),
    ({"imputation": {"m": 201}}, "imputation.m"),
])
def test_plan_settings_that_set_the_work_are_bounded(tmp_path, settings, key):
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(settings))
    with pytest.raises(PlanError, match=key):
        load_plan(path)


def test_the_largest_allowed_work_is_accepted():
    plan = load_plan(None, {"cea": {"ceac_max": 100000, "ceac_step": 10, "bootstrap": 100_000},
                            "imputation": {"m": 200}})
    assert (plan.cea.bootstrap, plan.imputation.m) == (100_000, 200)


def test_plan_named_files_must_be_regular_files_of_bounded_size(tmp_path):
    from phb_eval.costs import load_inflation_index, load_unit_costs
    from phb_eval.instruments.ascot import load_weights
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as f:
        f.truncate(51 * 2 ** 20)  # sparse: 51 MB on paper, nothing on disk
    cases = {"/dev/zero": "a device", str(tmp_path): "a folder", str(fifo): "a pipe", str(huge): "51.0 MB"}
    for path, what in cases.items():
        for loader in (lambda p: load_unit_costs(p), lambda p: load_inflation_index(p),
                       lambda p: load_weights(p, "ascot")):
            with pytest.raises(PhbEvalError, match=what):
                loader(path)


def test_a_plan_file_itself_is_bounded(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("description: " + "x" * (2 * 2 ** 20) + "\n")
    with pytest.raises(PhbEvalError, match="more than the 1 MB"):
        load_plan(big)
    with pytest.raises(PhbEvalError, match="a device"):
        load_plan("/dev/zero")
