"""Runs the stages in order: validate → events → score → derive → costs → estimate → Results.

Each stage is a library call; this module only sequences them, records what was skipped and why,
and fills ``Results.meta`` so a run can be repeated. No statistics here.
"""
from __future__ import annotations

import platform
import sys
import time
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pandas as pd

from . import __version__
from .errors import EstimationError
from .plan import Plan, plan_to_dict
from .results import Results

__all__ = ["prepare", "compare", "subgroups", "BINARY_OUTCOMES", "package_versions"]

BINARY_OUTCOMES = {"ghq12_caseness", "carer_health_good", "mortality"}
NO_BASELINE = {"mortality"}
VERSIONED = ["numpy", "pandas", "scipy", "statsmodels", "pingouin", "duckdb", "pydantic", "matplotlib",
             "seaborn", "pyarrow"]


def package_versions() -> dict:
    out = {"python": platform.python_version(), "phb-eval": __version__}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


class _Clock:
    def __init__(self):
        self.timings = {}

    @contextmanager
    def stage(self, name):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(time.perf_counter() - start, 3)


def _try(results: Results, what: str, fn, *args, **kwargs):
    """Run one estimator; a design that cannot be estimated becomes a sentence, not a crash."""
    try:
        return fn(*args, **kwargs)
    except EstimationError as exc:
        results.skipped.append(f"{what}: {exc}")
        return None


def prepare(cohort, plan: Plan, *, engine: str = "duckdb", spark_master=None, results: Results | None = None,
            clock: _Clock | None = None):
    """Validate, aggregate events, score, derive and cost: the analysis frame every estimator reads."""
    from . import costs, derive, instruments, validate

    results = results if results is not None else Results()
    clock = clock or _Clock()
    with clock.stage("validate"):
        for problem in validate.ensure_valid(cohort, plan):
            results.warnings.append(f"data: {problem}")
    frame = cohort.frame
    if getattr(cohort, "events", None) is not None:
        from . import events
        with clock.stage("events"):
            counts = events.aggregate_events(cohort.events, frame, engine=engine, spark_master=spark_master)
            frame = events.merge_counts(frame, counts, warn=results.warnings)
    with clock.stage("score"):
        scored = instruments.score_all(frame, plan)
    results.warnings.extend(scored.warnings)
    results.skipped.extend(scored.notes)
    results.tables["score_summary"] = scored.summary
    with clock.stage("derive"):
        frame = derive.analysis_frame(scored.frame, plan)
    with clock.stage("costs"):
        unit_costs = costs.load_unit_costs(plan.costs.unit_costs, plan.costs.price_year, plan.costs.inflation_index)
        frame, notes = costs.person_costs(frame, unit_costs)
        results.skipped.extend(notes)
        results.tables["unit_costs"] = unit_costs
    return frame, results
