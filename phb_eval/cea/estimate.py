"""The cost-effectiveness estimator: person set (complete cases or imputed), effect measures over the horizon,
point estimates, jackknife influence values and the batched bootstrap per model group, assembled into a
:class:`CeaResult`."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import statsmodels.api as sm

from ..errors import EstimationError, PlanError
from ..outcomes import design_matrix
from ..progress import progress
from ..results import rows_frame
from .bootstrap import cluster_units, iter_bootstrap_indices, replicate_counts, stratum_streams, two_stage_weights
from .decision import ceac_lambdas
from .imputation import impute_for_cea
from .nbr import net_benefit_regression
from .qaly import auc_years, horizon_waves
from .strata import Group, build_groups, sorted_positions, stratum_order
from .sur import loo_change, prepare_moments, replicate_coefficients
from .tables import (ASCOT_YEARS, DRAW_COLUMNS, MODELS, QALY, Context, method_text, not_estimable_rows,
                     stratum_outputs, table_row)

__all__ = ["CeaResult", "cea", "cea_groups", "resolve_effect", "MISSING", "BOOTSTRAP_UNITS"]

MISSING = ("mi_boot", "boot_mi", "complete_case")
BOOTSTRAP_UNITS = ("site", "two_stage", "person")
_PRIMARY = ("d_ascot", "d_cost")         # both needed for the person set; the ASCOT-years NMB is always there
_CHUNK_CELLS = 1 << 22                   # replicates × people per batch (bounds the weight matrix at ~32 MB)
DEFAULT_STRATA = ("all", "budget_band", "implementation_model", "budget_band:implementation_model", "condition",
                  "deployment")
DEFAULT_LAMBDAS = (20000.0, 25000.0, 30000.0, 35000.0)


@dataclass
class CeaResult:
    """Everything :func:`cea` produced.

    Attributes
    ----------
    estimates : results rows (``analysis = "cea"``), see :func:`cea`.
    table : one readable row per stratum (for ``tables/cea.csv``).
    ceac : ``stratum, effect_measure, lambda_gbp, prob_cost_effective, optimal, prob_optimal`` (CEAC and CEAF).
    draws : CE-plane draws ``stratum, replicate, [imputation,] d_effect, d_ascot, d_qaly, d_cost, …``.
    evpi : ``stratum, effect_measure, horizon_years, lambda_gbp, evpi_per_person, n_replicates``.
    nbr, nbr_tests : net-benefit regression by budget band × implementation model cell and its joint tests
        (budget size, flexibility, interaction, any difference), see :mod:`.nbr`.
    effect : the ASCOT score used (``scrqol`` or ``ascot_raw``).
    notes : sentences for people (skipped strata, models not estimable, replicates dropped).
    method : a paragraph describing what was done, for the report's methods section.
    datasets : the analysed frames (one, or one per imputation), for checks against other software; never
        published (person-level).
    settings : the resolved settings (missing-data approach, bootstrap unit, m, horizon, λ, headline).
    groups : per model group ``key`` (its random stream), ``index`` (people, in order), ``units`` (resampling
        unit per person) and ``unit_strata`` (each unit's stratum): the replicates are
        ``bootstrap_indices(unit_strata, B, stratum_streams(boot_rng)(key))`` over units, with ``boot_rng`` the
        ``rng`` itself (complete cases) or ``rng.spawn(2)[1]`` (``mi_boot``). For checks; never published.
    """

    estimates: pd.DataFrame
    table: pd.DataFrame
    ceac: pd.DataFrame
    draws: pd.DataFrame
    effect: str
    evpi: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list = field(default_factory=list)
    method: str = ""
    datasets: list = field(default_factory=list, repr=False)
    settings: dict = field(default_factory=dict)
    groups: list = field(default_factory=list, repr=False)
    nbr: pd.DataFrame = field(default_factory=pd.DataFrame)
    nbr_tests: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def ceaf(self) -> pd.DataFrame:
        """The acceptability frontier: the optimal option per stratum, measure and λ, with its probability."""
        cols = ["stratum", "effect_measure", "lambda_gbp", "optimal", "prob_optimal"]
        return self.ceac[cols] if not self.ceac.empty else pd.DataFrame(columns=cols)


def resolve_effect(df: pd.DataFrame, effect: str = "auto", *, followup_wave="t1", baseline_wave="t0") -> str:
    """The ASCOT score: ``scrqol`` when both waves are present with data, else ``ascot_raw``."""
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


def _legacy(lambdas, cluster_bootstrap, lambda_ascot, bootstrap_unit, notes):
    """Map the old ``lambdas`` (per unit of the ASCOT score) and ``cluster_bootstrap`` arguments."""
    if lambdas is not None:
        lambda_ascot = lambdas
        notes.append("cea: 'lambdas' is read as lambda_ascot (λ per ASCOT-year)")
    if cluster_bootstrap is not None:
        bootstrap_unit = "site" if cluster_bootstrap else "person"
        notes.append(f"cea: cluster_bootstrap = {bool(cluster_bootstrap)} is read as bootstrap_unit = {bootstrap_unit}")
    return lambda_ascot, bootstrap_unit


def cea(df: pd.DataFrame, covariates, *, rng: np.random.Generator, effect: str = "auto", strata=DEFAULT_STRATA,
        lambda_qaly=DEFAULT_LAMBDAS, lambda_ascot=DEFAULT_LAMBDAS, headline: str = "qaly", horizon: float = 1.0,
        wave_months: dict | None = None, B: int = 5000, missing: str = "mi_boot", m: int = 20,
        imputation: dict | None = None, bootstrap_unit: str = "site", cluster: str = "site",
        conf_level: float = 0.95, ceac_max: float = 100000.0, ceac_step: float = 1000.0, min_per_arm: int = 10,
        baseline_wave: str = "t0", followup_wave: str = "t1", quiet: bool | None = None,
        lambdas=None, cluster_bootstrap: bool | None = None) -> CeaResult:
    """Stratified cost-effectiveness with QALY and ASCOT-year net benefit and a vectorised bootstrap.

    Parameters
    ----------
    df : analysis frame (``phb``, ASCOT and EQ-5D index waves or ``qaly``, ``cost_total``, ``cost_direct``,
        ``cost_indirect``, ``cost_indirect_pre``, covariates, stratum variables, ``site``; ``mortality``).
    covariates : adjustment columns for every model (strings become treatment-coded dummies).
    rng : the only source of randomness; same seed → identical numbers.
    effect : ASCOT score: ``auto`` (``scrqol`` when available, else ``ascot_raw``), ``scrqol`` or ``ascot_raw``.
    strata : ``all``, variable names and ``a:b`` crosses.
    lambda_qaly, lambda_ascot : willingness to pay per QALY and per ASCOT-year (£), one NMB row each.
    headline : ``qaly`` or ``ascot`` — the measure listed first (``headline = True`` on its rows).
    horizon : years from the baseline wave over which QALYs and ASCOT-years are the area under the curve.
    wave_months : wave -> months after consent (the plan's ``data.waves``); default t0 = 0, t1 = 12.
    B : bootstrap replicates (per imputed dataset).
    missing : ``mi_boot`` (impute every participant alive at follow-up ``m`` times, bootstrap each, Rubin's
        rules) or ``complete_case``. imputation : ``iterations``, ``method``, ``donors`` for the chained equations.
    bootstrap_unit : ``site`` (sites within arm), ``two_stage`` (sites, then people within them, with
        shrinkage) or ``person``; without a ``cluster`` column the person bootstrap is used, with a note.
    min_per_arm : a stratum with fewer people than this in an arm is reported as not estimable.
    lambdas, cluster_bootstrap : the earlier names of ``lambda_ascot`` and ``bootstrap_unit`` (mapped, with a note).

    Returns
    -------
    CeaResult. ``estimates`` rows (``analysis = "cea"``), per stratum: ``incremental_cost`` (and
    ``_direct``, ``_indirect``), ``incremental_effect`` (follow-up ASCOT score difference),
    ``incremental_ascot_years``, ``incremental_qaly``, ``icer`` per effect measure, and ``nmb`` per effect
    measure and λ (``effect_measure`` = ``qaly`` | ``ascot_years``, ``horizon_years``, ``lambda_gbp``,
    ``prob_cost_effective``, ``evpi_per_person``, ``headline``).

    Notes
    -----
    Complete cases: people with the ASCOT score at the waves the horizon needs, ``cost_total``,
    ``cost_indirect_pre`` and the covariates observed; the QALY and cost-component models use their own
    complete cases within that set. Intervals then follow ``boot::boot.ci`` (percentile; BCa with jackknife
    influence values in closed form, or the delete-one-(arm, site) jackknife with the site bootstrap).

    ``mi_boot``: living people with the categorical covariates and the cluster observed; their missing scores,
    costs and numeric covariates are imputed (``cea.imputation`` below), areas under the curve are computed on
    each completed dataset, and every dataset is bootstrapped with the same replicate indices. Point estimate,
    SE and interval pool per-dataset estimates and bootstrap variances by Rubin's rules (complete-data df =
    clusters − 1 for the site bootstraps, n − p for the person bootstrap). Randomness: ``rng.spawn(2)`` gives
    the imputation stream and the bootstrap stream.

    Resampling is stratified by arm and, in a PHB-only model with the person bootstrap, by the stratum within
    the PHB arm; with the site bootstraps whole (arm, site) clusters are resampled, so a PHB-only stratum's
    size varies and a replicate in which it is empty is left out and counted in ``n_replicates``.
    """
    if not 0.5 < conf_level < 1:
        raise PlanError(f"conf_level must be between 0.5 and 1; got {conf_level}")
    if int(B) < 2:
        raise PlanError(f"cea.bootstrap must be at least 2 replicates; got {B}")
    if ceac_max <= 0 or ceac_step <= 0:
        raise PlanError("cea.ceac_max and cea.ceac_step must be positive")
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng must be a numpy.random.Generator (made from the plan's seed)")
    notes: list[str] = []
    lambda_ascot, bootstrap_unit = _legacy(lambdas, cluster_bootstrap, lambda_ascot, bootstrap_unit, notes)
    lams = {"qaly": [float(v) for v in lambda_qaly], "ascot_years": [float(v) for v in lambda_ascot]}
    if any(v < 0 for vals in lams.values() for v in vals):
        raise PlanError(f"cea.lambda_qaly and cea.lambda_ascot must be non-negative; got {lams}")
    if headline not in ("qaly", "ascot"):
        raise PlanError(f"cea.headline: {headline!r} is not one of qaly, ascot")
    if missing not in MISSING:
        raise PlanError(f"cea.missing: {missing!r} is not one of {', '.join(MISSING)}")
    if bootstrap_unit not in BOOTSTRAP_UNITS:
        raise PlanError(f"cea.bootstrap_unit: {bootstrap_unit!r} is not one of {', '.join(BOOTSTRAP_UNITS)}")
    B = int(B)
    months = dict(wave_months or {baseline_wave: 0, followup_wave: 12})
    if bootstrap_unit != "person" and (cluster not in df.columns or df[cluster].isna().all()):
        notes.append(f"cost-effectiveness: no {cluster!r} column, so people (not {cluster}s) are resampled")
        bootstrap_unit = "person"
    cl = cluster if bootstrap_unit != "person" else None

    eff = resolve_effect(df, effect, followup_wave=followup_wave, baseline_wave=baseline_wave)
    if missing != "complete_case":
        imp_rng, boot_rng = rng.spawn(2)
    else:
        imp_rng, boot_rng = None, rng
    base, datasets, models = _person_set(df, covariates, eff, months, baseline_wave, followup_wave, horizon, cl,
                                         missing, m, imp_rng, imputation or {}, notes, quiet)
    groups, na_rows = build_groups(base, list(covariates), strata, min_per_arm, cl, notes)
    covariates = list(covariates)
    streams = stratum_streams(boot_rng)
    ctx = Context(eff=eff, lambdas=lams, headline="qaly" if headline == "qaly" else "ascot_years", horizon=horizon,
                  lam_grid=ceac_lambdas(ceac_max, ceac_step), conf_level=conf_level, B=B)
    if "d_qaly" not in [mm[0] for mm in models]:
        ctx.lambdas = {"ascot_years": lams["ascot_years"]}
        if ctx.headline == "qaly":
            notes.append("cost-effectiveness: no QALYs in the data, so ASCOT-years are the headline measure")
            ctx.headline = "ascot_years"
    rows, tables, draws_parts, ceac_parts, evpi_parts, group_info = [], [], [], [], [], []
    with progress(total=B * len(groups) * len(datasets), desc="bootstrap", unit="rep", quiet=quiet) as bar:
        for g in groups:
            parts = [d.loc[g.data.index] for d in datasets]
            if missing == "boot_mi":
                fitted = _boot_mi_group(g, models, parts, df, covariates, eff, months, baseline_wave, followup_wave,
                                        horizon, cl, bootstrap_unit, B, streams(g.key), min_per_arm,
                                        imputation or {}, bar)
            else:
                fitted = _fit_group(g, models, parts, B, streams(g.key), bootstrap_unit, cl, min_per_arm, bar)
            for lab_i, label in enumerate(g.labels):
                out = stratum_outputs(fitted, lab_i, label, g, ctx)
                rows.extend(out["rows"])
                tables.append(out["table"])
                for part, store in ((out["draws"], draws_parts), (out["ceac"], ceac_parts), (out["evpi"], evpi_parts)):
                    if part is not None:
                        store.append(part)
            notes.extend(fitted["notes"])
            if "units" in fitted:
                group_info.append({"key": g.key, "labels": list(g.labels), "index": g.data.index,
                                   "units": fitted["units"], "unit_strata": fitted["unit_strata"]})
    for label, kind, n1, n0, why in na_rows:
        rows.extend(not_estimable_rows(label, kind, n1, n0, why, ctx))
        tables.append(table_row(label, kind, n1, n0, {}, ctx, note=why))

    order = stratum_order(strata)
    est = rows_frame(rows)
    est = est.iloc[sorted_positions(est["stratum"], order)].reset_index(drop=True)
    table = pd.DataFrame(tables)
    if not table.empty:
        table = table.iloc[sorted_positions(table["stratum"], order)].reset_index(drop=True)
    draws = (pd.concat(draws_parts, ignore_index=True) if draws_parts
             else pd.DataFrame(columns=["stratum", "replicate", *DRAW_COLUMNS]))
    ceac = (pd.concat(ceac_parts, ignore_index=True) if ceac_parts
            else pd.DataFrame(columns=["stratum", "effect_measure", "lambda_gbp", "prob_cost_effective", "optimal",
                                       "prob_optimal"]))
    evpi = pd.concat(evpi_parts, ignore_index=True) if evpi_parts else pd.DataFrame()
    measures = {"ascot_years": (ASCOT_YEARS, f"{eff}_{baseline_wave}")}
    if "qaly" in ctx.lambdas:
        measures["qaly"] = (QALY, f"eq5d_index_{baseline_wave}")
    nbr, nbr_tests = net_benefit_regression(datasets, covariates, measures, ctx.lambdas, cluster=cluster,
                                            conf_level=conf_level, horizon=horizon, min_per_cell=min_per_arm)
    settings = {"missing": missing, "m": len(datasets) if missing == "mi_boot" else 1,
                "bootstrap_unit": bootstrap_unit, "B": B, "horizon_years": horizon, "headline": ctx.headline,
                "lambda_qaly": lams["qaly"], "lambda_ascot": lams["ascot_years"], "effect": eff}
    return CeaResult(estimates=est, table=table, ceac=ceac, draws=draws, effect=eff, evpi=evpi, notes=notes,
                     method=method_text(ctx, missing, len(datasets), bootstrap_unit, cluster, covariates,
                                        min_per_arm, baseline_wave, followup_wave),
                     datasets=datasets, settings=settings, groups=group_info, nbr=nbr, nbr_tests=nbr_tests)


def _with_effects(frame, eff, months, base_wave, horizon, qaly_waves):
    """``frame`` plus the working columns: ASCOT-years and QALYs over the horizon (areas under the curve)."""
    out = frame.copy()
    waves = [w for w, _ in horizon_waves(months, base_wave, horizon)]
    out[ASCOT_YEARS] = auc_years({w: out[f"{eff}_{w}"] for w in waves}, months, base_wave, horizon)
    if qaly_waves:
        out[QALY] = auc_years({w: out[f"eq5d_index_{w}"] for w in waves}, months, base_wave, horizon)
    elif "qaly" in out:
        out[QALY] = out["qaly"]
    return out


def _person_set(df, covariates, eff, months, bw, fw, horizon, cluster, missing, m, rng, imp, notes, quiet):
    """The people analysed and the dataset(s): complete cases, or the living cohort imputed ``m`` times.
    People are put in ``participant_id`` order first, so imputation and resampling do not depend on the
    order of rows in the input files."""
    if "participant_id" in df.columns:
        df = df.iloc[np.argsort(df["participant_id"].astype(str).to_numpy(), kind="stable")]
    waves = [w for w, _ in horizon_waves(months, bw, horizon)]
    eff_cols = [f"{eff}_{w}" for w in waves]
    absent = [c for c in eff_cols if c not in df.columns]
    if absent:
        raise EstimationError(f"cost-effectiveness: the horizon of {horizon:g} year(s) needs {absent}, which are not "
                              "in the analysis data; shorten cea.horizon or add the waves")
    eq_cols = [f"eq5d_index_{w}" for w in waves]
    qaly_waves = all(c in df.columns and df[c].notna().any() for c in eq_cols)
    if not qaly_waves and "qaly" in df.columns:
        notes.append("cost-effectiveness: QALYs are the supplied qaly column (the EQ-5D index is not in the data at "
                     f"every wave of the {horizon:g}-year horizon)")
    models = []
    for draw, outcome, ytpl, btpl in MODELS:
        y, base = ytpl.format(e=eff, f=fw, b=bw), btpl.format(e=eff, b=bw)
        have_y = y in (ASCOT_YEARS,) or (y == QALY and (qaly_waves or "qaly" in df.columns)) or y in df.columns
        if not have_y or base not in df.columns:
            lack = [c for c in (y, base) if c not in df.columns and c not in (ASCOT_YEARS, QALY)] or ["qaly"]
            if draw in _PRIMARY:
                raise EstimationError(f"cost-effectiveness: column(s) {lack} are not in the analysis data; "
                                      "cost the service use (costs.person_costs) before the CEA")
            notes.append(f"{outcome} not estimated: column(s) {lack} are not in the data")
            continue
        models.append((draw, outcome, y, base))
    covariates = list(covariates)
    absent = [c for c in ["phb", "cost_total", "cost_indirect_pre", *covariates] + ([cluster] if cluster else [])
              if c not in df.columns]
    if absent:
        raise EstimationError(f"cost-effectiveness: column(s) {absent} are not in the analysis data; "
                              "check the plan's covariates and cluster")
    if missing == "complete_case":
        needed = list(dict.fromkeys(["phb", *eff_cols, "cost_total", "cost_indirect_pre", *covariates]
                                    + ([cluster] if cluster else [])))
        base = df.dropna(subset=needed)
        datasets = [_with_effects(base, eff, months, bw, horizon, qaly_waves)]
    else:
        qaly_inputs = eq_cols if qaly_waves else [c for c in ("qaly", f"eq5d_index_{bw}") if c in df.columns]
        base, imputed = impute_for_cea(df, covariates, eff_cols, qaly_inputs, cluster, m, rng, notes, **imp)
        datasets = [_with_effects(d, eff, months, bw, horizon, qaly_waves) for d in imputed]
    if base.empty or base["phb"].nunique() < 2:
        raise EstimationError("cost-effectiveness: no people in one arm have the effect, costs and covariates "
                              "all observed; the comparison cannot be made")
    return base, datasets, models


def cea_groups(df: pd.DataFrame, covariates, *, effect: str = "auto", strata=DEFAULT_STRATA,
               cluster: str | None = None, min_per_arm: int = 10, baseline_wave: str = "t0",
               followup_wave: str = "t1", horizon: float = 1.0, wave_months: dict | None = None) -> list[dict]:
    """The complete-case model groups :func:`cea` fits, in order: one dict per group with ``key`` (the name of
    its random stream), ``kind``, ``labels`` (strata reported), ``index`` (the frame's index of the people
    analysed, in order) and ``resample`` (resampling stratum per person). For checking the bootstrap against
    other software: ``bootstrap_indices(g["resample"], B, stratum_streams(rng)(g["key"]))`` are the replicates
    :func:`cea` draws for that group with the same ``rng``. With ``cluster`` (the site bootstrap) the dicts also
    hold ``units`` (resampling unit per person: one per arm and site) and ``unit_strata`` (each unit's arm); the
    replicates are then ``bootstrap_indices(g["unit_strata"], B, stream)`` over units."""
    notes: list[str] = []
    eff = resolve_effect(df, effect, followup_wave=followup_wave, baseline_wave=baseline_wave)
    months = dict(wave_months or {baseline_wave: 0, followup_wave: 12})
    base, _, _ = _person_set(df, covariates, eff, months, baseline_wave, followup_wave, horizon, cluster,
                             "complete_case", 1, None, {}, notes, True)
    groups, _ = build_groups(base, list(covariates), strata, min_per_arm, cluster, notes)
    out = []
    for g in groups:
        d = {"key": g.key, "kind": g.kind, "labels": list(g.labels), "index": g.data.index,
             "resample": np.asarray(g.resample)}
        if cluster is not None:
            d["units"], d["unit_strata"] = cluster_units(g.data, cluster)
        out.append(d)
    return out


def _specs(g: Group, data: pd.DataFrame, models, min_per_arm, notes):
    """Per-model design, mask, kept indicators and OLS point estimates on one dataset (None if a primary
    model is not estimable; the reason is the last note)."""
    n, m = len(data), len(g.labels)
    C = design_matrix(data, g.covariates)
    Cv = C.to_numpy(dtype=float)
    ind = g.indicators
    is_phb = data["phb"].to_numpy() == 1
    specs = {}
    for draw, outcome, y, base in models:
        yv = data[y].to_numpy(dtype=float)
        bv = data[base].to_numpy(dtype=float)
        mask = np.isfinite(yv) & np.isfinite(bv) & np.isfinite(Cv).all(axis=1)
        keep = []
        for j in range(m):
            n1 = int((mask & (ind[:, j] == 1)).sum())
            if n1 < min_per_arm:
                mask &= ind[:, j] == 0      # too few observed in this stratum for this model: leave them out
            else:
                keep.append(j)
        n0 = int((mask & ~is_phb).sum())
        why = None
        label = outcome.replace("incremental_", "")
        if n0 < min_per_arm:
            why = f"fewer than {min_per_arm} controls with {label} observed"
        elif not keep:
            why = f"fewer than {min_per_arm} PHB holders with {label} observed"
        # a covariate column constant among this model's people (e.g. a rare level whose members all lack
        # the outcome) is left out, as R's lm aliases it; said in a note
        Cm = Cv[mask]
        ccols = [0] + [c for c in range(1, Cv.shape[1]) if mask.any() and np.ptp(Cm[:, c]) > 0]
        if why is None and len(ccols) < Cv.shape[1]:
            gone = [C.columns[c] for c in range(1, Cv.shape[1]) if c not in ccols]
            notes.append(f"cost-effectiveness {g.key}: {outcome} model leaves out {gone} (constant among the "
                         f"{int(mask.sum())} people with {label} observed)")
        X = np.column_stack([np.nan_to_num(Cv[:, ccols]), ind[:, keep], np.nan_to_num(bv)]) if keep else None
        if why is None:
            Xm = X[mask]
            if np.linalg.matrix_rank(Xm) < Xm.shape[1]:
                why = f"the covariates are collinear among the {int(mask.sum())} people with {label} observed"
        if why is not None:
            if draw in _PRIMARY:
                notes.append(f"cost-effectiveness stratum {g.key}: not estimable ({why})")
                return None, why
            notes.append(f"cost-effectiveness {g.key}: {outcome} not estimable ({why})")
            continue
        for lab in [g.labels[j] for j in range(m) if j not in keep]:
            notes.append(f"cost-effectiveness {lab}: {outcome} not estimable (fewer than {min_per_arm} PHB "
                         f"holders with {label} observed)")
        cols = list(range(len(ccols), len(ccols) + len(keep)))
        fit = sm.OLS(yv[mask], X[mask]).fit()
        point = np.full(m, np.nan)
        point[keep] = fit.params[cols]
        specs[draw] = dict(outcome=outcome, y=y, base=base, yv=np.where(mask, yv, 0.0), bv=np.nan_to_num(bv),
                           mask=mask, keep=keep, X=X, cols=cols, ccols=ccols, point=point,
                           n1=[int((mask & (ind[:, j] == 1)).sum()) for j in range(m)], n0=n0, p=X.shape[1])
    return specs, None


def _specs_each(g: Group, datasets, models, min_per_arm):
    """_specs on every imputed dataset (notes from the first only); stops at the first that cannot be fitted."""
    notes: list[str] = []
    all_specs = []
    for k, data in enumerate(datasets):
        specs, why = _specs(g, data, models, min_per_arm, notes if k == 0 else [])
        if specs is None:
            return None, notes, why
        all_specs.append(specs)
    return all_specs, notes, None


def _fit_group(g: Group, models, datasets, B, rng, unit, cluster, min_per_arm, bar):
    """Point estimates, influence values and bootstrap draws for one model group on each dataset; every
    dataset uses the same replicates."""
    n, m = len(g.data), len(g.labels)
    all_specs, notes, why = _specs_each(g, datasets, models, min_per_arm)
    if why is not None:
        return {"notes": notes, "failed": why}
    resample_codes = pd.factorize(pd.Series(g.resample), sort=True)[0]
    if unit == "person":
        unit_of, unit_strata = np.arange(n), resample_codes
        n_sites = None
    else:
        unit_of, unit_strata = cluster_units(g.data, cluster)
        n_sites = int(g.data[cluster].nunique())
    n_units = int(unit_of.max()) + 1
    sp0 = all_specs[0]["d_cost"]
    df_complete = (n_sites - 1) if n_sites else max(int(sp0["mask"].sum()) - sp0["p"], 1)

    # --- jackknife influence values (BCa, complete cases only) ---------------------------------------------
    specs = all_specs[0]
    if len(datasets) == 1 and unit == "person":
        ns = np.bincount(resample_codes)[resample_codes]          # stratum size per person
        for s in specs.values():
            L = np.zeros((n, m))
            mk = s["mask"]
            L[np.ix_(mk, s["keep"])] = loo_change(s["X"][mk], s["yv"][mk], s["cols"])
            s["L"] = (ns - 1)[:, None] * L
    elif len(datasets) == 1:
        G_arm = np.bincount(unit_strata.astype(int), minlength=2)[unit_strata.astype(int)]
        jack = replicate_coefficients(specs, 1.0 - np.eye(n_units), m, prepare_moments(specs, m, unit_of, n_units))
        for d, s in specs.items():
            s["L"] = (G_arm - 1)[:, None] * (s["point"][None, :] - jack[d])

    # --- bootstrap ----------------------------------------------------------------------------------------
    draws = [{d: np.full((B, m), np.nan) for d in sp} for sp in all_specs]
    if unit == "two_stage":
        prepared = [prepare_moments(_shrunk(sp, unit_of, unit_strata), m) for sp in all_specs]
        blocks = two_stage_weights(unit_of, unit_strata, B, rng, max(1, _CHUNK_CELLS // max(n, 1)))
    else:
        prepared = [prepare_moments(sp, m, unit_of, n_units) for sp in all_specs]
        chunk = max(1, _CHUNK_CELLS // max(n_units, 1) // 4)
        blocks = (replicate_counts(b, n_units) for b in iter_bootstrap_indices(unit_strata, B, rng, chunk))
    start = 0
    for W in blocks:
        stop = start + W.shape[0]
        for k, sp in enumerate(all_specs):
            coefs = replicate_coefficients(sp, W, m, prepared[k])
            for d in sp:
                draws[k][d][start:stop] = coefs[d]
            bar.update(stop - start)
        start = stop
    return {"notes": notes, "failed": None, "specs": all_specs, "draws": draws, "df_complete": df_complete,
            "units": unit_of, "unit_strata": unit_strata}


def _shrunk(specs, unit_of, unit_strata):
    """Specs whose outcomes are shrunk for the two-stage bootstrap (Ng, Grieve & Carpenter 2013): within each
    arm, cluster means are pulled towards the arm mean by c and person deviations scaled by d_j, so that the
    two-stage resampled variance of a mean matches σ̂²_b + σ̂²_w / n_j (moment estimates of the between- and
    within-cluster variances). Point estimates stay those of the observed data."""
    out = {}
    for d, s in specs.items():
        y = s["yv"].astype(float).copy()
        mask = s["mask"]
        for arm in np.unique(unit_strata):
            members = np.flatnonzero(mask & (unit_strata[unit_of] == arm))
            units = unit_of[members]
            codes, inv = np.unique(units, return_inverse=True)
            a = codes.size
            if a < 2:
                continue
            nj = np.bincount(inv).astype(float)
            yj = np.bincount(inv, weights=y[members]) / nj
            grand = y[members].mean()
            resid = y[members] - yj[inv]
            dof_w = max(members.size - a, 1)
            s2w = float((resid ** 2).sum() / dof_w)
            s2b_means = float(np.var(yj, ddof=1))
            s2b = max(s2b_means - s2w * np.mean(1 / nj), 0.0)
            c = np.sqrt(a / (a - 1) * s2b / s2b_means) if s2b_means > 0 else 0.0
            dj = np.sqrt(np.where(nj > 1, nj / np.maximum(nj - 1, 1), 1.0))
            y[members] = grand + c * (yj[inv] - grand) + dj[inv] * resid
        out[d] = dict(s, yv=y)
    return out


def _boot_mi_group(g, models, parts, df, covariates, eff, months, bw, fw, horizon, cluster, unit, B, rng,
                   min_per_arm, imp, bar):
    """Bootstrap-then-impute (Brand et al. 2019) for one model group: each replicate resamples the group's
    units (people, or arm-site clusters), imputes the resample once and refits; the point estimate is the
    mean over the imputations of the observed data. Slow (one imputation per replicate): keep B modest."""
    all_specs, notes, why = _specs_each(g, parts, models, min_per_arm)
    if why is not None:
        return {"notes": notes, "failed": why}
    pooled = {d: dict(s, point=np.mean([sp[d]["point"] for sp in all_specs], axis=0))
              for d, s in all_specs[0].items() if all(d in sp for sp in all_specs)}
    raw = df.loc[g.data.index]
    resample_codes = pd.factorize(pd.Series(g.resample), sort=True)[0]
    if unit == "person":
        unit_of, unit_strata = np.arange(len(raw)), resample_codes
    else:
        unit_of, unit_strata = cluster_units(g.data, cluster)
    members = [np.flatnonzero(unit_of == u) for u in range(int(unit_of.max()) + 1)]
    draws = {d: np.full((B, len(g.labels)), np.nan) for d in pooled}
    imp_rng, idx_rng = rng.spawn(2)
    b = 0
    for block in iter_bootstrap_indices(unit_strata, B, idx_rng, 64):
        for row in block:
            take = np.concatenate([members[u] for u in row])
            rep = raw.iloc[take].copy()
            rep.index = pd.RangeIndex(len(rep))
            if "participant_id" in rep:
                rep["participant_id"] = [f"r{i:07d}" for i in range(len(rep))]
            sub = Group(g.key, g.kind, rep, g.labels, g.indicators[take], np.asarray(g.resample)[take], g.covariates)
            try:
                _, imputed, _ = _person_set(rep, covariates, eff, months, bw, fw, horizon, cluster, "mi_boot", 1,
                                            imp_rng, imp, [], True)
                specs, _ = _specs(sub, imputed[0].loc[rep.index], models, min_per_arm, [])
            except (EstimationError, np.linalg.LinAlgError):     # e.g. a level absent from the resample
                specs = None
            if specs is not None:
                for d in draws:
                    if d in specs:
                        draws[d][b] = specs[d]["point"]
            b += 1
            bar.update(1)
    return {"notes": notes, "failed": None, "specs": [pooled], "draws": [draws], "df_complete": math.inf,
            "units": unit_of, "unit_strata": unit_strata}
