"""Write a run's output folder: tables, workbook, figures, report, results.json and manifest — all or nothing.

Layout of ``out_dir`` (see data-contract.md → Results)::

    results.json          {"meta": {...}, "estimates": [row, ...]}  (NaN -> null)
    tables/estimates.csv  the same rows; tables/<name>.csv for every table in Results.tables
    tables.xlsx           one sheet per table (names cut to Excel's 31 characters, unique)
    figures/<name>.png    standard figures (figures.standard_figures) and Results.figures, 120 dpi
    report.html           one self-contained page; report.md too when "md" is in formats
    manifest.json         what is needed to repeat the run (below)

Everything is built in a hidden sibling folder (same file system) and renamed into place only when
complete. An existing non-empty ``out_dir`` is refused unless ``force``, and ``force`` replaces only a
folder phb-eval wrote; ``out_dir`` never is, holds or contains an input (rules in ``outdir.py``). With
``force`` the old folder is moved aside, the new one moved in, then the old one deleted — a failure at any
point leaves either the old folder or the new one, never a half report, and no temporary folders behind.
One run at a time writes a folder (a lock file beside it); a system error (permissions, disk full, long
names) is a ``PhbEvalError`` naming the path and the fix. Text cells in CSV and xlsx are made
spreadsheet-safe (``cells.py``) and xlsx cells are never formulas.

``Results.meta`` keys read here (all optional; set by the pipeline)
--------------------------------------------------------------------
- ``inputs``: ``{path: sha256 hex}`` of every input file.
- ``plan``: the plan as run (a dict); default ``plan_to_dict(plan)``.
- ``seed``: the seed used; default ``plan.seed``.
- ``timings``: ``{stage: seconds}``; the writer adds ``write_outputs``.
- ``command``: the command line (string or list of arguments).
- ``versions``: ``{package: version}``; missing packages among numpy, pandas, scipy, statsmodels,
  pingouin, duckdb, python and phb-eval are filled in here.
- ``participant_ids``: input participant ids, used only by the privacy guard and never written
  (the ``participant_ids`` argument does the same).
- ``n_clusters``, ``cea_effect``: optional facts the report quotes.
Every other key is copied into ``results.json`` meta as is (made JSON-safe).

Disclosure control (``Results.table_specs``)
--------------------------------------------
``results.table_specs[name]`` describes a table for ``phb_eval.disclosure.apply_disclosure``::

    {"count_columns": ["phb", "control"],            # counts: 1..min_count-1 -> '*', others rounded
     "mean_columns": {"mean_age": "n"},              # a mean and the column holding its n
     "percent_columns": {"pct": ("num", "den")},     # a percentage from its numerator and denominator
     "disclose": True,                               # False: publish as is (model estimates only)
     "xlsx": True}                                   # False: CSV only (e.g. long bootstrap draws)

Keys other than ``disclose`` and ``xlsx`` are passed to ``apply_disclosure``. The rows in
``estimates`` default to ``{"count_columns": ["n_phb", "n_control"]}``. A table without a spec has its
count-named columns (``n``, ``count``, ``phb``, ``control``, ``n_*``, ``*_n``, ``*_count``) treated as
counts, and the report says so. With ``disclosure=False`` (``--no-disclosure``) or
``plan.disclosure.enabled = false`` nothing is suppressed and the report says that in a banner.

Numbers: full precision everywhere (rounding happens only in the report). Non-finite numbers (NaN, ±inf)
are written as null in JSON and left empty in CSV and the workbook — so an infinite ``df`` (a normal
reference distribution) appears empty; the ``method`` and ``note`` columns say which reference was used.

Privacy guard: before anything is written, no table may have a ``participant_id`` column, a column
named by, or a text cell equal to, an input participant id (``PrivacyError`` — a bug, not a user error).
Warnings and skipped-analysis sentences have ids (those containing a non-digit) replaced by
``[participant id]``.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import re
import shutil
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import PhbEvalError
from ..io import sha256_file
from ..plan import Plan, plan_to_dict
from ..progress import stage
from . import outdir
from .cells import neutralise

__all__ = ["write_outputs", "publish_tables", "check_privacy", "redact_ids", "PrivacyError", "sheet_names",
           "table_file_names", "to_jsonable", "package_versions", "sha256_file", "check_target", "FORMATS", "VERSIONED",
           "DEFAULT_SPECS"]

FORMATS = ("html", "md")
VERSIONED = ["numpy", "pandas", "scipy", "statsmodels", "pingouin", "duckdb", "matplotlib", "seaborn", "jinja2",
             "openpyxl", "xlsxwriter"]
LONG_TABLE = 10_000  # rows from which a table's CSV is written by Arrow (bootstrap draws: 10x faster, same numbers)
# xlsxwriter turns text that looks like a formula, URL or number into one unless told not to: cells stay text
XLSX_OPTIONS = {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
DEFAULT_SPECS = {"estimates": {"count_columns": ["n_phb", "n_control"]}}
WRITER_KEYS = ("disclose", "xlsx")
PRIVATE_META = ("participant_ids",)
COUNT_NAME = re.compile(r"^(n|count|phb|control|n_.+|.+_n|.+_count)$", re.IGNORECASE)
SHEET_BAD = re.compile(r"[\[\]:*?/\\]")
REDACTED = "[participant id]"


class PrivacyError(RuntimeError):
    """Participant-level data reached a published table: a bug in phb-eval, never a user error."""


# ------------------------------------------------------------------------------------------ small pieces
def package_versions(known: dict | None = None) -> dict:
    """Versions of python, phb-eval and the numerical packages (``known`` entries are kept)."""
    from .. import __version__
    out = dict(known or {})
    out.setdefault("python", platform.python_version())
    out.setdefault("phb-eval", __version__)
    for name in VERSIONED:
        if name not in out:
            try:
                out[name] = version(name)
            except PackageNotFoundError:
                out[name] = None
    return out


def to_jsonable(obj):
    """Plain JSON types: NaN/inf/NA -> None, numpy scalars -> Python, dates -> ISO text, tuples -> lists."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(float(obj)) else None
    if obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, (pd.Timestamp, _dt.datetime, _dt.date)):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset, np.ndarray, pd.Series)):
        return [to_jsonable(v) for v in list(obj)]
    if isinstance(obj, pd.DataFrame):
        return [to_jsonable(r) for r in obj.to_dict("records")]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "model_dump"):
        return to_jsonable(obj.model_dump(mode="json"))
    return str(obj)


