"""The plan applied to a raw table: its column names mapped to the contract's, its missing codes blanked."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..contract import EVENT_COLUMNS, ID_COLUMNS
from ..errors import DataError
from .readers import BOOKKEEPING, _fail

__all__ = ["table_mapping", "apply_mapping", "mapping_error", "apply_missing_codes", "code_forms"]


def _mapping(plan, table: str) -> dict:
    """canonical -> user's name, limited to the columns that belong to this kind of table."""
    cols = dict(plan.data.columns) if plan is not None else {}
    if table == "events":
        return {k: v for k, v in cols.items() if k in EVENT_COLUMNS}
    return {k: v for k, v in cols.items() if k == "participant_id" or k not in EVENT_COLUMNS}


def _apply_mapping(frame: pd.DataFrame, mapping: dict, path, strict: bool) -> tuple[pd.DataFrame, list]:
    """Rename user's names to canonical ones. Returns the frame and the (canonical, theirs) pairs absent."""
    rename, absent = {}, []
    for canonical, theirs in mapping.items():
        if theirs == canonical:
            continue
        if theirs in frame.columns:
            if canonical in frame.columns:
                raise _fail(path, f"has both {theirs!r} and {canonical!r}, and the plan maps {theirs!r} to "
                            f"{canonical!r}", f"remove '{canonical}: {theirs}' from data.columns in the plan, "
                            f"or drop one of the two columns")
            rename[theirs] = canonical
        elif canonical not in frame.columns:
            absent.append((canonical, theirs))
    if absent and strict:
        raise _mapping_error(path, absent, frame.columns)
    return frame.rename(columns=rename), absent


def _mapping_error(path, absent, columns) -> DataError:
    pairs = "; ".join(f"{theirs!r} (for {canonical!r})" for canonical, theirs in absent)
    shown = ", ".join(map(str, [c for c in columns if c not in BOOKKEEPING][:30]))
    return _fail(path, f"has no column {pairs}, which the plan's data.columns names; columns found: {shown}",
                 "correct the name in data.columns, or remove the entry")


def _code_forms(codes) -> tuple[set, set]:
    numbers, texts = set(), set()
    for c in codes:
        if isinstance(c, bool):
            continue
        if isinstance(c, (int, float, np.integer, np.floating)):
            numbers.add(float(c))
            texts.add(str(c))
            if float(c).is_integer():
                texts.update({str(int(c)), f"{float(c)}"})
        else:
            texts.add(str(c).strip())
            try:
                numbers.add(float(str(c)))
            except ValueError:
                pass
    return numbers, texts


def _apply_missing_codes(frame: pd.DataFrame, plan, mapping: dict) -> pd.DataFrame:
    if plan is None:
        return frame
    everywhere = list(plan.data.missing_codes)
    theirs_to_canonical = {v: k for k, v in mapping.items()}
    by_column = {}
    for name, codes in plan.data.missing_codes_by_column.items():
        by_column.setdefault(theirs_to_canonical.get(name, name), []).extend(codes)
    if not everywhere and not by_column:
        return frame
    for col in frame.columns:
        if col in BOOKKEEPING:
            continue
        # Identifiers never lose a value to a blanket code (participant '99' is a person).
        codes = list(by_column.get(col, [])) + ([] if col in ID_COLUMNS else everywhere)
        if not codes:
            continue
        s = frame[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            continue
        numbers, texts = _code_forms(codes)
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            hit = s.isin(list(numbers))
        else:
            present = s.notna()
            as_text = s.where(present).astype(object).where(present)
            hit = present & as_text.astype(str).str.strip().isin(texts)
            if numbers:
                hit |= present & pd.to_numeric(as_text, errors="coerce").isin(list(numbers))
        if hit.any():
            frame[col] = s.mask(hit)
    return frame



# public names (the underscored ones stay for the modules that used them before the move)
table_mapping, apply_mapping, mapping_error = _mapping, _apply_mapping, _mapping_error
code_forms, apply_missing_codes = _code_forms, _apply_missing_codes
