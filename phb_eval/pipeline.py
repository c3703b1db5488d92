"""Runs the stages in order: validate → events → score → derive → costs → estimate → Results.

Each stage is a library call; this module only sequences them, records what was skipped and why,
and fills ``Results.meta`` so a run can be repeated. No statistics here.
"""
from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
import pandas as pd

from .errors import EstimationError
from .plan import Plan, plan_to_dict
from .results import Results

__all__ = ["prepare", "compare", "subgroups", "merge", "demo_budget_impact", "BINARY_OUTCOMES"]

BINARY_OUTCOMES = {"ghq12_caseness", "carer_health_good", "mortality"}
NO_BASELINE = {"mortality"}
class _Clock:
    """Times each stage (``Results.meta["timings"]``) and reports it on stderr (``progress.stage``)."""

    def __init__(self, quiet: bool | None = None):
        self.timings = {}
        self.quiet = quiet

    @contextmanager
    def stage(self, name):
        from .progress import stage
        start = time.perf_counter()
        try:
            with stage(name, quiet=self.quiet):
                yield
        finally:
            self.timings[name] = round(time.perf_counter() - start, 3)


def _try(results: Results, what: str, fn, *args, **kwargs):
    """Run one estimator; a design that cannot be estimated becomes a sentence, not a crash.

    Numerical failures of the libraries (see ``estimation_failure``) count as such a design; any other
    exception is a bug and propagates. ``PHB_EVAL_DEBUG=1`` re-raises the numerical ones too."""
    from .estimation_failures import estimation_failure
    try:
        return fn(*args, **kwargs)
    except Exception as exc:   # noqa: BLE001 -- sorted by estimation_failure, which re-raises what is a bug
        results.skipped.append(f"{what}: {estimation_failure(exc)}")
        return None


def prepare(cohort, plan: Plan, *, engine: str = "duckdb", spark_master=None, results: Results | None = None,
            clock: _Clock | None = None, base_dir=None):
    """Validate, aggregate events, score, derive and cost: the analysis frame every estimator reads."""
    from . import costs, derive, instruments, validate

    results = results if results is not None else Results()
    clock = clock or _Clock()
    with clock.stage("validate"):
        for problem in validate.ensure_valid(cohort, plan, engine=engine, spark_master=spark_master):
            results.warnings.append(f"data: {problem}")
    frame = cohort.frame
    if getattr(cohort, "events", None) is not None:
        from . import events
        with clock.stage("events"):
            counts = events.aggregate_events(cohort.events, frame, engine=engine, spark_master=spark_master,
                                              plan=plan)
            frame = events.merge_counts(frame, counts, warn=results.warnings)
    with clock.stage("score"):
        scored = instruments.score_all(frame, plan, base_dir=base_dir)
    results.warnings.extend(scored.warnings)
    results.meta.setdefault("notes", []).extend(scored.notes)
    # min and max are single people's values: kept for `phb-eval score`, never published
    results.tables["score_summary"] = scored.summary.drop(columns=["min", "max"], errors="ignore")
    results.table_specs["score_summary"] = {
        "count_columns": [c for c in scored.summary.columns if c.startswith("n")], "mean_columns": {"mean": "n_scored"}}
    with clock.stage("derive"):
        frame = derive.analysis_frame(scored.frame, plan)
    with clock.stage("costs"):
        unit_costs = costs.load_unit_costs(plan.costs.unit_costs, plan.costs.price_year, plan.costs.inflation_index)
        frame, notes = costs.person_costs(frame, unit_costs)
        results.meta.setdefault("notes", []).extend(notes)
        results.tables["unit_costs"] = unit_costs
    return frame, results


# ---------------------------------------------------------------------------------------------------------
# compare: every analysis of the plan on one cohort
# ---------------------------------------------------------------------------------------------------------
def _present(frame: pd.DataFrame, outcome: str, wave: str) -> bool:
    col = f"{outcome}_{wave}" if outcome not in NO_BASELINE else outcome
    if outcome == "mortality":
        col = "mortality" if "mortality" in frame else "died"
    return col in frame and frame[col].notna().any()