def _dump_json(obj, path: Path) -> None:
    path.write_text(json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n",
                    encoding="utf-8")


def sheet_names(names) -> dict:
    """Table name -> Excel sheet name: forbidden characters replaced, ≤ 31 characters, unique (any case)."""
    out, seen = {}, set()
    for name in names:
        base = SHEET_BAD.sub("_", str(name)).strip("'") or "sheet"
        cand, k = base[:31], 2
        while cand.lower() in seen:
            suffix = f"~{k}"
            cand, k = base[:31 - len(suffix)] + suffix, k + 1
        seen.add(cand.lower())
        out[name] = cand
    return out


def table_file_names(names) -> dict:
    """Table name -> a safe, unique CSV file stem."""
    out, seen = {}, set()
    for name in names:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "table"
        cand, k = base, 2
        while cand.lower() in seen:
            cand, k = f"{base}_{k}", k + 1
        seen.add(cand.lower())
        out[name] = cand
    return out


# ------------------------------------------------------------------------------------- disclosure
def _spec_for(name: str, frame: pd.DataFrame, specs: dict) -> tuple[dict, bool]:
    """(spec, explicit?) for a table: the producer's spec, a default, or count-named columns."""
    if name in specs:
        return dict(specs[name]), True
    if name in DEFAULT_SPECS:
        return dict(DEFAULT_SPECS[name]), True
    return {"count_columns": [c for c in frame.columns if COUNT_NAME.match(str(c))]}, False


def _finite_or_missing(frame: pd.DataFrame) -> pd.DataFrame:
    """±inf -> NaN: JSON and Excel cannot hold infinity, and CSV must say what JSON says."""
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_float_dtype(s):
            out[col] = s.where(np.isfinite(s.to_numpy(dtype=float)), np.nan)
        elif s.dtype == object:
            bad = s.map(lambda v: isinstance(v, (float, np.floating)) and not math.isfinite(v))
            if bad.any():
                out[col] = s.where(~bad, np.nan)
    return out


