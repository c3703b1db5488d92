"""Count models against R (tests/golden/service_use_models.R: MASS::glm.nb, glm, sandwich::vcovCL HC1,
pscl::zeroinfl / hurdle) on the fixed dataset tests/golden/service_use_models_data.csv."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.discrete.count_model import ZeroInflatedNegativeBinomialP
from statsmodels.discrete.truncated_model import TruncatedLFNegativeBinomialP

from phb_eval import service_use as su
from phb_eval.errors import DataError, EstimationError

GOLDEN = Path(__file__).parent / "golden"
COVS = ["age", "sex", "condition"]


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(GOLDEN / "service_use_models_data.csv", dtype={"participant_id": str, "site": str})


@pytest.fixture(scope="module")
def golden():
    return json.loads((GOLDEN / "service_use_models.json").read_text())


def _vec(d):
    return np.array([np.nan if v == "NA" else v for v in d.values()], float)


@pytest.mark.parametrize("service", ["gp_consultations", "inpatient_admissions"])
@pytest.mark.parametrize("model", ["negbin", "poisson"])
def test_glm_counts_match_r(data, golden, service, model):
    r = golden[service][model]
    out = su.count_model(data, service, COVS, model=model, variance="cr1")
    ratio = out[out.method == f"{model}_cr1_site"].iloc[0]
    b_r, se_r = r["coef"]["phb"], r["se_cr1"]["phb"]
    assert ratio.estimate == pytest.approx(math.exp(b_r), rel=1e-6)
    assert ratio.se == pytest.approx(se_r, rel=1e-6)            # brief asks 1%; achieved ~1e-9
    q = stats.t.ppf(0.975, 15)                                  # 16 sites -> t with 15 df
    assert ratio.ci_low == pytest.approx(math.exp(b_r - q * se_r), rel=1e-6)
    assert ratio.ci_high == pytest.approx(math.exp(b_r + q * se_r), rel=1e-6)
    assert ratio.df == 15
    assert (ratio.n_phb, ratio.n_control) == (golden[service]["n_phb"], golden[service]["n_control"])
    marg = out[out.method == f"{model}_cr1_site_marginal_diff"].iloc[0]
    assert marg.estimate == pytest.approx(r["marginal_diff"], rel=1e-6)
    assert marg.se == pytest.approx(r["marginal_diff_se"], rel=1e-5)
    if model == "negbin":
        assert ratio.alpha == pytest.approx(1 / r["theta"], rel=1e-6)


@pytest.mark.parametrize("service", ["gp_consultations", "inpatient_admissions"])
def test_all_negbin_coefficients_and_cr1_match_r(data, golden, service):
    p = su._prepare(data, service, COVS, "site")
    fit = su._fit(p, "negbin", "cr1")
    r = golden[service]["negbin"]
    np.testing.assert_allclose(fit.params.to_numpy(), _vec(r["coef"]), rtol=1e-7)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov.to_numpy())), _vec(r["se_cr1"]), rtol=1e-6)


@pytest.mark.parametrize("service,model", [("inpatient_admissions", "zinb"), ("inpatient_admissions", "hurdle_negbin"),
                                           ("gp_consultations", "hurdle_negbin")])
def test_zero_models_match_pscl(data, golden, service, model):
    p = su._prepare(data, service, COVS, "site")
    fit = su._fit(p, model, "cr1")
    r = golden[service][model]
    k = p.X.shape[1]
    params = fit.params.to_numpy()
    # both statsmodels and our hurdle order parameters: zero part, count part, alpha
    np.testing.assert_allclose(params[k:2 * k], _vec(r["coef_count"]), rtol=1e-4)
    np.testing.assert_allclose(params[:k], _vec(r["coef_zero"]), rtol=1e-4)
    assert fit.alpha == pytest.approx(1 / r["theta"], rel=1e-4)
    assert fit.loglik == pytest.approx(r["loglik"], abs=1e-6)
    assert fit.zeros_predicted == pytest.approx(r["zeros_predicted"], rel=1e-4)
    out = su.count_model(data, service, COVS, model=model, variance="cr1")
    assert list(out.method) == [f"{model}_cr1_site", f"{model}_cr1_site_marginal_diff",
                                f"{model}_cr1_site_marginal_ratio"]
    assert out.estimate.iloc[0] == pytest.approx(math.exp(r["coef_count"]["phb"]), rel=1e-4)


def _r_convention_cr1(scores, hess, groups, drop):
    """R's vcovCL on pscl fits: theta out of the score and of K; bread = theta-free block of the inverse."""
    keep = np.setdiff1d(np.arange(scores.shape[1]), drop)
    bread = np.linalg.inv(-hess)[np.ix_(keep, keep)]
    s = pd.DataFrame(scores[:, keep]).groupby(groups).sum().to_numpy()
    n, k, g = scores.shape[0], len(keep), s.shape[0]
    return np.sqrt(np.diag(bread @ (s.T @ s) @ bread) * g / (g - 1) * (n - 1) / (n - k)), np.sqrt(
        np.diag(np.linalg.inv(-hess)))[keep]


