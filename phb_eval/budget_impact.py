"""Budget impact of rolling personal health budgets out: a multi-year financial projection.

The question commissioners asked after the pilot: can budgets be paid for while existing services still
run (double running), while those services are decommissioned without destabilising providers, and while
demand grows (the Netherlands saw ten-fold growth in 2002-2010)? This module turns the plan's
``budget_impact`` section, and optionally a compare run's results, into per-year money.

Conventions (every one is stated in the output's meta and methods text)
-------------------------------------------------------------------------
Years are numbered 1 … ``years``; all money is £ a year at the price year of its inputs.

- **Uptake** ``u_t`` (share of the eligible population holding a budget in year t):

  * ``linear``: ``u_t = start + (end − start)·(t − 1)/(years − 1)``;
  * ``logistic``: an S-curve rescaled so that ``u_1 = start`` and ``u_years = end`` exactly:
    ``u_t = start + (end − start)·(σ(z_t) − σ(z_1))/(σ(z_years) − σ(z_1))`` with
    ``z_t = k·((t − 1)/(years − 1) − ½)`` and steepness ``k`` = :data:`LOGISTIC_STEEPNESS` (so half-way
    through the horizon uptake is half-way between start and end);
  * ``growth_multiple``: holders multiply by ``growth_multiple`` every ``growth_years`` years, i.e. a
    constant geometric rate ``growth_multiple ** (1/growth_years)`` a year, ``u_t = start·rate^(t − 1)``
    (the rate continues after ``growth_years``); uptake is capped at 100% of the eligible population.
  With ``years = 1`` uptake is ``start``.
- **Holders** ``H_t = eligible total × u_t`` (expected numbers, not rounded). In the transition years
  (``t ≤ transition_years``) holders are capped at ``areas × transition_cap_per_area`` (the pilot could fund
  double running for up to 75 holders per area); no cap when ``transition_cap_per_area`` is null.
- **New holders** ``N_1 = H_1``, ``N_t = max(0, H_t − H_{t−1})`` (a fall in holders creates no new ones).
- **Double running**: ``double_running_per_new_holder`` is £ per new holder per *year* of double running,
  and ``double_running_years`` (fractional allowed) how long it lasts from the year of entry. The share of
  the annual cost paid in the k-th year after entry (k = 0 is the year of entry) is
  ``w_k = min(1, max(0, duration − k))``: 1.0 = all in the year of entry; 1.5 = a full year, then half;
  0.25 = a quarter of a year in the year of entry. ``DR_t = D · Σ_{s ≤ t} N_s · w_{t−s}``; each new
  holder costs ``D × duration`` in total.
- **Direct spend** ``H_t · Σ_b share_b · budget_b``; **indirect change** ``H_t · Σ_b share_b · Δindirect_b``
  (negative = saving; Δindirect is the incremental indirect-service cost per PHB holder vs control).
- **Decommissioning released** ``min(1, decommission_share_per_year · t) · conventional_cost_per_holder · H_t``:
  the cumulative share of conventional services decommissioned by year t (starting in year 1, capped at
  100%) releases that share of the conventional cost of every current holder.
- **Net impact** ``direct + indirect change + double running − released``.
- **Discounting** ``discounted_t = net_t · (1 + r)^−(t − 1)``: year 1 is not discounted.
  **Cumulative position** = running sum of discounted net impact; the programme becomes **cost-neutral**
  in the first year whose cumulative discounted position is ≤ £0 (``None`` if it never does within the
  horizon). With ``discount_rate = 0`` this is the undiscounted cumulative position.
- **Uncertainty**: the central projection uses point values. Bootstrap draws of Δindirect per band (the
  compare run's ``d_cost_indirect`` for each ``budget_band`` stratum, matched by replicate so the
  correlation between bands is kept) give one projection per draw; the interval is
  ``numpy.quantile`` (its default linear interpolation) of those per-draw values at the plan's confidence
  level. Budgets per holder and every other input are treated as fixed (see the tornado for those).

Bands are the keys of ``band_shares``. A key like ``<1000`` is the compare run's stratum
``budget_band=<1000``; a key that already starts with ``variable=`` is used as the stratum label as written (e.g.
``budget_band=>=1000;implementation_model=model1`` for bands split by implementation model).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator
from pydantic import ValidationError

from .errors import DataError, PlanError
from .plan import BudgetImpactSettings
from .results import Results, estimate_row, rows_frame, t_interval

__all__ = ["uptake_path", "holders_path", "new_holders", "double_running_weights", "double_running_cost",
           "decommission_shares", "discount_factors", "cost_neutral_year", "check_settings", "project",
           "Projection", "interval", "inputs_from_results", "resolve_inputs", "demo_inputs", "demo_draws",
           "one_way_sensitivity", "budget_per_holder_rows", "fan_chart", "tornado_chart", "run_budget_impact",
           "LOGISTIC_STEEPNESS", "SENSITIVITY_RELATIVE", "TABLE_COLUMNS", "BUDGET_ROW", "INDIRECT_ROW",
           "DRAWS_FILE", "RESULTS_FILE"]

LOGISTIC_STEEPNESS = 8.0        # logistic z runs −4 … +4 over the horizon before rescaling (σ: 1.8% … 98.2%)
SENSITIVITY_RELATIVE = 0.25     # one-way sensitivity: ±25% unless the caller gives a range
SHARE_TOLERANCE = 1e-6          # band shares must sum to 1 within this
RESULTS_FILE = "results.json"
ESTIMATES_CSV = "tables/estimates.csv"
DRAWS_FILE = "tables/cea_draws.csv"
BUDGET_ROW = ("cost", "budget_per_holder")                # (analysis, outcome) of mean budget per PHB holder by band
INDIRECT_ROW = ("cea", "incremental_cost_indirect")       # (analysis, outcome) of Δindirect per holder by band
DRAW_COLUMN = "d_cost_indirect"
_LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")          # a band key that is already a stratum label (var=level…)
TABLE_COLUMNS = ["year", "uptake_share", "holders", "capped", "new_holders", "direct_spend", "indirect_change",
                 "double_running", "decommission_share", "decommission_released", "net_impact", "net_impact_low",
                 "net_impact_high", "discount_factor", "discounted_net", "discounted_net_low",
                 "discounted_net_high", "cumulative_discounted", "cumulative_discounted_low",
                 "cumulative_discounted_high"]
ESTIMATE_OUTCOMES = (("net_impact", "net_impact"), ("discounted_net_impact", "discounted_net"),
                     ("cumulative_discounted_net", "cumulative_discounted"))

# Illustrative demo inputs: numbers the pilot literature quotes where it gives one, plausible values otherwise.
# They are not estimates; `phb-eval budget-impact --demo` says so in its warnings.
DEMO_SETTINGS = {
    "years": 8,
    "eligible": {"chc": 56000.0},          # people on NHS continuing healthcare given the right to ask (April 2014)
    "uptake": "logistic", "uptake_start": 0.02, "uptake_end": 0.30,
    "growth_multiple": 10.0, "growth_years": 8,   # the Netherlands' ten-fold growth 2002-2010 (used if uptake changed)
    "band_shares": {"<1000": 0.05, ">=1000": 0.95},                # CHC budgets are mostly large
    "budget_per_holder": {"<1000": 600.0, ">=1000": 24000.0},
    "indirect_change_per_holder": {"<1000": -150.0, ">=1000": -1200.0},
    "double_running_per_new_holder": 24800.0,   # the conventional package kept running …
    "double_running_years": 0.25,               # … for three months after a budget starts
    "areas": 211,                               # clinical commissioning groups in England, April 2013
    "transition_cap_per_area": 75, "transition_years": 2,   # the pilot's double-running cap per area
    "decommission_share_per_year": 0.25,
    "conventional_cost_per_holder": 24800.0,    # steady state budget + Δindirect − conventional ≈ −£3,100 a yr,
    "discount_rate": 0.035,                     # the CHC saving a person quoted at roll-out; HM Treasury rate
}
DEMO_INDIRECT_SD = {"<1000": 120.0, ">=1000": 650.0}   # spread of the demo's illustrative bootstrap draws (£)
DEMO_DRAWS = 2000


# ---------------------------------------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------------------------------------
def _bands(settings: BudgetImpactSettings) -> list[str]:
    return list(settings.band_shares)


def _shares(settings: BudgetImpactSettings) -> np.ndarray:
    return np.array([float(settings.band_shares[b]) for b in _bands(settings)])


def stratum_of(band: str) -> str:
    """The compare run's stratum label for a band key (``<1000`` -> ``budget_band=<1000``)."""
    return band if _LABEL.match(band) else f"budget_band={band}"


