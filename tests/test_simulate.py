"""Tests for phb_eval.simulate: contract shape, pilot-like features, planted effects, events, bytes on disk."""
import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from phb_eval.contract import (BUDGET_COLUMNS, FLEXIBILITY_FEATURES, ITEMS, OPTIONAL_SERVICES, REQUIRED,
                               SERVICE_TO_EVENT, SERVICES)
from phb_eval.errors import PhbEvalError
from phb_eval.simulate import DEFAULT_PARAMETERS, SimulatedPilot, simulate_pilot, write_simulation

SEED = 2012
WAVES = ("t0", "t1")
ALL_SERVICES = SERVICES + OPTIONAL_SERVICES


@pytest.fixture(scope="module")
def pilot() -> SimulatedPilot:
    return simulate_pilot(seed=SEED, events=True)


@pytest.fixture(scope="module")
def large() -> SimulatedPilot:
    """20,000 participants: enough for effects to be estimated to within a few hundredths of a point."""
    return simulate_pilot(n_phb=10_000, n_control=10_000, seed=SEED)


def contract_columns() -> list[str]:
    cols = REQUIRED + ["consent_date", "age", "sex", "died", "death_date"] + BUDGET_COLUMNS
    cols += ["direct_cost_gbp_per_year", "has_carer"]
    for w in WAVES:
        for inst in ("ascot", "ghq12", "eq5d", "carer_ascot"):
            cols += [f"{stem}_{w}" for stem in ITEMS[inst]]
        cols += [f"eq_vas_{w}", f"carer_health_{w}", f"scrqol_{w}", f"carer_scrqol_{w}"]
    cols += [f"{s}_{p}" for s in ALL_SERVICES for p in ("pre", "post")]
    return cols


def item_block(frame, inst, wave):
    return frame[[f"{stem}_{wave}" for stem in ITEMS[inst]]].astype(float)


def raw_sum(frame, inst, wave):
    return item_block(frame, inst, wave).sum(axis=1, min_count=len(ITEMS[inst]))


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---- shape and determinism -----------------------------------------------------------------------
def test_every_contract_column_both_arms(pilot):
    c = pilot.cohort
    missing = [col for col in contract_columns() if col not in c.columns]
    assert missing == []
    assert c.shape[0] == 1171 + 1064
    assert (c["group"] == "phb").sum() == 1171 and (c["group"] == "control").sum() == 1064
    assert c["participant_id"].is_unique
    assert c["site"].nunique() == 20
    assert set(c["condition"]) == {"chc", "mental_health", "copd", "diabetes", "neurological", "stroke"}
    assert pd.crosstab(c["site"], c["group"]).min().min() > 0        # both arms in every site
    for w in WAVES:   # contract item ranges
        for inst, (lo, hi) in (("ascot", (0, 3)), ("ghq12", (0, 3)), ("eq5d", (1, 3)), ("carer_ascot", (0, 3))):
            vals = item_block(c, inst, w).stack().dropna()
            assert vals.min() >= lo and vals.max() <= hi
            assert set(vals.unique()) == set(range(lo, hi + 1))       # every level used
        assert c[f"eq_vas_{w}"].dropna().between(0, 100).all()
        assert set(c[f"carer_health_{w}"].dropna()) == {1, 2, 3, 4, 5}
    assert c["consent_date"].min() >= pd.Timestamp("2010-04-01")
    assert c["consent_date"].max() <= pd.Timestamp("2011-06-30")
    assert c["age"].between(16, 110).all()
    assert set(c["sex"]) == {"female", "male"}


def test_same_seed_same_data_other_seed_differs(pilot):
    again = simulate_pilot(seed=SEED, events=True)
    pd.testing.assert_frame_equal(pilot.cohort, again.cohort)
    pd.testing.assert_frame_equal(pilot.events, again.events)
    assert json.dumps(pilot.truth) == json.dumps(again.truth)
    other = simulate_pilot(seed=SEED + 1)
    assert not pilot.cohort.equals(other.cohort)
    # asking for events draws from its own stream: the cohort does not change
    pd.testing.assert_frame_equal(simulate_pilot(seed=SEED).cohort, pilot.cohort)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "xlsx"])