def _covariates(frame: pd.DataFrame, plan: Plan, results: Results) -> list[str]:
    """The plan's adjustment set as model terms, read once (PlanError for a term that cannot be used);
    terms reading a column the data lack, or one never observed, are dropped with a warning."""
    from .models.design import parse_terms, split_available
    terms = parse_terms(plan.covariates, cluster=plan.cluster)
    observed = [c for c in frame.columns if frame[c].notna().any()]
    covs, absent = split_available(terms, observed)
    if "phb" in frame:      # a covariate defined for one arm only (budget band) would empty the other arm
        arms = [frame["phb"] == a for a in (0, 1)]
        one_arm = [t for t in covs if any(not frame.loc[arm, v].notna().any() for v in t.variables for arm in arms)]
        if one_arm:
            covs = [t for t in covs if t not in one_arm]
            results.warnings.append(f"covariate(s) {[t.text for t in one_arm]} are observed in one arm only (e.g. "
                                    "budget band, defined for PHB holders), so they cannot adjust a PHB \u2212 "
                                    "control comparison; use them as subgroups. They are left out of every model")
    if absent:
        results.warnings.append(f"covariate(s) {[t.text for t in absent]} named in the plan are not in the data; "
                                f"every model adjusts for {[t.text for t in covs] or 'no covariates'} only")
    incomplete = frame[_variables([t.text for t in covs], plan)].isna().any(axis=1) if covs else None
    if incomplete is not None and incomplete.any():
        how = ("left out of every model (plan: missing: complete_case)" if plan.missing == "complete_case" else
               "left out of the complete-case models and imputed with the outcomes in ancova_mi")
        results.meta.setdefault("notes", []).append(
            f"covariates: {int(incomplete.sum())} of {len(frame)} people have a missing covariate; they are {how}")
    results.meta.setdefault("notes", []).extend(plan.estimator_notes)
    return [t.text for t in covs]


def _variables(covs, plan: Plan) -> list[str]:
    """The data columns the adjustment set reads (for tables, propensity and imputation models)."""
    from .models.design import parse_terms, term_variables
    return term_variables(parse_terms(covs, cluster=plan.cluster))


def _balance(frame, plan, covs, results, base):
    """Table 1, SMDs, the propensity model, its weights and overlap diagnostics."""
    from . import balance
    scores = [f"{o}_{base}" for o in plan.primary_outcomes
              if f"{o}_{base}" in frame and pd.api.types.is_numeric_dtype(frame[f"{o}_{base}"])
              and frame[f"{o}_{base}"].notna().any()]
    ps_frame, score_terms = balance.with_missing_indicators(frame, scores)
    ps_vars = list(dict.fromkeys(covs + score_terms))   # a baseline score may be a covariate too
    weights = None
    fitted = _try(results, "propensity score", balance.propensity, ps_frame, ps_vars)
    ps = fitted[0] if fitted is not None else None
    if ps is not None:
        weights = balance.propensity_weights(ps, frame["phb"], plan.propensity.estimand, plan.propensity.trim)
        results.tables["propensity_model"] = fitted[1]
        results.table_specs["propensity_model"] = {"count_columns": ["n"]}
        results.tables["overlap"] = balance.overlap_diagnostics(ps, frame["phb"], weights)
        results.table_specs["overlap"] = {"count_columns": ["n"]}
        filled = [c for c in scores if frame[c].isna().any()]
        if filled:
            results.meta.setdefault("notes", []).append(
                f"propensity score: missing baseline values of {', '.join(filled)} were mean-filled with a "
                "missing-value indicator in the propensity model only")
        n_missing = int(ps.isna().sum())
        if n_missing:
            results.warnings.append(f"propensity score: {n_missing} people with a missing covariate have no "
                                    "weight and are left out of the weighted (IPW) analyses")
    variables = [v for v in dict.fromkeys(covs + [f"{o}_{base}" for o in plan.outcomes if f"{o}_{base}" in frame])
                 if frame[v].notna().any()]
    table = _try(results, "baseline balance", balance.baseline_table, frame, variables, weights,
                 threshold=plan.propensity.smd_flag)
    if table is not None:
        results.tables["balance"] = table
        arms = ("phb", "control")
        results.table_specs["balance"] = {
            "count_columns": [c for a in arms for c in (f"n_{a}", f"n_missing_{a}", f"count_{a}") if c in table],
            "mean_columns": {f"{k}_{a}": f"n_{a}" for a in arms for k in ("mean", "sd") if f"{k}_{a}" in table},
            "percent_columns": {f"pct_{a}": (f"count_{a}", f"n_{a}", 100) for a in arms if f"pct_{a}" in table}}
        results.add(balance.balance_rows(table, estimand=plan.propensity.estimand if weights is not None else None))
    return weights


