"""Progress bars for the slow steps (imputation, bootstrap, event aggregation), on stderr.

Silent when ``quiet`` is true or when the stream is not a terminal (pipes, log files, CI), so output
that programs read is never cluttered. The CLI's ``--quiet`` calls ``configure(quiet=True)`` once;
library functions take a ``quiet`` argument (``None`` = the configured default).
"""
from __future__ import annotations

import sys

from tqdm.std import tqdm

__all__ = ["progress", "configure", "is_enabled"]

_DEFAULTS = {"quiet": False}


def configure(*, quiet: bool) -> None:
    """Set the default for progress bars of this process (the CLI's ``--quiet``)."""
    _DEFAULTS["quiet"] = bool(quiet)


def is_enabled(quiet: bool | None = None, file=None) -> bool:
    """Whether a bar would be drawn: not quiet and the stream is a terminal."""
    stream = sys.stderr if file is None else file
    quiet = _DEFAULTS["quiet"] if quiet is None else quiet
    isatty = getattr(stream, "isatty", None)
    return (not quiet) and bool(isatty and isatty())


def progress(iterable=None, *, total=None, desc: str | None = None, unit: str = "it", quiet: bool | None = None,
             file=None, leave: bool = False) -> tqdm:
    """A tqdm bar on stderr (or ``file``), disabled when quiet or not a terminal.

    Use around an iterable (``for x in progress(items, desc="imputation")``) or as a counter for batched
    work (``with progress(total=B, desc="bootstrap") as bar: ... bar.update(k)``).
    """
    stream = sys.stderr if file is None else file
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=stream, leave=leave,
                disable=not is_enabled(quiet, stream), dynamic_ncols=True, mininterval=0.2)
