"""Read cohort files into pandas: the raw table (``readers``), the plan applied (``mapping``), the
contract's types, and the cohort assembled from one or two participant files and an optional event file.

Every loaded table carries two bookkeeping columns (names start with ``_``; they are never analysed):

- ``_file``: the path of the file the row came from, as the user gave it.
- ``_row``: the row number as the user counts it (``readers.ROW_BASIS``): the spreadsheet row for
  ``.csv``/``.xlsx`` (header = row 1) and the record number from 1 for ``.sav``/``.dta``/``.parquet``.

Types. Identifier and label columns (``contract.TEXT_COLUMNS``) are read as text, so ``"001"`` stays
``"001"``. Dates (``contract.DATE_COLUMNS``) are converted from ISO ``yyyy-mm-dd`` or UK ``dd/mm/yyyy``
(never US ``mm/dd``) **only when every value converts**; otherwise the column is left as the text in the
file so that ``validate`` can name each value that does not. Numeric columns behave the same way: a
column with one stray word stays text and ``validate`` names the word. Leading and trailing spaces in
text cells are removed and blank cells are missing.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..contract import DATE_COLUMNS, ID_COLUMNS, TEXT_COLUMNS
from ..errors import PhbEvalError
from .events_sql import inspect_events_file
from .mapping import _apply_mapping, _apply_missing_codes, _mapping, _mapping_error
from .readers import (_ACCEPTED, BOOKKEEPING, FORMATS, ROW_BASIS, DataWarning, _fail, parse_dates, read_raw,
                      sha256_file)

__all__ = ["read_table", "write_table", "load_cohort", "Cohort", "EVENTS_IN_MEMORY_MAX_BYTES"]

# A .csv/.parquet event file larger than this stays on disk (``Cohort.events`` is its path): validated
# (phb_eval.events_check) and aggregated (phb_eval.events) out of core by DuckDB.
EVENTS_IN_MEMORY_MAX_BYTES = 256 * 1024 * 1024


@dataclass
class Cohort:
    """The loaded cohort: participants of both arms in one frame, optional events, and provenance.

    Attributes
    ----------
    frame : participants, both arms, with ``_file`` and ``_row`` bookkeeping columns.
    events : service events (with ``_file``/``_row``), the path of a large CSV/Parquet event file (validated
        and aggregated out of core by DuckDB), or None.
    files : role -> path as given (roles: ``data`` or ``treatment``/``control``; ``events``).
    hashes : path -> SHA-256 hex digest of the file's bytes (for results meta).
    two_files : True when the arms came from separate files (``group`` set by phb-eval).
    notes : things noticed while reading (e.g. a cp1252 fallback): dicts with ``level``, ``file``,
        ``column``, ``value``, ``rule``, ``fix``; ``validate`` reports them as problems.
    columns : path -> the canonical column names that file holds (so a column absent from one of
        two files is told apart from an empty one).
    """

    frame: pd.DataFrame
    events: pd.DataFrame | None = None
    files: dict = field(default_factory=dict)
    hashes: dict = field(default_factory=dict)
    two_files: bool = False
    notes: list = field(default_factory=list)
    columns: dict = field(default_factory=dict)


def _all_or_nothing_dates(values: pd.Series) -> pd.Series:
    """Dates when every value converts; otherwise the original values for validate to report."""
    parsed, bad = parse_dates(values)
    return values if bad.any() else parsed


def _ids_as_text(values: pd.Series) -> pd.Series:
    """Identifiers as text; whole-number floats (SPSS stores numbers as doubles) lose the '.0'."""
    if pd.api.types.is_string_dtype(values) and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        return values
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        def text(v):
            if isinstance(v, float) and v.is_integer():
                return str(int(v))
            return str(v)
        return values.map(text, na_action="ignore").astype(object)
    num = values.astype(float)
    whole = num.dropna().mod(1).eq(0).all()
    if whole and num.dropna().abs().lt(2 ** 53).all():
        text = num.astype("Int64").astype(str)
    else:
        text = num.astype(str)
    return text.astype(object).where(num.notna())


def _tidy_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Strip spaces in text cells and treat blank cells as missing (SPSS/Stata store missing text as '')."""
    for col in frame.columns:
        s = frame[col]
        if not (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
            continue
        kind = pd.api.types.infer_dtype(s, skipna=True)
        if kind == "string":
            stripped = s.str.strip()
            frame[col] = stripped.mask(stripped.eq(""))
        elif kind.startswith("mixed"):
            # Excel columns can mix dates, numbers and words; only the words are tidied.
            def tidy(v):
                if isinstance(v, str):
                    v = v.strip()
                    return v if v else np.nan
                return v
            frame[col] = s.map(tidy, na_action="ignore")
    return frame


def _convert_types(frame: pd.DataFrame) -> pd.DataFrame:
    for col in frame.columns:
        if col in ID_COLUMNS:
            frame[col] = _ids_as_text(frame[col])
        elif col in DATE_COLUMNS:
            frame[col] = _all_or_nothing_dates(frame[col])
        elif col in TEXT_COLUMNS or col in BOOKKEEPING:
            continue
        elif pd.api.types.is_object_dtype(frame[col]) or pd.api.types.is_string_dtype(frame[col]):
            s = frame[col]
            num = pd.to_numeric(s, errors="coerce") if s.notna().any() else s
            if s.notna().any() and num[s.notna()].notna().all():
                frame[col] = num  # e.g. a numeric column that held a missing code, now gone
    return frame


# ---- public readers ---------------------------------------------------------------------------------
def read_table(path, plan=None, sheet=None, *, table: str = "participants", strict: bool = True) -> pd.DataFrame:
    """Read one table, apply the plan's column mapping and missing codes, add ``_file`` and ``_row``.

    Parameters
    ----------
    path : the file; the extension chooses the reader (``FORMATS``).
    plan : a ``Plan`` (for ``data.columns``, ``data.missing_codes``, ``data.missing_codes_by_column``,
        ``data.sheet``) or None for the canonical layout with no missing codes.
    sheet : Excel sheet name; overrides ``plan.data.sheet``. Default: the first sheet.
    table : ``"participants"`` or ``"events"``; only mapping entries for that kind of table apply.
    strict : raise when a column named in ``data.columns`` is absent, i.e. neither the user's name nor
        the canonical name is in the file (``load_cohort`` relaxes this for two-file cohorts, where
        budget columns exist only in the PHB file, and checks that each is in at least one file).

    Returns
    -------
    DataFrame with canonical column names, ``_file`` (str) and ``_row`` (int; see module notes).

    Raises
    ------
    DataError : file missing, empty, binary, unreadable, of an unknown type, or without a header.
    """
    mapping = _mapping(plan, table)
    text_cols = set(TEXT_COLUMNS) | set(DATE_COLUMNS)
    text_cols |= {mapping[c] for c in text_cols if c in mapping}
    if sheet is None and plan is not None:
        sheet = plan.data.sheet
    frame, ext = read_raw(path, sheet, text_cols)
    frame.columns = [str(c) for c in frame.columns]
    frame = frame.reset_index(drop=True).copy()  # one block: the readers build wide frames column by column
    first_row = 2 if ROW_BASIS[ext] == "spreadsheet" else 1
    frame["_row"] = np.arange(first_row, first_row + len(frame), dtype="int64")
    data_cols = [c for c in frame.columns if c != "_row"]
    # Columns with no name and no data (e.g. a trailing delimiter) are dropped.
    unnamed = [c for c in data_cols if c.startswith("Unnamed: ") or c == ""]
    empty_unnamed = [c for c in unnamed if frame[c].isna().all()]
    if len(unnamed) > len(empty_unnamed):
        cols = [c for c in unnamed if c not in empty_unnamed]
        positions = [str(list(frame.columns).index(c) + 1) for c in cols]
        raise _fail(path, f"column number {', '.join(positions)} has data but no name in the header row",
                    "give every column a name on row 1, or delete the column")
    frame = frame.drop(columns=empty_unnamed)
    data_cols = [c for c in data_cols if c not in empty_unnamed]
    frame = _tidy_text(frame)
    if data_cols:
        frame = frame[frame[data_cols].notna().any(axis=1)]  # blank rows keep their number but are dropped
    frame = frame.reset_index(drop=True)
    frame, _absent = _apply_mapping(frame, mapping, path, strict)
    frame = _apply_missing_codes(frame, plan, mapping)
    frame = _convert_types(frame)
    frame.insert(0, "_file", str(path))
    frame = frame[[c for c in frame.columns if c not in ("_file", "_row")] + ["_file", "_row"]]
    frame.attrs["absent_mapped"] = _absent
    frame.attrs["row_basis"] = ROW_BASIS[ext]
    return frame


def _read_noting(path, plan, notes: list, **kwargs) -> pd.DataFrame:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        frame = read_table(path, plan, **kwargs)
    for w in caught:
        if issubclass(w.category, DataWarning):
            text = str(w.message)
            rule, _, fix = text.partition("; ")
            notes.append({"level": "warning", "file": str(path), "column": None, "value": None,
                          "rule": rule.split(": ", 1)[-1], "fix": fix or None})
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return frame


def load_cohort(data=None, treatment=None, control=None, events=None, plan=None, *,
                events_in_memory_max_bytes: int | None = None) -> Cohort:
    """Load a cohort: one participant table with ``group``, or a treatment and a control table.

    Parameters
    ----------
    data : one participant table holding both arms and a ``group`` column.
    treatment, control : the PHB-arm and control-arm tables, instead of ``data``. phb-eval sets
        ``group`` to ``phb``/``control``; a ``group`` column already in a file is kept as
        ``_group_given`` so that ``validate`` can report any disagreement.
    events : optional service-event table. A .csv or .parquet file larger than
        ``events_in_memory_max_bytes`` (default ``EVENTS_IN_MEMORY_MAX_BYTES``, 256 MB) is not read:
        ``Cohort.events`` is then its path (str), its header is checked here (column mapping), and
        ``validate`` and ``events`` stream it with DuckDB (out of core); a note says so.
    plan : the analysis plan (column mapping, missing codes, sheet).
    events_in_memory_max_bytes : overrides ``EVENTS_IN_MEMORY_MAX_BYTES`` (0 sends any such file out of core).

    Returns
    -------
    Cohort (``frame``, ``events``, ``files``, ``hashes``, ``two_files``, ``notes``).

    Raises
    ------
    PhbEvalError : both ``data`` and ``treatment``/``control`` given, or only one of the two arms.
    DataError : a file cannot be read (see ``read_table``).
    """
    if data is not None and (treatment is not None or control is not None):
        raise PhbEvalError("give either one data file (with a 'group' column) or --treatment and --control "
                           "files, not both. Fix: use one or the other")
    if data is None and (treatment is None) != (control is None):
        raise PhbEvalError("--treatment and --control go together. Fix: give both files, or one data file "
                           "with a 'group' column")
    if data is None and treatment is None:
        raise PhbEvalError("no data given. Fix: give one data file with a 'group' column, or both "
                           "--treatment and --control files")
    notes: list = []
    files: dict = {}
    columns: dict = {}
    if data is not None:
        frame = _read_noting(data, plan, notes)
        files["data"] = str(data)
        columns[str(data)] = [c for c in frame.columns if c not in BOOKKEEPING]
        two = False
    else:
        parts = []
        absent_sets = []
        for role, path, label in (("treatment", treatment, "phb"), ("control", control, "control")):
            part = _read_noting(path, plan, notes, strict=False)
            columns[str(path)] = [c for c in part.columns if c not in BOOKKEEPING]
            absent_sets.append(set(part.attrs.get("absent_mapped", [])))
            if "group" in part.columns:
                part = part.rename(columns={"group": "_group_given"})
                part["_group_given"] = _ids_as_text(part["_group_given"])
            part["group"] = label
            parts.append(part)
            files[role] = str(path)
        absent_everywhere = absent_sets[0] & absent_sets[1]
        if absent_everywhere:
            raise _mapping_error(f"{treatment} and {control}", sorted(absent_everywhere),
                                 list(parts[0].columns))
        frame = pd.concat(parts, ignore_index=True, sort=False)
        frame = frame[[c for c in frame.columns if c not in ("_file", "_row")] + ["_file", "_row"]]
        two = True
    frame.attrs = {}
    ev = None
    # ---- events: in memory, or (large .csv/.parquet) kept as a path for DuckDB -- see events_check ----
    limit = EVENTS_IN_MEMORY_MAX_BYTES if events_in_memory_max_bytes is None else events_in_memory_max_bytes
    size = Path(events).stat().st_size if events is not None and Path(events).is_file() else 0
    if events is not None and Path(events).suffix.lower() in (".csv", ".parquet") and size > limit:
        info = inspect_events_file(events, plan)   # header only: the mapping is checked now, as read_table does
        ev = str(events)
        files["events"] = str(events)
        columns[str(events)] = list(info.columns)
        notes.extend(info.notes)
        notes.append({"level": "info", "file": str(events), "column": None, "value": None, "fix": None,
                      "rule": f"the event file ({size / 1e6:,.1f} MB, over the {limit / 1e6:,.0f} MB in-memory limit) "
                              "is validated and aggregated out of core by DuckDB, not read into memory"})
    elif events is not None:
        ev = _read_noting(events, plan, notes, table="events")
        ev.attrs = {}
        files["events"] = str(events)
        columns[str(events)] = [c for c in ev.columns if c not in BOOKKEEPING]
    # ---- end events ----
    hashes = {str(p): sha256_file(p) for p in files.values()}
    return Cohort(frame=frame, events=ev, files=files, hashes=hashes, two_files=two, notes=notes,
                  columns=columns)


def write_table(frame: pd.DataFrame, path) -> Path:
    """Write a participant table in the format its suffix names (bookkeeping columns dropped), atomically.

    The file appears only when complete (written beside it, then renamed), so a failure leaves no half file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise PhbEvalError(f"{path}: cannot write a {suffix or 'suffix-less'} file; {_ACCEPTED}. "
                           "Fix: end the output name with one of them")
    out = frame[[c for c in frame.columns if c not in BOOKKEEPING]].copy()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")
    try:
        if suffix == ".csv":
            out.to_csv(tmp, index=False, date_format="%Y-%m-%d")
        elif suffix == ".parquet":
            out.to_parquet(tmp, index=False)
        elif suffix == ".xlsx":
            out.to_excel(tmp, index=False, sheet_name="cohort")
        elif suffix == ".sav":
            import pyreadstat
            pyreadstat.write_sav(_plain_for_stats(out), str(tmp))
        else:
            _plain_for_stats(out).to_stata(tmp, write_index=False, version=118)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _plain_for_stats(frame: pd.DataFrame) -> pd.DataFrame:
    """SPSS/Stata writers want plain numpy types: text as object, numbers as float64."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            continue
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            out[col] = s.astype("float64")
        else:
            out[col] = s.astype(object).where(s.notna(), None)
    return out
