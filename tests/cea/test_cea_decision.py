"""ICER quadrant labels and the CEAC grid."""

import numpy as np
import pytest

from phb_eval.cea import MEASURES, ceac_ceaf, ceac_lambdas, icer_quadrant

from cea_helpers import pick_row


def test_ceac_at_zero_is_probability_of_saving_money(gres):
    for (stratum, measure), part in gres.ceac.groupby(["stratum", "effect_measure"]):
        dr = gres.draws[gres.draws["stratum"] == stratum]
        dr = dr[np.isfinite(dr[MEASURES[measure]])]
        at0 = part.loc[part["lambda_gbp"] == 0, "prob_cost_effective"].item()
        assert at0 == np.mean(dr["d_cost"] < 0)
        at20k = part.loc[part["lambda_gbp"] == 20000, "prob_cost_effective"].item()
        assert at20k == pick_row(gres.estimates, stratum, "nmb", 20000.0, measure)["prob_cost_effective"]
    grid = gres.ceac.loc[(gres.ceac["stratum"] == "all") & (gres.ceac["effect_measure"] == "qaly"), "lambda_gbp"].to_numpy()
    assert grid[0] == 0 and grid[-1] == 100000 and np.all(np.diff(grid) == 1000)


def test_ceac_grid():
    assert ceac_lambdas(5000, 1000).tolist() == [0, 1000, 2000, 3000, 4000, 5000]
    assert ceac_lambdas(2500, 1000).tolist() == [0, 1000, 2000, 2500]


@pytest.mark.parametrize("d_effect,d_cost,label,icer", [
    (0.05, -100.0, "dominant", np.nan),
    (-0.05, 100.0, "dominated", np.nan),
    (0.05, 1000.0, "NE trade-off", 20000.0),
    (-0.05, -1000.0, "SW trade-off", 20000.0),
    (0.0, 50.0, "no effect difference", np.nan),
    (0.05, 0.0, "dominant", np.nan),
    (np.nan, 10.0, "not estimable", np.nan),
])
def test_quadrant_labels(d_effect, d_cost, label, icer):
    got_label, got_icer = icer_quadrant(d_effect, d_cost)
    assert got_label == label
    assert (np.isnan(got_icer) and np.isnan(icer)) or got_icer == pytest.approx(icer)


def test_quadrants_vectorised_and_never_negative_icer(gres):
    labels, icers = icer_quadrant([0.1, -0.1, 0.1, -0.1], [-1.0, 1.0, 1.0, -1.0])
    assert labels.tolist() == ["dominant", "dominated", "NE trade-off", "SW trade-off"]
    assert np.isnan(icers[:2]).all() and (icers[2:] == 10).all()
    rows = gres.estimates[gres.estimates["outcome"] == "icer"]
    vals = rows["estimate"].dropna()
    assert (vals > 0).all()
    for _, r in rows[rows["note"].fillna("").str.startswith("not estimable") == False].iterrows():  # noqa: E712
        outcome = {"qaly": "incremental_qaly", "ascot_years": "incremental_ascot_years"}[r["effect_measure"]]
        dE = pick_row(gres.estimates, r["stratum"], outcome)["estimate"]
        dC = pick_row(gres.estimates, r["stratum"], "incremental_cost")["estimate"]
        assert r["quadrant"] == icer_quadrant(dE, dC)[0]
        shares = r[["share_dominant", "share_dominated", "share_ne", "share_sw"]].astype(float)
        assert shares.sum() == pytest.approx(1.0)


def test_ceaf_marks_the_option_with_highest_expected_net_benefit():
    rng = np.random.default_rng(0)
    dE, dC = rng.normal(0.02, 0.02, 4000), rng.normal(300, 200, 4000)
    grid = np.array([0.0, 10000.0, 15000.0, 20000.0, 50000.0])
    prob, optimal, p_opt = ceac_ceaf(grid, dE, dC)
    for lam, p, o, po in zip(grid, prob, optimal, p_opt):
        inb = lam * dE - dC
        assert p == np.mean(inb > 0)
        assert o == ("PHB" if inb.mean() > 0 else "control")
        assert po == (p if o == "PHB" else 1 - p)
    assert optimal[0] == "control" and optimal[-1] == "PHB"      # switch near λ = 300 / 0.02 = £15,000