def publish_tables(results, plan: Plan, disclosure: bool = True) -> tuple[dict, dict]:
    """Every table as it will be published (``estimates`` first), and a description of the control applied.

    Returns ``(tables, info)``: ``tables`` name -> DataFrame after disclosure control; ``info`` has
    ``applied`` (bool), ``sentence`` (the rule as run, for the report) and ``inferred`` (tables whose count
    columns were guessed from their names).
    """
    if "estimates" in results.tables:
        raise ValueError("Results.tables must not use the reserved name 'estimates' (the estimate rows)")
    tables = {"estimates": results.estimates, **results.tables}
    for name, frame in tables.items():
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"Results.tables[{name!r}] is a {type(frame).__name__}, not a DataFrame")
    enabled = bool(disclosure) and plan.disclosure.enabled
    specs = getattr(results, "table_specs", None) or {}
    info = {"applied": enabled, "inferred": {}}
    if not enabled:
        why = ("by the plan (disclosure.enabled: false)" if not plan.disclosure.enabled
               else "at the user's request (--no-disclosure)")
        info["sentence"] = (f"Disclosure control was turned off {why}: small numbers are shown unsuppressed, "
                            "so these tables must not be published.")
        return {n: _finite_or_missing(f) for n, f in tables.items()}, info
    from ..disclosure import apply_disclosure, describe_rule
    out = {}
    for name, frame in tables.items():
        spec, explicit = _spec_for(name, frame, specs)
        if not spec.get("disclose", True):
            out[name] = frame.copy()
            continue
        kwargs = {k: v for k, v in spec.items() if k not in WRITER_KEYS}
        kwargs["count_columns"] = [c for c in kwargs.get("count_columns", []) if c in frame.columns]
        if not explicit and kwargs["count_columns"]:
            info["inferred"][name] = list(kwargs["count_columns"])
        if not any(kwargs.get(k) for k in ("count_columns", "mean_columns", "percent_columns")):
            out[name] = frame.copy()
            continue
        out[name] = apply_disclosure(frame, settings=plan.disclosure, **kwargs)
    out = {n: _finite_or_missing(f) for n, f in out.items()}
    sentence = describe_rule(plan.disclosure)
    if info["inferred"]:
        sentence += " Tables without a declared layout had their count-named columns treated as counts (" + \
            "; ".join(f"{n}: {', '.join(map(str, c))}" for n, c in info["inferred"].items()) + ")."
    info["sentence"] = sentence
    return out, info


# ------------------------------------------------------------------------------------------ privacy
def _ids(results, participant_ids) -> set:
    ids = set()
    for source in (participant_ids, results.meta.get("participant_ids")):
        if source is not None:
            ids.update(str(i) for i in source if i is not None and not (isinstance(i, float) and math.isnan(i)))
    return ids