def _impute(frame, plan, covs, outcomes, rng, results, base, fu):
    """m completed copies of the living cohort (carer outcomes only where there is a carer).

    Missing covariates are imputed with each outcome in the chained equations: numeric ones as they are,
    two-level text ones (sex) coded 0/1 so PMM keeps them to the observed levels. Text covariates with
    more levels, and every covariate under ``missing: complete_case``, are complete cases (said in a warning).
    """
    from .missing import impute_chained
    live = frame[frame.get("mortality", pd.Series(0, index=frame.index)).fillna(0) != 1]
    variables = [v for v in _variables(covs, plan) if v in live]
    gaps = [v for v in variables if live[v].isna().any()]
    coded, levels = {}, {}
    for v in gaps if plan.missing == "impute" else []:
        col = live[v]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            coded[v] = v
        elif col.dropna().nunique() == 2:
            levels[v] = sorted(col.dropna().astype(str).unique())
            coded[v] = f"__imp_{v}"
    fixed = [c for c in ["phb", plan.cluster, *variables] if c in live and c not in coded]
    complete = live[fixed].notna().all(axis=1)
    if (~complete).any():
        left = [v for v in gaps if v not in coded]
        results.warnings.append(f"multiple imputation: {int((~complete).sum())} living people with a missing "
                                f"covariate ({', '.join(left)}) are left out of the imputed analyses")
    live = live[complete].copy()
    for v, lv in levels.items():
        live[coded[v]] = live[v].astype(str).map({lv[0]: 0.0, lv[1]: 1.0}).where(live[v].notna())
    if coded:
        results.meta.setdefault("notes", []).append(
            f"multiple imputation: missing values of the covariate(s) {', '.join(coded)} are imputed with the "
            "outcomes in the chained equations")
    sets = {}
    carers = live[live["has_carer"].fillna(0) == 1] if "has_carer" in live else live.iloc[:0]
    for outcome in outcomes:
        rows = carers if outcome.startswith("carer_") else live
        columns = [f"{outcome}_{w}" for w in (base, fu) if f"{outcome}_{w}" in rows]
        if len(rows) < 20 or not columns:
            continue
        todo = [c for c in coded.values() if rows[c].isna().any() and c not in columns]
        # one imputation model per outcome (its own baseline and follow-up): near-duplicate scores of the
        # same instrument (ascot_raw, scrqol) in one chained model stall the chains at their start values
        done = _try(results, f"multiple imputation ({outcome})", impute_chained, rows, columns + todo,
                    plan.imputation.m, rng, iterations=plan.imputation.iterations, method=plan.imputation.method,
                    donors=plan.imputation.donors,
                    predictors=[c for c in fixed + [x for x in coded.values() if x not in todo] if c not in columns])
        if done is not None:
            results.meta.setdefault("notes", []).extend(done[0].attrs.get("imputation_notes", []))
            for k, imp in enumerate(done):
                for v, lv in levels.items():
                    imp[v] = imp[coded[v]].map({0.0: lv[0], 1.0: lv[1]})
                done[k] = imp.drop(columns=[coded[v] for v in levels])
            sets[outcome] = done
    return sets


class _Context:
    """What an outcome estimator's runner reads (see models.registry): frame, adjustment set, weights, imputed
    data sets, the plan and the wild-bootstrap settings."""

    def __init__(self, frame, plan, covs, weights, imputed, base, fu):
        self.frame, self.plan, self.covariates, self.weights, self.imputed = frame, plan, covs, weights, imputed
        self.base, self.fu = base, fu
        self.bootstrap = bootstrap_settings(plan)


