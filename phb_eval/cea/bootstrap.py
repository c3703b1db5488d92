"""Resampling: reproducible per-group random streams, stratified replicate indices, count weights and
cluster (arm, site) resampling units."""
from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from ..errors import EstimationError

__all__ = ["stratum_streams", "iter_bootstrap_indices", "bootstrap_indices", "replicate_counts", "cluster_units",
           "two_stage_weights"]


def stratum_streams(rng: np.random.Generator):
    """A function ``key -> Generator``: one independent stream per model group, derived from one draw of
    ``rng``, so adding or removing a stratum never changes the replicates of another."""
    base = int(rng.integers(0, 2 ** 63 - 1))
    return lambda key: np.random.default_rng([base, zlib.crc32(str(key).encode("utf-8"))])


def _index_dtype(n: int):
    return np.uint16 if n <= np.iinfo(np.uint16).max else (np.int32 if n < 2 ** 31 else np.int64)


def iter_bootstrap_indices(strata, B: int, rng: np.random.Generator, chunk: int):
    """Bootstrap replicates in blocks of at most ``chunk`` rows: (rows × n) resampled unit positions (0-based),
    drawn with replacement within each stratum, so every replicate keeps the stratum sizes (e.g. arm sizes).

    Each stratum (in sorted order) draws from its own child stream of ``rng`` (``Generator.spawn``) with
    32-bit draws, which continue seamlessly across calls: the blocks are the same replicates whatever the
    block size, so memory is bounded without changing a number. Same ``rng`` → same replicates.
    """
    codes = pd.factorize(pd.Series(np.asarray(strata)), sort=True)[0]
    if (codes < 0).any():
        raise EstimationError("bootstrap strata contain missing values")
    n = codes.size
    dtype = _index_dtype(n)
    members = [np.flatnonzero(codes == s).astype(dtype) for s in range(codes.max() + 1)]
    gens = rng.spawn(len(members))
    for start in range(0, B, max(1, int(chunk))):
        rows = min(int(chunk), B - start)
        block = np.empty((rows, n), dtype=dtype)
        col = 0
        for mem, gen in zip(members, gens):
            k = mem.size
            block[:, col:col + k] = mem[gen.integers(0, k, size=(rows, k), dtype=np.uint32)]
            col += k
        yield block


def bootstrap_indices(strata, B: int, rng: np.random.Generator) -> np.ndarray:
    """All B replicates at once: (B × n) resampled unit positions, as :func:`iter_bootstrap_indices`
    (the same numbers as its blocks stacked). Each row holds, stratum by stratum, as many draws from the
    stratum's units as it has units."""
    return next(iter_bootstrap_indices(strata, B, rng, chunk=B))


def replicate_counts(indices: np.ndarray, n_units: int) -> np.ndarray:
    """How often each unit appears in each replicate: (b × n_units) float counts from an index matrix."""
    b = indices.shape[0]
    flat = indices + (n_units * np.arange(b, dtype=np.int64))[:, None]
    return np.bincount(flat.ravel(), minlength=b * n_units).reshape(b, n_units).astype(float)


def cluster_units(data: pd.DataFrame, cluster: str):
    """Resampling units of the cluster bootstrap: one per (arm, site) pair. Returns the unit code per person
    (units sorted by arm, then site) and each unit's arm (its resampling stratum)."""
    arm = data["phb"].to_numpy().astype(int)
    units = pd.factorize(pd.Series(list(zip(arm, data[cluster].astype(str)))), sort=True)[0]
    unit_arm = np.zeros(units.max() + 1, dtype=int)
    unit_arm[units] = arm
    return units, unit_arm



def two_stage_weights(unit_of: np.ndarray, unit_strata: np.ndarray, B: int, rng: np.random.Generator, chunk: int):
    """Two-stage bootstrap (Davison & Hinkley 1997, §3.8) in blocks of person weights (rows × n): stage 1
    draws units (arm-site clusters) with replacement within arm, exactly as the site bootstrap; stage 2 draws,
    for each time a unit is drawn, as many people with replacement from that unit as it has. A unit drawn c
    times contributes c·n_u people: its members' counts are one multinomial draw per replicate."""
    unit_of = np.asarray(unit_of)
    n = unit_of.size
    n_units = int(unit_of.max()) + 1
    members = [np.flatnonzero(unit_of == u) for u in range(n_units)]
    stage1, stage2 = rng.spawn(2)
    for block in iter_bootstrap_indices(unit_strata, B, stage1, chunk):
        counts = replicate_counts(block, n_units).astype(np.int64)          # (rows, units)
        W = np.zeros((block.shape[0], n))
        for u, mem in enumerate(members):
            k = mem.size
            W[:, mem] = stage2.multinomial(counts[:, u] * k, np.full(k, 1.0 / k))
        yield W
