"""Budget impact: closed-form projections, discounting by hand, uptake shapes, the transition cap, the
cost-neutral year, intervals that are the quantiles of the draws they come from, reading a compare run's
folder, and errors that say what to give."""
import json
import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from phb_eval.budget_impact import (DRAWS_FILE, LOGISTIC_STEEPNESS, TABLE_COLUMNS, budget_per_holder_rows,
                                    check_settings, cost_neutral_year, decommission_shares, demo_draws, demo_inputs,
                                    discount_factors, double_running_cost, double_running_weights, holders_path,
                                    inputs_from_results, interval, new_holders, one_way_sensitivity, project,
                                    resolve_inputs, run_budget_impact, uptake_path)
from phb_eval.errors import DataError, PhbEvalError, PlanError
from phb_eval.plan import BudgetImpactSettings, load_plan
from phb_eval.results import RESULT_COLUMNS, Results, estimate_row

BASE = dict(years=3, eligible={"chc": 6000.0, "stroke": 4000.0}, uptake="linear", uptake_start=0.1, uptake_end=0.1,
            band_shares={"<1000": 0.4, ">=1000": 0.6}, budget_per_holder={"<1000": 800.0, ">=1000": 5000.0},
            indirect_change_per_holder={"<1000": -100.0, ">=1000": -900.0}, double_running_per_new_holder=0.0,
            double_running_years=1.0, areas=1, transition_cap_per_area=None, transition_years=0,
            decommission_share_per_year=0.0, conventional_cost_per_holder=0.0, discount_rate=0.0)
BUDGET = 0.4 * 800 + 0.6 * 5000          # share-weighted budget per holder: 3,320
SAVING = 0.4 * 100 + 0.6 * 900           # share-weighted indirect saving per holder: 580
H = 10000 * 0.1                          # holders under constant uptake


def S(**kw) -> BudgetImpactSettings:
    return BudgetImpactSettings.model_validate({**BASE, **kw})


def plan_with(**bi):
    return load_plan(overrides={"budget_impact": {**BASE, **bi}})


# --------------------------------------------------------------------------------------------- closed forms
def test_constant_uptake_no_growth_no_decommissioning_is_holders_times_budget_minus_savings_plus_double_running():
    D = 300.0
    s = S(double_running_per_new_holder=D, double_running_years=3.0)   # double running lasts the whole horizon
    t = project(s).table
    expected = H * (BUDGET - SAVING + D)
    assert expected == pytest.approx(3_040_000.0)
    np.testing.assert_allclose(t["holders"], [H] * 3, rtol=0, atol=1e-9)
    np.testing.assert_allclose(t["net_impact"], [expected] * 3, rtol=1e-13)
    np.testing.assert_allclose(t["direct_spend"], [H * BUDGET] * 3, rtol=1e-13)
    np.testing.assert_allclose(t["indirect_change"], [-H * SAVING] * 3, rtol=1e-13)
    np.testing.assert_allclose(t["double_running"], [H * D] * 3, rtol=1e-13)
    np.testing.assert_allclose(t["decommission_released"], 0.0)
    np.testing.assert_allclose(t["cumulative_discounted"], expected * np.arange(1, 4), rtol=1e-13)
    # the same with a growth multiple of 1 (no growth)
    g = project(S(uptake="growth_multiple", growth_multiple=1.0, double_running_per_new_holder=D,
                  double_running_years=3.0)).table
    np.testing.assert_allclose(g["net_impact"], [expected] * 3, rtol=1e-13)