def bootstrap_settings(plan: Plan) -> dict:
    """B, weight type and seed of the wild cluster bootstrap (seed from the plan's seed)."""
    return {"B": plan.wild_bootstrap.B, "weights": plan.wild_bootstrap.weights, "seed": plan.seed}


def _outcomes(frame, plan, covs, weights, imputed, results, base, fu):
    from . import outcomes as est
    ctx = _Context(frame, plan, covs, weights, imputed, base, fu)
    for outcome in plan.outcomes:
        if not _present(frame, outcome, fu):
            why = ("no ASCOT weights file in the plan and no precomputed scrqol column"
                   if outcome == "scrqol" else f"no {outcome} values at follow-up in the data")
            results.skipped.append(f"outcome {outcome}: not analysed, {why}")
            continue
        if outcome not in NO_BASELINE:
            results.add(_try(results, f"outcome {outcome} (unadjusted)", est.unadjusted, frame, outcome,
                             conf_level=plan.confidence_level, waves=(base, fu)))
        binary = outcome in BINARY_OUTCOMES
        for name in plan.estimators:
            results.add(_try(results, f"outcome {outcome} ({name})", est.RUNNERS[name], ctx, outcome, binary))


def _service_use_and_costs(frame, plan, covs, results):
    from . import costs, service_use
    conf = plan.confidence_level
    services = service_use.services_present(frame, plan.service_use.services)
    if not services:
        results.skipped.append("service use: no service has both pre- and post-consent counts in the data")
    fits = []
    for service in services:
        for model in plan.service_use.models:
            results.add(_try(results, f"service use {service} ({model})", service_use.count_model, frame, service,
                             covs, model=model, cluster=plan.cluster, conf_level=conf, variance=plan.variance))
        if len(plan.service_use.models) > 1:
            fit = _try(results, f"service use {service} (fit comparison)", service_use.fit_comparison, frame,
                       service, covs, models=plan.service_use.models, cluster=plan.cluster,
                       variance=plan.variance)
            if fit is not None:
                fits.append(fit)
    if fits:
        results.tables["service_use_fit"] = pd.concat(fits, ignore_index=True)
    from .budget_impact import budget_per_holder_rows
    results.add(budget_per_holder_rows(frame, conf_level=conf, min_n=plan.disclosure.min_count))
    if "cost_total" in frame and frame["cost_total"].notna().any():
        results.add(_try(results, "costs", costs.cost_effects, frame, covs, models=plan.costs.models,
                         cluster=plan.cluster, conf_level=conf, variance=plan.variance,
                         bootstrap=bootstrap_settings(plan)))
        breakdown = _try(results, "cost breakdown", costs.cost_breakdown, frame)
        if breakdown is not None:
            results.tables["cost_breakdown"] = breakdown
            results.table_specs["cost_breakdown"] = {
                "count_columns": ["n_phb", "n_control"], "mean_columns": {"mean_phb": "n_phb", "mean_control": "n_control"}}
    else:
        results.skipped.append("costs: no person has both service counts and a direct cost, so costs and "
                               "cost-effectiveness are not estimated")


