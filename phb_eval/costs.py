"""Unit costs by price year, inflation, per-person direct and indirect cost, and adjusted cost differences.

Reference numbers live in ``config/unit_costs/`` (items with source and price year, and which item
prices each service) and ``config/inflation/`` (NHS Cost Inflation Index, HCHS index). Every cost is
brought to one declared price year; a conversion the indices cannot make is an error naming the years.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .contract import OPTIONAL_SERVICES, SERVICES
from .errors import DataError, EstimationError, PhbEvalError, describe
from .files import check_settings_file
from .results import estimate_row, rows_frame, t_interval
from .models.design import build_design
from .models.fit import fit_gamma_log, fit_ols
from .models.registry import REGISTRY

__all__ = ["UNIT_COST_COLUMNS", "COST_OUTCOMES", "load_inflation_index", "inflate", "load_unit_costs",
           "load_service_map", "person_costs", "cost_effects", "cost_breakdown"]

CONFIG = Path(__file__).parent / "config"
DEFAULT_UNIT_COSTS = CONFIG / "unit_costs" / "england_2024_25.csv"
DEFAULT_SERVICE_MAP = CONFIG / "unit_costs" / "service_map.csv"
DEFAULT_INDICES = (CONFIG / "inflation" / "nhscii.csv", CONFIG / "inflation" / "hchs_pay_prices.csv")
UNIT_COST_COLUMNS = ["item", "unit", "cost_gbp", "price_year", "source"]
YEAR_RE = re.compile(r"^(\d{4})/(\d{2})$")
# results outcome name -> analysis-frame column
COST_OUTCOMES = {"total_cost": "cost_total", "direct_cost": "cost_direct", "indirect_cost": "cost_indirect"}
UNREADABLE = (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError)  # not a CSV text table
GIVEN_COST = "indirect_cost_given"   # events route: sum of per-event cost_gbp, per window (see events.py)


# ---------------------------------------------------------------------------------------------------
# price years and inflation
# ---------------------------------------------------------------------------------------------------
def _year_start(year, where: str = "") -> int:
    """'2016/17' -> 2016; anything else is an error naming where it came from."""
    m = YEAR_RE.match(str(year).strip())
    if not m or (int(m.group(1)) + 1) % 100 != int(m.group(2)):
        raise DataError(describe(file=where or None, value=year, rule="a price year is written like 2024/25",
                                 fix="use the financial-year form YYYY/YY with consecutive years"))
    return int(m.group(1))


def _year_label(start: int) -> str:
    return f"{start}/{(start + 1) % 100:02d}"


def load_inflation_index(path=None) -> list[pd.DataFrame]:
    """Index tables to chain with, user table first: columns ``year``, ``pct_change`` and/or ``index``.

    ``path=None`` gives the shipped NHS Cost Inflation Index and HCHS tables; a user path is used
    before them (its years take precedence)."""
    paths = ([Path(path)] if path is not None else []) + list(DEFAULT_INDICES)
    tables = []
    for p in paths:
        try:
            t = pd.read_csv(check_settings_file(p, "inflation index file (plan costs.inflation_index)"))
        except FileNotFoundError:
            raise DataError(f"{p}: inflation index file not found. Fix: give an existing CSV with columns "
                            "year and pct_change (or index)") from None
        except UNREADABLE as exc:
            raise DataError(f"{p}: the inflation index file is not a readable CSV table ({type(exc).__name__}). "
                            "Fix: give a CSV text file with columns year and pct_change (or index)") from None
        if "year" not in t.columns or not ({"pct_change", "index"} & set(t.columns)):
            raise DataError(describe(file=p, rule="an inflation table needs a 'year' column and 'pct_change' "
                                                  "(annual % change into that year) and/or 'index' (level)",
                                     fix="rename the columns"))
        for col in ("pct_change", "index"):
            if col in t.columns:
                vals = pd.to_numeric(t[col], errors="coerce")
                bad = t[col].notna() & vals.isna() | ((col == "index") & (vals <= 0))
                if bad.any():
                    i = int(np.flatnonzero(bad.to_numpy())[0])
                    raise DataError(describe(file=p, row=i + 2, column=col, value=t[col].iloc[i],
                                             rule="must be a number (an index level must be > 0)"))
                t[col] = vals
        t["start"] = [_year_start(y, f"{p} row {i + 2}") for i, y in enumerate(t["year"])]
        if t["start"].duplicated().any():
            dup = t.loc[t["start"].duplicated(), "year"].iloc[0]
            raise DataError(describe(file=p, column="year", value=dup, rule="each year may appear once"))
        t["table"] = str(p)
        tables.append(t)
    return tables


def _factor(from_start: int, to_start: int, tables) -> float:
    """Price factor from one financial year to a later one, chaining whatever the tables give.

    Hand-written: no library chains NHS annual indices. Within a table with index levels at both ends
    of a stretch the level ratio bridges it; otherwise each year's pct_change is applied in turn."""
    pos, factor, missing = from_start, 1.0, []
    while pos < to_start:
        bridged = False
        for t in tables:
            if "index" not in t.columns:
                continue
            lev = t.dropna(subset=["index"]).set_index("start")["index"]
            if pos in lev.index:
                ahead = [y for y in lev.index if pos < y <= to_start]
                if ahead:
                    end = max(ahead)
                    factor *= lev[end] / lev[pos]
                    pos, bridged = end, True
                    break
        if bridged:
            continue
        step = pos + 1
        pct = next((t.set_index("start")["pct_change"].get(step) for t in tables
                    if "pct_change" in t.columns and pd.notna(t.set_index("start")["pct_change"].get(step))), None)
        if pct is None:
            missing.append(_year_label(step))
        else:
            factor *= 1 + pct / 100
        pos = step
    if missing:
        raise PhbEvalError(
            f"cannot inflate from {_year_label(from_start)} to {_year_label(to_start)}: the inflation index has no "
            f"value for {', '.join(missing)}. Fix: supply costs.inflation_index in the plan (a CSV with columns "
            "year and pct_change or index) covering those years")
    return factor