def check_settings(settings: BudgetImpactSettings, *, need_values: bool = True) -> None:
    """Raise ``PlanError`` (listing every problem with its fix) if the settings cannot be projected.

    Checks: eligible numbers ≥ 0 with a positive total; band shares ≥ 0 summing to 1; and, with
    ``need_values``, a budget per holder (≥ 0) and an indirect change for every band with a positive share.
    """
    problems = []
    bad = {k: v for k, v in settings.eligible.items() if not (np.isfinite(v) and v >= 0)}
    if bad:
        problems.append(f"budget_impact.eligible: numbers must be finite and >= 0, got {bad}")
    elif sum(settings.eligible.values()) <= 0:
        problems.append("budget_impact.eligible: no eligible people; give the eligible population by condition, "
                        "e.g. eligible: {chc: 56000}")
    if not settings.band_shares:
        problems.append("budget_impact.band_shares: no bands; give the share of holders in each budget band, "
                        "e.g. band_shares: {'<1000': 0.5, '>=1000': 0.5}")
    else:
        neg = {k: v for k, v in settings.band_shares.items() if not (np.isfinite(v) and v >= 0)}
        total = float(sum(settings.band_shares.values()))
        if neg:
            problems.append(f"budget_impact.band_shares: shares must be >= 0, got {neg}")
        elif abs(total - 1.0) > SHARE_TOLERANCE:
            problems.append(f"budget_impact.band_shares: the shares sum to {total:g}; they must sum to 1")
    if need_values and settings.band_shares:
        used = [b for b, s in settings.band_shares.items() if s > 0]
        miss_b = [b for b in used if b not in settings.budget_per_holder]
        miss_i = [b for b in used if b not in settings.indirect_change_per_holder]
        if miss_b:
            problems.append(f"budget_impact.budget_per_holder: no budget (£/year) for band(s) {miss_b}; give "
                            "them in the plan, e.g. budget_per_holder: {" +
                            ", ".join(f"'{b}': 2500" for b in miss_b) + "}, or use --from-results with a "
                            "compare run that reports them")
        if miss_i:
            problems.append(f"budget_impact.indirect_change_per_holder: no change in indirect cost (£/year, "
                            f"negative = saving) for band(s) {miss_i}; give them in the plan or use --from-results "
                            "with a compare run whose cea.strata include budget_band")
        negb = {b: settings.budget_per_holder[b] for b in used
                if b in settings.budget_per_holder and not (np.isfinite(settings.budget_per_holder[b])
                                                            and settings.budget_per_holder[b] >= 0)}
        if negb:
            problems.append(f"budget_impact.budget_per_holder: budgets must be finite and >= 0, got {negb}")
        nani = {b: settings.indirect_change_per_holder[b] for b in used if b in settings.indirect_change_per_holder
                and not np.isfinite(settings.indirect_change_per_holder[b])}
        if nani:
            problems.append(f"budget_impact.indirect_change_per_holder: values must be finite, got {nani}")
    if problems:
        raise PlanError("budget impact cannot be projected:\n  " + "\n  ".join(problems))


def _with(settings: BudgetImpactSettings, **update) -> BudgetImpactSettings:
    """A validated copy with some settings changed."""
    try:
        return BudgetImpactSettings.model_validate({**settings.model_dump(), **update})
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise PlanError(f"budget_impact.{key}: {err['msg']}; got {err.get('input')!r}") from None


# ---------------------------------------------------------------------------------------------------------
# the projection, piece by piece
# ---------------------------------------------------------------------------------------------------------
def uptake_path(settings: BudgetImpactSettings, *, steepness: float = LOGISTIC_STEEPNESS) -> np.ndarray:
    """Share of the eligible population holding a budget in each year 1 … ``years`` (see module notes)."""
    T = settings.years
    start, end = float(settings.uptake_start), float(settings.uptake_end)
    t = np.arange(1, T + 1, dtype=float)
    if settings.uptake == "growth_multiple":
        rate = float(settings.growth_multiple) ** (1.0 / settings.growth_years)
        return np.minimum(1.0, start * rate ** (t - 1))
    if T == 1:
        return np.array([start])
    x = (t - 1) / (T - 1)
    if settings.uptake == "linear":
        return start + (end - start) * x
    if settings.uptake == "logistic":
        if not steepness > 0:
            raise PlanError(f"logistic uptake needs a positive steepness, got {steepness!r}")
        sig = 1.0 / (1.0 + np.exp(-steepness * (x - 0.5)))
        return start + (end - start) * (sig - sig[0]) / (sig[-1] - sig[0])
    raise PlanError(f"budget_impact.uptake: {settings.uptake!r} is not one of linear, logistic, growth_multiple")


def holders_path(settings: BudgetImpactSettings, *, steepness: float = LOGISTIC_STEEPNESS):
    """``(holders, capped)`` per year: eligible total × uptake, capped at ``areas × transition_cap_per_area``
    in years ``1 … transition_years``; ``capped`` flags the years where the cap bound."""
    uncapped = float(sum(settings.eligible.values())) * uptake_path(settings, steepness=steepness)
    holders = uncapped.copy()
    capped = np.zeros(settings.years, dtype=bool)
    if settings.transition_cap_per_area is not None and settings.transition_years > 0:
        cap = float(settings.areas * settings.transition_cap_per_area)
        k = min(settings.transition_years, settings.years)
        capped[:k] = uncapped[:k] > cap
        holders[:k] = np.minimum(uncapped[:k], cap)
    return holders, capped