def _cost_effectiveness(frame, plan, covs, rng, results, base, fu, quiet):
    from .cea import cea
    if "cost_total" not in frame or not frame["cost_total"].notna().any():
        return
    c = plan.cea
    res = _try(results, "cost-effectiveness", cea, frame, covs, rng=rng, effect=c.effect, strata=c.strata,
               lambda_qaly=c.lambda_qaly, lambda_ascot=c.lambda_ascot, headline=c.headline, horizon=c.horizon,
               wave_months=plan.data.waves, B=c.bootstrap, missing=c.missing, m=plan.imputation.m,
               imputation={"iterations": plan.imputation.iterations, "method": plan.imputation.method,
                           "donors": plan.imputation.donors},
               bootstrap_unit=c.bootstrap_unit, cluster=plan.cluster, conf_level=plan.confidence_level,
               ceac_max=c.ceac_max, ceac_step=c.ceac_step, min_per_arm=plan.subgroups.min_cell,
               baseline_wave=base, followup_wave=fu, quiet=quiet)
    if res is None:
        return
    from .cea.voi import population_evpi
    results.add(res.estimates)
    results.tables["cea"] = res.table
    results.tables["ceac"] = res.ceac.drop(columns=["optimal", "prob_optimal"])
    results.tables["ceaf"] = res.ceaf
    results.tables["cea_draws"] = res.draws
    results.tables["evpi"] = population_evpi(res.evpi, plan.budget_impact.eligible)
    if not res.nbr.empty:
        results.tables["nmb_regression"] = res.nbr
        results.tables["nbr_tests"] = res.nbr_tests
    results.table_specs["cea"] = {"count_columns": [col for col in res.table.columns if col in ("n_phb", "n_control")]}
    results.table_specs["nmb_regression"] = {"count_columns": ["n", "n_phb_cell"]}
    for name in ("ceac", "ceaf", "evpi", "nbr_tests"):
        results.table_specs[name] = {"disclose": False}
    results.table_specs["cea_draws"] = {"disclose": False, "xlsx": False}
    results.meta["cea_effect"] = res.effect
    results.meta["cea_method"] = res.method
    results.meta["cea_settings"] = res.settings
    results.meta.setdefault("notes", []).extend(c.replaced_settings)
    results.skipped.extend(res.notes)


def _subgroup_rows(frame, plan, covs, results, base, fu):
    from .subgroups import adjust_pvalues, subgroup_effects
    outcomes = plan.subgroups.outcomes or plan.primary_outcomes
    parts = []
    for outcome in outcomes:
        if not _present(frame, outcome, fu):
            results.skipped.append(f"subgroups for {outcome}: no {outcome} values at follow-up")
            continue
        for variable in plan.subgroups.variables:
            if variable not in frame or not frame[variable].notna().any():
                results.skipped.append(f"subgroup {variable}: not in the data")
                continue
            rows = _try(results, f"subgroup {variable} for {outcome}", subgroup_effects, frame, outcome,
                        variable, covs, baseline_wave=base, followup_wave=fu, cluster=plan.cluster,
                        conf_level=plan.confidence_level, min_cell=plan.subgroups.min_cell, variance=plan.variance,
                        bootstrap=bootstrap_settings(plan))
            if rows is not None and not rows.empty:
                parts.append(rows)
    if parts:
        rows = adjust_pvalues(pd.concat(parts, ignore_index=True), method=plan.subgroups.adjust,
                              family=plan.subgroups.family, prespecified=plan.subgroups.prespecified)
        results.add(rows)


def _meta(results, cohort, plan, clock, command, frame):
    from .report.writer import package_versions
    results.meta.update({
        "inputs": dict(cohort.hashes), "files": dict(cohort.files), "plan": plan_to_dict(plan),
        "seed": plan.seed, "timings": clock.timings, "command": command, "versions": package_versions(),
        "participant_ids": frame["participant_id"].astype(str).tolist() if "participant_id" in frame else [],
        "n_clusters": int(frame[plan.cluster].nunique()) if plan.cluster in frame else None,
        "n_participants": {"phb": int((frame["phb"] == 1).sum()), "control": int((frame["phb"] == 0).sum())},
    })


