"""ASCOT SCT4 and ASCOT-Carer: unweighted scores and the preference-weighted index from a weights file.

Items are coded 3 ideal state, 2 no needs, 1 some needs, 0 high-level needs (data contract). The
unweighted score is the sum of the codes, computed only when every item is answered (ASCOF rule).
The preference-weighted index (SCRQoL) needs the licensed per-level weights, which are not shipped:
the user supplies them as a CSV (formula and weights as data) and ``load_weights`` checks them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ..contract import ITEM_RANGES, ITEMS
from ..errors import DataError
from ..files import check_settings_file
from .common import (CONFIG_DIR, Part, has_any, item_matrix, missing_reason, numeric_column, reconcile,
                     warn_absent_items)

__all__ = ["AscotWeights", "load_weights", "weights_checks", "domains", "ascot_raw", "scrqol_index",
           "score_ascot", "OUTPUT_NAMES"]

CHECKS_FILE = CONFIG_DIR / "ascot_weights_checks.yaml"
# instrument -> (unweighted score stem, weighted index stem, label, plan setting for the weights file)
OUTPUT_NAMES = {
    "ascot": ("ascot_raw", "scrqol", "ASCOT", "instruments.ascot_weights"),
    "carer_ascot": ("carer_ascot_raw", "carer_scrqol", "ASCOT-Carer", "instruments.carer_ascot_weights"),
}


def domains(instrument: str) -> list[str]:
    """Domain names in contract order, as used in a weights file ('control', 'personal_care', ...)."""
    prefix = f"{instrument}_"
    return [stem[len(prefix):] for stem in ITEMS[instrument]]


def weights_checks(instrument: str) -> dict:
    """The load-time checks for one instrument, from config/value_sets/ascot_weights_checks.yaml."""
    doc = yaml.safe_load(CHECKS_FILE.read_text(encoding="utf-8"))
    return doc[instrument]


@dataclass(frozen=True)
class AscotWeights:
    """Checked preference weights: index = intercept + scale * sum over domains of weight[domain][level]."""

    instrument: str
    path: str
    intercept: float
    scale: float
    table: np.ndarray          # (domains, 4): weight by domain (contract order) and level 0..3

    def index(self, codes: np.ndarray) -> np.ndarray:
        """Index for an (n, domains) array of codes 0-3; NaN where any item is missing."""
        codes = np.asarray(codes, dtype=float)
        complete = ~np.isnan(codes).any(axis=1)
        out = np.full(len(codes), np.nan)
        idx = codes[complete].astype(int)
        picked = self.table[np.arange(self.table.shape[0])[None, :], idx]
        out[complete] = self.intercept + self.scale * picked.sum(axis=1)
        return out


def _fail(path, check: str, fix: str = "use the weights file distributed with the licensed ASCOT guidance, "
          "in the format domain,level,weight with rows 'intercept' and 'scale'"):
    raise DataError(f"{path}: ASCOT weights file failed the check: {check}. Fix: {fix}")


def load_weights(path, instrument: str = "ascot") -> AscotWeights:
    """Read and check a weights file.

    Parameters
    ----------
    path : CSV with columns ``domain, level, weight`` ('#' lines are comments); one row per domain and
        level 0-3, and rows ``intercept`` and ``scale`` (level empty).
    instrument : 'ascot' (SCT4, 8 domains) or 'carer_ascot' (ASCOT-Carer, 7 domains).

    Returns
    -------
    AscotWeights

    Notes
    -----
    Checks, each failing with a DataError naming the file and the check: the file is readable; the
    columns are present; intercept and scale appear once each; every domain x level is present once
    and numeric, with no unknown domain or level; all-ideal scores 1.00 and all-high-needs about
    -0.17 (targets and tolerances in config/value_sets/ascot_weights_checks.yaml).
    """
    if instrument not in OUTPUT_NAMES:
        raise ValueError(f"instrument must be one of {sorted(OUTPUT_NAMES)}, got {instrument!r}")
    checks = weights_checks(instrument)
    names = domains(instrument)
    path = check_settings_file(Path(path), f"weights file (plan {OUTPUT_NAMES[instrument][3]})")
    try:
        raw = pd.read_csv(path, comment="#", dtype=str, skipinitialspace=True)
    except FileNotFoundError:
        _fail(path, "the file does not exist", f"give the path of your weights file in the plan "
              f"({OUTPUT_NAMES[instrument][3]})")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, IsADirectoryError) as exc:
        _fail(path, f"not a readable CSV file ({exc})")
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = {"domain", "level", "weight"} - set(raw.columns)
    if missing:
        _fail(path, f"columns {sorted(missing)} are missing (found {list(raw.columns)})")
    raw = raw.apply(lambda s: s.str.strip())
    raw["domain"] = raw["domain"].str.lower()
    weight = pd.to_numeric(raw["weight"], errors="coerce")
    bad = weight.isna()
    if bad.any():
        i = bad[bad].index[0]
        _fail(path, f"weight {raw.at[i, 'weight']!r} for domain {raw.at[i, 'domain']!r} is not a number")

    special = {}
    for key in ("intercept", "scale"):
        rows = raw.index[raw["domain"] == key]
        if len(rows) != 1:
            _fail(path, f"the row '{key}' must appear exactly once (found {len(rows)})")
        special[key] = float(weight[rows[0]])
    body = raw[~raw["domain"].isin(["intercept", "scale"])]
    unknown = sorted(set(body["domain"]) - set(names))
    if unknown:
        _fail(path, f"unknown domain(s) {unknown} for {OUTPUT_NAMES[instrument][2]}; expected {names}")
    levels = pd.to_numeric(body["level"], errors="coerce")
    allowed = list(checks["levels"])
    bad = ~levels.isin(allowed)
    if bad.any():
        i = bad[bad].index[0]
        _fail(path, f"level {raw.at[i, 'level']!r} for domain {raw.at[i, 'domain']!r} is not one of {allowed}")
    table = np.full((len(names), len(allowed)), np.nan)
    for i in body.index:
        d, lv = names.index(body.at[i, "domain"]), int(levels[i])
        if not np.isnan(table[d, lv]):
            _fail(path, f"domain {names[d]!r} level {lv} appears more than once")
        table[d, lv] = weight[i]
    absent = [f"{names[d]} level {lv}" for d, lv in zip(*np.where(np.isnan(table)))]
    if absent:
        _fail(path, f"every domain x level must be present; missing: {', '.join(absent)}")

    w = AscotWeights(instrument, str(path), special["intercept"], special["scale"], table)
    top, bottom = len(allowed) - 1, 0
    ideal = float(w.index(np.full((1, len(names)), top))[0])
    worst = float(w.index(np.full((1, len(names)), bottom))[0])
    if abs(ideal - checks["all_ideal"]) > checks["all_ideal_tolerance"]:
        _fail(path, f"all domains at the ideal state score {ideal:.4f}, not {checks['all_ideal']:.2f} "
              f"(within {checks['all_ideal_tolerance']}); the weights or the intercept/scale rows are wrong")
    if abs(worst - checks["all_high_needs"]) > checks["all_high_needs_tolerance"]:
        _fail(path, f"all domains at high-level needs score {worst:.4f}, not about {checks['all_high_needs']:.2f} "
              f"(within {checks['all_high_needs_tolerance']}); pre-v2 weights (range 0.23-1.00) are not "
              "comparable and are not accepted")
    return w


def ascot_raw(codes: np.ndarray) -> np.ndarray:
    """Unweighted score: sum of the codes, NaN unless every item is answered (ASCOF rule)."""
    codes = np.asarray(codes, dtype=float)
    return codes.sum(axis=1)  # NaN propagates: any missing item gives NaN


def scrqol_index(codes: np.ndarray, weights: AscotWeights) -> np.ndarray:
    """Preference-weighted index from codes; NaN unless every item is answered."""
    return weights.index(codes)


def score_ascot(frame: pd.DataFrame, waves, *, instrument: str = "ascot", weights: AscotWeights | None = None,
                tolerance: float = 0.005, not_applicable=None) -> Part:
    """Score ASCOT (or ASCOT-Carer) at every wave.

    Parameters
    ----------
    frame : participant table with item columns ``<stem>_<wave>`` and/or precomputed index columns.
    waves : wave suffixes to look at (e.g. ['t0', 't1']).
    instrument : 'ascot' or 'carer_ascot'.
    weights : checked weights (``load_weights``) or None.
    tolerance : items-vs-precomputed disagreements beyond this are warned.
    not_applicable : boolean mask of people the instrument does not apply to (e.g. no carer).

    Returns
    -------
    Part with ``<raw>_<wave>`` and ``<index>_<wave>`` columns (e.g. ``ascot_raw_t0``, ``scrqol_t0``).

    Notes
    -----
    Items win over a precomputed index; without weights a precomputed index is used as given; with
    neither, the index is absent and a note says so.
    """
    raw_stem, index_stem, label, setting = OUTPUT_NAMES[instrument]
    lo, hi = ITEM_RANGES[instrument]
    part = Part()
    for wave in waves:
        cols = [f"{stem}_{wave}" for stem in ITEMS[instrument]]
        given_col = f"{index_stem}_{wave}"
        given = (numeric_column(frame, given_col, label=f"precomputed {label} index", high=1.0)
                 if given_col in frame.columns else None)
        if has_any(frame, cols):
            warn_absent_items(part, frame, cols, label, wave)
            codes = item_matrix(frame, cols, low=lo, high=hi, label=label)
            answered = (~np.isnan(codes)).sum(axis=1)
            raw = pd.Series(ascot_raw(codes), index=frame.index)
            part.add(f"{raw_stem}_{wave}", raw, missing_reason(raw, answered, not_applicable=not_applicable),
                     raw_stem, wave, "items")
            if weights is not None:
                idx = pd.Series(scrqol_index(codes, weights), index=frame.index)
                part.add(given_col, idx, missing_reason(idx, answered, not_applicable=not_applicable),
                         index_stem, wave, "items")
                if given is not None:
                    part.warnings.extend(reconcile(frame, idx, given, column=given_col, tolerance=tolerance))
                    part.notes.append(f"{given_col}: computed from items with the weights in {weights.path}; "
                                      f"the precomputed {given_col} column was replaced")
                continue
        if given is not None:
            part.add(given_col, given, missing_reason(given, None, not_applicable=not_applicable),
                     index_stem, wave, "precomputed")
            part.notes.append(f"{given_col}: the precomputed column is used as given "
                              f"({'no weights file in ' + setting if has_any(frame, cols) else 'no ' + label + ' items'})")
        elif has_any(frame, cols):
            part.notes.append(f"{index_stem} not available at {wave}: no weights file ({setting}) and no "
                              f"{given_col} column; {raw_stem}_{wave} (unweighted) is scored from the items")
    if not part.columns and len(waves):
        part.notes.append(f"{index_stem} and {raw_stem} not available: no {label} items and no "
                          f"{index_stem}_<wave> column in the data")
    return part
