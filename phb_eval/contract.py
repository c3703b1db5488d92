"""The data contract (../shared/data-contract.md) written down once, as data.

The input layer (phb_eval.data) reads and checks files by it, in memory and as DuckDB SQL alike;
simulate.py writes it; instruments/ read item names from it; events.py counts within its windows.
"""
from __future__ import annotations

import re

__all__ = [
    "REQUIRED", "GROUPS", "CONDITIONS", "DEPLOYMENTS", "SERVICE_EVENT_TYPES",
    "BUDGET_COLUMNS", "SERVICES", "OPTIONAL_SERVICES", "ITEMS", "ITEM_RANGES",
    "PRECOMPUTED_SCORES", "WAVE_RE", "wave_columns", "waves_in", "RESULT_COLUMNS",
    "SERVICE_TO_EVENT", "DATE_COLUMNS", "ID_COLUMNS", "TEXT_COLUMNS", "EVENT_COLUMNS", "EVENT_REQUIRED",
    "BINARY_COLUMNS", "MONEY_COLUMNS", "AGE_RANGE", "MIN_YEAR", "GHQ_LIKERT_MAX", "WINDOW_DAYS",
]

REQUIRED = ["participant_id", "group", "site", "condition"]
GROUPS = ("phb", "control")
CONDITIONS = ("chc", "mental_health", "copd", "diabetes", "neurological", "stroke", "other")
DEPLOYMENTS = ("direct_payment", "third_party", "notional")

# Budget fields: PHB arm only, empty for controls.
BUDGET_COLUMNS = ["budget_gbp_per_year", "deployment", "knew_budget", "flexible_spend", "chose_deployment"]
FLEXIBILITY_FEATURES = ["knew_budget", "flexible_spend", "chose_deployment"]

# Service-use counts: each has _pre and _post columns.
SERVICES = ["inpatient_days", "inpatient_admissions", "ae_attendances", "gp_consultations"]
OPTIONAL_SERVICES = ["outpatient_attendances", "community_nurse_visits", "practice_nurse_consultations"]

# Event-table service labels -> participant-table count columns they feed.
SERVICE_EVENT_TYPES = ("inpatient", "ae", "gp", "outpatient", "community_nurse", "practice_nurse")
SERVICE_TO_EVENT = {
    "inpatient_days": ("inpatient", "quantity"),
    "inpatient_admissions": ("inpatient", "count"),
    "ae_attendances": ("ae", "count"),
    "gp_consultations": ("gp", "count"),
    "outpatient_attendances": ("outpatient", "count"),
    "community_nurse_visits": ("community_nurse", "count"),
    "practice_nurse_consultations": ("practice_nurse", "count"),
}

# Item stems per instrument (column = f"{stem}_{wave}").
ITEMS = {
    "ascot": [f"ascot_{d}" for d in (
        "control", "personal_care", "food_drink", "accommodation", "safety", "social", "occupation", "dignity")],
    "ghq12": [f"ghq{i:02d}" for i in range(1, 13)],
    "eq5d": [f"eq5d_{d}" for d in ("mobility", "selfcare", "activities", "pain", "anxiety")],
    "carer_ascot": [f"carer_ascot_{d}" for d in (
        "occupation", "control", "self_care", "safety", "social", "space_time", "supported")],
}
# Allowed codes per instrument (EQ-5D upper bound depends on the plan: 3 for 3L, 5 for 5L).
ITEM_RANGES = {"ascot": (0, 3), "ghq12": (0, 3), "eq5d": (1, 3), "carer_ascot": (0, 3)}
SINGLE_ITEMS = {"eq_vas": (0, 100), "carer_health": (1, 5)}

# Precomputed scores that may stand in for items (input name -> score name).
PRECOMPUTED_SCORES = {"scrqol": "scrqol", "ghq12": "ghq12_likert", "eq5d_index": "eq5d_index",
                      "carer_scrqol": "carer_scrqol"}

# Column types: identifiers and labels are text ("001" stays "001"); dates are ISO or UK day-first.
DATE_COLUMNS = ("consent_date", "death_date", "event_date")
ID_COLUMNS = ("participant_id", "site")          # never lose a value to a blanket missing code
TEXT_COLUMNS = ("participant_id", "site", "group", "condition", "sex", "deployment", "service")
BINARY_COLUMNS = ["died", "has_carer", *FLEXIBILITY_FEATURES]
MONEY_COLUMNS = ["budget_gbp_per_year", "direct_cost_gbp_per_year"]
AGE_RANGE = (16, 110)    # age in years at consent
MIN_YEAR = 1900          # earlier dates are typing errors
GHQ_LIKERT_MAX = 36      # GHQ-12 Likert score: 12 items x 3

# The service-event table (one row per contact) and its windows around consent, in days:
# pre = [consent - 365, consent), post = [consent, consent + 365).
EVENT_COLUMNS = ("participant_id", "event_date", "service", "quantity", "cost_gbp")
EVENT_REQUIRED = ["participant_id", "event_date", "service"]
WINDOW_DAYS = 365

WAVE_RE = re.compile(r"_(t\d+)$")

# Results layout: every estimate row has at least these columns.
RESULT_COLUMNS = ["analysis", "outcome", "stratum", "method", "estimate", "se", "ci_low", "ci_high",
                  "p_value", "n_phb", "n_control"]


def wave_columns(stem: str, waves) -> list[str]:
    """Column names for one item or score across waves, e.g. ('eq_vas', ['t0','t1'])."""
    return [f"{stem}_{w}" for w in waves]


def waves_in(columns) -> list[str]:
    """Wave suffixes present among columns (t0, t1, ...), sorted by number."""
    found = {m.group(1) for c in columns if (m := WAVE_RE.search(str(c)))}
    return sorted(found, key=lambda w: int(w[1:]))
