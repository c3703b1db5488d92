"""Issue 18, data safety: each test is named after a finding of the hostile-input probe (3: compare
crashes on ordinary data; 4: digit-only ids leak; 5: suppressed counts can be recovered) and holds one
promise of the README's "Promises" section. Runs are in-process (``phb_eval.cli.main``) for speed."""
import json

import pytest
import yaml

from phb_eval.simulate import simulate_pilot, write_simulation
from cli_runner import run


@pytest.fixture(scope="module")
def fast_plan(tmp_path_factory):
    """The default plan's estimators (multiple imputation included) with fewer draws, for speed."""
    path = tmp_path_factory.mktemp("plan") / "fast.yaml"
    path.write_text(yaml.safe_dump({"cea": {"bootstrap": 100, "strata": ["all"]},
                                    "imputation": {"m": 3, "iterations": 3}}))
    return path


# ------------------------------------------------------------- finding 3: compare crashes on ordinary data
@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_compare_never_crashes_on_ordinary_data(seed, fast_plan, tmp_path, capsys):
    """150 + 150 people over 20 sites: some sites have nobody with a carer outcome observed, which made the
    imputation's normal equations singular (exit 1 on seeds 1, 2 and 4). Now every seed gives a report,
    and the pooled sites are named in a note."""
    paths = write_simulation(simulate_pilot(n_phb=150, n_control=150, seed=seed), tmp_path / "in")
    code, _, err = run(["compare", paths["cohort"], "--plan", fast_plan, "--out", tmp_path / "out", "-q"], capsys)
    assert code == 0, err
    assert (tmp_path / "out" / "report.html").is_file()
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    if seed in (1, 2, 4):
        assert any("imputed from the pooled model" in n for n in results["meta"]["notes"])


def test_participant_id_as_cluster_or_covariate_is_a_plan_sentence(fast_plan, tmp_path, capsys):
    paths = write_simulation(simulate_pilot(n_phb=30, n_control=30, sites=3, seed=5), tmp_path / "in")
    for setting in ({"cluster": "participant_id"}, {"covariates": ["age", "participant_id"]}):
        plan = tmp_path / "plan.yaml"
        plan.write_text(yaml.safe_dump(setting))
        code, _, err = run(["compare", paths["cohort"], "--plan", plan, "--out", tmp_path / "out"], capsys)
        assert code == 2, err
        assert "participant_id" in err and "Traceback" not in err
        assert not (tmp_path / "out").exists()
