"""Which estimator failures become a sentence under "analyses not run", and which stay bugs."""
import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from phb_eval.errors import EstimationError
from phb_eval.estimation_failures import estimation_failure
from phb_eval.pipeline import _try
from phb_eval.results import Results


def _raise(exc):
    raise exc


def _statsmodels_value_error():
    smf.ols("y ~ x", data=pd.DataFrame({"y": [], "x": []})).fit()


def test_numerical_failures_become_sentences_without_data_values():
    results = Results()
    assert _try(results, "outcome x (ancova)", _raise, np.linalg.LinAlgError("Singular matrix")) is None
    assert _try(results, "outcome y (ancova)", _raise, EstimationError("the PHB arm is empty")) is None
    assert _try(results, "service use", _raise, ZeroDivisionError("division by zero")) is None
    assert _try(results, "costs", _statsmodels_value_error) is None
    assert results.skipped[0].startswith("outcome x (ancova): not estimated: the model's design is singular")
    assert results.skipped[1] == "outcome y (ancova): the PHB arm is empty"
    assert "could not fit the model on this data" in results.skipped[3]


def test_library_messages_lose_quoted_text_and_numbers():
    try:
        pd.to_numeric(pd.Series(["9434765919", "x"]))            # raised inside pandas: the data, not a bug
    except ValueError as raised:
        text = estimation_failure(raised)
    assert "could not fit" in text and "9434765919" not in text and '"x"' not in text
    text = estimation_failure(np.linalg.LinAlgError("matrix 9434765919 is 'x' singular"))
    assert "9434765919" not in text and "'x'" not in text


@pytest.mark.parametrize("exc", [TypeError("bad argument"), KeyError("column"), ValueError("our own check"),
                                 AttributeError("no attribute"), IndexError("out of range")])
def test_programming_errors_still_surface(exc):
    with pytest.raises(type(exc)):
        _try(Results(), "outcome x", _raise, exc)


def test_debug_variable_reraises_numerical_failures(monkeypatch):
    monkeypatch.setenv("PHB_EVAL_DEBUG", "1")
    with pytest.raises(np.linalg.LinAlgError):
        _try(Results(), "outcome x", _raise, np.linalg.LinAlgError("Singular matrix"))
    results = Results()
    _try(results, "outcome x", _raise, EstimationError("too few people"))   # a sentence by design, still
    assert results.skipped == ["outcome x: too few people"]
