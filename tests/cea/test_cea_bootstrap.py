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


def test_two_stage_weights_draw_people_within_the_drawn_sites():
    from phb_eval.cea.bootstrap import two_stage_weights
    unit_of = np.repeat([0, 1, 2, 3, 4], [3, 5, 2, 4, 6])      # 5 arm-site clusters
    unit_strata = np.array([0, 0, 1, 1, 1])                     # their arms
    stage1 = bootstrap_indices(unit_strata, 30, np.random.default_rng(4).spawn(2)[0])
    W = np.vstack(list(two_stage_weights(unit_of, unit_strata, 30, np.random.default_rng(4), 7)))
    assert W.shape == (30, unit_of.size)
    sizes = np.bincount(unit_of)
    for b in range(30):
        drawn = np.bincount(stage1[b], minlength=5)
        per_unit = np.bincount(unit_of, weights=W[b], minlength=5)
        assert np.array_equal(per_unit, drawn * sizes)       # c draws of a site bring c·n_site people from it


def test_two_stage_cea_runs_with_finite_intervals(gdata):
    from phb_eval.cea import cea
    res = cea(gdata, ["age", "sex"], strata=["all"], B=100, missing="complete_case", bootstrap_unit="two_stage",
              rng=np.random.default_rng(3), quiet=True)
    nmb = res.estimates[res.estimates["outcome"] == "nmb"]
    assert np.isfinite(nmb[["ci_low", "ci_high", "se"]].to_numpy()).all()
    assert "two-stage bootstrap" in res.method and res.settings["bootstrap_unit"] == "two_stage"
