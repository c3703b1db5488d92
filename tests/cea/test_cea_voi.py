"""EVPI from draws against the closed form for a normal net benefit; population EVPI from the plan."""
import numpy as np
import pandas as pd
import pytest

from phb_eval.cea import evpi_normal, evpi_per_person
from phb_eval.cea.voi import population_evpi


@pytest.mark.parametrize("mean,sd", [(0.0, 1000.0), (500.0, 1000.0), (-800.0, 400.0), (3000.0, 500.0)])
def test_evpi_from_normal_draws_equals_closed_form(mean, sd):
    draws = np.random.default_rng(3).normal(mean, sd, 400_000)
    exact = evpi_normal(mean, sd)
    assert evpi_per_person(draws) == pytest.approx(exact, abs=4 * sd / np.sqrt(draws.size) + 1e-9)
    if mean == 0:
        assert exact == pytest.approx(sd / np.sqrt(2 * np.pi))


def test_evpi_zero_without_uncertainty_about_the_decision():
    assert evpi_per_person(np.array([5.0, 10.0, 1.0])) == 0.0
    assert evpi_per_person(np.array([-5.0, -10.0])) == 0.0
    assert evpi_per_person(np.array([-1.0, 3.0])) == pytest.approx(1.5 - 1.0)


def test_population_evpi_uses_the_eligible_population():
    table = pd.DataFrame({"stratum": ["all"], "effect_measure": ["qaly"], "lambda_gbp": [20000.0],
                          "evpi_per_person": [12.5]})
    out = population_evpi(table, {"chc": 56000.0, "mental_health": 4000.0})
    assert out["eligible_population"].item() == 60000.0 and out["evpi_population"].item() == 12.5 * 60000