def new_holders(holders) -> np.ndarray:
    """People starting a budget each year: year 1 all holders, then any increase (never negative)."""
    h = np.asarray(holders, dtype=float)
    return np.maximum(0.0, np.diff(h, prepend=0.0))


def double_running_weights(duration: float, years: int) -> np.ndarray:
    """Share of a year of double running paid k = 0 … years−1 years after entry: ``min(1, max(0, duration − k))``.
    """
    k = np.arange(years, dtype=float)
    return np.clip(float(duration) - k, 0.0, 1.0)


def double_running_cost(new, per_holder_per_year: float, duration: float) -> np.ndarray:
    """Double-running cost per year: each year's new holders × £ a year × the weight for their years since entry."""
    n = np.asarray(new, dtype=float)
    w = double_running_weights(duration, n.size)
    return float(per_holder_per_year) * np.convolve(n, w)[: n.size]


def decommission_shares(share_per_year: float, years: int) -> np.ndarray:
    """Cumulative share of conventional services decommissioned by year t: ``min(1, share_per_year · t)``."""
    return np.minimum(1.0, float(share_per_year) * np.arange(1, years + 1, dtype=float))


def discount_factors(rate: float, years: int) -> np.ndarray:
    """``(1 + rate)^−(t − 1)`` for t = 1 … years (year 1 undiscounted)."""
    return (1.0 + float(rate)) ** -np.arange(years, dtype=float)


def cost_neutral_year(cumulative) -> int | None:
    """First year (1-based) whose cumulative position is ≤ 0, or ``None``."""
    c = np.asarray(cumulative, dtype=float)
    hit = np.flatnonzero(c <= 0)
    return int(hit[0]) + 1 if hit.size else None


def interval(values, conf_level: float, axis: int = 0):
    """``(low, high)`` = ``numpy.quantile`` of ``values`` at ``(1 ∓ conf_level)/2`` along ``axis``."""
    lo, hi = np.quantile(np.asarray(values, dtype=float), [(1 - conf_level) / 2, (1 + conf_level) / 2], axis=axis)
    return lo, hi


@dataclass
class Projection:
    """A projection: the per-year table and, when draws were given, the per-draw paths (draws × years)."""

    table: pd.DataFrame
    cost_neutral_year: int | None
    first_saving_year: int | None                 # first year whose annual net impact is ≤ 0
    conf_level: float
    net_draws: np.ndarray | None = None
    discounted_draws: np.ndarray | None = None
    cumulative_draws: np.ndarray | None = None
    prob_cost_neutral: float = math.nan          # share of draws with cumulative position ≤ 0 in the final year
    notes: list = field(default_factory=list)

    @property
    def n_draws(self) -> int:
        return 0 if self.net_draws is None else int(self.net_draws.shape[0])

    @property
    def final_cumulative(self) -> float:
        return float(self.table["cumulative_discounted"].iloc[-1])


def _paths(settings: BudgetImpactSettings, indirect: np.ndarray, steepness: float):
    """Core arrays. ``indirect``: (K,) or (B, K) Δindirect per band (band order of ``band_shares``)."""
    bands = _bands(settings)
    s = _shares(settings)
    T = settings.years
    holders, capped = holders_path(settings, steepness=steepness)
    new = new_holders(holders)
    budget = np.array([float(settings.budget_per_holder.get(b, 0.0)) if s[i] > 0 else 0.0
                       for i, b in enumerate(bands)])
    direct = holders * float(s @ budget)
    ind = np.atleast_2d(indirect) @ s                                    # (B,) share-weighted Δindirect per holder
    indirect_change = ind[:, None] * holders[None, :]                    # (B, T)
    dr = double_running_cost(new, settings.double_running_per_new_holder, settings.double_running_years)
    dshare = decommission_shares(settings.decommission_share_per_year, T)
    released = dshare * float(settings.conventional_cost_per_holder) * holders
    net = direct[None, :] + indirect_change + dr[None, :] - released[None, :]
    f = discount_factors(settings.discount_rate, T)
    disc = net * f[None, :]
    cum = np.cumsum(disc, axis=1)
    return dict(uptake=uptake_path(settings, steepness=steepness), holders=holders, capped=capped, new=new,
                direct=direct, indirect=indirect_change, dr=dr, dshare=dshare, released=released, net=net,
                f=f, disc=disc, cum=cum)


def _indirect_vector(settings: BudgetImpactSettings) -> np.ndarray:
    return np.array([float(settings.indirect_change_per_holder.get(b, 0.0)) if settings.band_shares[b] > 0 else 0.0
                     for b in _bands(settings)])


def _draw_matrix(settings: BudgetImpactSettings, draws) -> np.ndarray | None:
    """Draws as a (B, K) matrix in band order; a band without a draw column is held at its point value."""
    if draws is None:
        return None
    d = pd.DataFrame(draws)
    if d.empty:
        return None
    point = _indirect_vector(settings)
    cols = []
    for i, b in enumerate(_bands(settings)):
        if b in d.columns and settings.band_shares[b] > 0:
            cols.append(pd.to_numeric(d[b], errors="coerce").to_numpy(dtype=float))
        else:
            cols.append(np.full(len(d), point[i]))
    m = np.column_stack(cols)
    return m[np.isfinite(m).all(axis=1)]


def project(settings: BudgetImpactSettings, *, draws=None, conf_level: float = 0.95,
            steepness: float = LOGISTIC_STEEPNESS) -> Projection:
    """Project the budget impact year by year.

    Parameters
    ----------
    settings : budget-impact settings with ``budget_per_holder`` and ``indirect_change_per_holder`` for every
        band with a positive share (see :func:`resolve_inputs`).
    draws : optional bootstrap draws of Δindirect per holder: a DataFrame (or mapping) with one column per
        band (rows = replicates, aligned across bands). Bands without a column are held at their point value;
        rows with a missing value are left out.
    conf_level : the interval's confidence level.

    Returns
    -------
    Projection, whose ``table`` has the columns :data:`TABLE_COLUMNS` (the ``_low``/``_high`` columns are NaN
    without draws).
    """
    check_settings(settings)
    point = _paths(settings, _indirect_vector(settings), steepness)
    T = settings.years
    tab = pd.DataFrame({
        "year": np.arange(1, T + 1), "uptake_share": point["uptake"], "holders": point["holders"],
        "capped": point["capped"], "new_holders": point["new"], "direct_spend": point["direct"],
        "indirect_change": point["indirect"][0], "double_running": point["dr"],
        "decommission_share": point["dshare"], "decommission_released": point["released"],
        "net_impact": point["net"][0], "discount_factor": point["f"], "discounted_net": point["disc"][0],
        "cumulative_discounted": point["cum"][0]})
    M = _draw_matrix(settings, draws)
    proj = Projection(table=tab, cost_neutral_year=cost_neutral_year(point["cum"][0]),
                      first_saving_year=cost_neutral_year(point["net"][0]), conf_level=conf_level)
    if draws is not None and (M is None or M.shape[0] == 0):
        proj.notes.append("no usable bootstrap draws (every replicate has a missing value), so no interval")
    for col in ("net_impact", "discounted_net", "cumulative_discounted"):
        tab[f"{col}_low"] = np.nan
        tab[f"{col}_high"] = np.nan
    if M is not None and M.shape[0] > 0:
        if M.shape[0] < len(pd.DataFrame(draws)):
            proj.notes.append(f"{len(pd.DataFrame(draws)) - M.shape[0]} bootstrap replicates with a missing indirect "
                              "cost change in some band were left out")
        p = _paths(settings, M, steepness)
        proj.net_draws, proj.discounted_draws, proj.cumulative_draws = p["net"], p["disc"], p["cum"]
        for col, arr in (("net_impact", p["net"]), ("discounted_net", p["disc"]), ("cumulative_discounted", p["cum"])):
            tab[f"{col}_low"], tab[f"{col}_high"] = interval(arr, conf_level)
        proj.prob_cost_neutral = float(np.mean(p["cum"][:, -1] <= 0))
    proj.table = tab[TABLE_COLUMNS]
    return proj


