"""The report page: self-contained, sentences generated from the rows, methods generated from the plan."""
from __future__ import annotations

import base64
import html as htmllib
import re

import pytest
from scipy import stats

from phb_eval.plan import load_plan
from phb_eval.report import render_html, render_markdown
from phb_eval.report.figures import figure_png, standard_figures
from phb_eval.report.formatting import decimals_for, fmt_count, fmt_gbp, fmt_number, fmt_p
from phb_eval.report.html import SECTION_TITLES

TINY_PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")


def _html(results, plan, figs=None):
    figs = {"forest_effects": TINY_PNG, "love_plot": TINY_PNG} if figs is None else figs
    return render_html(results, plan, figs)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", html)))


def test_page_is_self_contained(results, plan):
    figs = {name: figure_png(fig) for name, fig in standard_figures(results, plan).items()}
    html = _html(results, plan, figs)
    lowered = html.lower()
    for bad in ("http://", "https://", "<script", "<link", "@import", "url(", "<iframe", "src=\"//"):
        assert bad not in lowered, bad
    srcs = re.findall(r'<img[^>]*src="([^"]+)"', html)
    assert len(srcs) == len(figs) == 6
    for src in srcs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_section_is_present(results, plan):
    html = _html(results, plan)
    for key, title in SECTION_TITLES.items():
        assert f'<section id="{key}">' in html, key
        assert f"<h2>{title}</h2>" in html, key


def test_headline_sentences_carry_the_numbers_with_the_direction(results, plan):
    text = _text(_html(results, plan))
    est = results.estimates
    row = est[(est.outcome == "scrqol") & (est.method == "ancova_cr1_site")].iloc[0]
    # independent check of the interval: estimate ± t(19) quantile × SE, rounded to 3 decimals by hand
    q = stats.t.ppf(0.975, 19)
    lo, hi = row.estimate - q * row.se, row.estimate + q * row.se
    expected = (f"PHB holders' care-related quality of life (ASCOT SCRQoL index) at 12 months was "
                f"{row.estimate:.3f} higher than controls' after adjustment (95% CI {lo:.3f} to {hi:.3f}; "
                f"p = {row.p_value:.3f}); higher = better, so this favours PHB holders.")
    assert expected in text
    g = est[(est.outcome == "ghq12_likert") & (est.method == "ancova_cr1_site")].iloc[0]
    assert (f"PHB holders' psychological distress (GHQ-12, Likert 0\u201336) at 12 months was {abs(g.estimate):.2f} "
            f"lower than controls'") in text
    assert "lower = less distress, so this favours PHB holders" in text
    assert "the interval includes no difference" in text            # EQ-5D
    assert "Inpatient bed days: PHB holders had 0.78 times the rate of controls after adjustment (22% fewer;" in text
    assert "Total cost was \u00a31,700 per person per year higher for PHB holders" in text
    assert "\u2212\u00a3880 at \u03bb = \u00a320,000" in text
    assert "differed across levels of budget_band (prespecified; interaction p = 0.005)" in text


def test_methods_follow_the_plan(results):
    plan = load_plan(overrides={"confidence_level": 0.9, "covariates": ["age", "sex"], "imputation": {"m": 7},
                                "cea": {"bootstrap": 999, "lambdas": [15000, 50000]},
                                "costs": {"price_year": "2023/24"}, "subgroups": {"adjust": "bh"},
                                "assumptions": ["covariates: chosen by us"]})
    text = _text(_html(results, plan))
    methods = text.split("Methods", 2)[-1]
    for phrase in ("m = 7 multiply imputed", "B = 999 bootstrap", "\u03bb = \u00a315,000 and \u00a350,000",
                   "Covariates: age and sex", "2023/24 prices", "90% confidence intervals",
                   "G = 20 sites, so 19 degrees of freedom", "Benjamini\u2013Hochberg",
                   "CR1 (G/(G\u22121)\u00b7(N\u22121)/(N\u2212K)", "seeded with 20120601"):
        assert phrase in methods, phrase
    assert "\u00a320,000" not in methods and "m = 20" not in methods
    assert "covariates: chosen by us" in text        # assumptions are quoted


def test_empty_sections_say_why(results, plan):
    results.estimates = results.estimates[~results.estimates.analysis.isin(["cea", "budget_impact"])]
    for name in ("cea_draws", "ceac", "budget_impact"):
        del results.tables[name]
    del results.figures["budget_impact_fan"]
    results.skipped.append("cost-effectiveness: no direct cost for controls; supply direct_cost_gbp_per_year")
    html = _html(results, plan)
    cea = html.split('<section id="cea">', 1)[1].split("</section>", 1)[0]
    assert "Not run: cost-effectiveness: no direct cost for controls" in cea
    assert '<section id="budget_impact">' not in html      # optional section omitted when absent


def test_html_escapes_text(results, plan):
    results.warnings.append("value <script>alert(1)</script> in column x")
    html = _html(results, plan)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_markdown_has_the_same_content(results, plan):
    md = render_markdown(results, plan, {"forest_effects": TINY_PNG, "ce_plane": TINY_PNG})
    assert "![" in md and "](figures/forest_effects.png)" in md and "](figures/ce_plane.png)" in md
    assert "base64" not in md and "<img" not in md
    for title in SECTION_TITLES.values():
        assert f"## {title}" in md
    assert "at 12 months was 0.041 higher than controls'" in md
    assert "| stage | phb | control |" in md


def test_long_tables_are_referred_to_not_shown(results, plan):
    html = _html(results, plan)
    assert "<h3>cea_draws</h3>" not in html          # bootstrap draws are plotted and published as CSV only
    assert "105 rows: too long to show here; see tables/ceac.csv" in _text(html)


@pytest.mark.parametrize("value,text", [(1234.4, "\u00a31,234"), (-1234567.8, "\u2212\u00a31,234,568"),
                                        (0.2, "\u00a30"), (-0.2, "\u00a30")])
def test_gbp(value, text):
    assert fmt_gbp(value) == text


def test_number_rules():
    assert fmt_p(0.0004) == "< 0.001" and fmt_p(0.0123) == "0.012" and fmt_p(float("nan")) == ""
    assert fmt_number(-0.0004, 3) == "0.000" and fmt_number(-1.5, 2) == "\u22121.50"
    assert fmt_number("*") == "*" and fmt_count(1171.0) == "1,171"
    assert decimals_for(se=0.011) == 3 and decimals_for(se=0.47) == 2 and decimals_for(se=520) == 0
    assert decimals_for(se=float("nan"), low=0.1, high=0.9) == 2
