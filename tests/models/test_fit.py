"""Fits of the modelling core: MASS::quine against R (glm.nb + sandwich / clubSandwich, columns as MASS
ships them), the negative binomial's fallback start, and the hurdle model on very large counts."""
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from phb_eval.errors import EstimationError
from phb_eval.models import fit as core_fit
from phb_eval.models.design import build_design
from phb_eval.service_use import count_regression

GOLDEN = Path(__file__).parent.parent / "golden"
QUINE_COVS = ["Sex", "Age", "Lrn"]


@pytest.fixture(scope="module")
def quine():
    return pd.read_csv(GOLDEN / "quine.csv")


@pytest.fixture(scope="module")
def quine_golden():
    return json.loads((GOLDEN / "quine_negbin.json").read_text())


def _r_names(terms):
    """Our coefficient names in R's spelling: Eth (treated level N) -> EthN, Sex[T.M] -> SexM."""
    return [{"Intercept": "(Intercept)", "Eth": "EthN"}.get(t, t.replace("[T.", "").replace("]", "")) for t in terms]


@pytest.mark.parametrize("model", ["negbin", "poisson"])
def test_quine_every_coefficient_and_cr1_match_r(quine, quine_golden, model):
    out = count_regression(quine, "Days", treatment="Eth", covariates=QUINE_COVS, cluster="class", model=model,
                           variance="cr1", coefficients=True)
    coefs = out.attrs["coefficients"].assign(term=lambda c: _r_names(c["term"])).set_index("term")
    ref = quine_golden[model]
    for term, b in ref["coef"].items():
        assert coefs.loc[term, "estimate"] == pytest.approx(b, rel=1e-6, abs=1e-9), term
        assert coefs.loc[term, "se"] == pytest.approx(ref["se_cr1"][term], rel=1e-6), term
        assert coefs.loc[term, "df"] == quine_golden["n_clusters"] - 1
    row = out.iloc[0]
    assert row["method"] == f"{model}_cr1_class"
    assert row["estimate"] == pytest.approx(math.exp(ref["coef"]["EthN"]), rel=1e-6)
    assert row["n_clusters"] == quine_golden["n_clusters"]
    if model == "negbin":
        assert row["alpha"] == pytest.approx(1 / ref["theta"], rel=1e-6)


@pytest.mark.parametrize("model", ["negbin", "poisson"])
def test_quine_cr2_matches_clubsandwich(quine, quine_golden, model):
    pytest.importorskip("phb_eval.models.variance")
    out = count_regression(quine, "Days", treatment="Eth", covariates=QUINE_COVS, cluster="class", model=model,
                           variance="cr2", coefficients=True)
    coefs = out.attrs["coefficients"]
    ref = quine_golden[model]
    np.testing.assert_allclose(coefs["se"], ref["se_cr2"], rtol=1e-6)
    np.testing.assert_allclose(coefs["df"], ref["df_cr2"], rtol=1e-6)
    np.testing.assert_allclose(coefs["p"], ref["p_cr2"], rtol=1e-6)
    assert out.iloc[0]["method"] == f"{model}_cr2_class"


def _counts(seed=3, n=300, big=False):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"phb": rng.integers(0, 2, n), "age": rng.normal(60, 12, n),
                       "site": rng.choice([f"S{i:02d}" for i in range(12)], n)})
    if big:     # 60% zeros, the rest log-normal counts capped at 25,000
        pos = np.round(np.exp(rng.normal(7.5, 1.5, n))).clip(1, 25_000)
        df["y"] = np.where(rng.random(n) < 0.6, 0.0, pos)
    else:
        mu = np.exp(0.5 + 0.3 * df["phb"] + 0.01 * (df["age"] - 60))
        df["y"] = rng.negative_binomial(2, 2 / (2 + mu)).astype(float)
    return df


def test_negbin_falls_back_to_bfgs_when_newton_fails(monkeypatch):
    """Newton from the default start raising (or stopping at a singular Hessian) triggers BFGS from the
    simple start; the result equals the regular fit and the row says how it was fitted."""
    d = build_design(_counts(), "y", covariates=["age"])
    regular = core_fit.fit_negbin(d, "cr1")
    real_fit = sm.NegativeBinomial.fit

    def newton_fails_from_default(self, start_params=None, method="newton", **kw):
        if method == "newton" and start_params is None:
            raise np.linalg.LinAlgError("Singular matrix")
        return real_fit(self, start_params=start_params, method=method, **kw)

    monkeypatch.setattr(sm.NegativeBinomial, "fit", newton_fails_from_default)
    fallback = core_fit.fit_negbin(d, "cr1")
    np.testing.assert_allclose(fallback.params, regular.params, rtol=1e-6)
    assert fallback.alpha == pytest.approx(regular.alpha, rel=1e-6)
    assert any("BFGS from a simple start" in n for n in fallback.notes)

    def singular_hessian(self, params):
        return np.zeros((len(params), len(params)))

    monkeypatch.setattr(sm.NegativeBinomial, "fit", real_fit)
    monkeypatch.setattr(sm.NegativeBinomial, "hessian", singular_hessian)
    assert core_fit._singular(sm.NegativeBinomial(d.y, d.X.to_numpy()), regular.params)


def test_simple_start_is_log_mean_zero_slopes_alpha_one():
    y, X = np.array([1.0, 3.0, 8.0]), np.ones((3, 2))
    np.testing.assert_allclose(core_fit.simple_start(y, X), [math.log(4.0), 0.0, 1.0])


@pytest.mark.parametrize("model", ["hurdle_negbin", "negbin", "zinb"])
def test_count_models_on_counts_up_to_25000_do_not_overflow(model):
    df = _counts(seed=11, n=400, big=True)
    assert df["y"].max() == 25_000
    with np.errstate(over="raise", invalid="raise"):   # an overflow anywhere would raise here
        try:
            out = count_regression(df, "y", covariates=["age"], model=model, variance="cr1")
        except EstimationError as exc:          # a sentence is acceptable for zinb; a crash is not
            assert model == "zinb" and str(exc)
            return
    assert np.isfinite(out[["estimate", "se", "ci_low", "ci_high", "p_value"]].to_numpy(float)).all()
    assert out["estimate"].iloc[0] > 0


def test_numerical_failures_are_sentences():
    df = _counts()
    df["y"] = 0.0
    with pytest.raises(EstimationError, match="every observed y count is 0"):
        count_regression(df, "y", covariates=["age"])
    df = _counts()
    df.loc[df["phb"] == 1, "y"] = 0.0          # the treated arm never has an event: not identified
    for model in ("negbin", "poisson", "hurdle_negbin"):
        try:
            count_regression(df, "y", covariates=["age"], model=model, variance="cr1")
        except EstimationError as exc:
            assert str(exc)
    d = build_design(_counts().assign(y=lambda f: f["y"] - 1.0), "y", covariates=["age"])
    with pytest.raises(EstimationError, match="positive values"):
        core_fit.fit_gamma_log(d, "cr1")


def test_unknown_variance_is_a_sentence():
    d = build_design(_counts(), "y", covariates=["age"])
    with pytest.raises(EstimationError, match="unknown variance"):
        core_fit.fit_ols(d, "hc3")