# ---------------------------------------------------------------------------------------------------------
# inputs from a compare run
# ---------------------------------------------------------------------------------------------------------
def _band_of(stratum: str) -> str:
    return stratum.split("=", 1)[1] if stratum.startswith("budget_band=") and ";" not in stratum else stratum


def _read_estimates(folder: Path) -> tuple[pd.DataFrame, dict, Path]:
    rj = folder / RESULTS_FILE
    if rj.is_file():
        try:
            doc = json.loads(rj.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise DataError(f"{rj}: not valid JSON ({exc}). Fix: give the output folder of 'phb-eval compare' "
                            "unchanged, or rerun compare") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("estimates"), list):
            raise DataError(f"{rj}: has no 'estimates' list. Fix: give the output folder of 'phb-eval compare' "
                            "(results.json holds {\"meta\": ..., \"estimates\": [...]})")
        meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
        return pd.DataFrame(doc["estimates"]), meta, rj
    csv = folder / ESTIMATES_CSV
    if csv.is_file():
        return pd.read_csv(csv, dtype={"stratum": str, "analysis": str, "outcome": str}), {}, csv
    raise DataError(f"{rj}: not found (nor {csv}). Fix: give --from-results the output folder of "
                    "'phb-eval compare', or give budget_per_holder and indirect_change_per_holder in the plan's "
                    "budget_impact section and run without --from-results")


def _point_values(est: pd.DataFrame, analysis: str, outcome: str) -> dict:
    """stratum -> estimate (NaN when the row exists but is not estimable), first row per stratum
    (``ols_bootstrap`` rows preferred)."""
    need = {"analysis", "outcome", "stratum", "estimate"}
    if not need <= set(est.columns):
        return {}
    rows = est[(est["analysis"].astype(str) == analysis) & (est["outcome"].astype(str) == outcome)].copy()
    if rows.empty:
        return {}
    if "method" in rows.columns:
        rows["_pref"] = (rows["method"].astype(str) != "ols_bootstrap").astype(int)
        rows = rows.sort_values("_pref", kind="stable")
    rows = rows.drop_duplicates("stratum")
    return {str(s): float(v) if v is not None and pd.notna(v) else math.nan
            for s, v in zip(rows["stratum"], pd.to_numeric(rows["estimate"], errors="coerce"))}


def _inputs_from_frames(est: pd.DataFrame, draws: pd.DataFrame | None, meta: dict, *, where: str,
                        draws_where: str, bands=None, require: bool = True) -> dict:
    ind_all = _point_values(est, *INDIRECT_ROW)
    bud_all = _point_values(est, *BUDGET_ROW)
    if bands is None:
        bands = [_band_of(s) for s in ind_all if s.startswith("budget_band=") and ";" not in s]
    bands = list(bands)
    out = {"bands": bands, "budget_per_holder": {}, "indirect_change_per_holder": {}, "draws": None,
           "missing": [], "sources": {"estimates": where, "draws": draws_where},
           "price_year": ((meta.get("plan") or {}).get("costs") or {}).get("price_year"),
           "conf_level": (meta.get("plan") or {}).get("confidence_level")}
    if not bands:
        out["missing"].append(
            f"{where}: no cost-effectiveness rows (analysis=cea, outcome=incremental_cost_indirect) for any "
            "budget_band stratum. Fix: rerun compare with budget_band in cea.strata, or give "
            "indirect_change_per_holder (and budget_per_holder) by band in the plan's budget_impact section")
    for b in bands:
        s = stratum_of(b)
        v = ind_all.get(s)
        if v is None:
            out["missing"].append(
                f"{where}: no row analysis=cea, outcome=incremental_cost_indirect, stratum={s}. Fix: rerun compare "
                f"with that stratum in cea.strata, or give indirect_change_per_holder['{b}'] in the plan's "
                "budget_impact section")
        elif not np.isfinite(v):
            out["missing"].append(
                f"{where}: the indirect cost change for stratum {s} was not estimable (see its note). Fix: give "
                f"indirect_change_per_holder['{b}'] in the plan's budget_impact section")
        else:
            out["indirect_change_per_holder"][b] = v
        bv = bud_all.get(s)
        if bv is not None and np.isfinite(bv):
            out["budget_per_holder"][b] = bv
        else:
            why = "has no row" if bv is None else "has a missing value in the row"
            out["missing"].append(
                f"{where} {why} analysis={BUDGET_ROW[0]}, outcome={BUDGET_ROW[1]}, stratum={s} (mean budget per "
                f"PHB holder). Fix: give budget_per_holder['{b}'] (£ a year) in the plan's budget_impact section")
    # draws
    have = [b for b in bands if b in out["indirect_change_per_holder"]]
    if draws is None:
        if have:
            out["missing"].append(f"{draws_where}: not found, so the projection would have no uncertainty. Fix: "
                                  "give the whole output folder of 'phb-eval compare' (its tables/cea_draws.csv)")
    else:
        need = {"stratum", "replicate", DRAW_COLUMN}
        lacking = sorted(need - set(draws.columns))
        if lacking:
            raise DataError(f"{draws_where}: lacks column(s) {lacking}. Fix: give the cea_draws table written by "
                            "'phb-eval compare' unchanged")
        d = draws[draws["stratum"].astype(str).isin([stratum_of(b) for b in have])]
        wide = (d.assign(_v=pd.to_numeric(d[DRAW_COLUMN], errors="coerce"))
                 .pivot_table(index="replicate", columns="stratum", values="_v", aggfunc="first", dropna=False))
        for b in have:
            if stratum_of(b) not in wide.columns or wide[stratum_of(b)].notna().sum() == 0:
                out["missing"].append(f"{draws_where}: no {DRAW_COLUMN} draws for stratum {stratum_of(b)}. Fix: "
                                      "give the whole output folder of the compare run that produced the estimates")
        cols = {stratum_of(b): b for b in have if stratum_of(b) in wide.columns}
        out["draws"] = wide[list(cols)].rename(columns=cols).reset_index(drop=False) if cols else None
        if out["draws"] is not None:
            out["draws"] = out["draws"].sort_values("replicate").set_index("replicate")
            out["draws"].columns.name = None
    if require and out["missing"]:
        raise DataError("budget impact inputs are incomplete:\n  " + "\n  ".join(out["missing"]))
    return out


