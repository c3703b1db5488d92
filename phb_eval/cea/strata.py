"""Strata and model groups: which people, PHB indicators and resampling strata each adjusted model uses."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["PHB_ONLY_VARIABLES", "Group", "build_groups", "comparison", "stratum_order", "sorted_positions"]

PHB_ONLY_VARIABLES = ("budget_band", "implementation_model", "deployment")


@dataclass
class Group:
    """One adjusted model set: a person set, its PHB indicator column(s) and the strata they report."""

    key: str
    kind: str                 # "overall" | "phb_only" | "within"
    data: pd.DataFrame
    labels: list              # reported stratum labels, one per indicator
    indicators: np.ndarray    # (n, len(labels)) 0/1
    resample: np.ndarray      # resampling stratum per person
    covariates: list


def _is_phb_only(df: pd.DataFrame, var: str) -> bool:
    return var in PHB_ONLY_VARIABLES or df.loc[df["phb"] == 0, var].isna().all()


def _level_column(df: pd.DataFrame, parts) -> pd.Series:
    """Stratum label per person: ``var=level`` (joined by ``;`` for a cross), NaN if any part is missing."""
    label = pd.Series("", index=df.index, dtype=object)
    ok = pd.Series(True, index=df.index)
    for i, var in enumerate(parts):
        ok &= df[var].notna()
        label = label + ("" if i == 0 else ";") + var + "=" + df[var].astype(str)
    return label.where(ok, np.nan)


def comparison(kind: str) -> str:
    return {"overall": "all PHB holders vs all controls",
            "phb_only": "stratum's PHB holders vs all controls (stratum-specific PHB indicators, one model)",
            "within": "PHB vs control within the stratum"}[kind]


def sorted_positions(labels, order):
    keys = [(order(s), str(s), i) for i, s in enumerate(labels)]
    return [k[2] for k in sorted(keys)]


def stratum_order(strata):
    pos = {}
    for i, s in enumerate(strata):
        pos[s] = i

    def order(label: str):
        if label == "all":
            return pos.get("all", -1)
        vars_ = [p.split("=", 1)[0] for p in str(label).split(";")]
        return pos.get(":".join(vars_), len(pos))
    return order


def build_groups(base, covariates, strata, min_per_arm, cluster, notes):
    """Model groups for the requested strata, and not-estimable strata (label, kind, n_phb, n_control, why)."""
    groups, na_rows = [], []
    phb = base["phb"].to_numpy() == 1

    def few_clusters(data):
        if cluster is None:
            return False
        per_arm = data.groupby("phb")[cluster].nunique()
        return per_arm.reindex([0, 1]).fillna(0).min() < 2

    for spec in strata:
        if spec == "all":
            n1, n0 = int(phb.sum()), int((~phb).sum())
            if min(n1, n0) < min_per_arm:
                na_rows.append(("all", "overall", n1, n0, f"not estimable: fewer than {min_per_arm} people in an arm"))
            elif few_clusters(base):
                na_rows.append(("all", "overall", n1, n0, f"not estimable: fewer than 2 {cluster}s in an arm"))
            else:
                groups.append(Group("all", "overall", base, ["all"], phb[:, None].astype(float),
                                     base["phb"].to_numpy(), covariates))
            continue
        parts = [p.strip() for p in str(spec).split(":")]
        missing = [p for p in parts if p not in base.columns]
        if missing:
            notes.append(f"cost-effectiveness stratum {spec!r} skipped: column(s) {missing} are not in the data")
            continue
        kinds = {_is_phb_only(base, p) for p in parts}
        if len(kinds) > 1:
            notes.append(f"cost-effectiveness stratum {spec!r} skipped: it crosses a PHB-only variable with one "
                         "defined for both arms")
            continue
        phb_only = kinds.pop()
        level = _level_column(base, parts)
        covs = [c for c in covariates if c not in parts]
        if phb_only:
            data = base[(base["phb"] == 0) | level.notna()]
            lev = level.loc[data.index]
            is_phb = data["phb"].to_numpy() == 1
            n0 = int((~is_phb).sum())
            kept = []
            for lab in sorted(lev.dropna().unique(), key=str):
                n1 = int(((lev == lab).to_numpy() & is_phb).sum())
                if min(n1, n0) < min_per_arm:
                    na_rows.append((lab, "phb_only", n1, n0,
                                    f"not estimable: fewer than {min_per_arm} people in an arm"))
                else:
                    kept.append(lab)
            if not kept:
                continue
            data = data[(data["phb"] == 0) | lev.isin(kept)]
            lev = lev.loc[data.index]
            if few_clusters(data):
                for lab in kept:
                    na_rows.append((lab, "phb_only", int((lev == lab).sum()), n0,
                                    f"not estimable: fewer than 2 {cluster}s in an arm"))
                continue
            ind = np.column_stack([(lev == lab).to_numpy(dtype=float) for lab in kept])
            resample = np.where(data["phb"].to_numpy() == 1, lev.to_numpy(dtype=object), "__control__")
            groups.append(Group(str(spec), "phb_only", data, kept, ind, resample.astype(str), covs))
        else:
            for lab in sorted(level.dropna().unique(), key=str):
                data = base[level == lab]
                n1, n0 = int((data["phb"] == 1).sum()), int((data["phb"] == 0).sum())
                if min(n1, n0) < min_per_arm:
                    na_rows.append((lab, "within", n1, n0, f"not estimable: fewer than {min_per_arm} people in an arm"))
                elif few_clusters(data):
                    na_rows.append((lab, "within", n1, n0, f"not estimable: fewer than 2 {cluster}s in an arm"))
                else:
                    groups.append(Group(lab, "within", data, [lab],
                                         data["phb"].to_numpy(dtype=float)[:, None], data["phb"].to_numpy(), covs))
    return groups, na_rows

