"""Net-benefit regression by budget band × implementation model against R lm + clubSandwich
(tests/golden/cea_nbr.R): cell coefficients, SEs, Satterthwaite df and joint tests (HTZ with CR2; Naive-F
with CR1S while the CR2 module is absent); contrasts; pooling over imputations."""
import json

import numpy as np
import pandas as pd
import pytest

from phb_eval.cea import cea
from phb_eval.cea.nbr import cell_contrasts

from cea_helpers import GOLDEN

CELLS = ["budget_band=<1000;implementation_model=model1", "budget_band=<1000;implementation_model=model2",
         "budget_band=>=1000;implementation_model=model1", "budget_band=>=1000;implementation_model=model2"]


@pytest.fixture(scope="module")
def nbr():
    data = pd.read_csv(GOLDEN / "cea_nbr_data.csv")
    res = cea(data, ["age", "sex", "condition"], strata=["all"], B=50, missing="complete_case",
              lambda_qaly=[20000, 30000], lambda_ascot=[20000, 30000], rng=np.random.default_rng(1), quiet=True)
    return res, json.loads((GOLDEN / "cea_nbr_golden.json").read_text())


def test_cells_and_tests_equal_clubsandwich(nbr):
    res, golden = nbr
    kind = "CR2" if res.nbr["method"].str.contains("_cr2_").all() else "CR1S"
    assert res.nbr["method"].str.contains("_cr2_").all() or res.nbr["method"].str.contains("_cr1_").all()
    for key, fits in golden["fits"].items():
        measure, lam = key.rsplit("_", 1)
        g = fits[kind]
        rows = res.nbr[(res.nbr["effect_measure"] == measure) & (res.nbr["lambda_gbp"] == float(lam))]
        rows = rows.set_index("cell").loc[CELLS]
        np.testing.assert_allclose(rows["estimate"], g["estimate"], rtol=1e-9, atol=1e-6)
        np.testing.assert_allclose(rows["se"], g["se"], rtol=1e-8)
        if kind == "CR2":
            np.testing.assert_allclose(rows["df"], g["df"], rtol=1e-6)
            np.testing.assert_allclose(rows["p_value"], g["p"], rtol=1e-6)
        tests = res.nbr_tests[(res.nbr_tests["effect_measure"] == measure)
                              & (res.nbr_tests["lambda_gbp"] == float(lam))].set_index("test")
        for name, t in g["tests"].items():
            assert tests.loc[name, "statistic"] == pytest.approx(t["statistic"], rel=1e-8)
            assert tests.loc[name, "df1"] == t["df1"]
            if kind == "CR2":
                assert tests.loc[name, "df2"] == pytest.approx(t["df2"], rel=1e-6)
                assert tests.loc[name, "p_value"] == pytest.approx(t["p"], rel=1e-6)
    assert (res.nbr["horizon_years"] == 1.0).all()


def test_contrasts_of_a_two_by_two():
    cells = [("<1000", "model1"), ("<1000", "model2"), (">=1000", "model1"), (">=1000", "model2")]
    C = cell_contrasts(cells)
    assert C["budget_size"].tolist() == [[-1, 0, 1, 0], [0, -1, 0, 1]]
    assert C["flexibility"].tolist() == [[-1, 1, 0, 0], [0, 0, -1, 1]]
    assert C["interaction"].tolist() == [[1, -1, -1, 1]]
    assert C["any_difference"].shape == (3, 4)


def test_pooled_over_imputations_is_rubin_and_d1():
    """Two copies of one dataset: no between-imputation variance, so pooled = complete-data results."""
    from phb_eval.cea.nbr import net_benefit_regression
    data = pd.read_csv(GOLDEN / "cea_nbr_data.csv")
    data["_e"] = (data["scrqol_t0"] + data["scrqol_t1"]) / 2
    one = net_benefit_regression([data], ["age", "sex", "condition"], {"ascot_years": ("_e", "scrqol_t0")},
                                 {"ascot_years": [20000.0]})
    two = net_benefit_regression([data, data.copy()], ["age", "sex", "condition"],
                                 {"ascot_years": ("_e", "scrqol_t0")}, {"ascot_years": [20000.0]})
    np.testing.assert_allclose(two[0]["estimate"], one[0]["estimate"], rtol=1e-12)
    np.testing.assert_allclose(two[0]["se"], one[0]["se"], rtol=1e-12)
    np.testing.assert_allclose(two[1]["statistic"], one[1]["statistic"], rtol=1e-10)
    assert (two[0]["method"].str.endswith("_mi")).all()
