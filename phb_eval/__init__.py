"""phb-eval: evaluate NHS personal health budget pilots."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("phb-eval")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

from .errors import DataError, EstimationError, PhbEvalError, PlanError  # noqa: E402

__all__ = ["__version__", "PhbEvalError", "DataError", "PlanError", "EstimationError"]
