"""A tiny valid cohort in the canonical layout, and a writer for every input format (imported by tests).

Kept out of conftest.py: tests/report has its own conftest, and two modules named conftest clash on import.
"""
from pathlib import Path

import numpy as np
import pandas as pd

SITES = ("S1", "S2")
CONDITIONS = ("chc", "mental_health", "copd", "diabetes", "stroke")


def build_cohort(per_arm_per_site: int = 5, waves=("t0", "t1")) -> pd.DataFrame:
    """A small valid participant table: two sites, both arms in each, every contract area represented.

    Values follow fixed patterns (no randomness) so each test knows every cell. Ids look like
    '001' so that leading zeros are tested by every round trip.
    """
    rows = []
    k = 0
    for site in SITES:
        for group in ("phb", "control"):
            for j in range(per_arm_per_site):
                k += 1
                phb = group == "phb"
                row = {
                    "participant_id": f"{k:03d}", "group": group, "site": site,
                    "condition": CONDITIONS[k % len(CONDITIONS)],
                    "consent_date": pd.Timestamp(2010, 4 + k % 6, 1 + k % 27),
                    "age": 30.0 + k, "sex": "female" if k % 2 else "male",
                    "died": 0, "death_date": pd.NaT,
                    "budget_gbp_per_year": 500.0 + 250 * j if phb else np.nan,
                    "deployment": ("direct_payment", "third_party", "notional")[j % 3] if phb else np.nan,
                    "knew_budget": float(j % 2) if phb else np.nan,
                    "flexible_spend": 1.0 if phb else np.nan,
                    "chose_deployment": float((j + 1) % 2) if phb else np.nan,
                }
                for w in waves:
                    for i, stem in enumerate(("ascot_control", "ascot_social", "ascot_dignity")):
                        row[f"{stem}_{w}"] = (k + i) % 4
                    for i in range(1, 13):
                        row[f"ghq{i:02d}_{w}"] = (k * i) % 4
                    for i, stem in enumerate(("eq5d_mobility", "eq5d_selfcare", "eq5d_activities",
                                              "eq5d_pain", "eq5d_anxiety")):
                        row[f"{stem}_{w}"] = 1 + (k + i) % 3
                    row[f"eq_vas_{w}"] = 40 + k
                    row[f"carer_health_{w}"] = 1 + k % 5
                for svc in ("gp_consultations", "ae_attendances", "inpatient_days"):
                    row[f"{svc}_pre"] = k % 7
                    row[f"{svc}_post"] = (k + 3) % 5
                rows.append(row)
    frame = pd.DataFrame(rows)
    return frame


def build_events(cohort: pd.DataFrame) -> pd.DataFrame:
    """Two events per participant, one before and one after consent."""
    ev = []
    for i, (pid, consent) in enumerate(zip(cohort["participant_id"], cohort["consent_date"])):
        ev.append({"participant_id": pid, "event_date": consent - pd.Timedelta(days=30),
                   "service": "gp", "quantity": 1, "cost_gbp": 39.0})
        ev.append({"participant_id": pid, "event_date": consent + pd.Timedelta(days=40 + i),
                   "service": "inpatient", "quantity": 1 + i % 4, "cost_gbp": np.nan})
    return pd.DataFrame(ev)


def write_table(frame: pd.DataFrame, path: Path, **csv_kwargs) -> Path:
    """Write with the real writer for the extension (pandas / openpyxl / pyreadstat)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".csv":
        frame.to_csv(path, index=False, **csv_kwargs)
    elif ext == ".parquet":
        frame.to_parquet(path, index=False)
    elif ext == ".xlsx":
        frame.to_excel(path, index=False, engine="openpyxl")
    elif ext == ".sav":
        import pyreadstat
        pyreadstat.write_sav(frame, str(path))
    elif ext == ".dta":
        frame.to_stata(path, write_index=False)
    else:
        raise ValueError(ext)
    return path
