"""Replicate indices: strata sizes kept, reproducible, independent of block size."""

import numpy as np

from phb_eval.cea import bootstrap_indices, iter_bootstrap_indices, replicate_counts


def test_bootstrap_indices_keep_strata_sizes():
    strata = np.array(["a"] * 5 + ["b"] * 3 + ["a"] * 2)
    idx = bootstrap_indices(strata, 50, np.random.default_rng(0))
    assert idx.shape == (50, 10)
    counts = replicate_counts(idx, 10)
    assert (counts.sum(axis=1) == 10).all()
    assert (counts[:, strata == "b"].sum(axis=1) == 3).all()
    assert np.array_equal(idx, bootstrap_indices(strata, 50, np.random.default_rng(0)))


def test_replicates_do_not_depend_on_block_size():
    """Blocks bound memory without changing any replicate."""
    strata = np.repeat(["a", "b", "c"], [7, 4, 9])
    whole = bootstrap_indices(strata, 23, np.random.default_rng(2))
    for chunk in (1, 5, 7, 23, 100):
        blocks = list(iter_bootstrap_indices(strata, 23, np.random.default_rng(2), chunk))
        assert len(blocks) == -(-23 // chunk)
        assert np.array_equal(np.vstack(blocks), whole)
