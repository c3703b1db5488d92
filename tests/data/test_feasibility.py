"""Validate warns, before compare, about sites and arms that make an analysis impossible."""
import numpy as np

from phb_eval.data.feasibility import feasibility_warnings
from phb_eval.data.cohort import load_cohort
from phb_eval.plan import load_plan
from phb_eval.validate import validate_cohort
from tests.cohort_factory import build_cohort

GHQ_T1 = [f"ghq{i:02d}_t1" for i in range(1, 13)]


def _rules(problems):
    return [p.rule for p in problems]


def test_a_valid_cohort_has_no_feasibility_warning():
    assert feasibility_warnings(build_cohort(), load_plan()) == []


def test_an_arm_with_no_follow_up_answer_to_an_instrument():
    frame = build_cohort()
    frame.loc[frame["group"] == "control", GHQ_T1] = np.nan
    rules = _rules(feasibility_warnings(frame, load_plan()))
    assert any("nobody in the control arm has a ghq12 answer at follow-up (t1)" in r for r in rules)


def test_a_site_with_no_follow_up_and_too_few_clusters():
    frame = build_cohort()
    t1 = [c for c in frame.columns if c.endswith("_t1")]
    frame.loc[frame["site"] == "S2", t1] = np.nan
    problems = feasibility_warnings(frame, load_plan())
    assert [p.value for p in problems if "nobody in this site" in p.rule] == ["S2"]
    assert any("only 1 site has follow-up answers" in r for r in _rules(problems))
    assert all(p.level == "warning" and p.row is None for p in problems)   # sites and rules, no person


def test_a_site_with_no_answer_to_one_instrument_is_named():
    frame = build_cohort()
    frame.loc[frame["site"] == "S1", "carer_health_t1"] = np.nan
    rules = _rules(feasibility_warnings(frame, load_plan()))
    assert any("nobody in 1 site(s) (S1) has a carer_health answer" in r for r in rules)


def test_validate_reports_them_as_warnings(tmp_path):
    frame = build_cohort()
    frame.loc[frame["group"] == "phb", GHQ_T1] = np.nan
    path = tmp_path / "cohort.csv"
    frame.to_csv(path, index=False)
    cohort = load_cohort(path)
    problems = validate_cohort(cohort, load_plan())
    assert not [p for p in problems if p.level == "error"]
    assert any("nobody in the phb arm has a ghq12 answer" in p.rule for p in problems)