def test_files_byte_identical_for_same_seed(tmp_path, fmt):
    n = (150, 150) if fmt == "xlsx" else (1171, 1064)   # xlsx writing is the slow one; same code path
    runs = []
    for k, seed in enumerate((SEED, SEED, SEED + 1)):
        sim = simulate_pilot(n_phb=n[0], n_control=n[1], seed=seed, events=True)
        paths = write_simulation(sim, tmp_path / f"run{k}", fmt=fmt)
        assert set(paths) == {"cohort", "events", "truth"}
        assert paths["cohort"].name == f"cohort.{fmt}"
        runs.append({role: sha(p) for role, p in paths.items()})
    assert runs[0] == runs[1]
    assert all(runs[0][role] != runs[2][role] for role in runs[0])
    if fmt == "xlsx":   # nothing in the workbook depends on the clock
        import zipfile
        from phb_eval.simulate import FIXED_XLSX_TIME, ZIP_EPOCH
        with zipfile.ZipFile(tmp_path / "run0" / "cohort.xlsx") as book:
            assert {info.date_time for info in book.infolist()} == {ZIP_EPOCH}
            core = book.read("docProps/core.xml").decode()
        assert core.count(FIXED_XLSX_TIME) == 2


def test_written_files_read_back_and_validate(tmp_path, pilot):
    from phb_eval.io import load_cohort
    from phb_eval.validate import validate_cohort
    paths = write_simulation(pilot, tmp_path, fmt="csv")
    cohort = load_cohort(data=paths["cohort"], events=paths["events"])
    problems = validate_cohort(cohort)
    assert [str(p) for p in problems if p.level == "error"] == []
    frame = cohort.frame.set_index("participant_id")
    orig = pilot.cohort.set_index("participant_id")
    np.testing.assert_allclose(frame["scrqol_t0"].astype(float), orig["scrqol_t0"].astype(float), equal_nan=True)
    assert frame["death_date"].notna().sum() == orig["death_date"].notna().sum()
    truth = json.loads(paths["truth"].read_text())
    assert truth["seed"] == SEED and truth["n"]["total"] == 2235


def test_5l_version_validates_under_a_5l_plan(tmp_path):
    from phb_eval.io import load_cohort
    from phb_eval.plan import load_plan
    from phb_eval.validate import validate_cohort
    sim = simulate_pilot(n_phb=300, n_control=300, seed=3, eq5d_version="5L")
    levels = item_block(sim.cohort, "eq5d", "t0").stack().dropna()
    assert set(levels.unique()) == {1, 2, 3, 4, 5}
    assert sim.truth["eq5d_value_set"] == "england_devlin2018"
    paths = write_simulation(sim, tmp_path, fmt="parquet")
    plan = load_plan(None, {"instruments": {"eq5d_version": "5L", "eq5d_value_set": "england_devlin2018"}})
    problems = validate_cohort(load_cohort(data=paths["cohort"]), plan)
    assert [str(p) for p in problems if p.level == "error"] == []


def test_no_overwrite_without_force(tmp_path, pilot):
    small = simulate_pilot(n_phb=20, n_control=20, sites=2, seed=1)
    paths = write_simulation(small, tmp_path, fmt="csv")
    before = sha(paths["cohort"])
    with pytest.raises(PhbEvalError, match="cohort.csv"):
        write_simulation(pilot, tmp_path, fmt="csv")
    assert sha(paths["cohort"]) == before                 # nothing was replaced
    (tmp_path / "truth.json").unlink()
    with pytest.raises(PhbEvalError, match="cohort.csv"):  # one existing file is enough to refuse
        write_simulation(pilot, tmp_path, fmt="csv")
    assert not (tmp_path / "truth.json").exists()
    with pytest.raises(PhbEvalError, match="truth.json"):  # no simulated truth beside it: maybe real data, kept
        write_simulation(pilot, tmp_path, fmt="csv", force=True)
    assert sha(paths["cohort"]) == before
    write_simulation(small, tmp_path / "sim", fmt="csv")
    write_simulation(pilot, tmp_path / "sim", fmt="csv", force=True)
    assert sha(tmp_path / "sim" / "cohort.csv") != before
    with pytest.raises(PhbEvalError, match="format"):
        write_simulation(pilot, tmp_path / "x", fmt="sav")


