"""Validate a service-event file out of core: the rules of ``validation._check_events`` as DuckDB SQL.

At national scale (tens of millions of events) reading the event table into pandas costs many GB.
``cohort.load_cohort`` then keeps ``Cohort.events`` as the file's path, and ``validation.validate_cohort``
calls ``check_events_file``, which lets DuckDB stream the file and never holds the table in pandas:
only counts and the first ``MAX_LISTED`` offending rows of each rule come back. Parquet is read once;
CSV once to count (on every core) and, only when some rule is broken, once more in file order to number
the rows it lists.

The problems equal those of the in-memory route (same file, row, column, value, rule, fix and count):

- The file is read as ``cohort.read_table`` reads it: for CSV the same encoding check, separator and header
  rules, pandas' missing-value words (``NA``, ``NULL``, …), spaces trimmed and blank cells missing,
  decimal commas in semicolon files; rows with no value at all are skipped but keep their number; the
  plan's ``data.columns`` mapping and missing codes are applied in SQL (missing codes as in
  ``mapping._apply_missing_codes``: a code matches as text or as a number; identifiers only by column).
- Row numbers are the user's (``readers.ROW_BASIS``): for CSV the spreadsheet row (header = row 1), counted
  with ``row_number() OVER ()``, which DuckDB guarantees follows the file's order (an empty ``OVER``
  clause preserves insertion order: https://duckdb.org/docs/2.0/sql/dialect/order_preservation.html).
  DuckDB's CSV reader skips empty lines, which pandas counts as rows, so a byte scan finds empty lines
  (quote-aware) and the numbers are corrected. For Parquet the record number from 1 (``file_row_number``).
- Numbers and dates are parsed by SQL written to accept exactly what ``pd.to_numeric`` and
  ``readers.parse_dates`` accept (ISO ``yyyy-mm-dd`` and UK ``dd/mm/yyyy``, optionally with a time;
  tests/test_events_check.py checks both on thousands of generated strings).

Not reproduced (cosmetic or pathological): a CSV that is not UTF-8 is read as Latin-1 rather than
Windows-1252 (they differ in bytes 0x80-0x9F only); a CSV column holding only ``True``/``False`` is text
here (pandas would read booleans); Parquet timestamps with a time zone are taken as UTC dates.
"""
from __future__ import annotations

import math
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..contract import EVENT_COLUMNS, EVENT_REQUIRED, ID_COLUMNS, MIN_YEAR, SERVICE_EVENT_TYPES
from ..errors import DataError, PhbEvalError
from . import readers
from .mapping import _apply_mapping, _code_forms, _mapping
from .problems import _MISSING_HINT, MAX_LISTED, Problem, _Report

__all__ = ["OUT_OF_CORE_FORMATS", "EventsFile", "inspect_events_file", "check_events_file", "events_view_sql"]

OUT_OF_CORE_FORMATS = (".csv", ".parquet")
_CHUNK = 1 << 24          # bytes per block when scanning a CSV for empty lines
try:                      # the words pandas.read_csv reads as missing (kept in step with the pandas in use)
    from pandas._libs.parsers import STR_NA_VALUES as _PANDAS_NA
except ImportError:       # pragma: no cover - older/newer pandas layouts
    _PANDAS_NA = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
                  "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
_NA_WORDS = sorted(_PANDAS_NA)
_NA_PATTERN = "|".join(re.escape(w) for w in _NA_WORDS)   # re.escape output is valid RE2
# the characters str.strip() removes (pandas .str.strip() in cohort._tidy_text), for DuckDB's trim(text, chars)
_SPACES = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
_SPACE_CLASS = "[" + "".join(f"\\x{{{ord(c):04x}}}" for c in _SPACES) + "]"
_EDGE_SPACE = f"^{_SPACE_CLASS}|{_SPACE_CLASS}$"
_INT_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
              "UBIGINT", "UHUGEINT"}


