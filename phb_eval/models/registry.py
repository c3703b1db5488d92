"""The estimator registry: each estimator declared once, with what it estimates, its methods sentence and
the variance options it supports.

Method names are ``<estimator>_<variance>_<cluster>`` (``ancova_cr2_site``, ``negbin_cr1_site``,
``ancova_mi_cr2_site``; the wild cluster bootstrap is ``wcb``), derived parts add a suffix
(``negbin_cr2_site_marginal_diff``). The report's methods text and labels come from here, so they name
the covariance that actually ran. The pipeline loops over :data:`OUTCOME_ESTIMATORS` (the plan's
``estimators``) and calls ``phb_eval.outcomes.RUNNERS[name]`` for each; this module declares, it runs
nothing (so it imports no estimator module).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from .fit import VARIANCES, variance_tag

__all__ = ["Estimator", "REGISTRY", "OUTCOME_ESTIMATORS", "LEGACY_NAMES", "method_name", "variance_run",
           "variance_sentence", "describe_method", "short_method", "split_method", "normalise_estimators",
           "estimator_sentence", "variances_in", "estimators_in"]

LINEAR_AND_GLM = ("cr1", "cr2")
LINEAR = ("cr1", "cr2", "wild_bootstrap")


@dataclass(frozen=True)
class Estimator:
    """One estimator: ``name`` as in plans and method names, ``label`` for tables, ``estimates`` (what the
    number is), ``sentence`` (its methods sentence), ``variances`` it supports, ``analysis`` it fills,
    (outcome estimators are run by ``phb_eval.outcomes.RUNNERS[name]``)."""

    name: str
    label: str
    short: str
    analysis: str
    estimates: str
    sentence: str
    variances: tuple = LINEAR

    def variance(self, requested: str) -> str:
        """The variance this estimator runs under the plan's setting (CR2 when it lacks the bootstrap,
        CR1 when it has only the M-estimation sandwich)."""
        if requested in self.variances:
            return requested
        return "cr2" if "cr2" in self.variances else "cr1"

    def method(self, variance: str, cluster: str, suffix: str = "") -> str:
        return method_name(self.name, self.variance(variance), cluster, suffix)


def method_name(estimator: str, variance: str, cluster: str, suffix: str = "") -> str:
    """``<estimator>_<variance>_<cluster>[_<suffix>]``."""
    return f"{estimator}_{variance_tag(variance)}_{cluster}" + (f"_{suffix}" if suffix else "")


_TAG_RE = re.compile(r"^(?P<est>.+?)_(?P<tag>cr1|cr2|wcb)_(?P<rest>.+)$")


def split_method(method: str):
    """(estimator, variance tag, cluster and suffix) of a method name, or None for other methods."""
    m = _TAG_RE.match(str(method))
    return (m["est"], m["tag"], m["rest"]) if m else None


_E = [
    Estimator("ancova", "ANCOVA, complete cases", "ANCOVA", "outcome",
              "adjusted PHB \u2212 control difference at follow-up",
              "ANCOVA ({method}): least squares of the follow-up score on the PHB indicator, the baseline score "
              "and the covariates, complete cases", LINEAR),
    Estimator("ancova_mi", "ANCOVA, multiple imputation", "ANCOVA, imputed", "outcome",
              "adjusted difference pooled over imputed data sets",
              "the same ANCOVA pooled over m = {m} multiply imputed data sets ({method}; chained equations with "
              "the missing covariates imputed alongside the outcomes, {imputation}; Rubin's rules with "
              "Barnard\u2013Rubin degrees of freedom)", LINEAR_AND_GLM),
    Estimator("did", "difference in differences (change score)", "DiD", "outcome",
              "difference in mean change from baseline",
              "difference in differences ({method}): the change from baseline on the PHB indicator and the "
              "covariates", LINEAR),
    Estimator("ancova_ipw", "ANCOVA weighted by propensity", "ANCOVA, IPW", "outcome",
              "doubly robust adjusted difference",
              "ANCOVA weighted by propensity-score weights ({method}; {estimand} weights from a logistic model "
              "on the covariates and baseline scores{trim})", LINEAR),
    Estimator("ancova_rd", "linear probability model (risk difference)", "risk difference", "outcome",
              "risk difference of a 0/1 outcome", "risk differences from a linear probability model", LINEAR),
    Estimator("ancova_ipw_rd", "linear probability model weighted by propensity", "risk difference, IPW",
              "outcome", "weighted risk difference", "weighted risk differences", LINEAR),
    Estimator("logit_or", "logistic regression (odds ratio)", "odds ratio", "outcome",
              "odds ratio of a 0/1 outcome", "odds ratios from logistic regression", LINEAR_AND_GLM),
    Estimator("logit_ipw_or", "logistic regression weighted by propensity", "odds ratio, IPW", "outcome",
              "weighted odds ratio", "weighted odds ratios", LINEAR_AND_GLM),
    Estimator("negbin", "negative binomial", "neg. binomial", "service_use", "rate ratio PHB / control",
              "negative binomial (NB2, MASS::glm.nb's estimator)", LINEAR_AND_GLM),
    Estimator("poisson", "Poisson", "Poisson", "service_use", "rate ratio PHB / control", "Poisson GLM",
              LINEAR_AND_GLM),
    Estimator("zinb", "zero-inflated negative binomial", "ZINB", "service_use",
              "rate ratio of the count component", "zero-inflated negative binomial (CR1 M-estimation "
              "sandwich over every parameter)", ("cr1",)),
    Estimator("hurdle_negbin", "hurdle negative binomial", "hurdle NB", "service_use",
              "rate ratio of the truncated count component", "logit hurdle with a zero-truncated negative "
              "binomial (CR1 M-estimation sandwich over every parameter)", ("cr1",)),
    Estimator("ols", "OLS", "OLS", "cost", "adjusted cost difference (\u00a3)", "ordinary least squares",
              LINEAR),
    Estimator("glm_gamma_log", "GLM gamma/log", "gamma GLM", "cost", "cost ratio and marginal difference",
              "gamma GLM with log link", LINEAR_AND_GLM),
    Estimator("interaction_wald", "joint interaction test", "interaction test", "subgroup",
              "test that the PHB effect is equal across levels", "joint Wald test", LINEAR),
]
REGISTRY: dict[str, Estimator] = {e.name: e for e in _E}
OUTCOME_ESTIMATORS = ("ancova", "ancova_mi", "did", "ancova_ipw")
LEGACY_NAMES = {"ancova_cr1_site": "ancova", "ancova_cr1_site_mi": "ancova_mi", "did_cr1_site": "did",
                "ancova_ipw_cr1_site": "ancova_ipw"}

_VARIANCE_TEXT = {
    "cr1": "CR1 (G/(G\u22121)\u00b7(N\u22121)/(N\u2212K), as Stata and R sandwich::vcovCL type HC1) with t on "
           "G\u22121 degrees of freedom",
    "cr2": "CR2 (Bell\u2013McCaffrey bias-reduced linearisation, as R clubSandwich) with Satterthwaite degrees "
           "of freedom for single coefficients and the Hotelling T\u00b2 (HTZ) test for joint tests",
    "wild_bootstrap": "the CR2 standard error with p-values and intervals from the restricted wild cluster "
                      "bootstrap (B = {B}, {weights} weights; intervals by test inversion)",
}


def variance_sentence(variance: str, cluster: str, B: int = 999, weights: str = "rademacher") -> str:
    """How standard errors were obtained under a variance setting."""
    return f"cluster-robust by {cluster}: " + _VARIANCE_TEXT[variance].format(B=B, weights=weights.capitalize())


def variance_run(estimator: str, variance: str) -> str:
    """The variance an estimator runs under the plan's setting."""
    return REGISTRY[estimator].variance(variance)