def compare(cohort, plan: Plan, *, engine: str = "duckdb", spark_master=None, command=None, quiet: bool = False,
            base_dir=None, subgroups: bool = False) -> Results:
    """Flow, balance, effects, service use, costs and cost-effectiveness for one cohort, as the plan says.

    One ``numpy.random.Generator`` seeded from ``plan.seed`` feeds imputation, then the bootstrap, so the
    same data, plan and seed give identical numbers.
    """
    from .flow import participant_flow
    clock = _Clock(quiet)
    results = Results()
    frame, results = prepare(cohort, plan, engine=engine, spark_master=spark_master, results=results,
                             clock=clock, base_dir=base_dir)
    base, fu = plan.data.baseline_wave, plan.data.followup_wave
    rng = np.random.default_rng(plan.seed)
    covs = _covariates(frame, plan, results)
    with clock.stage("flow"):
        outcomes_here = [o for o in plan.outcomes if o not in NO_BASELINE]
        results.tables["flow"] = participant_flow(frame, outcomes_here, _variables(covs, plan), base, fu)
        results.table_specs["flow"] = {"count_columns": ["phb", "control"]}
    with clock.stage("balance"):
        weights = _balance(frame, plan, [v for v in _variables(covs, plan) if v != plan.cluster], results, base)
    with clock.stage("imputation"):
        imputed = {}
        if "ancova_mi" in plan.estimators:
            mi_outcomes = [o for o in plan.outcomes if o not in BINARY_OUTCOMES and _present(frame, o, fu)]
            imputed = _impute(frame, plan, covs, mi_outcomes, rng, results, base, fu)
    with clock.stage("outcomes"):
        _outcomes(frame, plan, covs, weights, imputed, results, base, fu)
    with clock.stage("service_use_costs"):
        _service_use_and_costs(frame, plan, covs, results)
    with clock.stage("cea"):
        # the CEA reads covariates as columns: it adjusts for the columns the plan's terms use
        _cost_effectiveness(frame, plan, _variables(covs, plan), rng, results, base, fu, quiet)
    if subgroups:
        with clock.stage("subgroups"):
            _subgroup_rows(frame, plan, covs, results, base, fu)
    _meta(results, cohort, plan, clock, command, frame)
    return results


def subgroups(cohort, plan: Plan, *, engine: str = "duckdb", spark_master=None, command=None,
              base_dir=None, quiet: bool = False) -> Results:
    """Overall ANCOVA effects and subgroup effects with joint interaction tests, as the plan says."""
    from . import outcomes as est
    clock = _Clock(quiet)
    results = Results()
    frame, results = prepare(cohort, plan, engine=engine, spark_master=spark_master, results=results,
                             clock=clock, base_dir=base_dir)
    base, fu = plan.data.baseline_wave, plan.data.followup_wave
    covs = _covariates(frame, plan, results)
    with clock.stage("outcomes"):
        for outcome in plan.subgroups.outcomes or plan.primary_outcomes:
            if _present(frame, outcome, fu):
                results.add(_try(results, f"outcome {outcome}", est.ancova, frame, outcome, covs,
                                 cluster=plan.cluster, conf_level=plan.confidence_level, followup_wave=fu,
                                 baseline_wave=base, variance=plan.variance, bootstrap=bootstrap_settings(plan)))
    with clock.stage("subgroups"):
        _subgroup_rows(frame, plan, covs, results, base, fu)
    _meta(results, cohort, plan, clock, command, frame)
    return results


def merge(into: Results, other: Results) -> Results:
    """Add another run's rows, tables, figures, specs, warnings and meta sections to ``into`` (in place)."""
    into.add(other.estimates)
    for name in ("tables", "figures", "table_specs"):
        getattr(into, name).update(getattr(other, name))
    into.warnings.extend(other.warnings)
    into.skipped.extend(other.skipped)
    for key, value in other.meta.items():
        into.meta.setdefault(key, value)
    return into


def demo_budget_impact(plan: Plan, results: Results) -> Results:
    """Budget impact of the demo: illustrative rollout settings, budgets and savings from the simulated run."""
    from .budget_impact import demo_inputs, run_budget_impact
    est = results.estimates
    rows = est[est["outcome"].eq("budget_per_holder") & est["stratum"].astype(str).str.startswith("budget_band=")]
    rows = rows[pd.to_numeric(rows["estimate"], errors="coerce").notna()]
    update = {"budget_per_holder": {}, "indirect_change_per_holder": {}}
    if not rows.empty:
        # the simulated pilot's own band mix, and conventional packages costing what the budgets replace, so
        # decommissioning releases the money budgets spend (the demo's CHC package cost would not match)
        bands = rows["stratum"].str.split("=", n=1).str[1]
        n = pd.to_numeric(rows["n_phb"], errors="coerce").to_numpy(float)
        update["band_shares"] = dict(zip(bands, n / n.sum()))
        package = float(np.dot(n / n.sum(), rows["estimate"].to_numpy(float)))
        update["conventional_cost_per_holder"] = update["double_running_per_new_holder"] = package
    settings = demo_inputs().model_copy(update=update)
    return run_budget_impact(plan.model_copy(update={"budget_impact": settings}), results_dir=results)
