"""Read cohort files into pandas, by extension; apply the plan's column names and missing codes.

Input files are only ever read (opened read-only; nothing is written beside them).

Every loaded table carries two bookkeeping columns (names start with ``_``; they are never analysed):

- ``_file``: the path of the file the row came from, as the user gave it.
- ``_row``: the row number as the user counts it. For ``.csv`` and ``.xlsx`` this is the spreadsheet
  row, with the header on row 1, so the first data row is row 2. For ``.sav``, ``.dta`` and
  ``.parquet`` it is the record (case) number counted from 1, as SPSS's and Stata's data browsers show it.
  ``ROW_BASIS`` says which, per extension.

Types. Identifier and label columns (``participant_id``, ``site``, ``group``, ``condition``, ``sex``,
``deployment``, ``service``) are read as text, so ``"001"`` stays ``"001"``. Dates (``consent_date``,
``death_date``, ``event_date``) are converted from ISO ``yyyy-mm-dd`` or UK ``dd/mm/yyyy`` (never US
``mm/dd``) **only when every value converts**; otherwise the column is left as the text in the file so
that ``validate`` can name each value that does not. Numeric columns behave the same way: a column
with one stray word stays text and ``validate`` names the word. Leading and trailing spaces in text
cells are removed and blank cells are missing.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError, PhbEvalError

__all__ = ["read_table", "write_table", "load_cohort", "Cohort", "sha256_file", "parse_dates", "DataWarning",
           "DATE_COLUMNS", "TEXT_COLUMNS", "EVENT_COLUMNS", "FORMATS", "ROW_BASIS", "BOOKKEEPING",
           "EVENTS_IN_MEMORY_MAX_BYTES"]

FORMATS = (".csv", ".parquet", ".xlsx", ".sav", ".dta")
ROW_BASIS = {".csv": "spreadsheet", ".xlsx": "spreadsheet",
             ".sav": "record", ".dta": "record", ".parquet": "record"}
DATE_COLUMNS = ("consent_date", "death_date", "event_date")
ID_COLUMNS = ("participant_id", "site")
TEXT_COLUMNS = ("participant_id", "site", "group", "condition", "sex", "deployment", "service")
EVENT_COLUMNS = ("participant_id", "event_date", "service", "quantity", "cost_gbp")
BOOKKEEPING = ("_file", "_row", "_group_given")

_ACCEPTED = "accepted formats are .csv, .parquet, .xlsx, .sav (SPSS) and .dta (Stata)"
_NEEDS_HEADER = f"give a table whose first row holds the column names; {_ACCEPTED}"
_SAMPLE_BYTES = 256 * 1024
# A .csv/.parquet event file larger than this stays on disk (``Cohort.events`` is its path): validated
# (phb_eval.events_check) and aggregated (phb_eval.events) out of core by DuckDB.
EVENTS_IN_MEMORY_MAX_BYTES = 256 * 1024 * 1024
# Date formats tried in order; ISO first, then UK day-first. US month-first is never tried.
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S",
                 "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S")


class DataWarning(UserWarning):
    """Something about an input file worth telling the user that does not stop the analysis."""


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


# ---- small helpers ---------------------------------------------------------------------------------
def sha256_file(path) -> str:
    """SHA-256 hex digest of a file's bytes, read in chunks (files can be large)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}). "
                        "Fix: check the path and that you may read the file") from None
    return digest.hexdigest()