def test_bad_arguments_are_errors_for_people():
    with pytest.raises(PhbEvalError, match="n_phb"):
        simulate_pilot(n_phb=0)
    with pytest.raises(PhbEvalError, match="eq5d_version"):
        simulate_pilot(eq5d_version="4L")
    with pytest.raises(PhbEvalError, match="seed"):
        simulate_pilot(seed=-1)


def test_truth_is_json_and_complete(pilot):
    text = json.dumps(pilot.truth, allow_nan=False)        # raises on NaN or numpy types
    truth = json.loads(text)
    att = truth["effects"]["att"]
    for outcome in ("scrqol", "ascot_raw", "ghq12_likert", "ghq12_caseness", "eq5d_index", "eq_vas",
                    "carer_scrqol", "carer_ascot_raw", "carer_health", "carer_health_good"):
        assert outcome in att
        for stratum in ("all", "budget_band=<1000", "budget_band=>=1000", "implementation_model=model1",
                        "budget_band=>=1000;implementation_model=model1",
                        "budget_band=<1000;implementation_model=model2"):
            assert att[outcome][stratum] is not None
    assert truth["parameters"] == json.loads(json.dumps(DEFAULT_PARAMETERS))
    assert set(truth["service_use"]) >= set(ALL_SERVICES)


# ---- a pilot-like cohort ---------------------------------------------------------------------------
def test_phb_holders_start_worse(pilot):
    c = pilot.cohort
    phb = c["group"] == "phb"
    raw, ghq = raw_sum(c, "ascot", "t0"), raw_sum(c, "ghq12", "t0")
    assert raw[phb].mean() < raw[~phb].mean() - 1.0          # lower ASCOT = more care-related need
    assert ghq[phb].mean() > ghq[~phb].mean() + 1.0          # higher GHQ-12 = more distress
    smd = (raw[phb].mean() - raw[~phb].mean()) / raw.std()
    assert -0.7 < smd < -0.2                                   # confounded, but with overlap
    assert pilot.truth["baseline_difference"]["ascot_raw"] < 0


def test_budgets_pilot_like(pilot):
    c = pilot.cohort
    phb = c[c["group"] == "phb"]
    budget = phb["budget_gbp_per_year"]
    assert budget.notna().all() and (budget > 0).all()
    assert 0.4 < (budget < 1000).mean() < 0.6                  # about half under GBP 1,000
    assert phb.loc[phb["condition"] == "chc", "budget_gbp_per_year"].median() > 10_000
    assert 1 <= (budget > 50_000).sum() <= 60                  # a handful of very large budgets
    assert set(phb["deployment"]) == {"direct_payment", "third_party", "notional"}
    assert (phb["direct_cost_gbp_per_year"] == budget).all()
    ctrl = c[c["group"] == "control"]
    assert ctrl["direct_cost_gbp_per_year"].notna().all()
    assert (ctrl.loc[ctrl["condition"] == "chc", "direct_cost_gbp_per_year"].median()
            > 5 * ctrl.loc[ctrl["condition"] != "chc", "direct_cost_gbp_per_year"].median())
    shares = c["condition"].value_counts(normalize=True)
    assert shares["chc"] == shares.min() and 0.03 < shares["chc"] < 0.15


def test_controls_have_empty_budget_fields(pilot):
    ctrl = pilot.cohort[pilot.cohort["group"] == "control"]
    assert ctrl[BUDGET_COLUMNS].isna().all().all()
    phb = pilot.cohort[pilot.cohort["group"] == "phb"]
    assert phb[BUDGET_COLUMNS].notna().all().all()


