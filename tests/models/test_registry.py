"""The estimator registry: method names, legacy plan names, the report's labels and methods sentences."""
import pytest

from phb_eval.models.registry import (REGISTRY, describe_method, estimator_sentence, estimators_in, method_name,
                                      normalise_estimators, split_method, variances_in)
from phb_eval.plan import load_plan


def test_method_names_carry_estimator_variance_and_cluster():
    assert method_name("ancova", "cr2", "site") == "ancova_cr2_site"
    assert method_name("ancova_mi", "cr2", "site") == "ancova_mi_cr2_site"
    assert method_name("negbin", "wild_bootstrap", "pct", "marginal_diff") == "negbin_wcb_pct_marginal_diff"
    assert split_method("hurdle_negbin_cr1_site_marginal_ratio") == ("hurdle_negbin", "cr1", "site_marginal_ratio")
    assert split_method("unadjusted_t1") is None


def test_each_estimator_runs_a_variance_it_supports():
    assert REGISTRY["ancova"].method("wild_bootstrap", "site") == "ancova_wcb_site"
    assert REGISTRY["logit_or"].method("wild_bootstrap", "site") == "logit_or_cr2_site"   # GLM: CR2
    assert REGISTRY["zinb"].method("cr2", "site") == "zinb_cr1_site"                      # scores only: CR1
    assert REGISTRY["ancova_mi"].method("wild_bootstrap", "site") == "ancova_mi_cr2_site"


def test_legacy_names_are_mapped_with_a_note():
    plan = load_plan(None, {"estimators": ["ancova_cr1_site", "ancova_cr1_site_mi", "did"]})
    assert plan.estimators == ["ancova", "ancova_mi", "did"]
    assert len(plan.estimator_notes) == 2 and "ancova_cr1_site" in plan.estimator_notes[0]
    assert normalise_estimators(["did", "did_cr1_site"]) == (["did"], [
        "estimators: 'did_cr1_site' is now 'did' (the variance comes from the plan's 'variance')"])


def test_labels_and_sentences_name_the_covariance_that_ran():
    assert describe_method("ancova_cr2_site") == "ANCOVA, complete cases, CR2 by site"
    assert describe_method("negbin_cr1_site_marginal_diff") == "negative binomial, CR1 by site (marginal difference)"
    assert describe_method("bootstrap_nmb") is None
    ran = ["ancova_cr2_site", "zinb_cr1_site", "unadjusted_t1"]
    assert variances_in(ran) == ["cr1", "cr2"] and estimators_in(ran) == {"ancova", "zinb"}
    plan = load_plan(None, {"imputation": {"m": 7}})
    assert "m = 7" in estimator_sentence("ancova_mi", plan)
    assert f"ancova_mi_{'cr1' if plan.variance == 'cr1' else 'cr2'}_site" in estimator_sentence("ancova_mi", plan)


@pytest.mark.parametrize("plan_file, variance", [("pilot_2012.yaml", "cr1")])
def test_pilot_plan_keeps_what_the_pilot_did(plan_file, variance):
    from phb_eval.plan import ANALYSES_DIR
    assert load_plan(ANALYSES_DIR / plan_file).variance == variance
