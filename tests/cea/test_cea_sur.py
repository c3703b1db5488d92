"""Batched least squares and closed-form leave-one-out changes against statsmodels."""

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.stats.outliers_influence import OLSInfluence

from phb_eval.cea import batched_wls, loo_change



@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.SingularMatrixWarning")
def test_batched_wls_equals_statsmodels_wls():
    rng = np.random.default_rng(3)
    n = 60
    X = np.column_stack([np.ones(n), rng.normal(50, 10, n), rng.integers(0, 2, n), rng.normal(size=n) * 1000])
    X[:3, 2] = 0
    lvl = np.zeros(n)
    lvl[:3] = 1                                   # a rare dummy: absent when its 3 rows get weight 0
    X = np.column_stack([X, lvl])
    Y = np.column_stack([X @ [1, 0.1, 2, 0.001, 0.5] + rng.normal(size=n), rng.gamma(2, 500, n)])
    W = rng.poisson(1.0, (25, n)).astype(float)
    W[0, :3] = 0                                  # rank-deficient replicate
    got = batched_wls(X, Y, W, [1, 2])
    for b in range(W.shape[0]):
        keep = W[b] > 0
        for k in range(Y.shape[1]):
            fit = sm.WLS(Y[keep, k], X[keep], weights=W[b, keep]).fit()      # pinv: min-norm if singular
            np.testing.assert_allclose(got[b, k], fit.params[[1, 2]], rtol=1e-10, atol=1e-9)


def test_batched_wls_flags_inestimable_coefficient():
    X = np.column_stack([np.ones(6), [0, 0, 1, 1, 0, 1], [1.0, 2, 3, 4, 5, 7]])
    y = np.array([1.0, 2, 3, 5, 4, 6])
    W = np.array([[1, 1, 0, 0, 1, 0.0]])         # the dummy is all zero among weighted rows
    got = batched_wls(X, y, W, [1, 2])
    assert np.isnan(got[0, 0, 0]) and np.isfinite(got[0, 0, 1])


def test_loo_change_equals_statsmodels_dfbeta():
    rng = np.random.default_rng(4)
    n = 40
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n), rng.normal(3000, 800, n)])
    y = X @ [1, 2, 0.5, 0.01] + rng.normal(size=n)
    ours = loo_change(X, y, [1, 2, 3])
    theirs = OLSInfluence(sm.OLS(y, X).fit()).dfbeta[:, [1, 2, 3]]
    np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-12)