def test_flexibility_varies_mainly_by_site(pilot):
    phb = pilot.cohort[pilot.cohort["group"] == "phb"]
    for feat in FLEXIBILITY_FEATURES:
        x = phb[feat].astype(float)
        site_mean = x.groupby(phb["site"]).transform("mean")
        share = ((site_mean - x.mean()) ** 2).sum() / ((x - x.mean()) ** 2).sum()
        # With no site effect the share would be about (sites - 1) / n = 0.016.
        assert share > 0.2, feat
        assert (x.groupby(phb["site"]).std() > 0).sum() >= 10, feat    # and people differ within sites


def test_carers_and_carer_items(pilot):
    c = pilot.cohort
    assert 0.33 < c["has_carer"].mean() < 0.47
    no_carer = c["has_carer"] == 0
    carer_cols = [col for col in c.columns if col.startswith("carer_")]
    assert c.loc[no_carer, carer_cols].isna().all().all()
    assert c.loc[~no_carer, "carer_health_t0"].notna().mean() > 0.95


def test_item_nonresponse_between_1_and_3_percent(pilot):
    c = pilot.cohort
    answered_t1 = (c["died"] == 0) & item_block(c, "ascot", "t1").notna().any(axis=1)
    for wave, rows in (("t0", pd.Series(True, index=c.index)), ("t1", answered_t1)):
        for inst in ("ascot", "ghq12", "eq5d"):
            share = item_block(c.loc[rows], inst, wave).isna().mean().mean()
            assert 0.01 <= share <= 0.03, (inst, wave, share)
        carers = rows & (c["has_carer"] == 1)
        share = item_block(c.loc[carers], "carer_ascot", wave).isna().mean().mean()
        assert 0.01 <= share <= 0.03, ("carer_ascot", wave, share)


def test_deaths_and_loss_rates_depend_on_need(large):
    c = large.cohort
    t1_empty = pd.concat([item_block(c, i, "t1") for i in ("ascot", "ghq12", "eq5d")], axis=1).isna().all(axis=1)
    died = c["died"] == 1
    lost = t1_empty & ~died
    assert 0.06 <= died.mean() <= 0.10
    assert 0.14 <= lost.mean() <= 0.21
    assert t1_empty[died].all()                               # died -> every t1 item empty
    raw0 = raw_sum(c, "ascot", "t0")
    high_need = raw0 <= raw0.quantile(1 / 3)
    low_need = raw0 >= raw0.quantile(2 / 3)
    assert died[high_need].mean() > 1.5 * died[low_need].mean()
    assert lost[high_need].mean() > lost[low_need].mean()
    # deaths: most have a date, inside the year after consent; PHB holders die more (higher need)
    dd = c.loc[died, "death_date"]
    assert 0.7 < dd.notna().mean() < 0.95
    days = (dd - c.loc[died, "consent_date"]).dt.days.dropna()
    assert days.between(1, 364).all()
    assert c.loc[c["group"] == "phb", "died"].mean() > c.loc[c["group"] == "control", "died"].mean()


def test_post_counts_observed_only_when_they_can_be(pilot):
    c = pilot.cohort
    post = c[[f"{s}_post" for s in ALL_SERVICES]]
    pre = c[[f"{s}_pre" for s in ALL_SERVICES]]
    assert pre.notna().all().all()
    t1_empty = item_block(c, "ascot", "t1").isna().all(axis=1) & item_block(c, "ghq12", "t1").isna().all(axis=1)
    died_no_date = (c["died"] == 1) & c["death_date"].isna()
    lost = t1_empty & (c["died"] == 0)
    unobserved = died_no_date | lost
    assert post[unobserved].isna().all().all()
    assert post[~unobserved].notna().all().all()
    died_dated = (c["died"] == 1) & c["death_date"].notna()
    assert post[died_dated].notna().all().all()                # partial-year counts kept


