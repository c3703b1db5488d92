"""Fixtures for the report tests: the realistic fake Results (see fake_results.py) and the default plan."""
import pytest

from fake_results import build_results
from phb_eval.plan import load_plan


@pytest.fixture
def results():
    return build_results()


@pytest.fixture
def plan():
    return load_plan()
