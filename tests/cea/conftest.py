"""CEA fixtures: the R golden (same replicate rows), its data, our run on it, a pilot-sized frame."""
import json

import numpy as np
import pandas as pd
import pytest

from phb_eval.cea import cea

from cea_helpers import GOLDEN, cohort, load_make_data


@pytest.fixture(scope="module")
def golden():
    return json.loads((GOLDEN / "cea_golden.json").read_text())


@pytest.fixture(scope="module")
def gdata():
    return pd.read_csv(GOLDEN / "cea_data.csv")


@pytest.fixture(scope="module")
def gres(gdata, golden):
    mk = load_make_data()
    return cea(gdata, mk.COVARIATES, strata=mk.STRATA, B=golden["B"], lambda_ascot=golden["lambdas"],
               lambda_qaly=golden["lambdas"], missing="complete_case", bootstrap_unit="person",
               rng=np.random.default_rng(mk.BOOT_SEED), quiet=True)


@pytest.fixture(scope="module")
def pilot():
    return cohort(np.random.default_rng(11))