# ---- SQL helpers -------------------------------------------------------------------------------------
def _lit(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _in_list(values) -> str:
    return ", ".join(_lit(v) for v in values)


def _num_sql(v: str) -> str:
    """Text -> DOUBLE exactly where ``pd.to_numeric`` reads a number (DuckDB alone also takes '1_000',
    '+-1' and 'nan', which pandas reads as missing or not at all)."""
    return (f"CASE WHEN regexp_full_match({v}, '\\s*[+-]?(\\d+\\.?\\d*|\\.\\d+)([eE][+-]?\\d+)?\\s*') "
            f"OR regexp_full_match({v}, '(?i)\\s*[+-]?inf(inity)?\\s*') THEN TRY_CAST({v} AS DOUBLE) END")


# readers.parse_dates tries the formats of readers._DATE_FORMATS with pandas' strptime: 4-digit years; 1-2 digit
# day, month, hour, minute and second (a day may be space-padded); any run of spaces before the time;
# seconds up to 61, where 23:59:60 and 23:59:61 roll over into the next day. The regular expressions
# say which texts have such a form; DuckDB's strptime then checks the calendar (31/02 is not a date).
_ISO = r"\d{4}-\d{1,2}-(?:\d{1,2}| \d)"
_UK = r"(?:3[01]|[12]\d|0[1-9]|[1-9]| [1-9])/(?:1[0-2]|0[1-9]|[1-9])/\d{4}"
_HM = r"(?:2[0-3]|[01]\d|\d):(?:[0-5]\d|\d)"
_HMS = _HM + r":(?:6[01]|[0-5]\d|\d)"
_DATE_FORMS = [   # (whole value, its date part, DuckDB format of the date part)
    (_ISO, _ISO, "%Y-%m-%d"),
    (_UK, _UK, "%d/%m/%Y"),
    (rf"{_ISO}\s+{_HMS}", _ISO, "%Y-%m-%d"),
    (rf"{_ISO}T{_HMS}", _ISO, "%Y-%m-%d"),
    (rf"{_UK}\s+{_HM}", _UK, "%d/%m/%Y"),
    (rf"{_UK}\s+{_HMS}", _UK, "%d/%m/%Y"),
]


def _date_sql(v: str) -> str:
    """Trimmed text -> DATE where ``readers.parse_dates`` reads a date (the same day), else NULL."""
    arms = []
    for whole, part, fmt in _DATE_FORMS:
        text = v if whole == part else f"regexp_extract({v}, {_lit('^(' + part + ')')}, 1)"
        day = f"CAST(TRY_STRPTIME(replace({text}, ' ', ''), {_lit(fmt)}) AS DATE)"
        if whole != part and whole.endswith(_HMS):
            day = f"({day} + CASE WHEN regexp_matches({v}, '23:59:6[01]$') THEN 1 ELSE 0 END)"
        arms.append(f"WHEN regexp_full_match({v}, {_lit(whole)}) THEN {day}")
    return f"CAST(CASE {' '.join(arms)} END AS DATE)"


def _base_type(typ: str) -> str:
    return typ.upper().split("(")[0].strip()


def _is_numeric_type(typ: str) -> bool:
    base = _base_type(typ)
    return base in _INT_TYPES or base in {"FLOAT", "DOUBLE", "REAL", "DECIMAL"}


def _is_time_type(typ: str) -> bool:
    return _base_type(typ).startswith(("DATE", "TIMESTAMP"))


# ---- the file ----------------------------------------------------------------------------------------
@dataclass
class EventsFile:
    """What ``inspect_events_file`` learned from an event file's header (no data read).

    ``raw`` are the columns of the scan relation (``c0``, ``c1``, …) in file order; ``source`` maps each
    canonical column (after the plan's mapping) to its raw column; ``types`` are DuckDB types by raw
    column; ``unnamed`` are raw columns without a header name (with their 1-based position), which must
    be empty, as ``cohort.read_table`` requires."""

    path: str
    ext: str
    raw: list = field(default_factory=list)
    names: dict = field(default_factory=dict)       # raw column -> name in the file
    source: dict = field(default_factory=dict)      # canonical -> raw column
    columns: list = field(default_factory=list)     # canonical names, file order
    types: dict = field(default_factory=dict)       # raw column -> DuckDB type
    unnamed: list = field(default_factory=list)     # (raw column, position)
    sep: str | None = None
    encoding: str = "utf-8"
    parallel: bool = True    # CSV without row numbers may be read by many threads (not with quoted line breaks)
    notes: list = field(default_factory=list)

    def scan_sql(self, numbered: bool = True) -> str:
        """A relation of the raw columns and, if ``numbered``, ``_rn``: the record number (CSV: among
        non-empty lines, in file order; Parquet: from 1)."""
        if self.ext == ".csv":
            cols = "{" + ", ".join(f"{_lit(c)}: 'VARCHAR'" for c in self.raw) + "}"
            parallel = "true" if self.parallel and not numbered else "false"
            src = (f"read_csv({_lit(self.path)}, header = true, auto_detect = false, columns = {cols}, "
                   f"delim = {_lit(self.sep)}, quote = '\"', escape = '\"', null_padding = true, "
                   f"parallel = {parallel}, encoding = {_lit(self.encoding)})")
            rn = "row_number() OVER () AS _rn, " if numbered else ""
            return f"SELECT {rn}{', '.join(_ident(c) for c in self.raw)} FROM {src}"
        picks = ", ".join(f"{_ident(self.names[c])} AS {_ident(c)}" for c in self.raw)
        if not numbered:
            return f"SELECT {picks} FROM read_parquet({_lit(self.path)})"
        return (f"SELECT file_row_number + 1 AS _rn, {picks} "
                f"FROM read_parquet({_lit(self.path)}, file_row_number = true)")

    def tidy_sql(self, numbered: bool = True) -> str:
        """``scan_sql`` with every column tidied as ``cohort.read_table`` tidies it (same names), and
        ``_kept``: false for rows with no value at all, which read_table drops (their number is kept)."""
        cols = [f"{_tidy_sql(self, c)} AS {_ident(c)}" for c in self.raw]
        inner = f"SELECT {'_rn, ' if numbered else ''}{', '.join(cols)} FROM ({self.scan_sql(numbered)}) raw"
        kept = " OR ".join(f"{_ident(c)} IS NOT NULL" for c in self.raw) or "true"
        return f"SELECT *, ({kept}) AS _kept FROM ({inner}) tidy"


def _file_errors(path) -> tuple[Path, str]:
    p = Path(path)
    if not p.exists():
        raise readers._fail(path, "file not found", "check the path and the file name")
    if p.is_dir():
        raise readers._fail(path, "is a folder, not a file", "give the path of the table file inside it")
    ext = p.suffix.lower()
    if ext not in OUT_OF_CORE_FORMATS:
        raise PhbEvalError(f"{path}: only .csv and .parquet event files are validated out of core. Fix: convert "
                           "the event table to Parquet (or CSV), or load it in memory with io.load_cohort")
    if p.stat().st_size == 0:
        raise readers._fail(path, "is empty (0 bytes)", f"give the exported table; {readers._ACCEPTED}")
    return p, ext


def _csv_header(p: Path, path) -> tuple[str, str, list[str], list[dict]]:
    """Encoding, separator and header cells, decided as ``readers._read_csv`` decides them."""
    with open(p, "rb") as fh:
        sample = fh.read(readers._SAMPLE_BYTES)
        complete = len(sample) < readers._SAMPLE_BYTES
    if readers._looks_binary(sample):
        raise readers._fail(path, "is not a text CSV file (it holds binary data)",
                        f"export the table as CSV (UTF-8), or give it its real extension; {readers._ACCEPTED}")
    notes = []
    encoding = "utf-8-sig"
    if not readers._decodes_utf8(sample, complete):
        encoding = "latin-1"
        notes.append(_latin1_note(path))
    head = sample.decode(encoding, errors="strict" if complete else "ignore").lstrip("\ufeff")
    lines = head.splitlines()
    if next((ln for ln in lines if ln.strip()), None) is None:
        raise readers._fail(path, "is empty (no header row and no data)", readers._NEEDS_HEADER)
    if lines[0].strip() == "":
        raise readers._fail(path, "has no header on row 1 (the first row is blank)", readers._NEEDS_HEADER)
    counts = {sep: len(readers._header_cells(lines[0], sep)) for sep in (",", ";", "\t")}
    sep = max(counts, key=lambda s: (counts[s], s == ","))
    header = readers._header_cells(lines[0], sep)
    readers._check_header(path, header)
    return ("utf-8" if encoding == "utf-8-sig" else encoding), sep, [str(h).strip() for h in header], notes


def _latin1_note(path) -> dict:
    return {"level": "warning", "file": str(path), "column": None, "value": None,
            "rule": "is not valid UTF-8, so it was read as Latin-1 (ISO-8859-1)",
            "fix": "check that accented letters look right, or save it again as 'CSV UTF-8'"}


def inspect_events_file(path, plan=None, *, con=None) -> EventsFile:
    """Read an event file's header (CSV) or schema (Parquet), apply the plan's column mapping.

    Raises ``DataError`` as ``cohort.read_table`` would: missing, empty, binary or headerless file, duplicate
    or reserved column names, a column named in ``data.columns`` absent, or mapped onto an existing one.
    """
    p, ext = _file_errors(path)
    info = EventsFile(path=str(path), ext=ext)
    if ext == ".csv":
        info.encoding, info.sep, names, info.notes = _csv_header(p, path)
        types = ["VARCHAR"] * len(names)
        keep = [True] * len(names)
    else:
        import duckdb
        own = con is None
        con = con or duckdb.connect()
        try:
            schema = con.execute(f"DESCRIBE SELECT * FROM read_parquet({_lit(str(p))})").fetchall()
        except duckdb.Error as exc:
            raise readers._fail(path, f"is not a readable Parquet file ({readers._first_line(exc)})",
                            f"write it again as Parquet; {readers._ACCEPTED}") from None
        finally:
            if own:
                con.close()
        names, types = [str(r[0]) for r in schema], [str(r[1]) for r in schema]
        index_cols = _pandas_index_columns(p)   # pandas keeps these as the index and read_table drops it
        keep = [n not in index_cols for n in names]
        readers._check_header(path, [n for n, k in zip(names, keep) if k])
    named = []
    for i, (name, typ, k) in enumerate(zip(names, types, keep)):
        if not k:
            continue
        raw = f"c{i}"
        info.raw.append(raw)
        info.names[raw] = name
        info.types[raw] = typ
        if name == "" or name.startswith("Unnamed: "):
            info.unnamed.append((raw, len(info.raw)))
        else:
            named.append((raw, name))
    frame = pd.DataFrame(columns=[n for _r, n in named])
    renamed, _absent = _apply_mapping(frame, _mapping(plan, "events"), path, strict=True)
    for (raw, _name), canonical in zip(named, renamed.columns):
        info.source[str(canonical)] = raw
        info.columns.append(str(canonical))
    return info


def _pandas_index_columns(p: Path) -> set:
    try:
        import pyarrow.parquet as pq
        meta = pq.read_schema(p).pandas_metadata or {}
    except Exception:  # no pandas metadata, or pyarrow unable: DuckDB has read the schema already
        return set()
    return {c for c in meta.get("index_columns", []) if isinstance(c, str)}


# ---- empty lines (DuckDB skips them; pandas, and so the user's row numbers, count them) ----------------
def _has_empty_line(path) -> bool:
    tail = b""
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            probe = tail + block
            if b"\n\n" in probe or b"\n\r\n" in probe:
                return True
            tail = block[-2:]
    return False


def _empty_lines(path) -> tuple[list[int], int | None]:
    """Empty lines after the header (no bytes, or a lone carriage return, outside quotes): for each, the
    number of non-empty data records before it (sorted); and the number of non-empty data records in the
    file (None when there is no empty line and so no scan). Quotes are tracked by parity (a doubled quote
    toggles twice), as CSV quoting with quote = escape = '"' allows."""
    if not _has_empty_line(path):
        return [], None
    ks: list[int] = []
    in_quote, prev_end, records, blanks, offset, last = 0, -1, 0, 0, 0, 0
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            arr = np.frombuffer(block, np.uint8)
            nl = np.flatnonzero(arr == 10)
            quotes = np.flatnonzero(arr == 34)
            if len(quotes):
                ends = nl[(np.searchsorted(quotes, nl) + in_quote) % 2 == 0]
                in_quote = (len(quotes) + in_quote) % 2
            else:
                ends = nl if not in_quote else nl[:0]
            if len(ends):
                ends_abs = ends.astype(np.int64) + offset
                gap = ends_abs - np.concatenate(([prev_end], ends_abs[:-1])) - 1
                before = ends - 1
                byte = np.where(before >= 0, arr[np.maximum(before, 0)], last)
                blank = (gap == 0) | ((gap == 1) & (byte == 13))
                index = records + np.arange(len(ends))   # record index; 0 is the header
                for rec in index[blank & (index >= 1)]:
                    ks.append(int(rec) - 1 - blanks)
                    blanks += 1
                records += len(ends)
                prev_end = int(ends_abs[-1])
            last = int(arr[-1])
            offset += len(block)
    tail = offset - prev_end - 1                         # bytes after the last line break
    unterminated = tail > 1 or (tail == 1 and last != 13)
    return ks, records - 1 - blanks + int(unterminated)


# ---- the checks ----------------------------------------------------------------------------------------
def _code_sets(plan, canonical: str):
    if plan is None:
        return set(), set()
    theirs_to_canonical = {v: k for k, v in _mapping(plan, "events").items()}
    codes = []
    for name, cs in plan.data.missing_codes_by_column.items():
        if theirs_to_canonical.get(name, name) == canonical:
            codes.extend(cs)
    if canonical not in ID_COLUMNS:
        codes.extend(plan.data.missing_codes)
    return _code_forms(codes)


def _strip_sql(r: str) -> str:
    """``str.strip()`` in SQL. trim() with a character set is slow, so it runs only where an end may be a
    space: a cheap test lets values that begin and end with a printable ASCII character through as they are."""
    return (f"CASE WHEN ord({r}) BETWEEN 33 AND 126 AND ord(right({r}, 1)) BETWEEN 33 AND 126 THEN {r} "
            f"WHEN regexp_matches({r}, {_lit(_EDGE_SPACE)}) THEN trim({r}, {_lit(_SPACES)}) ELSE {r} END")


def _tidy_sql(info: EventsFile, raw: str) -> str:
    """A raw column as ``cohort.read_table`` leaves it after reading and ``_tidy_text``."""
    r, typ = _ident(raw), info.types[raw]
    if info.ext == ".csv":
        # a regular expression, not IN (...): DuckDB plans a long IN list as a join, which holds up the stream
        return f"CASE WHEN regexp_full_match({r}, {_lit(_NA_PATTERN)}) THEN NULL ELSE NULLIF({_strip_sql(r)}, '') END"
    base = _base_type(typ)
    if base == "VARCHAR":
        return f"NULLIF({_strip_sql(r)}, '')"
    if base in {"FLOAT", "DOUBLE", "REAL"}:
        return f"CASE WHEN isnan({r}) THEN NULL ELSE {r} END"
    return r


def _coded_sql(info: EventsFile, canonical: str, plan, tidy: str) -> str:
    """The tidied column with the plan's missing codes made NULL (``mapping._apply_missing_codes``)."""
    raw = info.source[canonical]
    typ = info.types[raw]
    value = tidy
    if info.ext == ".csv" and info.sep == ";" and canonical in ("quantity", "cost_gbp"):
        value = f"regexp_replace({value}, '^([+-]?\\d+),(\\d+)$', '\\1.\\2')"   # decimal commas
    numbers, texts = _code_sets(plan, canonical)
    numbers = {x for x in numbers if math.isfinite(x)}
    if not numbers and not texts or _is_time_type(typ):
        return value
    if _is_numeric_type(typ):
        if not numbers:
            return value
        hit = f"CAST({value} AS DOUBLE) IN ({', '.join(repr(float(x)) for x in sorted(numbers))})"
    else:
        text = value if _base_type(typ) == "VARCHAR" else f"CAST({value} AS VARCHAR)"
        parts = [f"{text} IN ({_in_list(sorted(texts))})"] if texts else []   # text already stripped
        if numbers:
            parts.append(f"{_num_sql(text)} IN ({', '.join(repr(float(x)) for x in sorted(numbers))})")
        hit = " OR ".join(parts)
    return f"CASE WHEN {hit} THEN NULL ELSE {value} END"


def _clean_columns(info: EventsFile, plan) -> dict:
    """canonical -> SQL of the value validate sees (mapping, tidying, missing codes), on relation ``raw``."""
    out = {}
    for canonical, raw in info.source.items():
        if canonical not in EVENT_COLUMNS:
            continue
        out[canonical] = _coded_sql(info, canonical, plan, _ident(raw))   # on tidy_sql's columns
    return out


def _ids_text_sql(info: EventsFile, value: str, con) -> str:
    """participant_id as text, as ``cohort._ids_as_text`` makes it (whole-number floats lose the '.0')."""
    typ = _base_type(info.types[info.source["participant_id"]])
    if typ == "VARCHAR":
        return value
    if typ in _INT_TYPES:
        return f"CAST({value} AS VARCHAR)"
    if typ in {"FLOAT", "DOUBLE", "REAL", "DECIMAL"}:
        whole = con.execute(f"SELECT coalesce(bool_and({value} = floor({value}) AND abs({value}) < 9007199254740992), "
                            f"true) FROM ({info.tidy_sql(numbered=False)}) t WHERE _kept").fetchall()[0][0]
        return f"CAST(CAST({value} AS BIGINT) AS VARCHAR)" if whole else f"CAST({value} AS VARCHAR)"
    if typ == "BOOLEAN":
        return f"CASE WHEN {value} THEN 'True' WHEN NOT {value} THEN 'False' END"
    return f"CAST({value} AS VARCHAR)"


def _number_sql(info: EventsFile, canonical: str, value: str) -> str:
    typ = info.types[info.source[canonical]]
    if _is_numeric_type(typ) or _base_type(typ) == "BOOLEAN":
        return f"CAST({value} AS DOUBLE)"
    if _base_type(typ) == "VARCHAR":
        return _num_sql(value)
    return "CAST(NULL AS DOUBLE)"


def _parsed_date_sql(info: EventsFile, value: str) -> str:
    typ = info.types[info.source["event_date"]]
    if _is_time_type(typ):
        return f"CAST({value} AS DATE)"
    if _base_type(typ) == "VARCHAR":
        return _date_sql(value)
    return _date_sql(f"CAST({value} AS VARCHAR)")


def _connect():
    import duckdb
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")   # row_number() OVER () then follows the file
    con.execute("SET enable_progress_bar = false")
    try:
        con.execute("SET TimeZone = 'UTC'")   # time-zoned Parquet timestamps -> UTC dates
    except duckdb.Error:   # pragma: no cover - DuckDB built without ICU
        pass
    return con


def events_view_sql(path, plan=None, *, info: EventsFile | None = None, numbered: bool = False,
                    parallel: bool = True) -> str:
    """SQL of the event file as ``cohort.read_table`` would give it: canonical names (plan mapping), blank rows
    skipped, spaces trimmed, missing codes applied, ``participant_id``/``service`` as text, ``event_date``
    as DATE (NULL where unreadable), ``quantity``/``cost_gbp`` as DOUBLE (NULL where not numbers); with
    ``numbered``, also ``_rn`` (CSV: the record number among non-empty lines; Parquet: the row from 1).

    For the aggregation of a path (``events.aggregate_events``), so that it counts the values validation
    checked: ``CREATE VIEW events AS <this>``. Only columns present in the file are selected. A CSV is
    read by every thread unless ``parallel`` is False, which DuckDB needs for a CSV with line breaks inside
    quoted cells (it says "does not support null_padding in conjunction with quoted new lines")."""
    info = info or inspect_events_file(path, plan)
    info.parallel = parallel
    con = _connect()
    try:
        clean = _clean_columns(info, plan)
        pid = _ids_text_sql(info, clean["participant_id"], con) if "participant_id" in clean else None
    finally:
        con.close()
    sel = ["_rn"] if numbered else []
    if pid is not None:
        sel.append(f"{pid} AS participant_id")
    if "event_date" in clean:
        sel.append(f"{_parsed_date_sql(info, clean['event_date'])} AS event_date")
    if "service" in clean:
        sel.append(f"CAST({clean['service']} AS VARCHAR) AS service")
    for col in ("quantity", "cost_gbp"):
        if col in clean:
            sel.append(f"{_number_sql(info, col, clean[col])} AS {col}")
    return f"SELECT {', '.join(sel) or '*'} FROM ({info.tidy_sql(numbered)}) t WHERE _kept"


def check_events_file(path, participants: pd.DataFrame | None, plan=None, rep: _Report | None = None, *,
                      today=None) -> list[Problem]:
    """The service-event rules of ``validate`` on a CSV/Parquet file, streamed by DuckDB (out of core).

    Parameters
    ----------
    path : the event file (.csv or .parquet) as the user gave it (problems name it so).
    participants : the participant table (its ``participant_id`` values are the known people), or None.
    plan : the analysis plan (``data.columns`` mapping and missing codes for the event table).
    rep : a ``problems.Report`` to add to (``validate_cohort`` passes its own); default a new one.
    today : dates after this are "in the future" (default: today).

    Returns
    -------
    list of ``Problem`` added, in the order ``validation._check_events`` adds them: required columns, empty
    and unknown participant_id, service labels, then non-numeric and negative quantity and cost_gbp,
    then unreadable, future and pre-1900 event dates. Each rule lists its first ``MAX_LISTED`` rows, then
    one "N more rows" problem whose ``count`` is N.

    Raises
    ------
    DataError : the file cannot be read as ``cohort.read_table`` would read it (see ``inspect_events_file``),
        or DuckDB finds it malformed (e.g. a row with more fields than the header).
    """
    import duckdb

    today = pd.Timestamp.today().normalize() if today is None else pd.Timestamp(today).normalize()
    rep = rep if rep is not None else _Report()
    start = len(rep.problems)
    info = inspect_events_file(path, plan)
    label = str(path)
    for col in EVENT_REQUIRED:
        if col not in info.columns:
            rep.add("error", label, None, col, None,
                    f"the service-event table has no '{col}' column (columns found: {', '.join(info.columns) or 'none'})",
                    f"add a '{col}' column, or map your name in the plan: data.columns: {{{col}: YOUR_NAME}}")
    con = _connect()
    try:
        try:
            got = _run_checks(con, info, participants, plan, today)
        except duckdb.Error as exc:
            if info.ext != ".csv" or info.encoding != "utf-8" or "unicode" not in str(exc).lower():
                raise
            info.encoding = "latin-1"   # invalid UTF-8 beyond the sampled start: as pandas, read it again
            note = _latin1_note(path)
            rep.add(note["level"], note["file"], None, None, None, note["rule"], note["fix"])
            got = _run_checks(con, info, participants, plan, today)
    except duckdb.Error as exc:
        if info.ext == ".csv":
            raise DataError(f"{path}: could not be read as CSV ({_duckdb_reason(exc)}). Fix: check that every "
                            "row has as many fields as the header and quotes are closed, or write the table as "
                            "Parquet") from None
        raise readers._fail(path, f"is not a readable Parquet file ({readers._first_line(exc)})",
                        f"write it again as Parquet; {readers._ACCEPTED}") from None
    finally:
        con.close()
    for raw, position in info.unnamed:
        if got["unnamed"][raw]:
            raise readers._fail(path, f"column number {position} has data but no name in the header row",
                            "give every column a name on row 1, or delete the column")
    _emit_all(rep, label, info, got, today)
    return rep.problems[start:]


def _duckdb_reason(exc) -> str:
    """DuckDB's first line and the sentence that says what is wrong (not its options dump)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    said = []
    for ln in lines:
        if ln.startswith(("Possible fix", "Possible Solution", "*", "file =")):
            break
        if not ln.startswith("Original Line"):
            said.append(ln.replace("Invalid Input Error: ", ""))
    return "; ".join(said[:2]) or type(exc).__name__


def _run_checks(con, info: EventsFile, participants, plan, today) -> dict:
    """Streamed passes over the file: per rule the number of rows and the first MAX_LISTED (record
    number, value); plus the figures that decide how values are shown."""
    import duckdb
    clean = _clean_columns(info, plan)
    today_sql = f"DATE {_lit(today.strftime('%Y-%m-%d'))}"
    inner = ["_rn", "_kept"]                        # values as validate sees them
    middle = ["*"]                                  # numbers and dates parsed from them
    rules, stats = [], []                           # (key, flag, shown value); extra aggregates
    if "participant_id" in clean:
        inner.append(f"{_ids_text_sql(info, clean['participant_id'], con)} AS pid")
        rules.append(("pid_missing", "pid IS NULL", "NULL"))
        if participants is not None and "participant_id" in participants:
            known = participants["participant_id"].dropna().map(str)
            con.register("_known_ids", pd.DataFrame({"id": pd.unique(known.to_numpy(dtype=object))}))
            # IN (subquery): the known ids are always the hash table, never the (large) event stream
            middle.append("pid IN (SELECT CAST(id AS VARCHAR) FROM _known_ids) AS pid_known")
            rules.append(("pid_unknown", "pid IS NOT NULL AND NOT pid_known", "pid"))
    if "service" in clean:
        inner.append(f"{clean['service']} AS svc")
        rules.append(("svc_label", f"svc IS NOT NULL AND CAST(svc AS VARCHAR) NOT IN ({_in_list(SERVICE_EVENT_TYPES)})",
                      "svc"))
        rules.append(("svc_missing", "svc IS NULL", "NULL"))
    for col, short in (("quantity", "q"), ("cost_gbp", "c")):
        if col not in clean:
            continue
        inner.append(f"{clean[col]} AS {short}")
        middle.append(f"{_number_sql(info, col, short)} AS {short}n")
        shown = f"{{'t': {short}, 'n': {short}n}}"
        rules.append((f"{short}_nan", f"{short} IS NOT NULL AND {short}n IS NULL", shown))
        rules.append((f"{short}_neg", f"{short}n < 0", shown))
        # whether pandas would hold the column as integers (display only: 2 rather than 2.0)
        text = _base_type(info.types[info.source[col]]) == "VARCHAR"
        not_int = f"{short} IS NULL" + (f" OR NOT regexp_full_match({short}, '[+-]?\\d+')" if text else "")
        stats.append(f"count(*) FILTER (WHERE {not_int}) AS {short}_not_int")
    if "event_date" in clean:
        inner.append(f"{clean['event_date']} AS d")
        middle.append(f"{_parsed_date_sql(info, 'd')} AS dd")
        shown = "{'t': d, 'dd': dd}"
        rules.append(("d_bad", "d IS NOT NULL AND dd IS NULL", shown))
        rules.append(("d_future", f"dd > {today_sql}", shown))
        rules.append(("d_early", f"year(dd) < {MIN_YEAR}", shown))
    for raw, _pos in info.unnamed:
        inner.append(f"{_ident(raw)} AS u_{raw}")
        stats.append(f"count(u_{raw}) AS unnamed_{raw}")

    def run(numbered: bool, listed: list, counted: bool = True) -> dict:
        counts = ["count(*) AS n_raw", "count(*) FILTER (WHERE _kept) AS n_rows", *stats]
        counts += [f"count(*) FILTER (WHERE _kept AND ({flag})) AS n_{key}" for key, flag, _s in rules]
        lists = [f"arg_min({{'rn': _rn, 'v': {shown}}}, _rn, {MAX_LISTED}) FILTER (WHERE _kept AND ({flag})) "
                 f"AS l_{key}" for key, flag, shown in rules if key in listed]
        cols = inner if numbered else inner[1:]
        sql = (f"SELECT {', '.join((counts if counted else []) + lists)} FROM "
               f"(SELECT {', '.join(middle)} FROM (SELECT {', '.join(cols)} FROM ({info.tidy_sql(numbered)}) t) e) e")
        cur = con.execute(sql)
        return dict(zip([d[0] for d in cur.description], cur.fetchall()[0]))

    keys = [key for key, _f, _s in rules]
    if info.ext == ".csv":
        # Counting needs no row numbers and runs on every thread; row_number() OVER () reads in one, so
        # the numbered pass (the first rows of each rule, by arg_min over the row number: order-safe)
        # runs only when some rule has rows to list.
        try:
            row = run(numbered=False, listed=[])
        except duckdb.Error as exc:
            if "null_padding" not in str(exc):
                raise
            info.parallel = False   # line breaks inside quoted cells: DuckDB reads such files in one thread
            row = run(numbered=False, listed=[])
        hit = [key for key in keys if row[f"n_{key}"]]
        if hit:
            row.update(run(numbered=True, listed=hit, counted=False))
    else:
        row = run(numbered=True, listed=keys)
    got = {"rules": keys, "row": row, "empty_lines": [],
           "unnamed": {raw: row.get(f"unnamed_{raw}", 0) for raw, _p in info.unnamed}}
    if info.ext == ".csv":
        got["empty_lines"], records = _empty_lines(info.path)
        got["numbering_checked"] = records is None or records == row["n_raw"]
    return got


# ---- problems, worded as validation._check_events words them --------------------------------------------------
_TEXTS = {
    "pid_missing": ("participant_id", "an event has no participant_id", "give the participant_id for every event"),
    "pid_unknown": ("participant_id", "this participant_id is not in the participant table",
                    "correct the id, or add the person to the participant table"),
    "svc_label": ("service", "this is not an allowed service label", f"use one of: {', '.join(SERVICE_EVENT_TYPES)}"),
    "svc_missing": ("service", "an event has no service label", f"use one of: {', '.join(SERVICE_EVENT_TYPES)}"),
    "q_nan": ("quantity", "this is not a number", f"write quantity as a number, {_MISSING_HINT}"),
    "q_neg": ("quantity", "a quantity cannot be negative", "give bed days for an inpatient spell, 1 for other events"),
    "c_nan": ("cost_gbp", "this is not a number", f"write cost_gbp as a number, {_MISSING_HINT}"),
    "c_neg": ("cost_gbp", "a cost cannot be negative",
              "give the cost in £ (0 or more), or leave it empty to use the unit cost"),
    "d_bad": ("event_date", "this is not a date in the form yyyy-mm-dd or dd/mm/yyyy",
              "write dates as 2010-05-31 or 31/05/2010 (day first; US month-first dates are not read)"),
    "d_future": ("event_date", None, "correct the date"),
    "d_early": ("event_date", f"this date is before {MIN_YEAR}", "correct the year"),
}


def _emit_all(rep: _Report, label: str, info: EventsFile, got: dict, today) -> None:
    row = got["row"]
    ks = got["empty_lines"]
    if info.ext == ".csv":
        def user_row(rn):   # spreadsheet row: the header is row 1, and empty lines (skipped by DuckDB) count
            return int(rn) + 1 + bisect_right(ks, int(rn) - 1)
    else:
        def user_row(rn):
            return int(rn)
    for key in got["rules"]:
        column, rule, fix = _TEXTS[key]
        if key == "d_future":
            rule = f"this date is in the future (today is {today:%Y-%m-%d})"
        total = int(row[f"n_{key}"] or 0)
        if not total:
            continue
        listed = sorted(row[f"l_{key}"] or [], key=lambda item: item["rn"])[:MAX_LISTED]
        for item in listed:
            rep.add("error", label, user_row(item["rn"]), column, _shown(key, item["v"], got), rule, fix)
        rest = total - len(listed)
        if rest:
            rep.add("error", label, None, column, None,
                    f"{rest} more row(s) break the same rule ({rule}); the first {MAX_LISTED} are listed above",
                    fix, count=rest)
    if not got.get("numbering_checked", True):
        rep.add("warning", label, None, None, None,
                "the file has empty lines and quotes that could not be matched up, so the row numbers given for "
                "its events may be off by the number of empty lines above them",
                "delete the empty lines, or write the event table as Parquet")


def _shown(key: str, v, got: dict):
    """The value the in-memory route shows: the cell as pandas holds it after ``cohort.read_table``."""
    row = got["row"]
    if key in ("pid_missing", "svc_missing"):
        return float("nan")            # pandas shows the empty cell itself
    if key in ("pid_unknown", "svc_label"):
        return v
    if key[0] in "qc":
        short = key[0]
        text, number = v["t"], v["n"]
        if key.endswith("_nan") or row[f"n_{short}_nan"]:
            return text                # a column with any non-number stays text
        # pandas holds integers only when every cell of the column is one (no blanks, no empty lines)
        integral = not row[f"{short}_not_int"] and not got["empty_lines"]
        if isinstance(text, str):
            return int(number) if integral else number
        if isinstance(text, bool) or not isinstance(text, (int, float)):
            return number
        return int(text) if integral and isinstance(text, int) else float(text)
    text, parsed = v["t"], v["dd"]
    if key == "d_early":
        return pd.Timestamp(parsed).strftime("%Y-%m-%d")
    if key == "d_bad":
        return text
    # d_future: the column holds dates (times dropped) when every value converts, else the file's text
    return text if isinstance(text, str) and row["n_d_bad"] else pd.Timestamp(parsed)