def normalise_estimators(names) -> tuple[list[str], list[str]]:
    """(bare estimator names, notes for legacy names mapped to them)."""
    out, notes = [], []
    for n in names:
        bare = LEGACY_NAMES.get(n, n)
        if bare != n:
            notes.append(f"estimators: {n!r} is now {bare!r} (the variance comes from the plan's 'variance')")
        if bare not in out:
            out.append(bare)
    return out, notes


_TAG_WORDS = {"cr1": "CR1", "cr2": "CR2", "wcb": "wild cluster bootstrap"}
_SUFFIX_WORDS = {"marginal_diff": "marginal difference", "marginal_ratio": "marginal ratio"}


def describe_method(method) -> str | None:
    """Readable description of a registered method name (None for other methods)."""
    parts = split_method(method)
    if not parts or parts[0] not in REGISTRY:
        return None
    est, tag, rest = parts
    cluster, _, suffix = rest.partition("_marginal_")
    text = f"{REGISTRY[est].label}, {_TAG_WORDS[tag]} by {cluster}"
    if suffix:
        text += f" ({_SUFFIX_WORDS.get('marginal_' + suffix, suffix)})"
    return text


def short_method(method) -> str | None:
    parts = split_method(method)
    if not parts or parts[0] not in REGISTRY:
        return None
    return REGISTRY[parts[0]].short


_TAG_VARIANCE = {"cr1": "cr1", "cr2": "cr2", "wcb": "wild_bootstrap"}


def estimator_sentence(name: str, plan, method: str | None = None) -> str:
    """The methods sentence of an estimator with the plan's settings filled in."""
    spec = REGISTRY[name]
    imp = plan.imputation
    how = (f"predictive mean matching with {imp.donors} donors" if imp.method == "pmm"
           else "Bayesian linear regression") + f", {imp.iterations} iterations"
    trim = plan.propensity.trim
    return spec.sentence.format(
        method=method or spec.method(plan.variance, plan.cluster), m=imp.m, imputation=how,
        estimand=plan.propensity.estimand.upper(),
        trim=f", scores outside [{trim:g}, {1 - trim:g}] dropped" if trim else "")


def variances_in(methods) -> list[str]:
    """Variance settings (cr1, cr2, wild_bootstrap) that the given method names ran, in that order."""
    tags = {p[1] for p in map(split_method, methods) if p and p[0] in REGISTRY}
    return [v for t, v in _TAG_VARIANCE.items() if t in tags]


def estimators_in(methods) -> set[str]:
    """Registered estimators among the given method names."""
    return {p[0] for p in map(split_method, methods) if p and p[0] in REGISTRY}


assert set(VARIANCES) == set(_VARIANCE_TEXT)
