"""Progress people can see, on stderr: a bar per slow step on a terminal, one line per stage in a log.

Two pieces:

- ``stage(name)`` wraps one stage of a run (read, validate, events, score, imputation, models, bootstrap,
  figures, writing ...). On a terminal it shows a live line with the time so far, left on screen when the
  stage ends; when stderr is not a terminal (a pipe, a batch job's log, CI) it writes one line when the
  stage ends, ``phb-eval: <stage> 1.23 s (total 4.56 s)``, so a job log shows where the time went.
- ``progress(...)`` is a tqdm bar for the steps inside a stage (imputation cycles, bootstrap replicates);
  drawn only on a terminal.

``--quiet`` silences both: the CLI calls ``configure(quiet=True)`` once; library functions take a
``quiet`` argument (``None`` = the configured default).
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager

__all__ = ["progress", "stage", "configure", "is_enabled", "reports", "LABELS"]

_DEFAULTS = {"quiet": False, "started": None}

# stage names as the pipeline's clock knows them -> what people read
LABELS = {
    "read": "reading inputs", "validate": "validation", "events": "event aggregation", "score": "scoring",
    "derive": "analysis frame", "costs": "costing", "flow": "participant flow", "balance": "balance and propensity",
    "imputation": "multiple imputation", "outcomes": "outcome models", "service_use_costs": "service-use and cost models",
    "cea": "cost-effectiveness bootstrap", "subgroups": "subgroup models", "budget_impact": "budget impact",
    "tables": "writing tables", "figures": "figures", "report": "writing the report",
    "writing": "writing outputs",
}


def configure(*, quiet: bool) -> None:
    """Set the default for progress output of this process (the CLI's ``--quiet``); restarts the run clock."""
    _DEFAULTS["quiet"] = bool(quiet)
    _DEFAULTS["started"] = time.perf_counter()


def _stream(file):
    return sys.stderr if file is None else file


def _isatty(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def is_enabled(quiet: bool | None = None, file=None) -> bool:
    """Whether a bar would be drawn: not quiet and the stream is a terminal."""
    quiet = _DEFAULTS["quiet"] if quiet is None else quiet
    return (not quiet) and _isatty(_stream(file))


def reports(quiet: bool | None = None) -> bool:
    """Whether stage lines are written at all (not quiet)."""
    return not (_DEFAULTS["quiet"] if quiet is None else quiet)


def progress(iterable=None, *, total=None, desc: str | None = None, unit: str = "it", quiet: bool | None = None,
             file=None, leave: bool = False):
    """A tqdm bar on stderr (or ``file``), disabled when quiet or not a terminal.

    Use around an iterable (``for x in progress(items, desc="imputation")``) or as a counter for batched
    work (``with progress(total=B, desc="bootstrap") as bar: ... bar.update(k)``).
    """
    from tqdm.std import tqdm
    stream = _stream(file)
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream, leave=leave,
                disable=not is_enabled(quiet, stream), dynamic_ncols=True, mininterval=0.2)


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 60 else f"{int(value // 60)} min {value % 60:04.1f} s"


@contextmanager
def stage(name: str, *, quiet: bool | None = None, file=None):
    """Report one stage of a run on stderr: a live line on a terminal, one line with its time otherwise.

    Nothing is written when quiet, nor when the stage ends with an exception (the error says what happened).
    """
    stream = _stream(file)
    label = LABELS.get(name, name.replace("_", " "))
    if not reports(quiet):
        yield
        return
    if _DEFAULTS["started"] is None:
        _DEFAULTS["started"] = time.perf_counter()
    start = time.perf_counter()
    if _isatty(stream):
        from tqdm.std import tqdm
        bar = tqdm(total=1, desc=label, file=stream, leave=True, dynamic_ncols=True,
                   bar_format="{desc}: {elapsed}{postfix}")
        try:
            yield
        except BaseException:
            bar.leave = False
            bar.close()
            raise
        bar.set_postfix_str("done", refresh=False)
        bar.update(1)
        bar.close()
        return
    yield
    now = time.perf_counter()
    stream.write(f"phb-eval: {label} {_seconds(now - start)} (total {_seconds(now - _DEFAULTS['started'])})\n")
    stream.flush()
