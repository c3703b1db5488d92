"""Draw the report's figures once each, as PNG bytes, in worker processes when there are several.

Drawing and saving a figure with matplotlib (Agg) costs 0.1-0.7 s on one core, and the standard figures
are independent, so on a machine with more than one core they are drawn by a small pool of forked
workers (they inherit the imported matplotlib and the tables, so nothing is pickled but the PNG bytes).
Where ``fork`` is not available, with one core, or when a worker fails to start, they are drawn here, one
after another; the bytes are the same either way (Agg output depends only on the figure).
``PHB_EVAL_FIGURE_WORKERS`` sets the number of workers (1 draws in this process).
"""
from __future__ import annotations

import gc
import multiprocessing
import os

from .figures import DPI, figure_png

__all__ = ["render_pngs", "figure_workers"]

_JOBS: dict = {}  # name -> (function, args, kwargs); read by forked workers


def figure_workers(n_figures: int) -> int:
    """How many processes draw ``n_figures`` figures: the setting, else min(figures, usable cores, 4)."""
    setting = os.environ.get("PHB_EVAL_FIGURE_WORKERS", "").strip()
    if setting.isdigit() and int(setting) > 0:
        return min(int(setting), max(1, n_figures))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(n_figures, cores, 4))


def _draw(name: str) -> tuple[str, bytes]:
    fn, args, kwargs = _JOBS[name]
    return name, figure_png(fn(*args, **kwargs), DPI)


def render_pngs(specs: dict, figures: dict | None = None, workers: int | None = None) -> dict:
    """PNG bytes per figure name: ``specs`` (name -> (function, args, kwargs), drawn here or in workers)
    and ``figures`` (name -> an already drawn matplotlib Figure, saved here). Order: specs, then figures."""
    names = list(specs)
    workers = figure_workers(len(names)) if workers is None else max(1, workers)
    out = {}
    if workers > 1 and len(names) > 1 and "fork" in multiprocessing.get_all_start_methods():
        _JOBS.clear()
        _JOBS.update(specs)
        gc.freeze()   # the workers' garbage collector leaves the parent's objects alone: no copy-on-write
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                out = dict(pool.map(_draw, names, chunksize=1))
        except OSError:  # no room for another process: draw here
            out = {}
        finally:
            gc.unfreeze()
            _JOBS.clear()
    for name in names:
        if name not in out:
            fn, args, kwargs = specs[name]
            out[name] = figure_png(fn(*args, **kwargs), DPI)
    ordered = {name: out[name] for name in names}
    for name, fig in (figures or {}).items():
        ordered[name] = figure_png(fig, DPI)
    return ordered