def test_service_use_overdispersed_site_effects_and_pre_predicts_post(large):
    c = large.cohort
    for s in ("gp_consultations", "ae_attendances", "inpatient_admissions"):
        x = c[f"{s}_pre"].astype(float)
        assert x.var() > 1.5 * x.mean()                       # overdispersed
        site_means = x.groupby(c["site"]).mean()
        assert site_means.max() / site_means.min() > 1.3       # site effects
        both = c[[f"{s}_pre", f"{s}_post"]].astype(float).dropna()
        assert both.corr().iloc[0, 1] > 0.2                    # pre predicts post
    days = c["inpatient_days_pre"].astype(float)
    adm = c["inpatient_admissions_pre"].astype(float)
    assert ((days >= adm) & ((adm == 0) == (days == 0))).all()  # every admission is at least one bed day


def test_service_rate_ratios_planted_and_recoverable(large):
    truth = large.truth["service_use"]
    for s, rr in (("inpatient_admissions", 0.85), ("ae_attendances", 0.85), ("gp_consultations", 0.9),
                  ("outpatient_attendances", 1.0)):
        assert truth[s]["rate_ratio_planted"] == rr
        assert abs(truth[s]["rate_ratio_att"] - rr) < 0.03      # realised ATT from the coupled counts
    # A Poisson GLM with log(pre + 1), condition and site: the PHB rate ratio is close to the planted one.
    c = large.cohort
    exposure = np.where(c["death_date"].notna(),
                        (c["death_date"] - c["consent_date"]).dt.days.clip(1, 365) / 365, 1.0)
    d = pd.DataFrame({"y": c["gp_consultations_post"].astype(float),
                      "lpre": np.log1p(c["gp_consultations_pre"].astype(float)),
                      "phb": (c["group"] == "phb").astype(float), "exposure": exposure})
    X = pd.concat([d[["phb", "lpre"]], pd.get_dummies(c[["condition", "site"]], drop_first=True, dtype=float)],
                  axis=1)
    keep = d["y"].notna()
    fit = sm.GLM(d.loc[keep, "y"], sm.add_constant(X[keep]), family=sm.families.Poisson(),
                 exposure=d.loc[keep, "exposure"]).fit(cov_type="HC1")
    rr = np.exp(fit.params["phb"])
    assert abs(np.log(rr) - np.log(0.9)) < 4 * fit.bse["phb"] + 0.03


# ---- planted effects -------------------------------------------------------------------------------
def test_precomputed_scores_match_items_and_scoring(pilot):
    from phb_eval.instruments import score_all
    from phb_eval.plan import load_plan
    from phb_eval.simulate import WEIGHTS_FILES
    plan = load_plan(None, {"instruments": {"ascot_weights": str(WEIGHTS_FILES["ascot"]),
                                            "carer_ascot_weights": str(WEIGHTS_FILES["carer_ascot"])}})
    scored = score_all(pilot.cohort, plan)
    assert scored.warnings == []                              # precomputed scrqol agrees with the items
    assert scored.frame["scrqol_t0"].between(-0.17, 1.0).all() or scored.frame["scrqol_t0"].isna().any()
    assert scored.frame["scrqol_t0"].notna().mean() > 0.8


def test_eq5d_has_no_planted_effect(pilot):
    att = pilot.truth["effects"]["att"]
    assert all(v == 0.0 for v in att["eq5d_index"].values())
    assert all(v == 0.0 for v in att["eq_vas"].values())
    assert pilot.truth["effects"]["mortality_risk_difference"] == 0.0


def test_truth_direction_and_heterogeneity(pilot, large):
    for sim in (pilot, large):
        att = sim.truth["effects"]["att"]
        best = "budget_band=>=1000;implementation_model=model1"
        worst = "budget_band=<1000;implementation_model=model2"
        for outcome in ("scrqol", "ascot_raw", "carer_scrqol", "carer_ascot_raw"):
            assert att[outcome][best] > att[outcome]["all"] > att[outcome][worst], outcome
            assert att[outcome][worst] < 0 < att[outcome]["all"]
        for outcome in ("ghq12_likert", "carer_health"):       # lower = better
            assert att[outcome][best] < att[outcome]["all"] < att[outcome][worst], outcome
            assert att[outcome]["all"] < 0
        assert att["ascot_raw"]["budget_band=>=1000"] > att["ascot_raw"]["budget_band=<1000"]
        assert att["ascot_raw"]["implementation_model=model1"] > att["ascot_raw"]["implementation_model=model2"]