def inflate(cost, from_year: str, to_year: str, index=None):
    """Cost at ``from_year`` prices expressed at ``to_year`` prices (either direction).

    Parameters
    ----------
    cost : number or array-like.
    from_year, to_year : financial years like ``"2016/17"``.
    index : None (shipped NHS Cost Inflation Index + HCHS index), a path to a user table, or the list
        returned by ``load_inflation_index``.

    Notes
    -----
    The NHSCII gives the % change *into* each year, so 2016/17 -> 2024/25 multiplies (1 + pct/100) for
    2017/18 ... 2024/25. Deflating divides by the same chain. A missing year is a ``PhbEvalError``
    naming it, never a guess.
    """
    tables = index if isinstance(index, list) else load_inflation_index(index)
    a, b = _year_start(from_year), _year_start(to_year)
    f = _factor(min(a, b), max(a, b), tables)
    f = f if b >= a else 1 / f
    return cost * f


# ---------------------------------------------------------------------------------------------------
# unit costs
# ---------------------------------------------------------------------------------------------------
def load_unit_costs(path=None, price_year: str = "2024/25", inflation_index=None) -> pd.DataFrame:
    """Unit costs, validated and brought to ``price_year``.

    Returns
    -------
    DataFrame: ``item, unit, cost_gbp, price_year, source`` as given (plus ``service``/``multiplier``
    if a user table maps services), ``target_price_year``, ``inflation_factor``, ``cost_gbp_at_price_year``
    and ``inflation_note``. An item the indices cannot convert keeps NaN there and a note naming the
    missing years; using it in ``person_costs`` is then an error (unused items do no harm).
    """
    file = Path(path) if path is not None else DEFAULT_UNIT_COSTS
    try:  # values shown to the user exactly as written
        table = pd.read_csv(check_settings_file(file, "unit-cost file (plan costs.unit_costs)"), dtype=str)
    except FileNotFoundError:
        raise DataError(f"{file}: unit-cost file not found. Fix: give a CSV with columns "
                        f"{', '.join(UNIT_COST_COLUMNS)}") from None
    except UNREADABLE as exc:
        raise DataError(f"{file}: the unit-cost file is not a readable CSV table ({type(exc).__name__}). "
                        f"Fix: give a CSV text file with columns {', '.join(UNIT_COST_COLUMNS)}") from None
    missing = [c for c in UNIT_COST_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(describe(file=file, column=missing[0], rule=f"the unit-cost table lacks {missing}",
                                 fix=f"give the columns {', '.join(UNIT_COST_COLUMNS)}"))
    _year_start(price_year, "costs.price_year")
    costs = pd.to_numeric(table["cost_gbp"], errors="coerce")
    for i in range(len(table)):
        row = i + 2  # the file's line number (header is line 1)
        if pd.isna(table["item"].iloc[i]) or not str(table["item"].iloc[i]).strip():
            raise DataError(describe(file=file, row=row, column="item", rule="every unit cost needs an item name"))
        if pd.isna(costs.iloc[i]) or costs.iloc[i] < 0:
            raise DataError(describe(file=file, row=row, column="cost_gbp", value=table["cost_gbp"].iloc[i],
                                     rule="a unit cost must be a number >= 0", fix="correct the value"))
        _year_start(table["price_year"].iloc[i], f"{file} row {row} column 'price_year'")
    if table["item"].duplicated().any() and "service" not in table.columns:
        dup = table.loc[table["item"].duplicated(), "item"].iloc[0]
        raise DataError(describe(file=file, column="item", value=dup, rule="each item may appear once",
                                 fix="give items with different price years different names"))
    out = table.copy()
    out["cost_gbp"] = costs
    tables = load_inflation_index(inflation_index)
    factors, notes = [], []
    for year in out["price_year"]:
        try:
            factors.append(inflate(1.0, year, price_year, tables))
            notes.append("")
        except PhbEvalError as exc:
            factors.append(math.nan)
            notes.append(str(exc))
    out["target_price_year"] = price_year
    out["inflation_factor"] = factors
    out["cost_gbp_at_price_year"] = out["cost_gbp"] * out["inflation_factor"]
    out["inflation_note"] = notes
    return out


def load_service_map(unit_costs: pd.DataFrame | None = None, path=None) -> pd.DataFrame:
    """Which unit-cost item prices each service: columns ``service, item, multiplier, note``.

    A user unit-cost table with a ``service`` column defines the whole mapping (services it does not
    name are not costed); otherwise ``path`` or the shipped ``config/unit_costs/service_map.csv``."""
    if unit_costs is not None and "service" in unit_costs.columns and unit_costs["service"].notna().any():
        m = unit_costs.loc[unit_costs["service"].notna(), ["service", "item"]].copy()
        m["multiplier"] = (pd.to_numeric(unit_costs.loc[m.index, "multiplier"], errors="coerce").fillna(1.0)
                           if "multiplier" in unit_costs.columns else 1.0)
        m["note"] = "from the user's unit-cost table"
    else:
        m = pd.read_csv(path or DEFAULT_SERVICE_MAP, dtype={"item": str})
        m["multiplier"] = pd.to_numeric(m["multiplier"], errors="coerce")
    if m["service"].duplicated().any():
        raise DataError(describe(column="service", value=m.loc[m["service"].duplicated(), "service"].iloc[0],
                                 rule="a service may be priced by one item only"))
    return m.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------
# per-person costs
# ---------------------------------------------------------------------------------------------------
def _unit_price(unit_costs: pd.DataFrame, item: str, service: str) -> float:
    rows = unit_costs[unit_costs["item"] == item]
    if rows.empty:
        raise DataError(describe(column="item", value=item,
                                 rule=f"service {service!r} is priced by item {item!r}, "
                                      "which the unit-cost table lacks",
                                 fix="add the item to the unit-cost table or map the service to another item"))
    row = rows.iloc[0]
    if pd.isna(row["cost_gbp_at_price_year"]):
        raise PhbEvalError(f"unit cost {item!r} (for {service}) is at {row['price_year']} prices: "
                           f"{row['inflation_note']}")
    return float(row["cost_gbp_at_price_year"])


def person_costs(df: pd.DataFrame, unit_costs: pd.DataFrame, services=None, service_map=None):
    """Add per-person costs (£ per person per year, at the unit costs' price year).

    Returns
    -------
    (frame, notes): a copy of ``df`` with ``cost_<service>_pre`` / ``cost_<service>`` (post) for every
    costed service, ``cost_indirect_pre``, ``cost_indirect``, ``cost_direct`` and ``cost_total``; and a
    list of sentences (services left uncosted, people without a direct cost, ...).

    Notes
    -----
    - Indirect cost = Σ count × unit cost over costed services (+ per-event ``cost_gbp`` from the events
      route: ``indirect_cost_given_pre/_post`` replace the unit cost of the units in
      ``<service>_given_pre/_post``). A missing count gives a missing cost — never zero.
    - Costs cover the 12-month window as observed (not annualised for people who died in it).
    - Direct cost = ``direct_cost_gbp_per_year`` where given, else the budget for PHB holders; controls
      without it stay missing (and so does their total).
    """
    out = df.copy()
    notes = []
    smap = service_map if service_map is not None else load_service_map(unit_costs)
    present = [s for s in (services or SERVICES + OPTIONAL_SERVICES)
               if f"{s}_pre" in out.columns or f"{s}_post" in out.columns]
    indirect = {"pre": None, "post": None}
    costed = []
    for s in present:
        row = smap[smap["service"] == s]
        if row.empty or pd.isna(row["item"].iloc[0]) or not str(row["item"].iloc[0]).strip():
            why = row["note"].iloc[0] if not row.empty and "note" in row and pd.notna(row["note"].iloc[0]) else \
                "no unit-cost item is mapped to it"
            notes.append(f"costs: {s} is not costed ({why})")
            continue
        mult = row["multiplier"].iloc[0]
        price = _unit_price(unit_costs, row["item"].iloc[0], s) * (1.0 if pd.isna(mult) else float(mult))
        costed.append(s)
        for period, suffix in (("pre", "_pre"), ("post", "")):
            col = f"{s}_{period}"
            if col not in out.columns:
                continue
            count = pd.to_numeric(out[col], errors="coerce")
            given = pd.to_numeric(out[f"{s}_given_{period}"], errors="coerce").fillna(0.0) \
                if f"{s}_given_{period}" in out.columns else 0.0
            cost = (count - given) * price
            out[f"cost_{s}{suffix}"] = cost
            indirect[period] = cost if indirect[period] is None else indirect[period] + cost
    if costed:
        for period, suffix in (("pre", "_pre"), ("post", "")):
            if indirect[period] is None:
                continue
            given = pd.to_numeric(out[f"{GIVEN_COST}_{period}"], errors="coerce").fillna(0.0) \
                if f"{GIVEN_COST}_{period}" in out.columns else 0.0
            out[f"cost_indirect{suffix}"] = indirect[period] + given
        notes.append("costs: indirect cost counts " + ", ".join(costed))
    else:
        notes.append("costs: no service counts could be costed, so indirect and total costs are not available")
    # direct cost
    direct = pd.Series(np.nan, index=out.index)
    if "direct_cost_gbp_per_year" in out.columns:
        direct = pd.to_numeric(out["direct_cost_gbp_per_year"], errors="coerce")
    if "budget_gbp_per_year" in out.columns and "group" in out.columns:
        is_phb = out["group"].eq("phb")
        direct = direct.where(direct.notna() | ~is_phb, pd.to_numeric(out["budget_gbp_per_year"], errors="coerce"))
    out["cost_direct"] = direct
    if "group" in out.columns:
        lacking = out["group"].eq("control") & direct.isna()
        if lacking.any():
            notes.append(f"costs: {int(lacking.sum())} controls have no direct_cost_gbp_per_year, so their direct and "
                         "total costs are missing; supply the cost of their conventional care package to "
                         "compare totals")
    if "cost_indirect" in out.columns:
        out["cost_total"] = out["cost_direct"] + out["cost_indirect"]
    return out, notes


# ---------------------------------------------------------------------------------------------------
# adjusted cost differences
# ---------------------------------------------------------------------------------------------------
def cost_effects(df: pd.DataFrame, covariates=("age", "sex", "condition"), models=("ols", "glm_gamma_log"),
                 outcomes=("total_cost", "direct_cost", "indirect_cost"), cluster: str = "site",
                 conf_level: float = 0.95, *, treatment: str = "phb", baseline: str = "cost_indirect_pre",
                 variance: str = "cr1", bootstrap: dict | None = None) -> pd.DataFrame:
    """Adjusted PHB − control cost differences (£ per person per year).

    Each cost is regressed on the treatment, ``baseline`` (pre-consent indirect cost) and the covariates
    (model terms, complete cases), with the cluster covariance ``variance`` by ``cluster``
    (:mod:`phb_eval.models`).

    Returns
    -------
    DataFrame in the results layout (``analysis="cost"``, ``outcome`` in total_cost, direct_cost,
    indirect_cost), methods (``<variance>`` = cr1, cr2 or wcb):

    - ``ols_<variance>_<cluster>``: the PHB coefficient (£).
    - ``glm_gamma_log_<variance>_<cluster>``: gamma GLM with log link; ``estimate`` = cost ratio, ``se`` on
      the log scale, interval exponentiated (CR2 under a wild-bootstrap plan).
    - ``..._marginal_diff``: g-computation difference in mean cost (£), delta-method SE.

    Extra columns: ``df``, ``n_clusters``, ``n``, ``note``.

    Notes
    -----
    An outcome/model that cannot be estimated here (e.g. the gamma model with £0 costs, which it cannot
    take; controls without a direct cost) gives a row with a missing estimate and the reason in ``note``,
    so the other rows survive; an unknown model name raises ``EstimationError``. The GLM bread uses the
    expected information, as R's ``sandwich::vcovCL`` does for a ``glm``.
    """
    unknown = [m for m in models if m not in ("ols", "glm_gamma_log")]
    if unknown:
        raise EstimationError(f"unknown cost model {unknown[0]!r}; choose ols or glm_gamma_log")
    rows = []
    for outcome in outcomes:
        for model in models:
            try:
                rows.extend(_cost_model(df, outcome, model, list(covariates), cluster, conf_level, treatment,
                                        baseline, variance, bootstrap))
            except EstimationError as exc:
                rows.append(estimate_row("cost", outcome, REGISTRY[model].method(variance, cluster), math.nan,
                                         note=str(exc)))
    return rows_frame(rows)


def _cost_model(df, outcome, model, covariates, cluster, conf_level, treatment, baseline, variance,
                bootstrap) -> list[dict]:
    from .outcomes import effect_row
    if outcome not in COST_OUTCOMES:
        raise EstimationError(f"unknown cost outcome {outcome!r}; choose from {list(COST_OUTCOMES)}")
    col = COST_OUTCOMES[outcome]
    needed = [col, treatment, baseline, cluster]
    absent = [c for c in needed if c not in df.columns]
    if absent:
        raise EstimationError(f"{outcome}: needs column(s) {absent}; total and direct costs need "
                              "direct_cost_gbp_per_year for controls")
    d = build_design(df, col, treatment=treatment, covariates=covariates, cluster=cluster, baseline=baseline,
                     what=outcome)
    note = "; ".join(d.notes)
    spec = REGISTRY[model]
    method = spec.method(variance, cluster)
    common = dict(n=len(d.y), note=note)
    if model == "ols":
        fit = fit_ols(d, spec.variance(variance), bootstrap=bootstrap, what=outcome)
        return [effect_row("cost", outcome, method, fit, treatment, conf_level, "all", cluster, **common)]
    fit = fit_gamma_log(d, spec.variance(variance), what=outcome)
    rows = [effect_row("cost", outcome, method, fit, treatment, conf_level, "all", cluster, exp=True, **common)]
    X = d.X.to_numpy()
    Z1, Z0 = X.copy(), X.copy()
    j = d.columns.index(treatment)
    Z1[:, j], Z0[:, j] = 1.0, 0.0
    beta = fit.params.to_numpy()
    m1, m0 = np.exp(Z1 @ beta), np.exp(Z0 @ beta)
    grad = (m1[:, None] * Z1).mean(0) - (m0[:, None] * Z0).mean(0)  # d diff / d beta
    t = fit.contrast(grad, level=conf_level)
    diff = float(m1.mean() - m0.mean())
    se_d = t["se"]
    lo, hi, p = t_interval(diff, se_d, t["df"], conf_level)
    rows.append(estimate_row("cost", outcome, f"{method}_marginal_diff", diff, se_d, lo, hi, p, n_phb=d.n_phb,
                             n_control=d.n_control, df=t["df"], n_clusters=fit.n_clusters, **common))
    return rows


def cost_breakdown(df: pd.DataFrame) -> pd.DataFrame:
    """Mean cost per person per arm for every cost column (a table, not estimates).

    Returns
    -------
    DataFrame: ``cost`` (column name), ``period`` (pre/post/—), ``mean_phb``, ``mean_control``,
    ``difference`` (PHB − control, unadjusted), ``n_phb``, ``n_control`` (people with that cost observed).
    """
    cols = [c for c in df.columns if c.startswith("cost_")]
    out = []
    for c in cols:
        v = pd.to_numeric(df[c], errors="coerce")
        phb, ctl = v[df["phb"] == 1].dropna(), v[df["phb"] == 0].dropna()
        out.append({"cost": c, "period": "pre" if c.endswith("_pre") else "post",
                    "mean_phb": phb.mean() if len(phb) else np.nan,
                    "mean_control": ctl.mean() if len(ctl) else np.nan,
                    "difference": (phb.mean() - ctl.mean()) if len(phb) and len(ctl) else np.nan,
                    "n_phb": len(phb), "n_control": len(ctl)})
    return pd.DataFrame(out, columns=["cost", "period", "mean_phb", "mean_control", "difference", "n_phb",
                                      "n_control"])
