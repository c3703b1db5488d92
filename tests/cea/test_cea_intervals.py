"""Percentile and BCa intervals against boot::boot.ci on R's own replicates."""

import numpy as np
import pytest

from phb_eval.cea import bca_interval, percentile_interval


def test_interval_functions_on_r_replicates(golden):
    """percentile_interval/bca_interval fed R's own t, t0 and jackknife L reproduce boot.ci."""
    g = golden["groups"]["all"]
    for name in g["stats"]:
        t = np.asarray(g["t"][name], dtype=float)
        assert percentile_interval(t, golden["conf"]) == pytest.approx(g["perc"][name], abs=1e-10, rel=1e-12)
        assert bca_interval(t, g["t0"][name], g["L"][name], golden["conf"]) == \
            pytest.approx(g["bca"][name], abs=1e-10, rel=1e-12)