def _ascot_frame(sim):
    c = sim.cohort
    d = pd.DataFrame({"phb": (c["group"] == "phb").astype(float), "site": c["site"], "condition": c["condition"],
                      "y0": raw_sum(c, "ascot", "t0"), "y1": raw_sum(c, "ascot", "t1"),
                      "g0": raw_sum(c, "ghq12", "t0")})
    model1 = (c[FLEXIBILITY_FEATURES] == 1).all(axis=1)
    band = np.where(c["budget_gbp_per_year"] >= 1000, ">=1000", "<1000")
    d["stratum"] = np.where(d["phb"] == 1, "budget_band=" + pd.Series(band, index=c.index)
                            + ";implementation_model=" + np.where(model1, "model1", "model2"), "control")
    return d.dropna(subset=["y0", "y1", "g0"])


def _regression_adjustment(d):
    """OLS with PHB x covariate interactions, covariates centred on the PHB holders' means.

    The PHB coefficient is then the mean over PHB holders of (observed - predicted from the control
    arm's regression), i.e. an ATT estimate under heterogeneous effects; HC1 errors.
    """
    dummies = pd.get_dummies(d[["site", "condition"]], drop_first=True, dtype=float)
    X = pd.concat([d[["y0", "g0"]], dummies], axis=1)
    X = X - X[d["phb"] == 1].mean()
    design = sm.add_constant(pd.concat([d[["phb"]], X, X.mul(d["phb"], axis=0).add_suffix(":phb")], axis=1))
    fit = sm.OLS(d["y1"], design).fit(cov_type="HC1")
    control = sm.OLS(d.loc[d["phb"] == 0, "y1"], sm.add_constant(X[d["phb"] == 0])).fit()
    residual = d["y1"] - control.predict(sm.add_constant(X))
    return fit, residual


def test_baseline_adjustment_recovers_planted_ascot_effect(large):
    """20,000 people: naive follow-up difference is biased; OLS on baseline recovers the truth.

    Allocation depended on the observed baseline ASCOT and GHQ-12 sums, condition and site, so
    adjusting for exactly those removes the confounding. Effects are heterogeneous, so a plain
    ANCOVA coefficient weights strata differently from the ATT; regression adjustment (PHB x
    centred-covariate interactions) targets the ATT over the PHB holders it analyses, i.e.
    ``att_followed_up``. Tolerance: 3 HC1 standard errors (about 0.23 points here), the sampling
    error of the estimate given this population; the truth itself is exact.
    """
    d = _ascot_frame(large)
    truth = large.truth["effects"]["att_followed_up"]["ascot_raw"]["all"]
    naive = d.loc[d["phb"] == 1, "y1"].mean() - d.loc[d["phb"] == 0, "y1"].mean()
    fit, _ = _regression_adjustment(d)
    est, se = fit.params["phb"], fit.bse["phb"]
    assert abs(est - truth) < 3 * se
    assert abs(naive - truth) > 10 * se                       # a naive comparison is badly biased
    ancova = sm.OLS(d["y1"], sm.add_constant(pd.concat(
        [d[["phb", "y0", "g0"]], pd.get_dummies(d[["site", "condition"]], drop_first=True, dtype=float)],
        axis=1))).fit()
    assert abs(ancova.params["phb"] - truth) < 0.25 * abs(naive - truth)   # baseline removes most of it


def test_heterogeneity_visible_in_the_data(large):
    d = _ascot_frame(large)
    _, residual = _regression_adjustment(d)
    truth = large.truth["effects"]["att_followed_up"]["ascot_raw"]
    est = residual[d["phb"] == 1].groupby(d["stratum"]).mean()
    overall = residual[d["phb"] == 1].mean()
    best = "budget_band=>=1000;implementation_model=model1"
    worst = "budget_band=<1000;implementation_model=model2"
    assert est[best] > overall > 0 > est[worst]
    for stratum, value in est.items():   # each stratum's estimate is near its own truth
        n = int((d["stratum"] == stratum).sum())
        assert abs(value - truth[stratum]) < 4 * residual[d["phb"] == 0].std() / np.sqrt(n), stratum


