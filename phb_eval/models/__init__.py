"""The modelling core: the design from the plan's adjustment set (formulaic), treatment coding, the fits
and their cluster covariances (CR1, CR2 + Satterthwaite/HTZ, wild cluster bootstrap), and the estimator
registry whose methods sentences the report quotes."""
from .design import Design, Term, build_design, design_matrix, parse_terms
from .fit import (FITTERS, Fit, fit_gamma_log, fit_hurdle_negbin, fit_logit, fit_negbin, fit_ols, fit_poisson,
                  fit_zinb)
from .registry import REGISTRY, Estimator, method_name

__all__ = ["Design", "Term", "build_design", "design_matrix", "parse_terms", "Fit", "FITTERS", "fit_ols",
           "fit_logit", "fit_poisson", "fit_negbin", "fit_zinb", "fit_hurdle_negbin", "fit_gamma_log",
           "REGISTRY", "Estimator", "method_name"]