def parse_dates(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse dates written as ISO ``yyyy-mm-dd`` or UK ``dd/mm/yyyy`` (optionally with a time).

    Returns
    -------
    (parsed, bad) : ``parsed`` is datetime64 (time of day dropped), NaT where missing or unparseable;
        ``bad`` is a boolean Series, True where a value was given but is not a date in those forms.

    Notes
    -----
    US month-first dates are never tried, so ``03/04/2010`` is 3 April. Columns already stored as
    dates (Excel, SPSS, Stata, Parquet) are returned as they are.
    """
    if pd.api.types.is_datetime64_any_dtype(values):
        parsed = values.dt.tz_localize(None) if getattr(values.dt, "tz", None) is not None else values
        return parsed.astype("datetime64[us]").dt.normalize(), pd.Series(False, index=values.index)
    text = values[values.notna()].astype(str).str.strip()
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    remaining = text
    formats = _DATE_FORMATS
    if len(text) and "/" in text.iloc[0]:  # try the form the file uses first (speed only)
        formats = sorted(_DATE_FORMATS, key=lambda f: "/" not in f)
    for fmt in formats:
        if remaining.empty:
            break
        got = pd.to_datetime(remaining, format=fmt, errors="coerce")
        ok = got.notna()
        if ok.any():
            parsed.loc[ok[ok].index] = got[ok].astype("datetime64[us]")
        remaining = remaining[~ok]
    bad = pd.Series(False, index=values.index)
    bad.loc[remaining.index] = True
    return parsed.dt.normalize(), bad


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


# ---- format readers (raw: user's column names, no mapping) -----------------------------------------
def _fail(path, what, fix=None) -> DataError:
    text = f"{path}: {what}"
    return DataError(text + (f". Fix: {fix}" if fix else ""))


def _looks_binary(sample: bytes) -> bool:
    if b"\x00" in sample:
        return True
    if not sample:
        return False
    control = sum(sample.count(bytes([b])) for b in range(32) if b not in (9, 10, 12, 13))
    return control / len(sample) > 0.05


def _decodes_utf8(sample: bytes, complete: bool) -> bool:
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=complete)
        return True
    except UnicodeDecodeError:
        return False


def _header_cells(first_line: str, sep: str) -> list[str]:
    try:
        return next(csv.reader([first_line], delimiter=sep), [])
    except csv.Error:
        return first_line.split(sep)


def _read_csv(path: Path, text_cols: set[str]) -> pd.DataFrame:
    with open(path, "rb") as fh:
        sample = fh.read(_SAMPLE_BYTES)
        complete = len(sample) < _SAMPLE_BYTES
    if _looks_binary(sample):
        raise _fail(path, "is not a text CSV file (it holds binary data)",
                    f"export the table as CSV (UTF-8), or give it its real extension; {_ACCEPTED}")
    encoding = "utf-8-sig"
    if not _decodes_utf8(sample, complete):
        encoding = "cp1252"
    try:
        head = sample.decode(encoding, errors="strict" if complete else "ignore")
    except UnicodeDecodeError:
        raise _fail(path, "is not a text file in UTF-8 or Windows-1252 encoding",
                    f"save it again as 'CSV UTF-8'; {_ACCEPTED}") from None
    head = head.lstrip("\ufeff")
    lines = head.splitlines()
    first = next((ln for ln in lines if ln.strip()), None)
    if first is None:
        raise _fail(path, "is empty (no header row and no data)", _NEEDS_HEADER)
    if lines[0].strip() == "":
        raise _fail(path, "has no header on row 1 (the first row is blank)", _NEEDS_HEADER)
    counts = {sep: len(_header_cells(lines[0], sep)) for sep in (",", ";", "\t")}
    sep = max(counts, key=lambda s: (counts[s], s == ","))
    raw_header = _header_cells(lines[0], sep)
    _check_header(path, raw_header)
    wanted = {name: str for name in raw_header if name.strip() in text_cols}
    kwargs = dict(sep=sep, dtype=wanted, skip_blank_lines=False, encoding=encoding, low_memory=False)
    if sep == ";":
        kwargs["decimal"] = ","  # semicolon-separated files come from decimal-comma locales
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            frame = pd.read_csv(path, **kwargs)
    except UnicodeDecodeError:
        if encoding == "cp1252":
            raise _fail(path, "is not a text file in UTF-8 or Windows-1252 encoding",
                        f"save it again as 'CSV UTF-8'; {_ACCEPTED}") from None
        encoding = "cp1252"
        kwargs["encoding"] = encoding
        try:
            frame = pd.read_csv(path, **kwargs)
        except (UnicodeDecodeError, ValueError, pd.errors.ParserError, csv.Error) as exc:
            raise _fail(path, f"could not be read as CSV ({_first_line(exc)})",
                        "save it again as 'CSV UTF-8' from your spreadsheet program") from None
    except pd.errors.EmptyDataError:
        raise _fail(path, "is empty (no header row and no data)", _NEEDS_HEADER) from None
    except (ValueError, pd.errors.ParserError, csv.Error, OverflowError) as exc:
        raise _fail(path, f"could not be read as CSV ({_first_line(exc)})",
                    "check that every row has as many fields as the header and quotes are closed") from None
    if encoding == "cp1252":
        warnings.warn(f"{path}: is not valid UTF-8, so it was read as Windows-1252 (cp1252); check that "
                      "accented letters look right, or save it again as 'CSV UTF-8'", DataWarning, stacklevel=3)
    frame.columns = [str(c).strip() for c in frame.columns]
    if sep == ";":
        # Decimal commas in a column that also holds a stray word: make '1,5' read as 1.5 later.
        for col in frame.columns:
            s = frame[col]
            if col not in text_cols and (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)):
                frame[col] = s.str.replace(r"^\s*([+-]?\d+),(\d+)\s*$", r"\1.\2", regex=True)
    return frame


def _first_line(exc) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _check_header(path, header: list) -> None:
    names = [str(h).strip() for h in header]
    if not any(re.search(r"[A-Za-z]", n) for n in names):
        raise _fail(path, "has no header row (row 1 holds no column names, only numbers, dates or blanks)",
                    _NEEDS_HEADER)
    seen, dupes = set(), []
    for n in names:
        if n and n in seen and n not in dupes:
            dupes.append(n)
        seen.add(n)
    if dupes:
        raise _fail(path, f"has more than one column named {', '.join(repr(d) for d in dupes)}",
                    "give every column a different name")
    reserved = [n for n in names if n in BOOKKEEPING]
    if reserved:
        raise _fail(path, f"has columns named {', '.join(map(repr, reserved))}, which phb-eval uses itself",
                    "rename those columns")


def _read_xlsx(path: Path, sheet, text_cols: set[str]) -> pd.DataFrame:
    import zipfile

    import openpyxl
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
        raise _fail(path, f"is not a readable Excel .xlsx workbook ({_first_line(exc)})",
                    f"open and save it again in Excel as .xlsx; {_ACCEPTED}") from None
    except Exception as exc:  # openpyxl raises assorted errors on damaged files
        raise _fail(path, f"is not a readable Excel .xlsx workbook ({_first_line(exc)})",
                    f"open and save it again in Excel as .xlsx; {_ACCEPTED}") from None
    try:
        names = book.sheetnames
        if sheet is not None and sheet not in names:
            raise _fail(path, f"has no sheet named {sheet!r} (sheets: {', '.join(names)})",
                        "name one of those sheets in the plan (data.sheet)")
        ws = book[sheet] if sheet is not None else book[names[0]]
        header = next(ws.iter_rows(min_row=1, max_row=1, values_only=True), None)
    finally:
        book.close()
    if header is None or all(h is None or str(h).strip() == "" for h in header):
        raise _fail(path, f"sheet {ws.title!r} is empty or has no header on row 1",
                    "put the column names on row 1 of the sheet, or name another sheet in the plan (data.sheet)")
    header = ["" if h is None else str(h).strip() for h in header]
    while header and header[-1] == "":
        header.pop()
    _check_header(path, header)
    try:
        frame = pd.read_excel(path, sheet_name=ws.title, engine="openpyxl",
                              dtype={h: str for h in header if h in text_cols})
    except Exception as exc:  # damaged workbooks raise many kinds of error inside openpyxl
        raise _fail(path, f"could not be read as an Excel table ({_first_line(exc)})",
                    "open and save it again in Excel as .xlsx") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _read_sav(path: Path) -> pd.DataFrame:
    import pyreadstat
    try:
        frame, _meta = pyreadstat.read_sav(str(path), apply_value_formats=False, user_missing=False,
                                           dates_as_pandas_datetime=True)
    except Exception as exc:  # pyreadstat.ReadstatError and friends
        raise _fail(path, f"is not a readable SPSS .sav file ({_first_line(exc)})",
                    f"save it again from SPSS as .sav; {_ACCEPTED}") from None
    return frame


def _read_dta(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_stata(path, convert_categoricals=False, convert_missing=False)
    except Exception as exc:  # pandas raises ValueError/struct.error/UnicodeDecodeError on bad files
        raise _fail(path, f"is not a readable Stata .dta file ({_first_line(exc)})",
                    f"save it again from Stata as .dta; {_ACCEPTED}") from None
    return frame


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow.ArrowInvalid and OSError on non-parquet bytes
        raise _fail(path, f"is not a readable Parquet file ({_first_line(exc)})",
                    f"write it again as Parquet; {_ACCEPTED}") from None
    return frame.reset_index(drop=True)


# ---- mapping and missing codes ----------------------------------------------------------------------
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
    p = Path(path)
    if not p.exists():
        raise _fail(path, "file not found", "check the path and the file name")
    if p.is_dir():
        raise _fail(path, "is a folder, not a file", "give the path of the table file inside it")
    ext = p.suffix.lower()
    if ext not in FORMATS:
        raise _fail(path, f"has the extension {ext or '(none)'!r}, which phb-eval cannot read",
                    f"export the table in an accepted format; {_ACCEPTED}")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror or exc})", "check that you may read the file") from None
    if size == 0:
        raise _fail(path, "is empty (0 bytes)", f"give the exported table; {_ACCEPTED}")
    mapping = _mapping(plan, table)
    text_cols = set(TEXT_COLUMNS) | set(DATE_COLUMNS)
    text_cols |= {mapping[c] for c in text_cols if c in mapping}
    if sheet is None and plan is not None:
        sheet = plan.data.sheet
    try:
        if ext == ".csv":
            frame = _read_csv(p, text_cols)
        elif ext == ".xlsx":
            frame = _read_xlsx(p, sheet, text_cols)
        elif ext == ".sav":
            frame = _read_sav(p)
        elif ext == ".dta":
            frame = _read_dta(p)
        else:
            frame = _read_parquet(p)
    except PermissionError:
        raise _fail(path, "cannot be opened (permission denied)", "check that you may read the file") from None
    except MemoryError:
        raise _fail(path, "is too large to read into memory",
                    "convert it to Parquet, or use the service-event route for record-level data") from None
    if ext not in (".csv", ".xlsx"):
        _check_header(path, [str(c) for c in frame.columns])
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
        from .events_check import inspect_events_file
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
