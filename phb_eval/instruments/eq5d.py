"""EQ-5D: index values from a value set held as data, EQ VAS passed through, QALYs by area under the curve.

Value sets live in ``config/value_sets/`` (one YAML per set, with source, year, formula and the
published check states). Two formula kinds: ``additive`` (1 minus constants minus one decrement per
dimension; Dolan 1997, Devlin 2018, Rowen 2026) and ``lookup`` (a table of every state; the van Hout
2012 crosswalk).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import yaml

from ..contract import ITEMS
from ..errors import PlanError
from .common import (CONFIG_DIR, Part, has_any, item_matrix, missing_reason, numeric_column, reconcile,
                     warn_absent_items)

__all__ = ["ValueSet", "VALUE_SETS", "load_value_set", "eq5d_index", "state_codes", "qaly_auc", "score_eq5d"]

DIMENSIONS = [stem[len("eq5d_"):] for stem in ITEMS["eq5d"]]   # mobility, selfcare, activities, pain, anxiety
VAS_RANGE = (0, 100)
MONTHS_PER_YEAR = 12.0
# plan name (instruments.eq5d_value_set) -> file in config/value_sets/
VALUE_SETS = {
    "uk_dolan1997": "eq5d3l_uk_dolan1997.yaml",
    "england_devlin2018": "eq5d5l_england_devlin2018.yaml",
    "uk_rowen2026": "eq5d5l_uk_rowen2026.yaml",
    "uk_vanhout2012_crosswalk": "eq5d5l_uk_vanhout2012_crosswalk.yaml",
}


@dataclass(frozen=True)
class ValueSet:
    """One value set: ``values[k]`` is the index of the state with code k (see ``state_codes``)."""

    id: str
    name: str
    levels: int
    source: str
    year: int
    formula: str
    values: np.ndarray
    check_states: dict = field(default_factory=dict)

    def index_of(self, state: str) -> float:
        """Index for a state written like '11223'."""
        codes = np.array([[int(ch) for ch in state]], dtype=float)
        return float(self.values[state_codes(codes, self.levels)][0])


def state_codes(levels: np.ndarray, n_levels: int) -> np.ndarray:
    """Position of each complete state (rows of 5 levels 1..n) in lexicographic order: 11111 -> 0."""
    lv = np.asarray(levels, dtype=int) - 1
    weights = n_levels ** np.arange(lv.shape[1] - 1, -1, -1)
    return lv @ weights


def _all_states(n_levels: int) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(1, n_levels + 1)] * len(DIMENSIONS), indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)   # lexicographic: matches state_codes


def _additive(doc: dict, path) -> np.ndarray:
    n = doc["levels"]
    states = _all_states(n)
    dec = doc["decrements"]
    if sorted(dec) != sorted(DIMENSIONS) or any(len(dec[d]) != n for d in DIMENSIONS):
        raise PlanError(f"{path}: decrements must list {n} levels for each of {DIMENSIONS}")
    table = np.array([dec[d] for d in DIMENSIONS], dtype=float)         # (5, n)
    decrement = table[np.arange(len(DIMENSIONS))[None, :], states - 1].sum(axis=1)
    constant = np.zeros(len(states))
    for c in doc.get("constants") or []:
        if c["applies_if"] != "any_dimension_at_or_above":
            raise PlanError(f"{path}: unknown constant rule {c['applies_if']!r}")
        constant += np.where((states >= c["level"]).any(axis=1), float(c["value"]), 0.0)
    return 1.0 - constant - decrement


def _lookup(doc: dict, path) -> np.ndarray:
    table_path = path.parent / doc["table"]
    data = table_path.read_bytes()
    if "table_sha256" in doc and hashlib.sha256(data).hexdigest() != doc["table_sha256"]:
        raise PlanError(f"{table_path}: the file differs from the published table (sha256 mismatch); "
                        "restore it from the package")
    tab = pd.read_csv(table_path, dtype={"state": str})
    n = doc["levels"]
    levels = np.array([[int(ch) for ch in s] for s in tab["state"]])
    values = np.full(n ** len(DIMENSIONS), np.nan)
    values[state_codes(levels, n)] = tab[doc["table_column"]].to_numpy(dtype=float)
    if np.isnan(values).any():
        raise PlanError(f"{table_path}: the table does not cover all {n ** len(DIMENSIONS)} states")
    return values


def load_value_set(name: str) -> ValueSet:
    """A value set by its plan name (``instruments.eq5d_value_set``), from config/value_sets/."""
    if name not in VALUE_SETS:
        raise PlanError(f"unknown EQ-5D value set {name!r}; choose one of {sorted(VALUE_SETS)}")
    path = CONFIG_DIR / VALUE_SETS[name]
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    kinds = {"additive": _additive, "lookup": _lookup}
    if doc["formula"] not in kinds:
        raise PlanError(f"{path}: unknown formula kind {doc['formula']!r}; expected one of {sorted(kinds)}")
    values = kinds[doc["formula"]](doc, path)
    checks = {str(k): float(v) for k, v in (doc.get("check_states") or {}).items()}
    return ValueSet(doc["id"], doc["name"], int(doc["levels"]), doc["source"], int(doc["year"]),
                    doc["formula"], values, checks)


def eq5d_index(levels: np.ndarray, value_set: ValueSet) -> np.ndarray:
    """Index for an (n, 5) array of levels (1..3 or 1..5); NaN where any dimension is missing.

    Levels must already be checked to lie in 1..``value_set.levels`` (``item_matrix`` does this).
    """
    levels = np.asarray(levels, dtype=float)
    complete = ~np.isnan(levels).any(axis=1)
    out = np.full(len(levels), np.nan)
    out[complete] = value_set.values[state_codes(levels[complete], value_set.levels)]
    return out


def qaly_auc(utilities: dict, months: dict) -> pd.Series:
    """QALYs by the trapezoid rule between waves, in years.

    Parameters
    ----------
    utilities : wave -> Series of index values (same index).
    months : wave -> months after consent (the plan's ``data.waves``).

    Returns
    -------
    Series: sum over consecutive waves of (t_j+1 - t_j)/12 * (u_j + u_j+1)/2; NaN if any wave is NaN.
    """
    order = sorted(utilities, key=lambda w: months[w])
    total = None
    for a, b in zip(order, order[1:]):
        years = (months[b] - months[a]) / MONTHS_PER_YEAR
        piece = years * (utilities[a] + utilities[b]) / 2.0
        total = piece if total is None else total + piece
    return total


def score_eq5d(frame: pd.DataFrame, waves, *, value_set: ValueSet, tolerance: float = 0.005,
               wave_months: dict | None = None, baseline_wave: str = "t0", followup_wave: str = "t1") -> Part:
    """EQ-5D index at every wave, EQ VAS checked and summarised, and the QALY over the follow-up.

    Returns
    -------
    Part with ``eq5d_index_<wave>``, ``eq_vas_<wave>`` (as given) and ``qaly``.

    Notes
    -----
    The index is missing unless all five dimensions are answered. ``qaly`` uses every wave from
    baseline to follow-up that the plan places in time and the data hold; it is missing when any of
    those waves' index is missing (no value is assumed for people who died).
    """
    part = Part()
    label = f"EQ-5D-{value_set.levels}L"
    index_reasons = {}
    for wave in waves:
        cols = [f"{stem}_{wave}" for stem in ITEMS["eq5d"]]
        col = f"eq5d_index_{wave}"
        given = (numeric_column(frame, col, label="precomputed EQ-5D index", high=1.0)
                 if col in frame.columns else None)
        if has_any(frame, cols):
            warn_absent_items(part, frame, cols, "EQ-5D", wave)
            hint = (" (if the data are EQ-5D-5L, set instruments.eq5d_version: 5L and a 5L value set in the plan)"
                    if value_set.levels == 3 else "")
            levels = item_matrix(frame, cols, low=1, high=value_set.levels, label=label, hint=hint)
            answered = (~np.isnan(levels)).sum(axis=1)
            idx = pd.Series(eq5d_index(levels, value_set), index=frame.index)
            reason = missing_reason(idx, answered)
            part.add(col, idx, reason, "eq5d_index", wave, f"items ({value_set.id})")
            if given is not None:
                part.warnings.extend(reconcile(frame, idx, given, column=col, tolerance=tolerance))
                part.notes.append(f"{col}: computed from items ({value_set.name}); the precomputed column "
                                  "was replaced")
        elif given is not None:
            reason = missing_reason(given, None)
            part.add(col, given, reason, "eq5d_index", wave, "precomputed")
            part.notes.append(f"{col}: the precomputed EQ-5D index is used as given (no EQ-5D items)")
        else:
            continue
        index_reasons[wave] = reason
        vas = f"eq_vas_{wave}"
        if vas in frame.columns:
            v = numeric_column(frame, vas, label="EQ VAS", low=VAS_RANGE[0], high=VAS_RANGE[1])
            part.add(vas, v, missing_reason(v, None), "eq_vas", wave, "items")
    for wave in waves:   # EQ VAS without EQ-5D items at that wave
        vas = f"eq_vas_{wave}"
        if vas in frame.columns and vas not in part.columns:
            v = numeric_column(frame, vas, label="EQ VAS", low=VAS_RANGE[0], high=VAS_RANGE[1])
            part.add(vas, v, missing_reason(v, None), "eq_vas", wave, "items")
    if not index_reasons:
        if len(waves):
            part.notes.append("eq5d_index and qaly not available: no EQ-5D items and no eq5d_index_<wave> column")
        return part
    _add_qaly(part, index_reasons, wave_months or {}, baseline_wave, followup_wave)
    return part


def _add_qaly(part: Part, reasons: dict, months: dict, base: str, follow: str):
    if base not in months or follow not in months:
        part.notes.append(f"qaly not available: the plan's data.waves does not give the timing of {base} and {follow}")
        return
    lo, hi = months[base], months[follow]
    use = [w for w in months if lo <= months[w] <= hi and f"eq5d_index_{w}" in part.columns]
    if base not in use or follow not in use:
        part.notes.append(f"qaly not available: eq5d_index needs both {base} and {follow} "
                          f"(found {sorted(reasons)})")
        return
    skipped = [w for w in months if lo < months[w] < hi and w not in use]
    if skipped:
        part.notes.append(f"qaly: wave(s) {skipped} placed in the plan are not in the data; the area under the "
                          "curve joins the waves that are")
    utils = {w: part.columns[f"eq5d_index_{w}"] for w in use}
    q = qaly_auc(utils, {w: months[w] for w in use})
    labels = pd.DataFrame({w: reasons[w] for w in use})
    reason = pd.Series("scored", index=q.index, dtype=object)
    reason[q.isna()] = "item_missing"
    reason[q.isna() & (labels == "lost_or_died").any(axis=1)] = "lost_or_died"
    span = f"{base}-{follow}"
    part.add("qaly", q, reason, "qaly", span, f"eq5d_index AUC {'/'.join(use)}")
    part.notes.append(f"qaly: area under the EQ-5D index curve over {span} ({hi - lo:g} months) by the trapezoid "
                      "rule, in years; missing when any wave's index is missing")
