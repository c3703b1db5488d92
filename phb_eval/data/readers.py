"""Format readers: one file in, one raw pandas table out (the user's own column names, no plan applied).

Input files are only ever read (opened read-only; nothing is written beside them). Each reader refuses
what it cannot read with a sentence naming the file and the fix (``DataError``). The cohort layer
(``phb_eval.data.cohort``) applies the plan (column names, missing codes) and the contract's types.

Row numbers are those the user counts (``ROW_BASIS``): for ``.csv`` and ``.xlsx`` the spreadsheet row,
with the header on row 1, so the first data row is row 2; for ``.sav``, ``.dta`` and ``.parquet`` the
record (case) number from 1, as SPSS's and Stata's data browsers show it.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import re
import warnings
from pathlib import Path

import pandas as pd

from ..errors import DataError

__all__ = ["FORMATS", "ROW_BASIS", "BOOKKEEPING", "DataWarning", "sha256_file", "parse_dates", "read_raw"]

FORMATS = (".csv", ".parquet", ".xlsx", ".sav", ".dta")
ROW_BASIS = {".csv": "spreadsheet", ".xlsx": "spreadsheet",
             ".sav": "record", ".dta": "record", ".parquet": "record"}
BOOKKEEPING = ("_file", "_row", "_group_given")

_ACCEPTED = "accepted formats are .csv, .parquet, .xlsx, .sav (SPSS) and .dta (Stata)"
_NEEDS_HEADER = f"give a table whose first row holds the column names; {_ACCEPTED}"
_SAMPLE_BYTES = 256 * 1024
# Date formats tried in order; ISO first, then UK day-first. US month-first is never tried.
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S",
                 "%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S")


class DataWarning(UserWarning):
    """Something about an input file worth telling the user that does not stop the analysis."""


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



def read_raw(path, sheet=None, text_cols=frozenset()) -> tuple[pd.DataFrame, str]:
    """Read one file as it is (its own column names); returns the frame and its lower-case extension.

    ``text_cols`` are names read as text (CSV/Excel), so ``"001"`` stays ``"001"``; ``sheet`` is the Excel
    sheet (default: the first). Raises ``DataError`` for a missing, empty, binary, unreadable or
    headerless file, or one of a type phb-eval cannot read.
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
    return frame, ext
