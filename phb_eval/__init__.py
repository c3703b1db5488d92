"""phb-eval: evaluate NHS personal health budget pilots."""
from .errors import DataError, EstimationError, PhbEvalError, PlanError

__all__ = ["__version__", "PhbEvalError", "DataError", "PlanError", "EstimationError"]


def __getattr__(name):
    """``__version__`` is looked up on first use (importlib.metadata costs ~30 ms at every start-up)."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version
        try:
            value = version("phb-eval")
        except PackageNotFoundError:  # running from a source tree without install
            value = "0.0.0"
        globals()["__version__"] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
