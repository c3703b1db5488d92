"""The analysis plan: every setting that changes a number, validated once (pydantic).

A plan is YAML. ``load_plan(None)`` gives the defaults in ``analyses/default.yaml``; a user plan is
merged over those defaults, so a plan need only state what it changes.

A plan is bounded: at most 1 MB, no YAML anchors or aliases (an alias bomb cannot exhaust memory), no
setting given twice, and the settings that set an amount of work are range-checked (CEAC grid at most
10,000 points, bootstrap at most 100,000 draws, at most 200 imputations).
"""
from __future__ import annotations

import copy

from pathlib import Path
from typing import Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from .errors import PlanError
from .files import MAX_PLAN_BYTES, check_settings_file

__all__ = ["Plan", "load_plan", "default_plan_path", "plan_to_dict", "ANALYSES_DIR"]

ANALYSES_DIR = Path(__file__).parent / "analyses"
MAX_CEAC_POINTS = 10_000


class _RefusedYaml(yaml.MarkedYAMLError):
    """YAML that parses but a plan may not use (anchors, aliases, a key given twice)."""


class _PlanLoader(yaml.SafeLoader):
    """Safe YAML that refuses anchors and aliases (an alias bomb) and a key given twice in one mapping."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise _RefusedYaml(problem="YAML anchors and aliases (&name, *name) are not allowed in a plan; "
                                               "write each setting out", problem_mark=event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise _RefusedYaml(
                    problem=f"the setting {key!r} is given twice (first on line {seen[key] + 1}); keep one",
                    problem_mark=key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSettings(_Strict):
    columns: dict[str, str] = Field(default_factory=dict, description="canonical name -> name in the user's file")
    missing_codes: list[float | int | str] = Field(default_factory=list, description="values read as missing in every column")
    missing_codes_by_column: dict[str, list[float | int | str]] = Field(default_factory=dict)
    sheet: Optional[str] = None
    waves: dict[str, float] = Field(default_factory=lambda: {"t0": 0.0, "t1": 12.0}, description="wave -> months after consent")
    baseline_wave: str = "t0"
    followup_wave: str = "t1"

    @model_validator(mode="after")
    def _waves_known(self):
        for w in (self.baseline_wave, self.followup_wave):
            if w not in self.waves:
                raise ValueError(f"wave {w!r} is not in data.waves ({sorted(self.waves)})")
        return self


class InstrumentSettings(_Strict):
    eq5d_version: Literal["3L", "5L"] = "3L"
    eq5d_value_set: Literal["uk_dolan1997", "england_devlin2018", "uk_rowen2026", "uk_vanhout2012_crosswalk"] = "uk_dolan1997"
    ascot_weights: Optional[str] = Field(None, description="path to an ASCOT SCT4 weights file (licensed; user supplied)")
    carer_ascot_weights: Optional[str] = None
    ghq12_scorings: list[Literal["likert", "ghq", "modified_likert", "cghq"]] = Field(default_factory=lambda: ["likert", "ghq"])
    ghq12_caseness_threshold: int = Field(4, ge=1, le=12)
    ghq12_prorate_max_missing: int = Field(0, ge=0, le=6, description="0 = complete items only")
    score_tolerance: float = Field(0.005, ge=0, description="items-vs-precomputed disagreement beyond this is warned")

    @model_validator(mode="after")
    def _value_set_matches_version(self):
        three = {"uk_dolan1997"}
        if self.eq5d_version == "3L" and self.eq5d_value_set not in three:
            raise ValueError(f"eq5d_value_set {self.eq5d_value_set!r} is for EQ-5D-5L; with eq5d_version 3L use uk_dolan1997")
        if self.eq5d_version == "5L" and self.eq5d_value_set in three:
            raise ValueError("eq5d_version 5L needs eq5d_value_set england_devlin2018, uk_rowen2026 or uk_vanhout2012_crosswalk")
        return self


class ImputationSettings(_Strict):
    m: int = Field(20, ge=2, le=200)
    iterations: int = Field(10, ge=1, le=200)
    method: Literal["pmm", "norm"] = "pmm"
    donors: int = Field(5, ge=1, le=50)


class PropensitySettings(_Strict):
    estimand: Literal["att", "ate", "overlap"] = "att"
    trim: Optional[float] = Field(None, gt=0, lt=0.5, description="drop propensity scores outside [trim, 1-trim]")
    smd_flag: float = Field(0.1, gt=0)


class StrataSettings(_Strict):
    budget_cuts: list[float] = Field(default_factory=lambda: [1000.0])
    implementation_model: dict[str, list[str]] = Field(
        default_factory=lambda: {"model1": ["knew_budget", "flexible_spend", "chose_deployment"]},
        description="model name -> features that must all be 1; people matching none are 'model2'")
    otherwise_label: str = "model2"

    @field_validator("budget_cuts")
    @classmethod
    def _increasing(cls, v):
        if any(b <= a for a, b in zip(v, v[1:])) or any(x < 0 for x in v):
            raise ValueError("budget_cuts must be non-negative and strictly increasing")
        return v

    @field_validator("implementation_model")
    @classmethod
    def _features(cls, v):
        allowed = {"knew_budget", "flexible_spend", "chose_deployment"}
        for name, feats in v.items():
            bad = set(feats) - allowed
            if bad:
                raise ValueError(f"model {name!r} names unknown features {sorted(bad)}; allowed: {sorted(allowed)}")
        return v


class ServiceUseSettings(_Strict):
    models: list[Literal["negbin", "poisson", "zinb", "hurdle_negbin"]] = Field(default_factory=lambda: ["negbin"])
    services: Optional[list[str]] = Field(None, description="default: every service present in both periods")


class CostSettings(_Strict):
    price_year: str = Field("2024/25", pattern=r"^\d{4}/\d{2}$")
    unit_costs: Optional[str] = Field(None, description="path to a user unit-cost table (item, unit, cost_gbp, price_year, source)")
    inflation_index: Optional[str] = Field(None, description="path to a user inflation table (year, index or pct_change)")
    models: list[Literal["ols", "glm_gamma_log"]] = Field(default_factory=lambda: ["ols"])


class CeaSettings(_Strict):
    effect: Literal["auto", "scrqol", "ascot_raw"] = "auto"
    lambda_qaly: list[float] = Field(default_factory=lambda: [20000.0, 25000.0, 30000.0, 35000.0],
                                     description="£ per QALY")
    lambda_ascot: list[float] = Field(default_factory=lambda: [20000.0, 25000.0, 30000.0, 35000.0],
                                      description="£ per ASCOT-year (SCRQoL over one year)")
    headline: Literal["qaly", "ascot"] = "qaly"
    horizon: float = Field(1.0, gt=0, le=50, description="years from baseline for QALYs and ASCOT-years (AUC)")
    missing: Literal["mi_boot", "boot_mi", "complete_case"] = "mi_boot"
    bootstrap_unit: Literal["site", "two_stage", "person"] = "site"
    bootstrap: int = Field(5000, ge=50, le=100000)
    ceac_max: float = Field(100000.0, gt=0)
    ceac_step: float = Field(1000.0, gt=0)
    strata: list[str] = Field(default_factory=lambda: ["all", "budget_band", "implementation_model",
                                                       "budget_band:implementation_model", "condition", "deployment"])
    # earlier names, read into the settings above (a note says so): lambdas -> the headline's λ list,
    # cluster_bootstrap -> bootstrap_unit; afterwards they mirror the new settings for older readers
    lambdas: Optional[list[float]] = None
    cluster_bootstrap: Optional[bool] = None
    replaced_settings: list[str] = Field(default_factory=list, description="earlier setting names read, and how")

    @model_validator(mode="before")
    @classmethod
    def _earlier_names(cls, data):
        if not isinstance(data, dict):
            return data
        data = dict(data)
        said = list(data.get("replaced_settings") or [])
        key = "lambda_qaly" if data.get("headline", "qaly") == "qaly" else "lambda_ascot"
        if data.get("lambdas") is not None and data.get(key) != data["lambdas"]:
            data[key] = data["lambdas"]
            said.append(f"cea.lambdas is read as cea.{key} (the headline measure's λ)")
        if data.get("cluster_bootstrap") is not None and "bootstrap_unit" not in data:
            data["bootstrap_unit"] = "site" if data["cluster_bootstrap"] else "person"
            said.append(f"cea.cluster_bootstrap: {str(data['cluster_bootstrap']).lower()} is read as "
                        f"cea.bootstrap_unit: {data['bootstrap_unit']}")
        data["replaced_settings"] = list(dict.fromkeys(said))
        return data

    @model_validator(mode="after")
    def _mirror_earlier_names(self):
        self.lambdas = list(self.lambda_qaly if self.headline == "qaly" else self.lambda_ascot)
        self.cluster_bootstrap = self.bootstrap_unit != "person"
        return self

    @model_validator(mode="after")
    def _grid_bounded(self):
        points = self.ceac_max / self.ceac_step
        if points > MAX_CEAC_POINTS:
            raise ValueError(f"ceac_max / ceac_step gives {points:,.0f} CEAC points, more than {MAX_CEAC_POINTS:,}; "
                             "raise ceac_step or lower ceac_max")
        return self


class SubgroupSettings(_Strict):
    variables: list[str] = Field(default_factory=lambda: ["condition", "budget_band", "implementation_model",
                                                          "deployment", "sex", "age_band", "baseline_need"])
    prespecified: list[str] = Field(default_factory=lambda: ["budget_band", "implementation_model"])
    outcomes: Optional[list[str]] = Field(None, description="default: the plan's primary outcomes")
    adjust: Literal["holm", "bh"] = "holm"
    family: Literal["all", "per_outcome"] = "all"
    min_cell: int = Field(10, ge=1)
    age_cuts: list[float] = Field(default_factory=lambda: [45.0, 65.0])


class DisclosureSettings(_Strict):
    enabled: bool = True
    rule: Literal["nhs_digital_2018"] = "nhs_digital_2018"
    min_count: int = Field(8, ge=1, description="counts below this (and above 0) are suppressed")
    rounding_base: int = Field(5, ge=1)


class BudgetImpactSettings(_Strict):
    years: int = Field(5, ge=1, le=30)
    eligible: dict[str, float] = Field(default_factory=lambda: {"chc": 56000.0})
    uptake: Literal["linear", "logistic", "growth_multiple"] = "linear"
    uptake_start: float = Field(0.05, ge=0, le=1, description="share of eligible holding a budget in year 1")
    uptake_end: float = Field(0.30, ge=0, le=1, description="share in the final year (linear/logistic)")
    growth_multiple: float = Field(10.0, gt=0, description="holders multiply by this over growth_years")
    growth_years: int = Field(8, ge=1)
    band_shares: dict[str, float] = Field(default_factory=lambda: {"<1000": 0.5, ">=1000": 0.5})
    budget_per_holder: dict[str, float] = Field(default_factory=dict, description="band -> £/year; default from results")
    indirect_change_per_holder: dict[str, float] = Field(default_factory=dict, description="band -> £/year change; default from results")
    double_running_per_new_holder: float = Field(0.0, ge=0)
    double_running_years: float = Field(1.0, ge=0)
    areas: int = Field(1, ge=1)
    transition_cap_per_area: Optional[int] = Field(75, ge=1)
    transition_years: int = Field(1, ge=0)
    decommission_share_per_year: float = Field(0.0, ge=0, le=1)
    conventional_cost_per_holder: float = Field(0.0, ge=0)
    discount_rate: float = Field(0.035, ge=0, le=0.2)


class WildBootstrapSettings(_Strict):
    B: int = Field(999, ge=99, le=100_000, description="bootstrap replicates")
    weights: Literal["rademacher", "webb"] = "rademacher"


class Plan(_Strict):
    """Every setting that changes a result; echoed in results meta."""

    name: str = "default"
    description: str = "ANCOVA on baseline with cluster-robust errors by site, multiple imputation, NICE-range thresholds."
    assumptions: list[str] = Field(default_factory=list, description="settings chosen without a public source")
    data: DataSettings = Field(default_factory=DataSettings)
    instruments: InstrumentSettings = Field(default_factory=InstrumentSettings)
    outcomes: list[str] = Field(default_factory=lambda: [
        "scrqol", "ascot_raw", "ghq12_likert", "ghq12_caseness", "eq5d_index", "eq_vas",
        "carer_ascot_raw", "carer_health", "carer_health_good", "mortality"])
    primary_outcomes: list[str] = Field(default_factory=lambda: ["scrqol", "ascot_raw", "ghq12_likert", "eq5d_index"])
    covariates: list[str] = Field(default_factory=lambda: ["age", "sex", "condition"])
    cluster: str = "site"
    estimators: list[Literal["ancova", "ancova_mi", "did", "ancova_ipw", "ancova_cr1_site", "ancova_cr1_site_mi",
                             "did_cr1_site", "ancova_ipw_cr1_site"]] = Field(
        default_factory=lambda: ["ancova", "ancova_mi", "did", "ancova_ipw"],
        description="outcome estimators by bare name; legacy names such as ancova_cr1_site are mapped with a note")
    variance: Literal["cr1", "cr2", "wild_bootstrap"] = Field(
        "cr1", description="cluster covariance of every model: CR1, CR2 + Satterthwaite/HTZ, or the wild cluster bootstrap")
    wild_bootstrap: WildBootstrapSettings = Field(default_factory=lambda: WildBootstrapSettings())
    missing: Literal["impute", "complete_case"] = Field(
        "impute", description="missing covariates: imputed with the outcomes (ancova_mi), or people dropped")
    confidence_level: float = Field(0.95, gt=0.5, lt=1.0)
    seed: int = Field(20120601, ge=0)
    imputation: ImputationSettings = Field(default_factory=ImputationSettings)
    propensity: PropensitySettings = Field(default_factory=PropensitySettings)
    strata: StrataSettings = Field(default_factory=StrataSettings)
    service_use: ServiceUseSettings = Field(default_factory=ServiceUseSettings)
    costs: CostSettings = Field(default_factory=CostSettings)
    cea: CeaSettings = Field(default_factory=CeaSettings)
    subgroups: SubgroupSettings = Field(default_factory=SubgroupSettings)
    disclosure: DisclosureSettings = Field(default_factory=DisclosureSettings)
    budget_impact: BudgetImpactSettings = Field(default_factory=BudgetImpactSettings)
    _estimator_notes: list = PrivateAttr(default_factory=list)

    @field_validator("cluster")
    @classmethod
    def _cluster_not_an_identifier(cls, value):
        if value == "participant_id":
            raise ValueError("participant_id identifies people, one per cluster, so it cannot be the cluster of "
                             "cluster-robust errors. Fix: give the site column (cluster: site)")
        return value

    @model_validator(mode="after")
    def _bare_estimators(self):
        from .models.registry import normalise_estimators
        self.estimators, self._estimator_notes = normalise_estimators(self.estimators)
        return self

    @property
    def estimator_notes(self) -> list[str]:
        """Sentences for legacy estimator names mapped to bare names."""
        return list(self._estimator_notes)


def default_plan_path() -> Path:
    return ANALYSES_DIR / "default.yaml"


def merge_dicts(base: dict, over: dict | None) -> dict:
    """``over`` laid on ``base`` key by key, recursing into nested mappings; neither input is modified."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = merge_dicts(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def _read_yaml(path: Path) -> dict:
    try:
        check_settings_file(path, "plan file", MAX_PLAN_BYTES)
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(f"{path}: plan file not found. Fix: give an existing YAML file, or run 'phb-eval init plan.yaml'") from None
    except (UnicodeDecodeError, IsADirectoryError):
        raise PlanError(f"{path}: not a readable YAML text file. Fix: give a plan written by 'phb-eval init'") from None
    try:
        doc = yaml.load(text, Loader=_PlanLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        if isinstance(exc, _RefusedYaml):
            raise PlanError(f"{path}:{where}: {exc.problem}") from None
        raise PlanError(f"{path}:{where}: not valid YAML ({getattr(exc, 'problem', exc)}). Fix: check indentation and colons") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise PlanError(f"{path}: a plan must be a mapping of settings, got {type(doc).__name__}")
    return doc


def plan_from_dict(doc: dict, source: str = "plan") -> Plan:
    """Validate a plan mapping; errors name the key path and the allowed values."""
    try:
        return Plan.model_validate(doc)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"]
            ctx = err.get("ctx") or {}
            if "expected" in ctx:
                msg += f" (allowed: {ctx['expected']})"
            if err["type"] == "extra_forbidden":
                msg = "unknown setting; check its spelling against 'phb-eval init'"
            lines.append(f"{source}: {key}: {msg}; got {err.get('input')!r}")
        raise PlanError("invalid analysis plan:\n  " + "\n  ".join(lines)) from None


def load_plan(path: str | Path | None = None, overrides: dict | None = None) -> Plan:
    """Defaults from analyses/default.yaml, then the user's plan over them, then CLI overrides."""
    doc = _read_yaml(default_plan_path())
    source = "default.yaml"
    if path is not None:
        doc = merge_dicts(doc, _read_yaml(Path(path)))
        source = str(path)
    if overrides:
        doc = merge_dicts(doc, overrides)
    return plan_from_dict(doc, source)


def plan_to_dict(plan: Plan) -> dict:
    return plan.model_dump(mode="json")