def _strings_in(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield str(k)
            yield from _strings_in(v)
    elif isinstance(obj, (list, tuple, set)):
        for v in obj:
            yield from _strings_in(v)


def check_privacy(tables: dict, ids, meta: dict | None = None) -> None:
    """Raise ``PrivacyError`` when a table (or meta) could identify a participant."""
    ids = set(map(str, ids or ()))
    for name, frame in tables.items():
        cols = [str(c) for c in frame.columns]
        if any(c.lower() == "participant_id" for c in cols):
            raise PrivacyError(f"table {name!r} has a participant_id column: participant-level rows must never be "
                               "published. This is a bug in phb-eval; please report it.")
        if not ids:
            continue
        bad_cols = [c for c in cols if c in ids]
        if bad_cols:
            raise PrivacyError(f"table {name!r} has columns named by participant ids ({len(bad_cols)}); "
                               "this is a bug in phb-eval; please report it.")
        for col in frame.columns:
            s = frame[col]
            if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
                continue
            vals = [v for v in pd.unique(s.dropna().to_numpy(dtype=object)) if isinstance(v, str)]
            if any(v in ids for v in vals):
                raise PrivacyError(f"table {name!r}, column {col!r} contains participant ids: participant-level "
                                   "values must never be published. This is a bug in phb-eval; please report it.")
        if isinstance(frame.index, pd.Index) and not pd.api.types.is_integer_dtype(frame.index) \
                and frame.index.astype(str).isin(ids).any():
            raise PrivacyError(f"table {name!r} is indexed by participant ids; this is a bug in phb-eval.")
    if ids and meta:
        for text in _strings_in({k: v for k, v in meta.items() if k not in PRIVATE_META}):
            if text in ids:
                raise PrivacyError("run meta contains a participant id; this is a bug in phb-eval.")


def redact_ids(texts, ids) -> list[str]:
    """Sentences with any token equal to a participant id (one with a non-digit) replaced."""
    ids = {i for i in map(str, ids or ()) if not i.isdigit()}
    if not ids:
        return [str(t) for t in texts]
    token = re.compile(r"[^\s'\"`,;:()\[\]{}<>=]+")
    out = []
    for t in texts:
        t = str(t)
        out.append(token.sub(lambda m: REDACTED if m.group(0) in ids or m.group(0).rstrip(".") in ids
                             else m.group(0), t))
    return out


# --------------------------------------------------------------------------------------- the writer
check_target = outdir.check_target  # the CLI calls it before any work; rules in outdir.py


def _arrow_csv(frame: pd.DataFrame, path: Path) -> bool:
    """Write a long table of numbers and text with Arrow's CSV writer (the shortest round-trip digits, as
    pandas writes them; text quoted); False when a column is of another kind (pandas writes it then)."""
    if not all((pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s))
               or pd.api.types.is_string_dtype(s) for _, s in frame.items()):
        return False
    import pyarrow as pa
    import pyarrow.csv as pacsv
    try:
        table = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return False
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))
    return True


def _write_tables(tables: dict, specs: dict, tmp: Path) -> tuple[dict, dict]:
    (tmp / "tables").mkdir()
    files = table_file_names(tables)
    tables = {name: neutralise(frame) for name, frame in tables.items()}
    for name, frame in tables.items():
        path = tmp / "tables" / f"{files[name]}.csv"
        if not (len(frame) >= LONG_TABLE and _arrow_csv(frame, path)):
            frame.to_csv(path, index=False, encoding="utf-8")
    in_book = [n for n in tables if (specs.get(n) or {}).get("xlsx", True)
               and len(tables[n]) < 1_048_575 and len(tables[n].columns) <= 16_384]
    sheets = sheet_names(in_book)
    with pd.ExcelWriter(tmp / "tables.xlsx", engine="xlsxwriter", engine_kwargs={"options": XLSX_OPTIONS}) as book:
        for name in in_book:
            tables[name].to_excel(book, sheet_name=sheets[name], index=False)
    return files, sheets


