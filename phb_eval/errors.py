"""One exception family for mistakes a user can fix.

The CLI prints a ``PhbEvalError`` as one message with no traceback and exits 2;
any other exception is a bug (exit 1).
"""
from __future__ import annotations

__all__ = ["PhbEvalError", "DataError", "PlanError", "EstimationError", "describe"]


def describe(file=None, row=None, column=None, value=None, rule=None, fix=None) -> str:
    """Build the standard one-line problem description: where, what, and what to do."""
    where = []
    if file is not None:
        where.append(f"{file}")
    if row is not None:
        where.append(f"row {row}")
    if column is not None:
        where.append(f"column '{column}'")
    parts = [", ".join(where)] if where else []
    if value is not None:
        parts.append(f"value {value!r}")
    head = ": ".join(p for p in parts if p)
    text = f"{head}: {rule}" if head and rule else (rule or head)
    if fix:
        text += f". Fix: {fix}"
    return text


class PhbEvalError(Exception):
    """A problem with the user's input, plan or request, with a message saying how to fix it."""


class DataError(PhbEvalError):
    """Input data breaks the data contract."""

    def __init__(self, message: str | None = None, *, problems=None):
        self.problems = list(problems or [])
        if message is None:
            message = "\n".join(str(p) for p in self.problems)
        super().__init__(message)


class PlanError(PhbEvalError):
    """The analysis plan is invalid."""


class EstimationError(PhbEvalError):
    """A model cannot be estimated on this data (e.g. an empty arm, a single site)."""
