"""Figures: each function returns a Figure that draws what its rows say."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from phb_eval.report.figures import (ce_plane, ceac_plot, figure_png, forest_plot, love_plot, standard_figures,
                                     subgroup_forest)


def _png_ok(fig):
    assert isinstance(fig, Figure)
    assert figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_love_plot_marks_the_threshold(results):
    bal = results.estimates[results.estimates.analysis == "balance"]
    fig = love_plot(bal, threshold=0.1)
    _png_ok(fig)
    ax = fig.axes[0]
    xs = sorted(round(line.get_xdata()[0], 6) for line in ax.get_lines() if len(line.get_xdata()))
    assert xs == [-0.1, 0.0, 0.1]
    points = np.vstack([c.get_offsets() for c in ax.collections])
    assert sorted(points[:, 0].round(6)) == sorted(bal["estimate"].round(6))
    assert [t.get_text() for t in ax.get_yticklabels()] == list(dict.fromkeys(bal["outcome"]))


def test_forest_plot_has_one_panel_per_outcome_on_its_own_scale(results):
    rows = results.estimates[(results.estimates.analysis == "outcome")]
    fig = forest_plot(rows, title="Effects")
    _png_ok(fig)
    assert len(fig.axes) == rows["outcome"].nunique()
    scr = rows[rows.outcome == "scrqol"]
    ax = fig.axes[0]
    square = [line for line in ax.get_lines() if line.get_marker() == "s"][0]
    np.testing.assert_allclose(sorted(square.get_xdata()), sorted(scr["estimate"]))
    segs = ax.collections[0].get_segments()
    np.testing.assert_allclose(sorted(s[0][0] for s in segs), sorted(scr["ci_low"]))


def test_forest_plot_ratio_scale_and_overall_diamond(results):
    rows = results.estimates[(results.estimates.analysis == "service_use")].iloc[:1]
    fig = forest_plot(rows, overall={"estimate": 0.9, "ci_low": 0.8, "ci_high": 1.0, "label": "pooled"}, log=True)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert "pooled" in [t.get_text() for t in ax.get_yticklabels()]
    assert any(line.get_marker() == "D" for line in ax.get_lines())


def test_ce_plane_draws_one_line_per_lambda(results):
    draws = results.tables["cea_draws"]
    fig = ce_plane(draws, [20000, 30000])
    _png_ok(fig)
    ax = fig.axes[0]
    lam_lines = [line for line in ax.get_lines() if line.get_label().startswith("\u03bb")]
    assert len(lam_lines) == 2
    x, y = lam_lines[1].get_xdata(), lam_lines[1].get_ydata()
    np.testing.assert_allclose(y, 30000 * x)
    assert sum(len(c.get_offsets()) for c in ax.collections) == len(draws)   # 2,000 draws, under the thinning cap


def test_ceac_plot_one_curve_per_stratum(results):
    ceac = results.tables["ceac"]
    fig = ceac_plot(ceac, [20000])
    _png_ok(fig)
    ax = fig.axes[0]
    curves = [line for line in ax.get_lines() if len(line.get_xdata()) == 21]
    assert len(curves) == ceac["stratum"].nunique()
    assert ax.get_ylim() == (-0.02, 1.02)


def test_subgroup_forest_shows_interaction_p(results):
    est = results.estimates
    fig = subgroup_forest(est[est.analysis == "subgroup"],
                          overall=est[(est.analysis == "outcome") & (est.method == "ancova_cr1_site")])
    _png_ok(fig)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "budget_band=<1000 (interaction p = 0.005)" in labels
    assert "budget_band=>=1000" in labels and "all (overall)" in labels
    assert not any("stroke" in t for t in labels)        # not estimable: no point to draw


def test_standard_figures_from_results(results, plan):
    figs = standard_figures(results, plan)
    assert set(figs) == {"love_plot", "forest_effects", "service_use_forest", "ce_plane", "ceac", "subgroup_forest"}