def test_zinb_standard_errors_explained(data, golden):
    """Model-based SEs equal pscl's; the CR1 gap to R's vcovCL is only theta's treatment."""
    service = "inpatient_admissions"
    p = su._prepare(data, service, COVS, "site")
    fit = su._fit(p, "zinb", "cr1")
    k = p.X.shape[1]
    model = ZeroInflatedNegativeBinomialP(p.y, p.X, exog_infl=p.X, offset=p.offset, inflation="logit", p=2)
    b = fit.params.to_numpy()
    r = golden[service]["zinb"]
    cr1_r, model_se = _r_convention_cr1(model.score_obs(b), model.hessian(b), p.groups, drop=[2 * k])
    np.testing.assert_allclose(model_se[k:], _vec(r["se_count"]), rtol=2e-3)
    np.testing.assert_allclose(model_se[:k], _vec(r["se_zero"]), rtol=2e-3)
    np.testing.assert_allclose(cr1_r[k:], _vec(r["se_cr1_count"]), rtol=2e-3)
    np.testing.assert_allclose(cr1_r[:k], _vec(r["se_cr1_zero"]), rtol=2e-3)
    # our reported SE is the full sandwich, within the same ballpark
    assert fit.vcov.loc["phb", "phb"] ** 0.5 == pytest.approx(r["se_cr1_count"]["count_phb"], rel=0.2)


def test_hurdle_standard_errors_explained(data, golden):
    service = "inpatient_admissions"
    p = su._prepare(data, service, COVS, "site")
    fit = su._fit(p, "hurdle_negbin", "cr1")
    k = p.X.shape[1]
    b = fit.params.to_numpy()
    pos = p.y > 0
    count = TruncatedLFNegativeBinomialP(p.y[pos], p.X[pos], offset=p.offset[pos], p=2)
    import statsmodels.api as sm
    zero = sm.Logit(pos.astype(float), p.X)
    scores = np.zeros((len(p.y), len(b)))
    scores[:, :k] = zero.score_obs(b[:k])
    scores[pos, k:] = count.score_obs(b[k:])
    hess = np.zeros((len(b), len(b)))
    hess[:k, :k] = zero.hessian(b[:k])
    hess[k:, k:] = count.hessian(b[k:])
    r = golden[service]["hurdle_negbin"]
    cr1_r, model_se = _r_convention_cr1(scores, hess, p.groups, drop=[2 * k])
    np.testing.assert_allclose(model_se[k:], _vec(r["se_count"]), rtol=2e-3)
    np.testing.assert_allclose(model_se[:k], _vec(r["se_zero"]), rtol=2e-3)
    np.testing.assert_allclose(cr1_r[k:], _vec(r["se_cr1_count"]), rtol=2e-3)
    np.testing.assert_allclose(cr1_r[:k], _vec(r["se_cr1_zero"]), rtol=2e-3)
    # the logit part has no dispersion, so its CR1 SEs match R up to the K in (N-1)/(N-K)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov.to_numpy()))[:k], _vec(r["se_cr1_zero"]), rtol=2e-3)


