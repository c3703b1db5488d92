"""Former home of the data-contract checks, now ``phb_eval.data.validation`` (and ``data.problems`` for
``Problem``). Kept so that ``from phb_eval.validate import validate_cohort`` keeps working."""
from __future__ import annotations

from .contract import (AGE_RANGE, BINARY_COLUMNS, EVENT_REQUIRED, GHQ_LIKERT_MAX, MIN_YEAR,  # noqa: F401
                       MONEY_COLUMNS)
from .data import problems as _problems
from .data import validation as _validation
from .data.problems import MAX_LISTED, Problem  # noqa: F401
from .data.validation import MIN_SITE_SIZE, ensure_valid, validate_cohort  # noqa: F401

__all__ = ["Problem", "validate_cohort", "ensure_valid", "MAX_LISTED"]


def __getattr__(name):
    """Any other (private) name of the old module, from the module it moved to."""
    for module in (_validation, _problems):
        if hasattr(module, name):
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