def _move_into_place(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.replace(tmp, out)
        return
    if not any(out.iterdir()):
        out.rmdir()
        os.replace(tmp, out)
        return
    old = outdir.old_name(out)
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _input_paths(results, inputs) -> list:
    """Every input the run read: the caller's list plus the files named in ``results.meta``."""
    given = list(inputs or ())
    given += list((results.meta.get("files") or {}).values()) + list(results.meta.get("inputs") or {})
    return [p for p in dict.fromkeys(map(str, given)) if p]


def write_outputs(results, out_dir, *, plan: Plan, formats=("html",), force: bool = False,
                  disclosure: bool = True, participant_ids=None, inputs=()) -> Path:
    """Write every output of a run into ``out_dir`` atomically; returns the folder's path.

    Parameters
    ----------
    results : ``phb_eval.results.Results`` of the run (not modified).
    out_dir : the folder to create. An existing non-empty folder is refused unless ``force``.
    plan : the plan as run (for the methods text, disclosure settings and defaults of meta).
    formats : report formats, any of ``"html"`` and ``"md"`` (HTML is always written).
    disclosure : ``False`` turns small-number suppression off (``--no-disclosure``); stated in the report.
    participant_ids : input ids for the privacy guard (also read from ``results.meta["participant_ids"]``).
    inputs : paths of every input file or folder (the plan, weights, unit costs ...); ``out_dir`` may not
        be, hold or contain one. The files in ``results.meta["files"]`` and ``["inputs"]`` are added.

    Raises
    ------
    PhbEvalError : the folder exists and is not empty (without ``force``), is not one phb-eval wrote (with
        ``force``), is or holds an input, is a file, is being written by another run, cannot be written or
        has no room; a system error while writing; unknown format.
    PrivacyError : a published table could identify a participant (a bug).
    """
    started = time.perf_counter()
    out = Path(out_dir).expanduser().absolute()
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise PhbEvalError(f"report format(s) {unknown} are not known. Fix: use --format with one of {list(FORMATS)}")
    with outdir.output_lock(out):
        outdir.prepare_target(out, force, _input_paths(results, inputs))
        return _write_locked(results, out, plan, formats, disclosure, participant_ids, started)


def _write_locked(results, out, plan, formats, disclosure, participant_ids, started) -> Path:
    ids = _ids(results, participant_ids)
    published, info = publish_tables(results, plan, disclosure)
    meta_in = {k: v for k, v in results.meta.items() if k not in PRIVATE_META}
    check_privacy(published, ids, meta_in)
    warnings, skipped = redact_ids(results.warnings, ids), redact_ids(results.skipped, ids)

    from .. import __version__
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
    meta = {**meta_in, "phb_eval_version": __version__, "created": now,
            "plan": meta_in.get("plan") or plan_to_dict(plan), "seed": meta_in.get("seed", plan.seed),
            "versions": package_versions(meta_in.get("versions")),
            "disclosure": {"applied": info["applied"], "sentence": info["sentence"],
                           "rule": plan.disclosure.rule if info["applied"] else None},
            "warnings": warnings, "skipped": skipped}
    specs = {**DEFAULT_SPECS, **(getattr(results, "table_specs", None) or {})}
    pub_tables = {n: f for n, f in published.items() if n != "estimates"}
    shown = dataclasses.replace(results, estimates=published["estimates"], tables=pub_tables, warnings=warnings,
                                skipped=skipped, meta=meta)

    tmp = outdir.partial_name(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as exc:
        raise outdir.system_error(exc, out) from None
    try:
        with stage("tables"):
            _dump_json({"meta": {k: v for k, v in meta.items() if k != "plan"} | {"plan": meta["plan"]},
                        "estimates": published["estimates"].to_dict("records")}, tmp / "results.json")
            files, sheets = _write_tables(published, specs, tmp)

        with stage("figures"):  # each figure drawn once (in worker processes when there are cores), reused below
            from .figures import figure_specs
            from .render import render_pngs
            specs_fig = figure_specs(shown, plan, pub_tables)   # a run's own figure replaces a standard one
            drawn = render_pngs({n: v for n, v in specs_fig.items() if n not in results.figures}, results.figures)
            drawn = {n: drawn[n] for n in dict.fromkeys([*specs_fig, *results.figures])}
            (tmp / "figures").mkdir()
            pngs = {}
            for name, png in drawn.items():
                stem = table_file_names([name])[name]
                pngs[stem] = png
                (tmp / "figures" / f"{stem}.png").write_bytes(png)

        with stage("report"):
            from .html import render_html, render_markdown
            (tmp / "report.html").write_text(render_html(shown, plan, pngs, table_files=files), encoding="utf-8")
            if "md" in formats:
                (tmp / "report.md").write_text(render_markdown(shown, plan, pngs, table_files=files),
                                               encoding="utf-8")

        timings = {**(meta_in.get("timings") or {}), "write_outputs": round(time.perf_counter() - started, 3)}
        outputs = {p.relative_to(tmp).as_posix(): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        manifest = {
            **outdir.MARKER, "phb_eval_version": __version__, "created": now, "command": meta_in.get("command"),
            "inputs": meta_in.get("inputs", {}), "plan": meta["plan"], "seed": meta["seed"],
            "versions": meta["versions"], "timings": timings, "disclosure": meta["disclosure"],
            "tables": {n: f"tables/{f}.csv" for n, f in files.items()}, "xlsx_sheets": sheets,
            "figures": {n: f"figures/{n}.png" for n in pngs}, "outputs_sha256": outputs,
            "rerun": "run the command above with the same input files (check their SHA-256) and this plan; "
                     "the seed makes the numbers identical",
        }
        _dump_json(manifest, tmp / "manifest.json")
        _move_into_place(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise outdir.system_error(exc, out) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
