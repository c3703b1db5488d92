"""Shared fixtures built from tests/cohort_factory.py."""
import pandas as pd
import pytest

from cohort_factory import build_cohort, write_table


@pytest.fixture
def cohort_frame() -> pd.DataFrame:
    return build_cohort()


@pytest.fixture
def write(tmp_path):
    """write(frame, name, **csv_kwargs) -> path inside tmp_path."""
    def _write(frame, name="cohort.csv", **kwargs):
        return write_table(frame, tmp_path / name, **kwargs)
    return _write