# ---- events ---------------------------------------------------------------------------------------
def _aggregate(events, cohort):
    """Independent pandas aggregation with the documented windows (pre: [-365, 0), post: [0, 365))."""
    ev = events.merge(cohort[["participant_id", "consent_date"]], on="participant_id")
    k = (ev["event_date"] - ev["consent_date"]).dt.days
    ev["window"] = np.select([(k >= -365) & (k < 0), (k >= 0) & (k < 365)], ["pre", "post"], "outside")
    ids = cohort["participant_id"]
    out = {}
    for col, (service, how) in SERVICE_TO_EVENT.items():
        sel = ev[ev["service"] == service]
        for window in ("pre", "post"):
            w = sel[sel["window"] == window].groupby("participant_id")
            agg = w["quantity"].sum() if how == "quantity" else w.size()
            out[f"{col}_{window}"] = agg.reindex(ids, fill_value=0).to_numpy(dtype=float)
    return pd.DataFrame(out, index=ids.to_numpy()), (ev["window"] == "outside").sum()


def test_events_aggregate_back_to_counts_exactly(pilot):
    c, ev = pilot.cohort, pilot.events
    assert list(ev.columns) == ["participant_id", "event_date", "service", "quantity", "cost_gbp"]
    assert set(ev["service"]) == {"inpatient", "ae", "gp", "outpatient", "community_nurse", "practice_nurse"}
    assert (ev.loc[ev["service"] != "inpatient", "quantity"] == 1).all()
    assert (ev.loc[ev["service"] == "inpatient", "quantity"] >= 1).all()
    assert 0 < ev["cost_gbp"].notna().mean() < 0.1           # mostly empty
    agg, outside = _aggregate(ev, c)
    assert outside == 0
    counts = c.set_index("participant_id")
    for col in agg.columns:
        given = counts[col].astype(float)
        seen = given.notna()
        np.testing.assert_array_equal(agg.loc[seen.to_numpy(), col].to_numpy(), given[seen].to_numpy(), err_msg=col)
    # died with a date: no events after death
    ev2 = ev.merge(c[["participant_id", "death_date"]], on="participant_id")
    assert (ev2["event_date"].dropna() < ev2["death_date"].fillna(pd.Timestamp.max)).all()


def test_events_through_the_project_aggregator(pilot):
    from phb_eval.events import aggregate_events
    c = pilot.cohort
    agg = aggregate_events(pilot.events, c).set_index("participant_id")
    counts = c.set_index("participant_id")
    died_no_date = (counts["died"] == 1) & counts["death_date"].isna()
    for col in [f"{s}_{p}" for s in ALL_SERVICES for p in ("pre", "post")]:
        given = counts[col].astype(float)
        seen = given.notna()
        np.testing.assert_array_equal(agg.loc[seen[seen].index, col].to_numpy(), given[seen].to_numpy(), err_msg=col)
        if col.endswith("_post"):
            assert agg.loc[died_no_date[died_no_date].index, col].isna().all()


def test_cli_simulate_writes_the_files(tmp_path):
    from click.testing import CliRunner
    from phb_eval.cli import cli
    result = CliRunner().invoke(cli, ["simulate", "--out", str(tmp_path), "--n-phb", "40", "--n-control", "40",
                                      "--sites", "4", "--events", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} == {"cohort.csv", "events.csv", "truth.json"}
    from phb_eval.cli import main
    with pytest.raises(SystemExit) as stop:        # the real entry point: a user mistake exits 2
        main(["simulate", "--out", str(tmp_path), "--n-phb", "40", "--n-control", "40"])
    assert stop.value.code == 2


@pytest.mark.slow
def test_national_scale_is_feasible():
    sim = simulate_pilot(n_phb=100_000, n_control=100_000, seed=1)
    assert len(sim.cohort) == 200_000
    assert sim.cohort["participant_id"].is_unique