def test_double_running_paid_in_year_of_entry_or_spread_over_fractional_years():
    D = 300.0
    one = project(S(double_running_per_new_holder=D, double_running_years=1.0)).table
    np.testing.assert_allclose(one["new_holders"], [H, 0, 0])
    np.testing.assert_allclose(one["net_impact"], [H * (BUDGET - SAVING + D), H * (BUDGET - SAVING),
                                                   H * (BUDGET - SAVING)], rtol=1e-13)
    half = project(S(double_running_per_new_holder=D, double_running_years=1.5)).table
    np.testing.assert_allclose(half["double_running"], [H * D, H * D / 2, 0.0], rtol=1e-13)
    np.testing.assert_allclose(double_running_weights(1.5, 4), [1.0, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(double_running_weights(0.25, 3), [0.25, 0.0, 0.0])
    np.testing.assert_allclose(double_running_weights(0.0, 2), [0.0, 0.0])
    # growing holders 100, 300, 600: new 100, 200, 300; duration 1.5 at £1,000 a year
    np.testing.assert_allclose(new_holders([100, 300, 600]), [100, 200, 300])
    np.testing.assert_allclose(double_running_cost([100, 200, 300], 1000.0, 1.5),
                               [100_000, 200_000 + 50_000, 300_000 + 100_000])
    assert new_holders([500, 400, 450]).tolist() == [500, 0, 50]     # a fall creates no new holders


def test_decommissioning_releases_cumulative_share_of_conventional_cost():
    np.testing.assert_allclose(decommission_shares(0.4, 4), [0.4, 0.8, 1.0, 1.0])
    s = S(years=4, decommission_share_per_year=0.4, conventional_cost_per_holder=2000.0)
    t = project(s).table
    np.testing.assert_allclose(t["decommission_released"], [0.4 * 2000 * H, 0.8 * 2000 * H, 2000 * H, 2000 * H])
    np.testing.assert_allclose(t["net_impact"], H * (BUDGET - SAVING) - np.array([800, 1600, 2000, 2000]) * H)


def test_discounting_by_hand_three_years():
    s = S(uptake_start=0.1, uptake_end=0.3, discount_rate=0.035, double_running_per_new_holder=100.0)
    t = project(s).table
    hold = np.array([1000.0, 2000.0, 3000.0])
    net = hold * (BUDGET - SAVING) + np.array([1000, 1000, 1000]) * 100.0
    np.testing.assert_allclose(t["net_impact"], net, rtol=1e-13)
    by_hand = [net[0], net[1] / 1.035, net[2] / 1.035 ** 2]
    np.testing.assert_allclose(t["discount_factor"], [1.0, 1 / 1.035, 1 / 1.035 ** 2], rtol=1e-15)
    np.testing.assert_allclose(t["discounted_net"], by_hand, rtol=1e-13)
    np.testing.assert_allclose(t["cumulative_discounted"],
                               [by_hand[0], by_hand[0] + by_hand[1], sum(by_hand)], rtol=1e-13)
    np.testing.assert_allclose(discount_factors(0.0, 3), [1, 1, 1])


# --------------------------------------------------------------------------------------------- uptake
def test_linear_uptake():
    np.testing.assert_allclose(uptake_path(S(years=5, uptake_start=0.05, uptake_end=0.25)),
                               [0.05, 0.10, 0.15, 0.20, 0.25], rtol=1e-12)
    assert uptake_path(S(years=1, uptake_start=0.07, uptake_end=0.5)).tolist() == [0.07]


def test_logistic_uptake_runs_from_start_to_end_as_an_s_curve():
    s = S(years=5, uptake="logistic", uptake_start=0.02, uptake_end=0.30)
    u = uptake_path(s)
    sig = [1 / (1 + math.exp(-LOGISTIC_STEEPNESS * ((t - 1) / 4 - 0.5))) for t in range(1, 6)]
    by_hand = [0.02 + 0.28 * (g - sig[0]) / (sig[-1] - sig[0]) for g in sig]
    np.testing.assert_allclose(u, by_hand, rtol=1e-12)
    assert u[0] == pytest.approx(0.02, abs=1e-15) and u[-1] == pytest.approx(0.30, abs=1e-15)
    assert u[2] == pytest.approx(0.16, abs=1e-15)                 # half-way in time = half-way in uptake
    np.testing.assert_allclose(u - 0.02, (0.30 - u)[::-1], atol=1e-15)   # point-symmetric about the middle
    steps = np.diff(u)
    assert (steps > 0).all() and steps[1] > steps[0] and steps[2] > steps[3]   # slow, fast, slow
    # holders follow uptake
    np.testing.assert_allclose(holders_path(s)[0], 10000 * u)


def test_growth_multiple_ten_fold_over_eight_years():
    s = S(years=9, uptake="growth_multiple", uptake_start=0.01, growth_multiple=10.0, growth_years=8)
    hold, _ = holders_path(s)
    assert hold[8] == pytest.approx(10 * hold[0], rel=1e-12)      # year 9 = ten times year 1
    assert hold[4] == pytest.approx(math.sqrt(10) * hold[0], rel=1e-12)
    np.testing.assert_allclose(hold[1:] / hold[:-1], 10 ** (1 / 8), rtol=1e-12)
    # uptake never exceeds everyone eligible
    u = uptake_path(S(years=6, uptake="growth_multiple", uptake_start=0.3, growth_multiple=4.0, growth_years=2))
    np.testing.assert_allclose(u, [0.3, 0.6, 1.0, 1.0, 1.0, 1.0], rtol=1e-12)


def test_transition_cap_limits_holders_in_transition_years_only():
    s = S(areas=4, transition_cap_per_area=75, transition_years=2, double_running_per_new_holder=50.0)
    hold, capped = holders_path(s)
    np.testing.assert_allclose(hold, [300, 300, 1000])
    assert capped.tolist() == [True, True, False]
    t = project(s).table
    np.testing.assert_allclose(t["new_holders"], [300, 0, 700])
    np.testing.assert_allclose(t["double_running"], [300 * 50, 0, 700 * 50])
    np.testing.assert_allclose(t["net_impact"], np.array([300, 300, 1000]) * (BUDGET - SAVING) + [15000, 0, 35000])
    # a cap that does not bind changes nothing; no cap without transition years
    np.testing.assert_allclose(holders_path(S(areas=20, transition_cap_per_area=75, transition_years=2))[0], H)
    np.testing.assert_allclose(holders_path(S(areas=1, transition_cap_per_area=75, transition_years=0))[0], H)


# --------------------------------------------------------------------------------------------- cost-neutral year
def test_cost_neutral_year():
    assert cost_neutral_year([5.0, 2.0, -1.0, -3.0]) == 3
    assert cost_neutral_year([1.0, 2.0]) is None
    assert cost_neutral_year([0.0, 1.0]) == 1
    # 1,000 holders; half the conventional £4,000 a holder released in year 1, all of it from year 2
    s = S(decommission_share_per_year=0.5, conventional_cost_per_holder=4000.0)
    p = project(s)
    np.testing.assert_allclose(p.table["net_impact"], [740_000, -1_260_000, -1_260_000], rtol=1e-13)
    np.testing.assert_allclose(p.table["cumulative_discounted"], [740_000, -520_000, -1_780_000], rtol=1e-13)
    assert p.cost_neutral_year == 2 and p.first_saving_year == 2
    # discounting can delay it: net 890,000 then −960,000 pays back undiscounted in year 2,
    # but −960,000 / 1.2 = −800,000 does not at 20%
    kw = dict(decommission_share_per_year=0.5, conventional_cost_per_holder=3700.0, years=2)
    assert project(S(**kw)).table["net_impact"].tolist() == pytest.approx([890_000, -960_000])
    assert project(S(**kw)).cost_neutral_year == 2
    q = project(S(discount_rate=0.2, **kw))
    assert q.table["cumulative_discounted"].iloc[1] == pytest.approx(90_000)
    assert q.cost_neutral_year is None and q.first_saving_year == 2
    assert project(S()).cost_neutral_year is None


# --------------------------------------------------------------------------------------------- uncertainty
def test_interval_is_the_quantiles_of_the_draws_it_is_built_from():
    rng = np.random.default_rng(7)
    draws = pd.DataFrame({"all": rng.normal(-500, 300, 999)})
    s = S(band_shares={"all": 1.0}, budget_per_holder={"all": 2000.0}, indirect_change_per_holder={"all": -400.0},
          uptake_start=0.1, uptake_end=0.2)
    for conf in (0.95, 0.9):
        t = project(s, draws=draws, conf_level=conf).table
        q = np.quantile(draws["all"], [(1 - conf) / 2, (1 + conf) / 2])
        hold = np.array([1000.0, 1500.0, 2000.0])
        np.testing.assert_allclose(t["net_impact_low"], hold * (2000 + q[0]), rtol=1e-12)
        np.testing.assert_allclose(t["net_impact_high"], hold * (2000 + q[1]), rtol=1e-12)
        # the central projection uses the point value, not the mean of the draws
        np.testing.assert_allclose(t["net_impact"], hold * (2000 - 400), rtol=1e-13)
        cum = np.cumsum(hold * (2000 + draws["all"].to_numpy()[:, None]), axis=1)
        np.testing.assert_allclose(t["cumulative_discounted_low"], np.quantile(cum, (1 - conf) / 2, axis=0), rtol=1e-12)


def test_interval_equals_numpy_quantile_of_per_draw_net_impacts_with_two_correlated_bands():
    rng = np.random.default_rng(11)
    common = rng.normal(0, 200, 500)                      # shared control arm: draws correlated across bands
    draws = pd.DataFrame({"<1000": -100 + common + rng.normal(0, 50, 500),
                          ">=1000": -900 + 2 * common + rng.normal(0, 300, 500)})
    s = S(years=4, uptake_start=0.05, uptake_end=0.2, double_running_per_new_holder=400.0, double_running_years=1.5,
          decommission_share_per_year=0.3, conventional_cost_per_holder=1500.0, discount_rate=0.035,
          areas=2, transition_cap_per_area=200, transition_years=1)
    p = project(s, draws=draws, conf_level=0.95)
    hold = p.table["holders"].to_numpy()
    fixed = (p.table["direct_spend"] + p.table["double_running"] - p.table["decommission_released"]).to_numpy()
    per_draw = fixed[None, :] + (0.4 * draws["<1000"].to_numpy() + 0.6 * draws[">=1000"].to_numpy())[:, None] * hold
    np.testing.assert_allclose(p.net_draws, per_draw, rtol=1e-12)
    lo, hi = np.quantile(per_draw, [0.025, 0.975], axis=0)
    np.testing.assert_allclose(p.table["net_impact_low"], lo, rtol=1e-12)
    np.testing.assert_allclose(p.table["net_impact_high"], hi, rtol=1e-12)
    disc = per_draw * discount_factors(0.035, 4)
    np.testing.assert_allclose(p.table["discounted_net_high"], np.quantile(disc, 0.975, axis=0), rtol=1e-12)
    cum = np.cumsum(disc, axis=1)
    np.testing.assert_allclose(p.table["cumulative_discounted_low"], np.quantile(cum, 0.025, axis=0), rtol=1e-12)
    assert p.prob_cost_neutral == pytest.approx(np.mean(cum[:, -1] <= 0))
    # shuffling the draws' rows together changes nothing; the pairing across bands matters
    p2 = project(s, draws=draws.sample(frac=1.0, random_state=1), conf_level=0.95)
    np.testing.assert_allclose(p2.table["net_impact_low"], p.table["net_impact_low"], rtol=1e-12)


def test_draws_with_missing_values_are_left_out_and_a_band_without_draws_is_fixed():
    draws = pd.DataFrame({"<1000": [-100.0, np.nan, -300.0], ">=1000": [-800.0, -900.0, -1000.0]})
    p = project(S(), draws=draws)
    assert p.n_draws == 2 and any("left out" in n for n in p.notes)
    only = project(S(), draws=pd.DataFrame({">=1000": [-800.0, -1000.0]}))
    np.testing.assert_allclose(only.net_draws[:, 0], H * (BUDGET + 0.4 * -100 + 0.6 * np.array([-800.0, -1000.0])))
    lo, hi = interval(np.array([1.0, 2.0, 3.0]), 0.5)
    assert (lo, hi) == (1.5, 2.5)


# --------------------------------------------------------------------------------------------- errors
def test_settings_errors_name_the_setting_and_the_fix():
    with pytest.raises(PlanError, match=r"band_shares: the shares sum to 0\.9"):
        check_settings(S(band_shares={"<1000": 0.4, ">=1000": 0.5}))
    with pytest.raises(PlanError, match=r"budget_per_holder: no budget .*\['>=1000'\]"):
        check_settings(S(budget_per_holder={"<1000": 800.0}))
    with pytest.raises(PlanError, match="eligible: no eligible people"):
        check_settings(S(eligible={"chc": 0.0}))
    with pytest.raises(PlanError, match="budget_per_holder: budgets must be finite and >= 0"):
        check_settings(S(budget_per_holder={"<1000": -1.0, ">=1000": 5000.0}))
    # a zero-share band needs no values
    check_settings(S(band_shares={"<1000": 0.0, ">=1000": 1.0}, budget_per_holder={">=1000": 1.0},
                     indirect_change_per_holder={">=1000": 0.0}))


def test_plan_without_values_or_results_says_what_to_give():
    plan = load_plan()                                    # default plan: budgets and indirect changes empty
    with pytest.raises(PlanError) as exc:
        run_budget_impact(plan)
    msg = str(exc.value)
    assert "budget_impact.budget_per_holder" in msg and "'<1000'" in msg and "--from-results" in msg
    assert "budget_impact.indirect_change_per_holder" in msg and "negative = saving" in msg
    with pytest.raises(PlanError, match="cannot be combined"):
        run_budget_impact(plan, demo=True, results_dir="somewhere")


# --------------------------------------------------------------------------------------------- from results
def _cea_row(stratum, est, method="ols_bootstrap"):
    return estimate_row("cea", "incremental_cost_indirect", method, est, 100.0, est - 200, est + 200, stratum=stratum,
                        n_phb=400, n_control=900)


def _write_folder(folder, rows, draws=None, meta=None):
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in rows]
    (folder / "results.json").write_text(json.dumps({"meta": meta or {}, "estimates": rows}), encoding="utf-8")
    if draws is not None:
        (folder / "tables").mkdir(exist_ok=True)
        draws.to_csv(folder / DRAWS_FILE, index=False)
    return folder


def _draws_table(B=200, seed=3):
    rng = np.random.default_rng(seed)
    out = []
    for s, mu in (("all", -600.0), ("budget_band=<1000", -80.0), ("budget_band=>=1000", -1100.0),
                  ("implementation_model=model1", -700.0)):
        out.append(pd.DataFrame({"stratum": s, "replicate": np.arange(1, B + 1), "d_effect": rng.normal(0.04, 0.01, B),
                                 "d_qaly": np.nan, "d_cost": rng.normal(1000, 300, B), "d_cost_direct": np.nan,
                                 "d_cost_indirect": rng.normal(mu, 150, B)}))
    d = pd.concat(out, ignore_index=True)
    return d.sample(frac=1.0, random_state=5).reset_index(drop=True)     # row order must not matter


@pytest.fixture
def folder(tmp_path):
    rows = [_cea_row("all", -600.0), _cea_row("budget_band=<1000", -75.0), _cea_row("budget_band=>=1000", -1050.0),
            _cea_row("budget_band=<1000;implementation_model=model1", -90.0),
            estimate_row("cea", "incremental_cost_direct", "ols_bootstrap", 2500.0, stratum="budget_band=<1000"),
            estimate_row("cost", "budget_per_holder", "mean_phb", 610.0, stratum="budget_band=<1000", n_phb=500),
            estimate_row("cost", "budget_per_holder", "mean_phb", 9800.0, stratum="budget_band=>=1000", n_phb=480),
            estimate_row("cost", "direct_cost", "ols_cr1_site", 2512.4, 410.0)]
    return _write_folder(tmp_path / "run", rows, _draws_table(),
                         meta={"plan": {"costs": {"price_year": "2024/25"}, "confidence_level": 0.95}})


def test_inputs_from_results_reads_points_budgets_and_draws_by_replicate(folder):
    got = inputs_from_results(folder)
    assert got["bands"] == ["<1000", ">=1000"]
    assert got["indirect_change_per_holder"] == {"<1000": -75.0, ">=1000": -1050.0}
    assert got["budget_per_holder"] == {"<1000": 610.0, ">=1000": 9800.0}
    assert got["price_year"] == "2024/25" and got["missing"] == []
    d = pd.read_csv(folder / DRAWS_FILE)
    for band in ("<1000", ">=1000"):
        want = d[d["stratum"] == f"budget_band={band}"].sort_values("replicate")["d_cost_indirect"].to_numpy()
        np.testing.assert_allclose(got["draws"][band].to_numpy(), want)
    assert got["draws"].index.tolist() == list(range(1, 201))
    # cross strata (band × implementation model) are read when asked for by their label
    cross = inputs_from_results(folder, bands=["budget_band=<1000;implementation_model=model1"], require=False)
    assert cross["indirect_change_per_holder"] == {"budget_band=<1000;implementation_model=model1": -90.0}


def test_run_from_results_interval_reproduces_the_draw_quantiles(folder):
    plan = plan_with(budget_per_holder={}, indirect_change_per_holder={}, years=4, uptake_start=0.1, uptake_end=0.25)
    res = run_budget_impact(plan, results_dir=folder)
    t = res.tables["budget_impact"]
    got = inputs_from_results(folder)
    w = 0.4 * got["draws"]["<1000"].to_numpy() + 0.6 * got["draws"][">=1000"].to_numpy()
    budget = 0.4 * 610 + 0.6 * 9800
    per_draw = t["holders"].to_numpy()[None, :] * (budget + w[:, None])
    np.testing.assert_allclose(t["net_impact_low"], np.quantile(per_draw, 0.025, axis=0), rtol=1e-12)
    np.testing.assert_allclose(t["net_impact_high"], np.quantile(per_draw, 0.975, axis=0), rtol=1e-12)
    np.testing.assert_allclose(t["net_impact"], t["holders"] * (budget + 0.4 * -75 + 0.6 * -1050), rtol=1e-13)
    meta = res.meta["budget_impact"]
    assert meta["source"] == "results" and meta["n_draws"] == 200 and meta["price_year"] == "2024/25"
    assert meta["input_sources"]["budget_per_holder"] == {"<1000": "results", ">=1000": "results"}
    # plan values win per band; that band is then fixed in the interval
    plan2 = plan_with(budget_per_holder={">=1000": 12000.0}, indirect_change_per_holder={"<1000": -50.0})
    res2 = run_budget_impact(plan2, results_dir=folder)
    src = res2.meta["budget_impact"]["input_sources"]
    assert src["budget_per_holder"] == {">=1000": "plan", "<1000": "results"}
    assert src["indirect_change_per_holder"] == {"<1000": "plan", ">=1000": "results"}
    assert any("held fixed" in w for w in res2.warnings)
    s2 = res2.meta["budget_impact"]["settings"]
    assert s2["budget_per_holder"] == {">=1000": 12000.0, "<1000": 610.0}


def test_from_results_errors_name_the_file_the_piece_and_the_fix(tmp_path, folder):
    with pytest.raises(DataError, match="not a folder"):
        inputs_from_results(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"results\.json: not found.*budget_impact section"):
        inputs_from_results(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match=r"results\.json: not valid JSON"):
        inputs_from_results(bad)
    # no budget_band rows at all
    none = _write_folder(tmp_path / "none", [_cea_row("all", -600.0)], _draws_table())
    with pytest.raises(DataError, match=r"no cost-effectiveness rows .*budget_band in cea\.strata"):
        inputs_from_results(none)
    # budget rows missing: the folder is still usable when the plan gives the budgets
    nob = _write_folder(tmp_path / "nob", [_cea_row("budget_band=<1000", -75.0), _cea_row("budget_band=>=1000", -1e3)],
                        _draws_table())
    with pytest.raises(DataError, match=r"outcome=budget_per_holder, stratum=budget_band=<1000.*"
                                        r"budget_per_holder\['<1000'\]"):
        inputs_from_results(nob)
    with pytest.raises(PlanError, match=r"no budget .* for band '<1000' \(the compare results lack it too\)"):
        run_budget_impact(plan_with(budget_per_holder={}, indirect_change_per_holder={}), results_dir=nob)
    res = run_budget_impact(plan_with(budget_per_holder={"<1000": 600.0, ">=1000": 9000.0},
                                      indirect_change_per_holder={}), results_dir=nob)
    assert res.meta["budget_impact"]["n_draws"] == 200
    # draws missing
    nod = _write_folder(tmp_path / "nod", [_cea_row("budget_band=<1000", -75.0), _cea_row("budget_band=>=1000", -1e3)])
    with pytest.raises(DataError, match=r"cea_draws\.csv: not found"):
        inputs_from_results(nod, require=True)
    res = run_budget_impact(plan_with(budget_per_holder={"<1000": 600.0, ">=1000": 9000.0},
                                      indirect_change_per_holder={}), results_dir=nod)
    assert res.tables["budget_impact"]["net_impact_low"].isna().all()
    assert any("no interval" in w for w in res.warnings)
    # a not-estimable stratum (estimate null) is named
    nan = _write_folder(tmp_path / "nan", [_cea_row("budget_band=<1000", float("nan"))], _draws_table())
    with pytest.raises(DataError, match=r"budget_band=<1000 was not estimable"):
        inputs_from_results(nan)
    # draws table without the indirect column
    broken = _draws_table().drop(columns="d_cost_indirect")
    nocol = _write_folder(tmp_path / "nocol", [_cea_row("budget_band=<1000", -75.0)], broken)
    with pytest.raises(DataError, match=r"lacks column\(s\) \['d_cost_indirect'\]"):
        inputs_from_results(nocol, require=False)


def test_budget_per_holder_rows_round_trip(tmp_path):
    frame = pd.DataFrame({"phb": [1] * 12 + [0] * 3,
                          "budget_band": ["<1000"] * 9 + [">=1000"] * 3 + [np.nan] * 3,
                          "budget_gbp_per_year": [100, 200, 300, 400, 500, 600, 700, 800, 900, 5e3, 6e3, 7e3,
                                                  np.nan, np.nan, np.nan]})
    rows = budget_per_holder_rows(frame)
    assert list(rows.columns[:len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    small = rows[rows["stratum"] == "budget_band=>=1000"].iloc[0]
    assert math.isnan(small["estimate"]) and "fewer than 8" in small["note"]
    big = rows[rows["stratum"] == "budget_band=<1000"].iloc[0]
    assert big["estimate"] == pytest.approx(500.0) and big["n_phb"] == 9
    assert big["se"] == pytest.approx(np.std(np.arange(100, 1000, 100), ddof=1) / 3)
    folder = _write_folder(tmp_path / "r", rows.to_dict("records") + [_cea_row("budget_band=<1000", -75.0)],
                           _draws_table())
    got = inputs_from_results(folder, require=False)
    assert got["budget_per_holder"] == {"<1000": 500.0}


def test_inputs_from_a_results_written_by_the_report_writer(tmp_path):
    """The real output layout: write a compare-like Results with the writer, read it back."""
    from phb_eval.report.writer import write_outputs
    plan = load_plan()
    r = Results()
    d = _draws_table()
    r.add([_cea_row("all", -600.0), _cea_row("budget_band=<1000", -75.0), _cea_row("budget_band=>=1000", -1050.0),
           estimate_row("cost", "budget_per_holder", "mean_phb", 610.0, stratum="budget_band=<1000", n_phb=500),
           estimate_row("cost", "budget_per_holder", "mean_phb", 9800.0, stratum="budget_band=>=1000", n_phb=480)])
    r.tables["cea_draws"] = d
    r.table_specs["cea_draws"] = {"disclose": False, "xlsx": False}
    out = write_outputs(r, tmp_path / "compare", plan=plan)
    got = inputs_from_results(out)
    assert got["indirect_change_per_holder"] == {"<1000": -75.0, ">=1000": -1050.0}
    assert got["budget_per_holder"] == {"<1000": 610.0, ">=1000": 9800.0}
    assert got["draws"].shape == (200, 2)


# --------------------------------------------------------------------------------------------- run and outputs
def test_run_outputs_layout_tables_figures_meta():
    plan = plan_with(years=5, uptake_start=0.05, uptake_end=0.3, areas=2, transition_cap_per_area=75,
                     transition_years=1, double_running_per_new_holder=500.0)
    res = run_budget_impact(plan)
    est = res.estimates
    assert list(est.columns[:len(RESULT_COLUMNS)]) == RESULT_COLUMNS
    assert set(est["analysis"]) == {"budget_impact"}
    assert set(est["outcome"]) == {"net_impact", "discounted_net_impact", "cumulative_discounted_net"}
    assert est[est["outcome"] == "net_impact"]["stratum"].tolist() == [f"year={t}" for t in range(1, 6)]
    t = res.tables["budget_impact"]
    assert list(t.columns) == TABLE_COLUMNS and len(t) == 5
    net = est[est["outcome"] == "net_impact"]["estimate"].to_numpy()
    np.testing.assert_allclose(net, t["net_impact"])
    assert res.table_specs["budget_impact"] == {"disclose": False}
    assert res.table_specs["budget_impact_tornado"] == {"disclose": False}
    assert set(res.figures) == {"budget_impact_fan", "budget_impact_tornado"}
    assert all(isinstance(f, Figure) and isinstance(f.canvas, FigureCanvasAgg) for f in res.figures.values())
    meta = res.meta["budget_impact"]
    assert meta["settings"]["years"] == 5 and meta["source"] == "plan"
    assert "cost_neutral_year" in meta and meta["cost_neutral_year"] is None
    json.dumps(meta)                                       # JSON-safe as it stands
    assert any("transition cap" in w and "year(s) 1" in w for w in res.warnings)
    assert any("no bootstrap draws" in w for w in res.warnings)
    assert any("no decommissioning" in w for w in res.warnings)


def test_demo_runs_standalone_and_is_reproducible():
    plan = load_plan()
    a = run_budget_impact(plan, demo=True)
    b = run_budget_impact(plan, demo=True)
    pd.testing.assert_frame_equal(a.tables["budget_impact"], b.tables["budget_impact"])
    s = demo_inputs()
    assert s.eligible == {"chc": 56000.0} and s.transition_cap_per_area == 75
    # the demo's steady state saves about £3,100 a holder a year, as quoted for CHC
    steady = (sum(s.band_shares[k] * (s.budget_per_holder[k] + s.indirect_change_per_holder[k]) for k in s.band_shares)
              - s.conventional_cost_per_holder)
    assert -3300 < steady < -2900
    meta = a.meta["budget_impact"]
    assert meta["source"] == "demo" and meta["n_draws"] > 0
    assert meta["cost_neutral_year"] is not None
    assert a.tables["budget_impact"]["net_impact_low"].notna().all()
    assert any("illustrative" in w for w in a.warnings)
    d = demo_draws(s, np.random.default_rng(1), n=50)
    assert d.shape == (50, 2)
    c = run_budget_impact(plan, demo=True, rng=np.random.default_rng(99))
    assert not np.allclose(c.tables["budget_impact"]["net_impact_low"], a.tables["budget_impact"]["net_impact_low"])


def test_written_by_the_report_writer(tmp_path):
    from phb_eval.report.writer import write_outputs
    plan = load_plan()
    res = run_budget_impact(plan, demo=True)
    out = write_outputs(res, tmp_path / "bi", plan=plan)
    doc = json.loads((out / "results.json").read_text())
    assert {r["analysis"] for r in doc["estimates"]} == {"budget_impact"}
    assert doc["meta"]["budget_impact"]["cost_neutral_year"] == res.meta["budget_impact"]["cost_neutral_year"]
    back = pd.read_csv(out / "tables" / "budget_impact.csv")
    np.testing.assert_allclose(back["net_impact"], res.tables["budget_impact"]["net_impact"], rtol=1e-12)
    assert (out / "tables" / "budget_impact_tornado.csv").is_file()
    assert (out / "figures" / "budget_impact_fan.png").is_file()
    assert (out / "figures" / "budget_impact_tornado.png").is_file()


# --------------------------------------------------------------------------------------------- sensitivity
def test_one_way_sensitivity():
    s = S(years=3, uptake_start=0.1, uptake_end=0.2, double_running_per_new_holder=300.0,
          decommission_share_per_year=0.3, conventional_cost_per_holder=2000.0, discount_rate=0.035)
    tor = one_way_sensitivity(s)
    base = project(s).final_cumulative
    assert (tor["result_base"] == base).all()
    assert tor["swing"].is_monotonic_decreasing
    row = tor.set_index("parameter")
    # budget per holder ±25%: the cumulative position moves by ±25% of the discounted direct spend
    direct = project(s).table
    dd = float((direct["direct_spend"] * direct["discount_factor"]).sum())
    assert row.loc["budget_per_holder", "result_low"] == pytest.approx(base - 0.25 * dd, rel=1e-12)
    assert row.loc["budget_per_holder", "result_high"] == pytest.approx(base + 0.25 * dd, rel=1e-12)
    assert row.loc["budget_per_holder", "base_value"] == pytest.approx(BUDGET)
    # a scalar at its low value equals a projection with that value
    lo = project(s.model_copy(update={"conventional_cost_per_holder": 1500.0})).final_cumulative
    assert row.loc["conventional_cost_per_holder", "result_low"] == pytest.approx(lo, rel=1e-12)
    assert row.loc["decommission_share_per_year", "high_value"] == pytest.approx(0.375)
    assert "uptake_end" in row.index and "growth_multiple" not in row.index
    # given ranges, and the draws' interval for the indirect change
    draws = pd.DataFrame({"<1000": np.linspace(-200, 0, 101), ">=1000": np.linspace(-1500, -300, 101)})
    tor2 = one_way_sensitivity(s, draws=draws, ranges={"discount_rate": (0.0, 0.06), "budget_per_holder": (0.9, 1.1)})
    r2 = tor2.set_index("parameter")
    assert r2.loc["discount_rate", "low_value"] == 0.0 and r2.loc["discount_rate", "range_source"] == "given range"
    assert r2.loc["budget_per_holder", "result_high"] == pytest.approx(base + 0.1 * dd, rel=1e-12)
    qlo = 0.4 * np.quantile(draws["<1000"], 0.025) + 0.6 * np.quantile(draws[">=1000"], 0.025)
    assert r2.loc["indirect_change_per_holder", "low_value"] == pytest.approx(qlo)
    assert "bootstrap" in r2.loc["indirect_change_per_holder", "range_source"]
    with pytest.raises(PlanError, match="unknown parameter"):
        one_way_sensitivity(s, ranges={"nonsense": (0, 1)})
    # growth uptake varies the multiple, not the final share
    g = one_way_sensitivity(S(uptake="growth_multiple", growth_multiple=4.0, growth_years=2, uptake_start=0.05))
    assert "growth_multiple" in set(g["parameter"]) and "uptake_end" not in set(g["parameter"])


def test_resolve_inputs_without_results_uses_plan_values():
    s, draws, src, notes = resolve_inputs(S())
    assert draws is None and src["budget_per_holder"] == {"<1000": "plan", ">=1000": "plan"}
    assert isinstance(PlanError("x"), PhbEvalError)


def test_band_without_draws_in_the_results_is_held_fixed_with_a_warning(tmp_path):
    d = _draws_table()
    d = d[d["stratum"] != "budget_band=>=1000"]
    f = _write_folder(tmp_path / "half", [_cea_row("budget_band=<1000", -75.0), _cea_row("budget_band=>=1000", -1e3)],
                      d)
    with pytest.raises(DataError, match=r"no d_cost_indirect draws for stratum budget_band=>=1000"):
        inputs_from_results(f)
    res = run_budget_impact(plan_with(budget_per_holder={"<1000": 600.0, ">=1000": 9000.0},
                                      indirect_change_per_holder={}), results_dir=f)
    assert any("'>=1000'" in w and "held fixed" in w for w in res.warnings)
    t = res.tables["budget_impact"]
    got = inputs_from_results(f, require=False)["draws"]["<1000"].to_numpy()
    per_draw = t["holders"].to_numpy()[None, :] * (0.4 * 600 + 0.6 * 9000 + 0.4 * got[:, None] + 0.6 * -1e3)
    np.testing.assert_allclose(t["net_impact_low"], np.quantile(per_draw, 0.025, axis=0), rtol=1e-12)