def test_zinb_not_identified_is_an_error(data, golden):
    """GP use has no excess zeros: R's zeroinfl Hessian is singular (NA SEs); we refuse with a sentence."""
    assert golden["gp_consultations"]["zinb"]["se_zero"]["phb"] == "NA"
    with pytest.raises(EstimationError, match="gp_consultations.*zinb"):
        su.count_model(data, "gp_consultations", COVS, model="zinb", variance="cr1")


def test_fit_comparison_matches_r(data, golden):
    service = "inpatient_admissions"
    table = su.fit_comparison(data, service, COVS, models=su.COUNT_MODELS, variance="cr1")
    assert list(table.model) == list(su.COUNT_MODELS)
    assert (table.zeros_observed == golden[service]["zeros_observed"]).all()
    for _, row in table.iterrows():
        r = golden[service][row.model]
        assert row.converged
        assert row.loglik == pytest.approx(r["loglik"], abs=1e-6)
        assert row.aic == pytest.approx(r["aic"], abs=1e-5)
        assert row.zeros_predicted == pytest.approx(r["zeros_predicted"], rel=1e-4)
        if row.model != "poisson":
            assert row.alpha == pytest.approx(1 / r["theta"], rel=1e-4)
    gp = su.fit_comparison(data, "gp_consultations", COVS, models=["negbin", "zinb"], variance="cr1")
    assert gp.converged.tolist() == [True, False] and "zinb" in gp.note.iloc[1]


def test_missing_post_is_dropped_not_zero(data, golden):
    service = "gp_consultations"
    n_missing = data[f"{service}_post"].isna().sum()
    assert n_missing > 0
    out = su.count_model(data, service, COVS, variance="cr1")
    assert out.n.iloc[0] == len(data) - n_missing == golden[service]["n"]
    assert "complete cases" in out.note.iloc[0]


def test_offset_only_with_partial_exposure(data):
    full = data[(data.exposure_post_years == 1) | data.exposure_post_years.isna()]
    a = su.count_model(full, "gp_consultations", COVS, variance="cr1")
    b = su.count_model(full.drop(columns="exposure_post_years"), "gp_consultations", COVS, variance="cr1")
    np.testing.assert_allclose(a.estimate, b.estimate, rtol=1e-10)
    assert "offset" not in a.note.iloc[0]
    assert "offset" in su.count_model(data, "gp_consultations", COVS, variance="cr1").note.iloc[0]


def test_conf_level_and_inputs_untouched(data):
    before = data.copy()
    out90 = su.count_model(data, "gp_consultations", COVS, conf_level=0.90, variance="cr1")
    out95 = su.count_model(data, "gp_consultations", COVS, variance="cr1")
    pd.testing.assert_frame_equal(data, before)
    assert out90.ci_low.iloc[0] > out95.ci_low.iloc[0] and out90.ci_high.iloc[0] < out95.ci_high.iloc[0]
    assert (out95.analysis == "service_use").all() and (out95.outcome == "gp_consultations").all()


def test_design_errors(data):
    with pytest.raises(EstimationError, match="no control participants"):
        su.count_model(data[data.phb == 1], "gp_consultations", COVS, variance="cr1")
    with pytest.raises(EstimationError, match="at least 2 clusters"):
        su.count_model(data[data.site == "S01"], "gp_consultations", COVS, variance="cr1")
    with pytest.raises(EstimationError, match="covariate 'sex' is constant"):
        su.count_model(data[data.sex == "female"], "gp_consultations", COVS, variance="cr1")
    bad = data.copy()
    bad.loc[5, "gp_consultations_post"] = -1
    with pytest.raises(DataError, match="row 5.*gp_consultations_post.*whole number"):
        su.count_model(bad, "gp_consultations", COVS, variance="cr1")
    with pytest.raises(DataError, match="outpatient_attendances_post"):
        su.count_model(data, "outpatient_attendances", COVS, variance="cr1")
    with pytest.raises(EstimationError, match="unknown count model"):
        su.count_model(data, "gp_consultations", COVS, model="tobit", variance="cr1")


def test_services_present(data):
    assert su.services_present(data) == ["inpatient_admissions", "gp_consultations"]
    assert su.services_present(data, ["gp_consultations", "ae_attendances"]) == ["gp_consultations"]
