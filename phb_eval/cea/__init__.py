"""Cost-effectiveness: incremental cost and effect, ICER quadrants, net monetary benefit, bootstrap, CEAC.

One responsibility per module:

- :mod:`.estimate` — the estimator :func:`cea` (person set, point estimates, influence values, bootstrap);
- :mod:`.imputation` — multiple imputation of the living cohort's scores, costs and numeric covariates;
- :mod:`.qaly` — QALYs and ASCOT-years as areas under the curve over the stated horizon;
- :mod:`.strata` — which people, PHB indicators and resampling strata each adjusted model uses;
- :mod:`.bootstrap` — replicate indices and count weights (people or sites within arm);
- :mod:`.sur` — batched least squares for the cost and effect equations (SUR with shared regressors);
- :mod:`.intervals` — percentile and BCa intervals as ``boot::boot.ci``;
- :mod:`.decision` — ICER quadrants, the λ grid, CEAC and CEAF;
- :mod:`.voi` — expected value of perfect information;
- :mod:`.tables` — results rows, the per-stratum table and the methods paragraph.
"""
from .bootstrap import bootstrap_indices, iter_bootstrap_indices, replicate_counts, stratum_streams
from .decision import QUADRANTS, ceac_ceaf, ceac_lambdas, icer_quadrant, quadrant_meaning
from .estimate import CeaResult, cea, cea_groups, resolve_effect
from .intervals import bca_interval, percentile_interval
from .strata import PHB_ONLY_VARIABLES
from .sur import batched_wls, loo_change
from .qaly import auc_years
from .tables import DRAW_COLUMNS, MEASURES
from .voi import evpi_normal, evpi_per_person

__all__ = ["CeaResult", "cea", "cea_groups", "resolve_effect", "icer_quadrant", "quadrant_meaning", "stratum_streams",
           "bootstrap_indices", "iter_bootstrap_indices", "replicate_counts", "batched_wls", "loo_change",
           "percentile_interval", "bca_interval", "ceac_lambdas", "PHB_ONLY_VARIABLES", "QUADRANTS", "DRAW_COLUMNS",
           "MEASURES", "ceac_ceaf", "auc_years", "evpi_per_person", "evpi_normal"]
