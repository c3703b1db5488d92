"""The cost-effectiveness estimator: point estimates, jackknife influence values and the batched bootstrap
for every model group, assembled into a :class:`CeaResult`."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm

from ..errors import EstimationError, PlanError
from ..outcomes import design_matrix
from ..progress import progress
from ..results import rows_frame
from .bootstrap import cluster_units, iter_bootstrap_indices, replicate_counts, stratum_streams
from .decision import ceac_lambdas
from .strata import Group, build_groups, sorted_positions, stratum_order
from .sur import loo_change, prepare_moments, replicate_coefficients
from .tables import DRAW_COLUMNS, MODELS, method_text, not_estimable_rows, stratum_outputs, table_row

__all__ = ["CeaResult", "cea", "cea_groups", "resolve_effect"]

_PRIMARY = ("d_effect", "d_cost")        # both needed for NMB; the joint person set is defined by them
_CHUNK_CELLS = 1 << 22                   # replicates × people per batch (bounds the weight matrix at ~32 MB)


@dataclass
class CeaResult:
    """Everything :func:`cea` produced.

    Attributes
    ----------
    estimates : results rows (``analysis = "cea"``), see :func:`cea`.
    table : one readable row per stratum (for ``tables/cea.csv``).
    ceac : ``stratum, lambda_gbp, prob_cost_effective`` (for ``tables/ceac.csv``).
    draws : CE-plane draws ``stratum, replicate, d_effect, d_qaly, d_cost, d_cost_direct, d_cost_indirect``.
    effect : the effect measure used (``scrqol`` or ``ascot_raw``).
    notes : sentences for people (skipped strata, models not estimable, replicates dropped).
    method : a paragraph describing what was done, for the report's methods section.
    """

    estimates: pd.DataFrame
    table: pd.DataFrame
    ceac: pd.DataFrame
    draws: pd.DataFrame
    effect: str
    notes: list = field(default_factory=list)
    method: str = ""


# ---------------------------------------------------------------------------------------------------------
# small closed-form pieces
# ---------------------------------------------------------------------------------------------------------
def resolve_effect(df: pd.DataFrame, effect: str = "auto", *, followup_wave="t1", baseline_wave="t0") -> str:
    """The effect measure: ``scrqol`` when both waves are present with data, else ``ascot_raw``."""
    if effect not in ("auto", "scrqol", "ascot_raw"):
        raise PlanError(f"cea.effect: {effect!r} is not one of auto, scrqol, ascot_raw")

    def usable(stem):
        cols = [f"{stem}_{followup_wave}", f"{stem}_{baseline_wave}"]
        return all(c in df.columns for c in cols) and df[cols[0]].notna().any()

    candidates = ["scrqol", "ascot_raw"] if effect == "auto" else [effect]
    for stem in candidates:
        if usable(stem):
            return stem
    need = " or ".join(f"{s}_{followup_wave} and {s}_{baseline_wave}" for s in candidates)
    raise EstimationError(f"cost-effectiveness: the effect measure needs {need} with data; score ASCOT "
                          f"(weights file or precomputed scrqol_<wave>) or set cea.effect in the plan")


def cea(df: pd.DataFrame, covariates, *, rng: np.random.Generator, effect: str = "auto",
        strata=("all", "budget_band", "implementation_model", "budget_band:implementation_model",
                "condition", "deployment"),
        lambdas=(20000.0, 25000.0, 30000.0, 35000.0), B: int = 5000, cluster_bootstrap: bool = False,
        cluster: str = "site", conf_level: float = 0.95, ceac_max: float = 100000.0, ceac_step: float = 1000.0,
        min_per_arm: int = 10, baseline_wave: str = "t0", followup_wave: str = "t1",
        quiet: bool | None = None) -> CeaResult:
    """Stratified cost-effectiveness with a vectorised non-parametric bootstrap.

    Parameters
    ----------
    df : analysis frame (``phb``, effect waves, ``qaly``, ``eq5d_index_t0``, ``cost_total``, ``cost_direct``,
        ``cost_indirect``, ``cost_indirect_pre``, covariates, stratum variables, ``site``).
    covariates : adjustment columns for every model (strings become treatment-coded dummies).
    rng : the only source of randomness; same seed → identical numbers.
    effect : ``auto`` (``scrqol`` when available, else ``ascot_raw``), ``scrqol`` or ``ascot_raw``.
    strata : ``all``, variable names and ``a:b`` crosses.
    lambdas : willingness to pay per unit of the effect measure (£) for NMB rows.
    B : bootstrap replicates. cluster_bootstrap : resample sites (``cluster``) within arm instead of people.
    min_per_arm : a stratum with fewer people than this in an arm is reported as not estimable.

    Returns
    -------
    CeaResult. ``estimates`` rows (``analysis = "cea"``), per stratum: ``incremental_cost``,
    ``incremental_cost_direct``, ``incremental_cost_indirect``, ``incremental_effect``, ``incremental_qaly``
    (``method = ols_bootstrap``; ``estimate`` = OLS point estimate, ``se`` = bootstrap SD, ``ci_low``/
    ``ci_high`` = percentile interval), ``icer`` (``quadrant``, ``icer_meaning``, shares of replicates per
    quadrant) and ``nmb`` per λ (``method = bootstrap_nmb``, ``lambda_gbp``, ``prob_cost_effective``).
    Extra columns: ``effect_measure``, ``comparison``, ``lambda_gbp``, ``ci_method``, ``ci_low_bca``,
    ``ci_high_bca``, ``n_replicates``, ``note``.

    Notes
    -----
    Person set: people with the effect at both waves, ``cost_total``, ``cost_indirect_pre`` and the
    covariates observed (the pair needed for net benefit); resampling is of these people. The QALY and
    direct/indirect cost models use the complete cases for their own columns within that set (weight 0
    otherwise). PHB holders with a missing stratum variable are left out of that variable's model.
    Resampling is stratified by arm and, in a PHB-only model, by the stratum within the PHB arm (so each
    stratum keeps its size); with ``cluster_bootstrap`` whole sites are resampled within arm (a PHB-only
    stratum's size then varies, and a replicate in which it is empty is left out and counted in
    ``n_replicates``). Point estimates are OLS (statsmodels) on the same person set. NMB = λ·ΔE − ΔC per
    replicate; the probability cost-effective is the share of replicates with NMB > 0 (ties count as not
    cost-effective), so the CEAC at λ = 0 is the share of replicates that save money.

    Intervals follow ``boot::boot.ci``: percentile and BCa with the (R+1)·α order-statistic rule. The BCa
    acceleration uses jackknife influence values Lᵢ = (n_s − 1)(θ̂ − θ̂₍₋ᵢ₎) with n_s the size of i's
    resampling stratum (boot's ``empinf(type = "jack")``), computed in closed form for OLS; with the cluster
    bootstrap, the delete-one-(arm, site) jackknife refitted by the batched solver. ``boot.ci``'s default
    influence values (regression on the bootstrap array) approximate the same quantities; pass
    ``L = empinf(type = "jack")`` to ``boot.ci`` to reproduce our BCa exactly.

    ``table`` (one row per stratum): ``stratum, comparison, effect_measure, n_phb, n_control, n_replicates``,
    each incremental outcome with ``_ci_low``/``_ci_high`` (percentile), ``icer, quadrant, icer_meaning``, and
    per λ ``nmb_<λ>``, ``nmb_<λ>_ci_low``, ``nmb_<λ>_ci_high``, ``prob_ce_<λ>``; ``note``. ``ceac``: ``stratum,
    lambda_gbp, prob_cost_effective`` for λ = 0, ``ceac_step``, … ``ceac_max``. ``draws``: one row per
    stratum and replicate (``replicate`` 1…B) with ``d_effect, d_qaly, d_cost, d_cost_direct, d_cost_indirect``.
    """
    if not 0.5 < conf_level < 1:
        raise PlanError(f"conf_level must be between 0.5 and 1; got {conf_level}")
    if int(B) < 2:
        raise PlanError(f"cea.bootstrap must be at least 2 replicates; got {B}")
    if ceac_max <= 0 or ceac_step <= 0:
        raise PlanError("cea.ceac_max and cea.ceac_step must be positive")
    lambdas = [float(v) for v in lambdas]
    if any(v < 0 for v in lambdas):
        raise PlanError(f"cea.lambdas must be non-negative; got {lambdas}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (made from the plan's seed)")
    B = int(B)
    cl = cluster if cluster_bootstrap else None
    eff, models, groups, na_rows, notes = _prepare(df, covariates, effect, strata, cl, min_per_arm,
                                                   baseline_wave, followup_wave)
    covariates = list(covariates)
    streams = stratum_streams(rng)
    rows, tables, draws_parts, ceac_parts = [], [], [], []
    lam_grid = ceac_lambdas(ceac_max, ceac_step)
    with progress(total=B * len(groups), desc="bootstrap", unit="rep", quiet=quiet) as bar:
        for g in groups:
            fitted = _fit_group(g, models, B, streams(g.key), cl, min_per_arm, bar)
            for lab_i, label in enumerate(g.labels):
                out = stratum_outputs(fitted, lab_i, label, g, eff, lambdas, lam_grid, conf_level, B)
                rows.extend(out["rows"])
                tables.append(out["table"])
                if out["draws"] is not None:
                    draws_parts.append(out["draws"])
                    ceac_parts.append(out["ceac"])
            notes.extend(fitted["notes"])
    for label, kind, n1, n0, why in na_rows:
        rows.extend(not_estimable_rows(label, kind, n1, n0, why, eff, lambdas))
        tables.append(table_row(label, kind, eff, n1, n0, {}, lambdas, note=why))

    order = stratum_order(strata)
    est = rows_frame(rows)
    est = est.iloc[sorted_positions(est["stratum"], order)].reset_index(drop=True)
    table = pd.DataFrame(tables)
    if not table.empty:
        table = table.iloc[sorted_positions(table["stratum"], order)].reset_index(drop=True)
    draws = (pd.concat(draws_parts, ignore_index=True) if draws_parts
             else pd.DataFrame(columns=["stratum", "replicate", *DRAW_COLUMNS]))
    ceac = (pd.concat(ceac_parts, ignore_index=True) if ceac_parts
            else pd.DataFrame(columns=["stratum", "lambda_gbp", "prob_cost_effective"]))
    return CeaResult(estimates=est, table=table, ceac=ceac, draws=draws, effect=eff, notes=notes,
                     method=method_text(eff, B, cluster_bootstrap, cluster, conf_level, lambdas, covariates,
                                         min_per_arm, baseline_wave, followup_wave))


def _prepare(df, covariates, effect, strata, cluster, min_per_arm, baseline_wave, followup_wave):
    """Effect measure, available models, model groups and not-estimable strata."""
    eff = resolve_effect(df, effect, followup_wave=followup_wave, baseline_wave=baseline_wave)
    covariates = list(covariates)
    notes: list[str] = []
    models = []  # (draw, outcome, y, base)
    for draw, outcome, ytpl, btpl in MODELS:
        y, base = ytpl.format(e=eff, f=followup_wave, b=baseline_wave), btpl.format(e=eff, b=baseline_wave)
        absent = [c for c in (y, base) if c not in df.columns]
        if absent:
            if draw in _PRIMARY:
                raise EstimationError(f"cost-effectiveness: column(s) {absent} are not in the analysis data; "
                                      "cost the service use (costs.person_costs) before the CEA")
            notes.append(f"{outcome} not estimated: column(s) {absent} are not in the data")
            continue
        models.append((draw, outcome, y, base))
    needed = list(dict.fromkeys(["phb", f"{eff}_{followup_wave}", f"{eff}_{baseline_wave}", "cost_total",
                                 "cost_indirect_pre", *covariates] + ([cluster] if cluster else [])))
    absent = [c for c in needed if c not in df.columns]
    if absent:
        raise EstimationError(f"cost-effectiveness: column(s) {absent} are not in the analysis data; "
                              "check the plan's covariates and cluster")
    base = df.dropna(subset=needed).copy()
    if base.empty or base["phb"].nunique() < 2:
        raise EstimationError("cost-effectiveness: no people in one arm have the effect, costs and covariates "
                              "all observed; the comparison cannot be made")
    groups, na_rows = build_groups(base, covariates, strata, min_per_arm, cluster, notes)
    return eff, models, groups, na_rows, notes


def cea_groups(df: pd.DataFrame, covariates, *, effect: str = "auto",
               strata=("all", "budget_band", "implementation_model", "budget_band:implementation_model",
                       "condition", "deployment"),
               cluster: str | None = None, min_per_arm: int = 10, baseline_wave: str = "t0",
               followup_wave: str = "t1") -> list[dict]:
    """The model groups :func:`cea` fits, in order: one dict per group with ``key`` (the name of its random
    stream), ``kind``, ``labels`` (strata reported), ``index`` (the frame's index of the people analysed, in
    order) and ``resample`` (resampling stratum per person). For checking the bootstrap against other software:
    ``bootstrap_indices(g["resample"], B, stratum_streams(rng)(g["key"]))`` are the replicates :func:`cea`
    draws for that group with the same ``rng``. With ``cluster`` (the cluster bootstrap) the dicts also hold
    ``units`` (resampling unit per person: one per arm and site) and ``unit_strata`` (each unit's arm); the
    replicates are then ``bootstrap_indices(g["unit_strata"], B, stream)`` over units."""
    _, _, groups, _, _ = _prepare(df, covariates, effect, strata, cluster, min_per_arm, baseline_wave,
                                  followup_wave)
    out = []
    for g in groups:
        d = {"key": g.key, "kind": g.kind, "labels": list(g.labels), "index": g.data.index,
             "resample": np.asarray(g.resample)}
        if cluster is not None:
            d["units"], d["unit_strata"] = cluster_units(g.data, cluster)
        out.append(d)
    return out


def _fit_group(g: Group, models, B, rng, cluster, min_per_arm, bar):
    """Point estimates, jackknife influence values and bootstrap draws for one model group."""
    data = g.data
    n, m = len(data), len(g.labels)
    notes = []
    C = design_matrix(data, g.covariates)
    Cv = C.to_numpy(dtype=float)
    ind = g.indicators
    is_phb = data["phb"].to_numpy() == 1
    resample_codes = pd.factorize(pd.Series(g.resample), sort=True)[0]

    # --- per-model design, mask, indicators kept ------------------------------------------------------
    specs = {}
    for draw, outcome, y, base in models:
        yv = data[y].to_numpy(dtype=float)
        bv = data[base].to_numpy(dtype=float)
        mask = np.isfinite(yv) & np.isfinite(bv)
        keep = []
        for j in range(m):
            n1 = int((mask & (ind[:, j] == 1)).sum())
            if n1 < min_per_arm:
                mask &= ind[:, j] == 0      # too few observed in this stratum for this model: leave them out
            else:
                keep.append(j)
        n0 = int((mask & ~is_phb).sum())
        why = None
        if n0 < min_per_arm:
            why = f"fewer than {min_per_arm} controls with {y} observed"
        elif not keep:
            why = f"fewer than {min_per_arm} PHB holders with {y} observed"
        # a covariate column constant among this model's people (e.g. a rare level whose members all lack
        # the outcome) is left out, as R's lm aliases it; said in a note
        Cm = Cv[mask]
        ccols = [0] + [c for c in range(1, Cv.shape[1]) if mask.any() and np.ptp(Cm[:, c]) > 0]
        if why is None and len(ccols) < Cv.shape[1]:
            gone = [C.columns[c] for c in range(1, Cv.shape[1]) if c not in ccols]
            notes.append(f"cost-effectiveness {g.key}: {outcome} model leaves out {gone} (constant among the "
                         f"{int(mask.sum())} people with {y} observed)")
        X = np.column_stack([Cv[:, ccols], ind[:, keep], bv]) if keep else None
        if why is None:
            Xm = X[mask]
            if np.linalg.matrix_rank(Xm) < Xm.shape[1]:
                why = f"the covariates are collinear among the {int(mask.sum())} people with {y} observed"
        if why is not None:
            if draw in _PRIMARY:
                notes.append(f"cost-effectiveness stratum {g.key}: not estimable ({why})")
                return {"notes": notes, "failed": why}
            notes.append(f"cost-effectiveness {g.key}: {outcome} not estimable ({why})")
            continue
        dropped = [g.labels[j] for j in range(m) if j not in keep]
        for lab in dropped:
            notes.append(f"cost-effectiveness {lab}: {outcome} not estimable (fewer than {min_per_arm} PHB "
                         f"holders with {y} observed)")
        cols = list(range(len(ccols), len(ccols) + len(keep)))
        fit = sm.OLS(yv[mask], X[mask]).fit()
        point = np.full(m, np.nan)
        point[keep] = fit.params[cols]
        specs[draw] = dict(outcome=outcome, y=y, base=base, yv=yv, bv=bv, mask=mask, keep=keep, X=X, cols=cols,
                           ccols=ccols,
                           point=point, n1=[int((mask & (ind[:, j] == 1)).sum()) for j in range(m)],
                           n0=int((mask & ~is_phb).sum()))

    # --- jackknife influence values (for BCa) --------------------------------------------------------------
    if cluster is None:
        ns = np.bincount(resample_codes)[resample_codes]          # stratum size per person
        for s in specs.values():
            L = np.zeros((n, m))
            mk = s["mask"]
            L[np.ix_(mk, s["keep"])] = loo_change(s["X"][mk], s["yv"][mk], s["cols"])
            s["L"] = (ns - 1)[:, None] * L
    else:
        units, unit_arm = cluster_units(data, cluster)
        G_arm = np.bincount(unit_arm.astype(int), minlength=2)[unit_arm.astype(int)]
        W_jack = np.ones((units.max() + 1, n))
        W_jack[units, np.arange(n)] = 0.0                              # delete one site-arm cluster per row
        jack = replicate_coefficients(specs, W_jack, m)
        for d, s in specs.items():
            s["L"] = (G_arm - 1)[:, None] * (s["point"][None, :] - jack[d])

    # --- bootstrap --------------------------------------------------------------------------------------
    if cluster is None:
        unit_of = np.arange(n)
        unit_strata = resample_codes
    else:
        unit_of = units
        unit_strata = unit_arm
    n_units = unit_of.max() + 1
    draws = {d: np.full((B, m), np.nan) for d in specs}
    chunk = max(1, _CHUNK_CELLS // max(n, 1))
    prepared = prepare_moments(specs, m)
    start = 0
    for block in iter_bootstrap_indices(unit_strata, B, rng, chunk):
        stop = start + block.shape[0]
        W = replicate_counts(block, n_units)
        if cluster is not None:
            W = W[:, unit_of]
        coefs = replicate_coefficients(specs, W, m, prepared)
        for d in specs:
            draws[d][start:stop] = coefs[d]
        bar.update(stop - start)
        start = stop
    return {"notes": notes, "failed": None, "specs": specs, "draws": draws}