def inputs_from_results(results_dir, *, bands=None, require: bool = True) -> dict:
    """Budget-impact inputs from a compare run's output folder (or an in-memory ``Results``).

    Reads
    -----
    - ``results.json`` (``tables/estimates.csv`` if there is no results.json) estimate rows:

      * ``analysis=cea, outcome=incremental_cost_indirect, stratum=budget_band=<band>`` -> Δindirect per
        holder (the ``ols_bootstrap`` row; £ a year, PHB − control, negative = saving);
      * ``analysis=cost, outcome=budget_per_holder, stratum=budget_band=<band>`` -> mean budget per PHB
        holder (£ a year; see :func:`budget_per_holder_rows`);
      * ``meta.plan.costs.price_year`` and ``meta.plan.confidence_level`` when present.
    - ``tables/cea_draws.csv``: columns ``stratum, replicate, d_cost_indirect`` (bootstrap draws).

    Parameters
    ----------
    bands : band keys to look for (default: every ``budget_band=…`` stratum with an indirect-cost row).
    require : raise ``DataError`` listing every missing piece (with its fix) instead of returning them.

    Returns
    -------
    dict with ``bands``, ``budget_per_holder`` {band: £}, ``indirect_change_per_holder`` {band: £},
    ``draws`` (DataFrame indexed by replicate, one column per band, or None), ``missing`` (sentences),
    ``sources`` {"estimates": file, "draws": file}, ``price_year``, ``conf_level``.
    """
    if isinstance(results_dir, Results):
        r = results_dir
        plan = (r.meta or {}).get("plan")
        return _inputs_from_frames(r.estimates, r.tables.get("cea_draws"), {"plan": plan} if plan else {},
                                   where="compare results (estimates)", draws_where="compare results (cea_draws)",
                                   bands=bands, require=require)
    folder = Path(results_dir).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder. Fix: give --from-results the output folder of 'phb-eval compare'")
    est, meta, where = _read_estimates(folder)
    dpath = folder / DRAWS_FILE
    draws = None
    if dpath.is_file():
        try:
            draws = pd.read_csv(dpath, dtype={"stratum": str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataError(f"{dpath}: not a readable CSV ({exc}). Fix: give the table written by 'phb-eval compare' "
                            "unchanged") from None
    return _inputs_from_frames(est, draws, meta, where=str(where), draws_where=str(dpath), bands=bands,
                               require=require)


def resolve_inputs(settings: BudgetImpactSettings, inputs: dict | None = None):
    """Complete the plan's settings with values from a compare run; the plan's own values win per band.

    Returns ``(settings, draws, sources, notes)``: settings with every band's budget and indirect change;
    draws (DataFrame, one column per band taking its indirect change from the results; None without results);
    ``sources`` {"budget_per_holder": {band: "plan"|"results"}, "indirect_change_per_holder": {...}};
    notes (sentences for warnings). Raises ``PlanError`` naming each band still without a value.
    """
    check_settings(settings, need_values=False)
    used = [b for b, s in settings.band_shares.items() if s > 0]
    budget = dict(settings.budget_per_holder)
    indirect = dict(settings.indirect_change_per_holder)
    src = {"budget_per_holder": {b: "plan" for b in budget if b in used},
           "indirect_change_per_holder": {b: "plan" for b in indirect if b in used}}
    notes, problems = [], []
    draws = None
    if inputs is not None:
        for b in used:
            if b not in budget and b in inputs["budget_per_holder"]:
                budget[b] = inputs["budget_per_holder"][b]
                src["budget_per_holder"][b] = "results"
            if b not in indirect and b in inputs["indirect_change_per_holder"]:
                indirect[b] = inputs["indirect_change_per_holder"][b]
                src["indirect_change_per_holder"][b] = "results"
        from_res = [b for b in used if src["indirect_change_per_holder"].get(b) == "results"]
        if inputs.get("draws") is not None and from_res:
            d = inputs["draws"]
            keep = [b for b in from_res if b in d.columns]
            draws = d[keep] if keep else None
            gone = [b for b in from_res if b not in d.columns]
            if gone:
                notes.append(f"{inputs['sources']['draws']} has no bootstrap draws for band(s) {gone}; they are held "
                             "fixed in the uncertainty interval")
        elif from_res:
            notes.append("no bootstrap draws were found with the compare results, so the projection has no interval")
        overridden = [b for b in used if src["indirect_change_per_holder"].get(b) == "plan"
                      and b in inputs["indirect_change_per_holder"]]
        if overridden:
            notes.append(f"indirect cost change for band(s) {overridden} taken from the plan, not the compare "
                         "results; those bands are held fixed in the uncertainty interval")
        unused = [b for b in inputs["indirect_change_per_holder"] if b not in settings.band_shares]
        if unused:
            notes.append(f"compare results have band(s) {unused} that budget_impact.band_shares does not name; "
                         "they are not used")
    extra = [b for b in {**settings.budget_per_holder, **settings.indirect_change_per_holder}
             if b not in settings.band_shares]
    if extra:
        notes.append(f"budget_impact values given for band(s) {sorted(extra)} that band_shares does not name are "
                     "not used")
    for b in used:
        where = " (the compare results lack it too)" if inputs is not None else ""
        fix_res = "" if inputs is not None else ", or use --from-results with a compare output folder"
        if b not in budget:
            problems.append(f"budget_impact.budget_per_holder: no budget (£/year) for band '{b}'{where}. Fix: give "
                            f"budget_per_holder: {{'{b}': <£ a year>}} in the plan's budget_impact section{fix_res}")
        if b not in indirect:
            problems.append(f"budget_impact.indirect_change_per_holder: no change in indirect cost for band '{b}'"
                            f"{where}. Fix: give indirect_change_per_holder: {{'{b}': <£ a year, negative = "
                            f"saving>}} in the plan's budget_impact section{fix_res}")
    if problems:
        raise PlanError("budget impact inputs are missing:\n  " + "\n  ".join(problems))
    resolved = _with(settings, budget_per_holder=budget, indirect_change_per_holder=indirect)
    check_settings(resolved)
    return resolved, draws, src, notes


def budget_per_holder_rows(frame: pd.DataFrame, *, conf_level: float = 0.95, min_n: int = 8) -> pd.DataFrame:
    """Mean budget per PHB holder by budget band, as results rows the budget impact reads back.

    For a compare run to fill ``budget_per_holder`` with ``--from-results``: rows ``analysis=cost,
    outcome=budget_per_holder, stratum=budget_band=<band>, method=mean_phb`` (£ a year; ``se`` = SD/√n,
    t interval with n − 1 df; ``n_phb`` = holders with a budget). Needs ``phb`` (or ``group``),
    ``budget_band`` and ``budget_gbp_per_year``. A band with fewer than ``min_n`` holders gets a missing
    estimate (a mean of a few people would disclose them) and a note.
    """
    need = {"budget_band", "budget_gbp_per_year"}
    if not need <= set(frame.columns) or not ({"phb", "group"} & set(frame.columns)):
        return rows_frame([])
    phb = frame["phb"] == 1 if "phb" in frame.columns else frame["group"].eq("phb")
    sub = frame.loc[phb, ["budget_band", "budget_gbp_per_year"]].copy()
    sub["budget_gbp_per_year"] = pd.to_numeric(sub["budget_gbp_per_year"], errors="coerce")
    sub = sub.dropna()
    rows = []
    for band, g in sub.groupby("budget_band", sort=True):
        n = len(g)
        s = f"budget_band={band}"
        if n < min_n:
            rows.append(estimate_row(*BUDGET_ROW, "mean_phb", math.nan, stratum=s, n_phb=n,
                                     note=f"fewer than {min_n} holders: not shown"))
            continue
        m = float(g["budget_gbp_per_year"].mean())
        se = float(g["budget_gbp_per_year"].std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
        lo, hi, _ = t_interval(m, se, n - 1, conf_level)
        rows.append(estimate_row(*BUDGET_ROW, "mean_phb", m, se, lo, hi, stratum=s, n_phb=n,
                                 note="mean budget per PHB holder (£ a year), for budget impact"))
    return rows_frame(rows)


# ---------------------------------------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------------------------------------
def demo_inputs() -> BudgetImpactSettings:
    """Illustrative settings for ``phb-eval budget-impact --demo`` (see :data:`DEMO_SETTINGS` for sources):
    56,000 people eligible (NHS continuing healthcare, 2014), logistic uptake 2% -> 30% over 8 years,
    a steady-state saving near the £3,100 a person a year quoted for CHC, 75 holders per area in the transition."""
    return BudgetImpactSettings.model_validate(DEMO_SETTINGS)


def demo_draws(settings: BudgetImpactSettings, rng: np.random.Generator, n: int = DEMO_DRAWS) -> pd.DataFrame:
    """Illustrative bootstrap-like draws of Δindirect per band: normal around the point value with the demo's
    spread (:data:`DEMO_INDIRECT_SD`), replicates 1 … n."""
    out = {}
    for b in _bands(settings):
        sd = DEMO_INDIRECT_SD.get(b, 0.0)
        out[b] = settings.indirect_change_per_holder.get(b, 0.0) + sd * rng.standard_normal(n)
    return pd.DataFrame(out, index=pd.RangeIndex(1, n + 1, name="replicate"))


# ---------------------------------------------------------------------------------------------------------
# one-way sensitivity
# ---------------------------------------------------------------------------------------------------------
_SCALED = {"eligible": "eligible population", "budget_per_holder": "budget per holder",
           "indirect_change_per_holder": "change in indirect cost per holder"}
_SCALAR = {"uptake_start": ("uptake in year 1", 0.0, 1.0), "uptake_end": ("uptake in the final year", 0.0, 1.0),
           "growth_multiple": ("growth multiple", 1e-9, math.inf),
           "double_running_per_new_holder": ("double running per new holder (£/year)", 0.0, math.inf),
           "double_running_years": ("double running duration (years)", 0.0, math.inf),
           "transition_cap_per_area": ("transition cap per area", 1.0, math.inf),
           "decommission_share_per_year": ("decommissioning share per year", 0.0, 1.0),
           "conventional_cost_per_holder": ("conventional cost per holder (£/year)", 0.0, math.inf),
           "discount_rate": ("discount rate", 0.0, 0.2)}


def _parameters(settings: BudgetImpactSettings) -> list[str]:
    names = ["eligible", "uptake_start"]
    names += ["growth_multiple"] if settings.uptake == "growth_multiple" else ["uptake_end"]
    names += ["budget_per_holder", "indirect_change_per_holder", "double_running_per_new_holder",
              "double_running_years"]
    if settings.transition_cap_per_area is not None and settings.transition_years > 0:
        names.append("transition_cap_per_area")
    names += ["decommission_share_per_year", "conventional_cost_per_holder", "discount_rate"]
    return names


def _weighted(settings, values: dict) -> float:
    return float(sum(settings.band_shares[b] * values.get(b, 0.0) for b in _bands(settings)
                     if settings.band_shares[b] > 0))


def one_way_sensitivity(settings: BudgetImpactSettings, *, draws=None, conf_level: float = 0.95, ranges=None,
                        relative: float = SENSITIVITY_RELATIVE, steepness: float = LOGISTIC_STEEPNESS) -> pd.DataFrame:
    """Tornado table: each key parameter at a low and a high value, the rest at base; result = cumulative
    discounted net impact in the final year.

    Ranges: ``ranges[name] = (low, high)`` when given — absolute values for scalar settings, multipliers for
    ``eligible``, ``budget_per_holder`` and ``indirect_change_per_holder``; otherwise base × (1 ∓ ``relative``)
    (clipped to the setting's allowed values), except the indirect change, which with ``draws`` uses each
    band's draw quantiles at ``conf_level`` (low = lower quantile).

    Returns
    -------
    DataFrame ``parameter, description, base_value, low_value, high_value, result_base, result_low,
    result_high, swing, range_source``, sorted by ``swing`` (|result_high − result_low|) descending. For the
    per-band settings the values shown are share-weighted means over bands.
    """
    check_settings(settings)
    ranges = dict(ranges or {})
    unknown = [k for k in ranges if k not in _SCALED and k not in _SCALAR]
    if unknown:
        raise PlanError(f"one-way sensitivity: unknown parameter(s) {unknown}; known: "
                        f"{sorted([*_SCALED, *_SCALAR])}")

    def result(s: BudgetImpactSettings) -> float:
        return float(_paths(s, _indirect_vector(s), steepness)["cum"][0, -1])

    base_result = result(settings)
    M = _draw_matrix(settings, draws)
    rows = []
    names = _parameters(settings) + [k for k in ranges if k not in _parameters(settings)]
    for name in names:
        if name in _SCALED:
            base_map = dict(getattr(settings, name))
            if name in ranges:
                lo_m, hi_m = ranges[name]
                vals = [{k: v * lo_m for k, v in base_map.items()}, {k: v * hi_m for k, v in base_map.items()}]
                source = "given range (multiplier)"
            elif name == "indirect_change_per_holder" and M is not None and M.shape[0] > 0:
                qlo, qhi = interval(M, conf_level)
                vals = [dict(base_map), dict(base_map)]
                for i, b in enumerate(_bands(settings)):
                    if settings.band_shares[b] > 0:
                        vals[0][b], vals[1][b] = float(qlo[i]), float(qhi[i])
                source = f"bootstrap {conf_level:.0%} interval per band"
            else:
                vals = [{k: v * (1 - relative) for k, v in base_map.items()},
                        {k: v * (1 + relative) for k, v in base_map.items()}]
                source = f"\u00b1{relative:.0%}"
            shown = (lambda m: float(sum(m.values()))) if name == "eligible" else (lambda m: _weighted(settings, m))
            base_v, lo_v, hi_v = shown(base_map), shown(vals[0]), shown(vals[1])
            res = [result(_with(settings, **{name: v})) for v in vals]
            desc = _SCALED[name]
        else:
            desc, vmin, vmax = _SCALAR[name]
            base_v = float(getattr(settings, name))
            if name in ranges:
                lo_v, hi_v = (float(x) for x in ranges[name])
                source = "given range"
            else:
                lo_v, hi_v = base_v * (1 - relative), base_v * (1 + relative)
                source = f"\u00b1{relative:.0%}"
            lo_v, hi_v = (min(vmax, max(vmin, v)) for v in (lo_v, hi_v))
            if name == "transition_cap_per_area":
                lo_v, hi_v = float(max(1, round(lo_v))), float(max(1, round(hi_v)))
                res = [result(_with(settings, **{name: int(v)})) for v in (lo_v, hi_v)]
            else:
                res = [result(_with(settings, **{name: v})) for v in (lo_v, hi_v)]
            if base_v == 0 and name not in ranges:
                source += " (base is 0: give a range to vary it)"
        rows.append({"parameter": name, "description": desc, "base_value": base_v, "low_value": lo_v,
                     "high_value": hi_v, "result_base": base_result, "result_low": res[0], "result_high": res[1],
                     "swing": abs(res[1] - res[0]), "range_source": source})
    out = pd.DataFrame(rows, columns=["parameter", "description", "base_value", "low_value", "high_value",
                                      "result_base", "result_low", "result_high", "swing", "range_source"])
    return out.sort_values("swing", ascending=False, kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------------------
# figures (plain matplotlib Figures on an Agg canvas: no pyplot, no global state)
# ---------------------------------------------------------------------------------------------------------
def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _gbp_millions(value, _pos=None) -> str:
    sign = "\u2212" if value < 0 else ""
    v = abs(value)
    if v >= 1e6:
        return f"{sign}\u00a3{v / 1e6:,.0f}m" if v >= 1e8 else f"{sign}\u00a3{v / 1e6:,.1f}m"
    return f"{sign}\u00a3{v:,.0f}"


def fan_chart(proj: Projection, *, title: str = "Net budget impact") -> Figure:
    """Annual net impact and cumulative discounted position by year, with nested interval bands (50%, 80% and
    the confidence level, from the draws) around the central projection; the cost-neutral year is marked."""
    import seaborn as sns

    tab = proj.table
    years = tab["year"].to_numpy()
    levels = sorted({lv for lv in (0.5, 0.8) if lv < proj.conf_level} | {proj.conf_level})
    colour = sns.color_palette("colorblind")[0]
    fig = _figure(9.0, 3.6)
    axes = fig.subplots(1, 2)
    for ax, col, arr, sub in ((axes[0], "net_impact", proj.net_draws, "annual net impact"),
                              (axes[1], "cumulative_discounted", proj.cumulative_draws,
                               "cumulative position (discounted)")):
        if arr is not None:
            for k, lv in enumerate(reversed(levels)):
                lo, hi = interval(arr, lv)
                ax.fill_between(years, lo, hi, color=colour, alpha=0.15 + 0.15 * k, linewidth=0,
                                label=f"{lv:.0%} interval")
        ax.plot(years, tab[col], color=colour, marker="o", label="central projection")
        ax.axhline(0.0, color="0.3", linewidth=0.8)
        ax.set_title(sub, fontsize=10)
        ax.set_xlabel("year")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(_gbp_millions))
    if proj.cost_neutral_year is not None:
        axes[1].axvline(proj.cost_neutral_year, color="0.3", linestyle="--", linewidth=0.8)
        late = proj.cost_neutral_year > (years[0] + years[-1]) / 2
        axes[1].annotate(f"cost-neutral in year {proj.cost_neutral_year}", (proj.cost_neutral_year, 0.0),
                         textcoords="offset points", xytext=(-4 if late else 4, 6), fontsize=8,
                         ha="right" if late else "left")
    axes[0].legend(fontsize=8, frameon=False)
    suffix = "" if proj.net_draws is not None else " (no uncertainty: no bootstrap draws)"
    fig.suptitle(title + suffix, fontsize=11)
    return fig


def tornado_chart(tornado: pd.DataFrame, *, title: str = "One-way sensitivity: cumulative position, final year"
                  ) -> Figure:
    """Horizontal bars from the base result to the result at each parameter's low and high value."""
    import seaborn as sns

    pal = sns.color_palette("colorblind")
    t = tornado.iloc[::-1].reset_index(drop=True)           # largest swing on top
    fig = _figure(8.0, 1.2 + 0.42 * max(1, len(t)))
    ax = fig.add_subplot()
    base = float(t["result_base"].iloc[0]) if len(t) else 0.0
    y = np.arange(len(t))
    ax.barh(y, t["result_low"] - base, left=base, color=pal[0], height=0.6, label="low value")
    ax.barh(y, t["result_high"] - base, left=base, color=pal[1], height=0.6, label="high value")
    ax.axvline(base, color="0.2", linewidth=0.9)
    ax.set_yticks(y, [str(d) for d in t["description"]], fontsize=8)
    ax.xaxis.set_major_formatter(FuncFormatter(_gbp_millions))
    ax.set_xlabel("cumulative discounted net impact, final year")
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.set_title(title, fontsize=10)
    return fig


# ---------------------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------------------
def _method_text(s: BudgetImpactSettings, conf_level: float, n_draws: int, price_year) -> str:
    cap = ("no transition cap" if s.transition_cap_per_area is None or s.transition_years == 0 else
           f"holders capped at {s.areas:,} area(s) × {s.transition_cap_per_area} in the first "
           f"{s.transition_years} year(s)")
    unc = (f"{conf_level:.0%} intervals are numpy quantiles of {n_draws:,} projections, one per bootstrap draw of "
           "the change in indirect cost per holder by band (budgets and other inputs fixed)" if n_draws else
           "no interval (no bootstrap draws)")
    return (f"Budget impact over {s.years} year(s) at {price_year or 'the inputs'} prices: holders = eligible "
            f"({sum(s.eligible.values()):,.0f}) × {s.uptake} uptake, {cap}. Net impact = holders × share-weighted "
            "budget + holders × share-weighted change in indirect cost + double running (new holders × £ a year × "
            "duration, fractional years paid in the following year) − decommissioning released (min(1, share a "
            "year × year) × conventional cost × holders). Discounted at "
            f"{s.discount_rate * 100:g}% a year with year 1 undiscounted; the programme is cost-neutral in the first "
            f"year whose cumulative discounted position is ≤ £0. {unc}. One-way sensitivity varies each input "
            f"±{SENSITIVITY_RELATIVE:.0%} (indirect change over its bootstrap interval when draws exist).")


def _assumption_warnings(s: BudgetImpactSettings, proj: Projection, sources: dict) -> list[str]:
    w = []
    tab = proj.table
    if tab["capped"].any():
        yrs = ", ".join(str(y) for y in tab.loc[tab["capped"], "year"])
        w.append(f"budget impact: the transition cap ({s.areas:,} area(s) × {s.transition_cap_per_area} holders) "
                 f"limited holders in year(s) {yrs}")
    if s.uptake == "growth_multiple" and (tab["uptake_share"] >= 1.0).any():
        y = int(tab.loc[tab["uptake_share"] >= 1.0, "year"].iloc[0])
        w.append(f"budget impact: growth of {s.growth_multiple:g}× over {s.growth_years} years reaches every "
                 f"eligible person by year {y}; uptake is capped at 100% from then on")
    if s.uptake in ("linear", "logistic") and s.uptake_end < s.uptake_start:
        w.append("budget impact: uptake falls over the horizon (uptake_end < uptake_start); people leaving create "
                 "no saving beyond their own costs and no new double running")
    if s.decommission_share_per_year == 0 or s.conventional_cost_per_holder == 0:
        w.append("budget impact: no decommissioning is assumed (decommission_share_per_year or "
                 "conventional_cost_per_holder is 0), so conventional services for holders are never released")
    if proj.net_draws is None:
        w.append("budget impact: no bootstrap draws, so the net impact has no uncertainty interval; use "
                 "--from-results with a compare output folder to carry the cost-effectiveness draws")
    if sources.get("budget_per_holder") and all(v == "plan" for v in sources["budget_per_holder"].values()):
        w.append("budget impact: budgets per holder come from the plan, not from an evaluation")
    return w + [f"budget impact: {n}" for n in proj.notes]


def _estimate_rows(proj: Projection) -> list[dict]:
    tab = proj.table
    draws = {"net_impact": proj.net_draws, "discounted_net": proj.discounted_draws,
             "cumulative_discounted": proj.cumulative_draws}
    rows = []
    for outcome, col in ESTIMATE_OUTCOMES:
        arr = draws[col]
        for i, r in tab.iterrows():
            se = float(np.std(arr[:, i], ddof=1)) if arr is not None and arr.shape[0] > 1 else math.nan
            note = "" if arr is not None else "no bootstrap draws: no interval"
            if outcome == "cumulative_discounted_net" and proj.cost_neutral_year == int(r["year"]):
                note = "first year with cumulative position ≤ £0 (cost-neutral)"
            rows.append(estimate_row("budget_impact", outcome, "projection", r[col], se, r[f"{col}_low"],
                                     r[f"{col}_high"], stratum=f"year={int(r['year'])}", year=int(r["year"]),
                                     holders=float(r["holders"]), ci_method="percentile" if arr is not None else "",
                                     n_replicates=proj.n_draws or None, note=note))
    return rows


def run_budget_impact(plan, *, results_dir=None, demo: bool = False, rng: np.random.Generator | None = None,
                      ranges=None) -> Results:
    """Budget impact as a ``Results`` for ``report.writer.write_outputs``.

    Parameters
    ----------
    plan : the analysis plan; its ``budget_impact`` section, ``confidence_level`` and ``costs.price_year`` are used.
    results_dir : a compare run's output folder (or its in-memory ``Results``) supplying budgets and indirect
        cost changes by band and their bootstrap draws (plan values win where both are given).
    demo : illustrative inputs (:func:`demo_inputs`, draws from :func:`demo_draws`); the plan's budget_impact
        section is not used. Cannot be combined with ``results_dir``.
    rng : generator for the demo's draws (default: from ``plan.seed``); nothing else is random.
    ranges : optional one-way sensitivity ranges (see :func:`one_way_sensitivity`).

    Returns
    -------
    Results with estimate rows (``analysis=budget_impact``, outcomes ``net_impact``, ``discounted_net_impact``,
    ``cumulative_discounted_net``; ``stratum=year=<t>``, method ``projection``), tables ``budget_impact`` and
    ``budget_impact_tornado`` (published without disclosure control: aggregate projections), figures
    ``budget_impact_fan`` and ``budget_impact_tornado``, ``meta["budget_impact"]`` and warnings.
    """
    if demo and results_dir is not None:
        raise PlanError("budget impact: --demo uses illustrative inputs and cannot be combined with --from-results. "
                        "Fix: drop one of them")
    conf = float(plan.confidence_level)
    notes = []
    price_year = plan.costs.price_year
    inputs = None
    if demo:
        rng = rng if rng is not None else np.random.default_rng(plan.seed)
        settings = demo_inputs()
        draws = demo_draws(settings, rng)
        sources = {"budget_per_holder": {b: "demo" for b in settings.budget_per_holder},
                   "indirect_change_per_holder": {b: "demo" for b in settings.indirect_change_per_holder}}
        notes.append("demo: the budget impact inputs and their draws are illustrative (56,000 people eligible for "
                     "NHS continuing healthcare; steady-state saving near the £3,100 a person a year quoted), not "
                     "estimates; use --from-results for an evaluation's own numbers")
    else:
        if results_dir is not None:
            inputs = inputs_from_results(results_dir, require=False)
            if inputs.get("price_year") and inputs["price_year"] != price_year:
                notes.append(f"compare results are at {inputs['price_year']} prices and the plan's costs.price_year "
                             f"is {price_year}; values are used as given (not re-priced)")
                price_year = inputs["price_year"]
        settings, draws, sources, more = resolve_inputs(plan.budget_impact, inputs)
        notes += more
    proj = project(settings, draws=draws, conf_level=conf)
    tornado = one_way_sensitivity(settings, draws=draws, conf_level=conf, ranges=ranges)

    res = Results()
    res.add(_estimate_rows(proj))
    res.tables["budget_impact"] = proj.table
    res.tables["budget_impact_tornado"] = tornado
    res.table_specs["budget_impact"] = {"disclose": False}
    res.table_specs["budget_impact_tornado"] = {"disclose": False}
    res.figures["budget_impact_fan"] = fan_chart(proj)
    res.figures["budget_impact_tornado"] = tornado_chart(tornado)
    res.warnings += [n if n.startswith("budget impact") or n.startswith("demo") else f"budget impact: {n}"
                     for n in notes]
    res.warnings += _assumption_warnings(settings, proj, sources)
    res.meta["budget_impact"] = {
        "settings": settings.model_dump(mode="json"),
        "source": "demo" if demo else ("results" if inputs is not None else "plan"),
        "results_dir": None if results_dir is None or isinstance(results_dir, Results) else str(results_dir),
        "input_sources": sources,
        "price_year": price_year,
        "conf_level": conf,
        "n_draws": proj.n_draws,
        "cost_neutral_year": proj.cost_neutral_year,
        "first_saving_year": proj.first_saving_year,
        "final_cumulative_discounted": proj.final_cumulative,
        "prob_cost_neutral_by_final_year": None if proj.n_draws == 0 else proj.prob_cost_neutral,
        "logistic_steepness": LOGISTIC_STEEPNESS,
        "sensitivity_relative": SENSITIVITY_RELATIVE,
        "method": _method_text(settings, conf, proj.n_draws, price_year),
    }
    return res
