"""Which exceptions of an estimator mean "this data cannot give that estimate", and the sentence for each.

The pipeline turns these into a line under "analyses not run" and goes on with the rest of the report.
Everything else (a ``TypeError``, ``KeyError``, a ``ValueError`` raised by our own code …) is a bug and
is re-raised, so tests still see it. ``PHB_EVAL_DEBUG=1`` re-raises the numerical failures too, with their
traceback, for whoever is tracking one down.
"""
from __future__ import annotations

import os
import re
import traceback

import numpy as np

from .errors import EstimationError

__all__ = ["estimation_failure", "NUMERICAL", "LIBRARIES"]

# failures of arithmetic on the data, wherever they are raised
NUMERICAL = (np.linalg.LinAlgError, ZeroDivisionError, FloatingPointError, OverflowError)
# a ValueError raised inside one of these packages is the library refusing the data (an empty design, a
# perfectly separated outcome, NaN in the design); raised in phb_eval it would be a bug
LIBRARIES = ("statsmodels", "scipy", "numpy", "pandas", "linearmodels", "formulaic", "patsy", "sklearn")

_QUOTED_OR_NUMBER = re.compile(r"'[^']*'|\"[^\"]*\"|[-+]?\d[\d.,eE+-]*")


def _raised_in_library(exc: BaseException) -> str | None:
    """The top-level package of the innermost Python frame that raised ``exc``, if it is a library's."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return None
    path = "/" + frames[-1].filename.replace("\\", "/")     # compiled frames read "pandas/_libs/lib.pyx"
    return next((lib for lib in LIBRARIES if f"/{lib}/" in path), None)


def _plain(message: str) -> str:
    """The library's message without quoted text or numbers (they can be a person's value), one line, short."""
    text = _QUOTED_OR_NUMBER.sub("…", " ".join(str(message).split()))
    return text[:160] or "no message"


def estimation_failure(exc: BaseException) -> str:
    """The sentence for an estimator's failure on this data; re-raises ``exc`` if it is a bug.

    Parameters
    ----------
    exc : the exception an estimator raised.

    Returns
    -------
    str: what failed and why, without any value from the data.
    """
    if isinstance(exc, EstimationError):
        return str(exc)
    debug = os.environ.get("PHB_EVAL_DEBUG", "").strip() not in ("", "0")
    if isinstance(exc, np.linalg.LinAlgError) and not debug:
        return ("not estimated: the model's design is singular on this data (a term with no variation, or "
                f"two terms that say the same thing; {_plain(exc)}). Fix: drop a covariate or pool small sites")
    if isinstance(exc, NUMERICAL) and not debug:
        return f"not estimated: the arithmetic failed on this data ({type(exc).__name__}: {_plain(exc)})"
    lib = _raised_in_library(exc) if isinstance(exc, ValueError) else None
    if lib is None:
        # statsmodels' PerfectSeparationError is a ValueError in some versions and its own class in others
        lib = "statsmodels" if type(exc).__name__ == "PerfectSeparationError" else None
    if lib is not None and not debug:
        return (f"not estimated: {lib} could not fit the model on this data ({_plain(exc)}); too few people "
                "or no variation where the model needs some")
    raise exc
