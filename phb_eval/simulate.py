"""Synthetic pilot-like cohorts with planted, known effects, for the demo and for tests of every stage.

The cohort has the shape of the 2009-2012 PHB pilot (two arms, 20 sites, six condition groups, baseline
and 12-month follow-up) and every column of the data contract. It is generated from a latent model, so
that questionnaire items hang together and the truth is known exactly:

1. **People.** Each site has its own condition mix and random effects on need, on outcomes and on
   service use. Age depends on condition. A latent *need* ``eta`` (higher = more need) depends on
   condition, age, site and the person.
2. **Baseline.** Four instrument latents (ASCOT care-related QoL, GHQ-12 distress, EQ-5D health
   problems, carer QoL; plus carer health) load on ``eta`` and on their own person factors. Each item
   is an ordinal cut of ``latent + item offset + item noise``.
3. **Allocation is confounded by need.** Professionals offered budgets to people who looked needier:
   the PHB arm is the ``n_phb`` people with the largest ``allocation score + Gumbel noise`` (a weighted
   draw without replacement), the score being built from *observed* baseline ASCOT and GHQ-12 sums,
   condition and site. Hence PHB holders start worse, a naive follow-up comparison is biased, and
   adjusting for baseline scores removes most of the bias (DiD keeps some: regression to the mean).
4. **Budgets** (PHB only): lognormal by condition (CHC in the tens of thousands); the three
   flexibility features vary mainly by site (site propensities) with some individual variation.
5. **Follow-up.** ``latent_t1 = latent_t0 + trend + effect + noise``. The effect on the latent scale is
   heterogeneous: a value per budget band x implementation model (largest for budgets >= 1,000 with
   all three features, negative for small budgets without them), times ``exp(need_gradient * z(eta))``
   (larger for higher need), times an instrument loading (ASCOT > 0, GHQ distress < 0, carer > 0,
   EQ-5D exactly 0).
6. **Truth.** Every PHB holder's follow-up items are drawn twice with the same noise, once with and once
   without the effect; the scored difference averaged over PHB holders is the exact ATT for this seed's
   population, overall and per stratum, on the scales users see.
7. **Service use.** Per person and service, counts are Poisson with a person frailty shared by both
   periods (so pre predicts post) and a period gamma noise (negative-binomial margins), with site
   effects. PHB holders' post counts are the no-budget counts thinned with the planted rate ratio (the
   same coupling gives the realised ATT rate ratio). Inpatient spells carry a length of stay.
8. **Deaths, loss to follow-up and non-response** depend on need. Died or lost -> every t1 item empty.
   ``_post`` counts are empty when the person was lost or died without a recorded ``death_date``; with
   a death date they cover the days alive. Items are missing at random at ``item_nonresponse``.

Events (``events=True``): one row per contact, ``participant_id, event_date, service, quantity,
cost_gbp``. Windows relative to ``consent_date`` are those of ``phb_eval.events``: pre = [consent - 365,
consent), post = [consent, consent + 365), so aggregating reproduces every observed ``_pre``/``_post``
count exactly (inpatient_days = sum of quantity of inpatient events, inpatient_admissions = number of
inpatient events; an inpatient spell is placed on its admission date). The events are record-linked,
so they also hold the post-window contacts of people lost to follow-up (whose survey-based ``_post``
counts are empty), and the contacts of people who died up to their death.

Scoring for the truth uses ``phb_eval.instruments`` (raw sums, GHQ-12 scorings, the EQ-5D value sets in
``config/value_sets``) and the SYNTHETIC ASCOT weights in ``config/demo`` (not the licensed weights).
"""
from __future__ import annotations

import copy
import io
import json
import os
import re
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from .contract import FLEXIBILITY_FEATURES, ITEMS, OPTIONAL_SERVICES, SERVICES, SERVICE_TO_EVENT
from .derive import budget_band, implementation_model
from .errors import PhbEvalError
from .instruments.ascot import ascot_raw, load_weights
from .instruments.carer import GOOD_HEALTH_CODES
from .instruments.eq5d import eq5d_index, load_value_set
from .instruments.ghq12 import caseness, ghq12_score
from .plan import merge_dicts

__all__ = ["SimulatedPilot", "simulate_pilot", "write_simulation", "DEFAULT_PARAMETERS", "FORMATS", "SELECTIONS"]

CONFIG = Path(__file__).resolve().parent / "config"
WEIGHTS_FILES = {"ascot": CONFIG / "demo" / "ascot_weights_synthetic.csv",
                 "carer_ascot": CONFIG / "demo" / "carer_ascot_weights_synthetic.csv"}
UNIT_COSTS_FILE = CONFIG / "unit_costs" / "england_2024_25.csv"
FORMATS = ("csv", "parquet", "xlsx")
SELECTIONS = ("latent", "observed")
DEFAULT_PRICE_YEAR = "2024/25"                      # unit costs of the planted cost difference
WINDOW_DAYS = 365                                   # the data contract's service-use window
FIXED_XLSX_TIME = "2012-06-01T00:00:00Z"            # document created/modified stamp: same bytes every run
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)                   # earliest date a zip entry can carry
SCORE_DECIMALS = 6                                  # precomputed scrqol columns (scoring tolerance is 0.005)
EVENT_SERVICES = {event: col for col, (event, how) in SERVICE_TO_EVENT.items()
                  if how == "count" and col != "inpatient_admissions"}   # ae -> ae_attendances, ...

# Model parameters: design choices for a plausible synthetic pilot, not estimates from pilot data.
# All are echoed in truth.json. Latent scales are in SD-like units of the person latents.
DEFAULT_PARAMETERS = {
    "recruitment": {"start": "2010-04-01", "end": "2011-06-30"},
    "sites": {"size_concentration": 6.0, "condition_mix_concentration": 25.0, "need_sd": 0.25,
              "outcome_sd": 0.15, "service_sd": 0.25, "service_specific_sd": 0.1, "allocation_sd": 0.5},
    "condition": {   # share, need shift, age mean/sd, share female, allocation shift
        "chc":           {"share": 0.09, "need": 1.0,  "age_mean": 66, "age_sd": 19, "female": 0.55, "alloc": 0.2},
        "mental_health": {"share": 0.22, "need": 0.2,  "age_mean": 43, "age_sd": 14, "female": 0.52, "alloc": 0.1},
        "copd":          {"share": 0.17, "need": 0.1,  "age_mean": 68, "age_sd": 10, "female": 0.48, "alloc": 0.0},
        "diabetes":      {"share": 0.21, "need": -0.4, "age_mean": 60, "age_sd": 14, "female": 0.45, "alloc": 0.0},
        "neurological":  {"share": 0.18, "need": 0.4,  "age_mean": 55, "age_sd": 16, "female": 0.56, "alloc": 0.0},
        "stroke":        {"share": 0.13, "need": 0.3,  "age_mean": 70, "age_sd": 12, "female": 0.47, "alloc": 0.0},
    },
    "age_range": [16, 105],
    "need": {"age_per_year": 0.012, "age_centre": 60, "person_sd": 0.9},
    # instrument latent = need_loading * eta + own_loading * own factor (+ site outcome effect * site_loading)
    "latents": {
        "ascot":        {"need_loading": -0.75, "own_loading": 0.65, "site_loading": 1.0},
        "ghq12":        {"need_loading": 0.55, "own_loading": 0.8, "site_loading": -0.5},
        "eq5d":         {"need_loading": 0.7, "own_loading": 0.7, "site_loading": -0.3},
        "carer_ascot":  {"need_loading": -0.4, "own_loading": 0.9, "site_loading": 0.5},
        "carer_health": {"need_loading": 0.2, "own_loading": 1.0, "site_loading": 0.0},
    },
    # ordinal items: code = number of cuts exceeded by (sign * latent + offset + N(0, noise_sd))
    "items": {
        "ascot": {"sign": 1, "noise_sd": 0.7, "cuts": [-1.3, 0.0, 1.45],
                  "offsets": [-0.2, 0.2, 0.3, 0.4, 0.1, -0.3, -0.4, 0.3]},
        "ghq12": {"sign": 1, "noise_sd": 0.7, "cuts": [-0.9, 0.55, 1.8],
                  "offsets": [0.1, -0.1, 0.2, 0.0, -0.2, 0.3, 0.1, 0.0, -0.1, 0.2, -0.2, 0.0]},
        "eq5d_3L": {"sign": 1, "noise_sd": 0.7, "cuts": [0.2, 1.8], "first_code": 1,
                    "offsets": [0.2, -0.5, 0.3, 0.4, -0.1]},
        "eq5d_5L": {"sign": 1, "noise_sd": 0.7, "cuts": [-0.3, 0.5, 1.3, 2.1], "first_code": 1,
                    "offsets": [0.2, -0.5, 0.3, 0.4, -0.1]},
        "carer_ascot": {"sign": 1, "noise_sd": 0.7, "cuts": [-1.3, 0.0, 1.45],
                        "offsets": [-0.3, 0.0, 0.1, 0.4, -0.2, -0.3, -0.1]},
        "carer_health": {"sign": 1, "noise_sd": 0.6, "cuts": [-0.9, 0.2, 1.2, 2.1], "first_code": 1,
                         "offsets": [0.0]},
    },
    "eq5d_condition_offsets": {   # mobility, selfcare, activities, pain, anxiety
        "mental_health": [-0.5, -0.3, 0.0, -0.2, 0.8], "copd": [0.2, -0.1, 0.3, 0.0, 0.1],
        "neurological": [0.4, 0.3, 0.2, 0.1, 0.0], "stroke": [0.5, 0.4, 0.2, -0.1, 0.0],
        "chc": [0.5, 0.6, 0.4, 0.0, 0.0], "diabetes": [0.0, -0.2, 0.0, 0.1, 0.0]},
    "eq_vas": {"intercept": 72.0, "per_latent": -11.0, "noise_sd": 9.0},
    "eq5d_value_set": {"3L": "uk_dolan1997", "5L": "england_devlin2018"},
    "allocation": {"ascot_raw": -0.2, "ghq12_likert": 0.1},    # per SD of the observed baseline sums
    # selection="observed": logit of uptake, linear in recorded baseline columns (per unit of each column)
    "allocation_observed": {"ascot_raw_t0": -0.05, "ghq12_likert_t0": 0.03, "age_per_10_years": 0.1,
                            "log1p_pre": {"inpatient_days": 0.3, "ae_attendances": 0.3, "gp_consultations": 0.2}},
    "budget": {      # lognormal: median GBP/year by condition, sdlog; shift per unit of need; floor
        "median": {"chc": 20000, "mental_health": 1100, "copd": 550, "diabetes": 420,
                   "neurological": 1500, "stroke": 950},
        "sdlog": {"chc": 0.5, "mental_health": 0.9, "copd": 0.9, "diabetes": 0.9,
                  "neurological": 1.0, "stroke": 0.9},
        "need_shift": 0.25, "floor": 50, "cut": 1000},
    "control_package": {   # conventional commissioned package, GBP/year: lognormal median, sdlog
        "median": {"chc": 28000, "mental_health": 1300, "copd": 650, "diabetes": 450,
                   "neurological": 1700, "stroke": 1100},
        "sdlog": 0.7, "need_shift": 0.25, "floor": 50},
    "flexibility": {  # logit P(feature) = mean + site_sd * (site factor) + individual_sd * N(0, 1)
        "mean": {"knew_budget": 0.5, "flexible_spend": 0.3, "chose_deployment": 0.6},
        "site_sd": 2.0, "site_common": 0.7, "individual_sd": 0.6},
    "deployment": {"third_party": 0.12, "direct_payment_base": 0.15, "direct_payment_if_chose": 0.25,
                   "direct_payment_chc": 0.1},
    "effects": {
        # latent-scale effect per budget band x implementation model (model1 = all three features)
        "by_stratum": {">=1000;model1": 0.6, ">=1000;model2": 0.25, "<1000;model1": 0.12,
                       "<1000;model2": -0.25},
        "need_gradient": 0.3,       # multiplier exp(need_gradient * standardised need)
        "loading": {"ascot": 1.0, "ghq12": -0.8, "eq5d": 0.0, "carer_ascot": 0.6, "carer_health": -0.4},
        "trend": {"ascot": 0.05, "ghq12": -0.05, "eq5d": 0.05, "carer_ascot": 0.0, "carer_health": 0.05},
        "change_sd": 0.45,
    },
    "carer": {"intercept": -0.45, "need": 0.35},
    "mortality": {"intercept": -2.5, "need": 0.55, "death_date_known": 0.85},
    "loss_to_follow_up": {"intercept": -1.5, "need": 0.3},
    "item_nonresponse": 0.02,
    "services": {   # events per year at eta = 0, need log-coefficient, planted PHB rate ratio, trend (log)
        "inpatient":       {"rate": 0.45, "need": 0.45, "rate_ratio": 0.85, "trend": 0.0},
        "ae":              {"rate": 0.8, "need": 0.35, "rate_ratio": 0.85, "trend": 0.0},
        "gp":              {"rate": 5.5, "need": 0.25, "rate_ratio": 0.9, "trend": 0.0},
        "outpatient":      {"rate": 3.0, "need": 0.2, "rate_ratio": 1.0, "trend": 0.0},
        "community_nurse": {"rate": 2.5, "need": 0.5, "rate_ratio": 1.0, "trend": 0.0},
        "practice_nurse":  {"rate": 2.0, "need": 0.1, "rate_ratio": 1.0, "trend": 0.0},
    },
    "service_condition_multiplier": {
        "chc": {"inpatient": 1.5, "community_nurse": 4.0},
        "copd": {"inpatient": 1.4, "ae": 1.3, "practice_nurse": 1.5},
        "diabetes": {"gp": 1.2, "practice_nurse": 2.0},
        "mental_health": {"ae": 1.2, "gp": 1.1, "inpatient": 0.8, "community_nurse": 0.5},
        "neurological": {"outpatient": 1.5},
        "stroke": {"inpatient": 1.2, "outpatient": 1.3},
    },
    "frailty_shape": 2.0,           # person frailty Gamma(shape, 1/shape), shared by both periods
    "period_noise_shape": 3.0,      # period x service noise Gamma(shape, 1/shape)
    "length_of_stay": {"mean": 5.0, "need": 0.2, "chc": 1.5, "mental_health": 2.0},
    "event_costs": {"share_with_cost": 0.05, "sdlog": 0.3,
                    "unit_cost_item": {"inpatient": "nonelective_spell", "ae": "ae_attendance"}},
}


@dataclass
class SimulatedPilot:
    """A simulated cohort.

    cohort : one row per participant in the data contract's input layout (items, not scores; plus the
        precomputed ``scrqol_<wave>`` and ``carer_scrqol_<wave>`` from the synthetic weights).
    events : the service-event table, or None.
    truth : JSON-serialisable planted effects, rates, seed, sizes and every parameter.
    """

    cohort: pd.DataFrame
    events: pd.DataFrame | None
    truth: dict


# ---- small pieces -----------------------------------------------------------------------------------
def _z(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / (sd if sd > 0 else 1.0)


def _expit(x):
    return 1.0 / (1.0 + np.exp(-x))


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of an (n, k) probability matrix (inverse CDF, vectorised)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cum[:, -1:]
    return np.minimum((u > cum).sum(axis=1), probs.shape[1] - 1)


def _ordinal(latent: np.ndarray, spec: dict, noise: np.ndarray, extra_offsets=None) -> np.ndarray:
    """Item codes (n, items): number of cuts exceeded by sign*latent + offset + noise, plus first code."""
    x = spec["sign"] * latent[:, None] + np.asarray(spec["offsets"])[None, :] + noise
    if extra_offsets is not None:
        x = x + extra_offsets
    cuts = np.asarray(spec["cuts"])
    return (x[..., None] > cuts).sum(axis=-1) + spec.get("first_code", 0)


class _Scorer:
    """Scores the truth needs, from phb_eval.instruments and the synthetic demo weights."""

    def __init__(self, eq5d_version: str, value_set_name: str, caseness_threshold: int = 4):
        self.ascot = load_weights(WEIGHTS_FILES["ascot"], "ascot")
        self.carer = load_weights(WEIGHTS_FILES["carer_ascot"], "carer_ascot")
        self.value_set = load_value_set(value_set_name)
        if self.value_set.levels != int(eq5d_version[0]):
            raise PhbEvalError(f"EQ-5D value set {value_set_name!r} is for {self.value_set.levels}L data, "
                               f"not {eq5d_version}")
        self.threshold = caseness_threshold

    def scores(self, codes: dict) -> dict:
        """codes: instrument -> (n, items) float array (NaN = missing) -> score name -> array."""
        out = {}
        if "ascot" in codes:
            out["ascot_raw"] = ascot_raw(codes["ascot"])
            out["scrqol"] = self.ascot.index(codes["ascot"])
        if "ghq12" in codes:
            out["ghq12_likert"] = ghq12_score(codes["ghq12"], "likert")[0]
            out["ghq12_ghq"] = ghq12_score(codes["ghq12"], "ghq")[0]
            out["ghq12_caseness"] = caseness(out["ghq12_ghq"], self.threshold)
        if "eq5d" in codes:
            out["eq5d_index"] = eq5d_index(codes["eq5d"], self.value_set)
        if "eq_vas" in codes:
            out["eq_vas"] = codes["eq_vas"][:, 0].astype(float)
        if "carer_ascot" in codes:
            out["carer_ascot_raw"] = ascot_raw(codes["carer_ascot"])
            out["carer_scrqol"] = self.carer.index(codes["carer_ascot"])
        if "carer_health" in codes:
            h = codes["carer_health"][:, 0].astype(float)
            out["carer_health"] = h
            out["carer_health_good"] = np.where(np.isnan(h), np.nan, np.isin(h, GOOD_HEALTH_CODES).astype(float))
        return out


def _plain(obj):
    """numpy scalars/arrays and NaN -> JSON-ready Python values (NaN becomes None)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_plain(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


# ---- the generator ----------------------------------------------------------------------------------
def simulate_pilot(n_phb: int = 1171, n_control: int = 1064, sites: int = 20, seed: int = 2012,
                   events: bool = False, eq5d_version: str = "3L", parameters: dict | None = None,
                   selection: str = "latent") -> SimulatedPilot:
    """Simulate a pilot-like cohort (both arms, every data-contract column) with planted effects.

    Parameters
    ----------
    n_phb, n_control : arm sizes (at least 1 each).
    sites : number of sites (clusters), at least 1; labelled ``site01``, ``site02``, ...
    seed : integer seed; the same seed gives the same cohort, events and truth.
    events : also build the service-event table (it never changes the cohort).
    eq5d_version : ``"3L"`` (levels 1-3, truth scored with Dolan 1997) or ``"5L"`` (levels 1-5, truth
        scored with the value set in ``parameters["eq5d_value_set"]["5L"]``, Devlin 2018 by default).
    parameters : partial overrides of ``DEFAULT_PARAMETERS`` (nested dicts are merged), e.g.
        ``{"effects": {"by_stratum": {...}}}`` for a null-effect cohort.
    selection : ``"latent"`` (default; uptake depends on baseline sums, condition and a site effect with
        Gumbel noise, see step 3 of the module docstring) or ``"observed"``: uptake is logistic in recorded
        baseline columns only — condition, site, age, baseline ASCOT and GHQ-12 sums and log1p of prior
        inpatient days, A&E and GP use (``allocation_observed``) — plus independent logistic noise, so
        adjusting for those columns (with site effects in the propensity model) identifies every effect.

    Returns
    -------
    SimulatedPilot (``cohort``, ``events``, ``truth``).

    Notes
    -----
    Random numbers come from independent child streams of ``numpy.random.SeedSequence(seed)`` (people,
    baseline items, follow-up, missingness, services, events), so asking for events does not change
    the cohort. See the module docstring for the model and ``truth["effects"]["estimand"]``.
    """
    for name, value in (("n_phb", n_phb), ("n_control", n_control), ("sites", sites)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise PhbEvalError(f"simulate: {name} must be a whole number of at least 1, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise PhbEvalError(f"simulate: seed must be a whole number of 0 or more, got {seed!r}")
    if eq5d_version not in ("3L", "5L"):
        raise PhbEvalError(f"simulate: eq5d_version must be '3L' or '5L', got {eq5d_version!r}")
    if selection not in SELECTIONS:
        raise PhbEvalError(f"simulate: selection must be 'latent' or 'observed', got {selection!r}")
    P = merge_dicts(DEFAULT_PARAMETERS, parameters)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(6)]
    r_pop, r_base, r_fu, r_miss, r_svc, r_ev = streams
    n = int(n_phb) + int(n_control)
    scorer = _Scorer(eq5d_version, P["eq5d_value_set"][eq5d_version])

    pop = _people(r_pop, n, int(sites), P)
    base = _baseline(r_base, pop, P, eq5d_version)
    if selection == "latent":
        phb = _allocate(r_pop, pop, base, int(n_phb), P)
        budget = _budgets(r_pop, pop, phb, P)
        stratum_effect = _effects(pop, phb, budget, P)
        fu = _follow_up(r_fu, pop, base, stratum_effect, P, eq5d_version)
        fate = _fate(r_miss, pop, P)
        svc = _services(r_svc, pop, phb, fate, P)
    else:   # the same streams in the same order of use; baseline counts first (they do not depend on phb)
        fate = _fate(r_miss, pop, P)
        pre = _count_columns(_services(copy.deepcopy(r_svc), pop, np.zeros(n, bool), fate, P))
        phb = _allocate_observed(r_pop, pop, base, {c: v[0] for c, v in pre.items()}, int(n_phb), P, scorer)
        budget = _budgets(r_pop, pop, phb, P)
        stratum_effect = _effects(pop, phb, budget, P)
        fu = _follow_up(r_fu, pop, base, stratum_effect, P, eq5d_version)
        svc = _services(r_svc, pop, phb, fate, P)

    cohort, order = _assemble(r_miss, pop, phb, budget, base, fu, fate, svc, P, scorer, eq5d_version)
    truth = _truth(seed, n_phb, n_control, sites, eq5d_version, P, pop, phb, budget, base, fu, fate, svc,
                   scorer, cohort, order)
    truth = {**truth, "selection": selection, "planted_att": _planted_att(P, phb, budget, fu, fate, svc, scorer)}
    ev = _events(r_ev, pop, fate, svc, P, order) if events else None
    return SimulatedPilot(cohort=cohort, events=ev, truth=truth)


def _people(rng, n, n_sites, P):
    conds = list(P["condition"])
    cp = P["condition"]
    share = np.array([cp[c]["share"] for c in conds], dtype=float)
    share = share / share.sum()
    sp = P["sites"]
    site_size = rng.dirichlet(np.full(n_sites, sp["size_concentration"]))
    site = rng.choice(n_sites, size=n, p=site_size)
    site_mix = rng.dirichlet(share * sp["condition_mix_concentration"], size=n_sites)
    cond = _categorical(rng, site_mix[site])
    age_mean = np.array([cp[c]["age_mean"] for c in conds], float)[cond]
    age_sd = np.array([cp[c]["age_sd"] for c in conds], float)[cond]
    lo, hi = P["age_range"]
    age = np.clip(np.round(rng.normal(age_mean, age_sd)), lo, hi)
    female = rng.random(n) < np.array([cp[c]["female"] for c in conds])[cond]
    site_need = rng.normal(0, sp["need_sd"], n_sites)
    site_out = rng.normal(0, sp["outcome_sd"], n_sites)
    site_alloc = rng.normal(0, sp["allocation_sd"], n_sites)
    nd = P["need"]
    eta = (np.array([cp[c]["need"] for c in conds])[cond] + nd["age_per_year"] * (age - nd["age_centre"])
           + site_need[site] + rng.normal(0, nd["person_sd"], n))
    start, end = (np.datetime64(P["recruitment"][k], "D") for k in ("start", "end"))
    consent = start + rng.integers(0, int((end - start).astype(int)) + 1, n).astype("timedelta64[D]")
    own = {k: rng.normal(size=n) for k in P["latents"]}
    return dict(n=n, n_sites=n_sites, site=site, cond=cond, conds=conds, age=age, female=female, eta=eta,
                site_out=site_out, site_alloc=site_alloc, consent=consent, own=own)


def _latent0(pop, P, name):
    spec = P["latents"][name]
    return (spec["need_loading"] * pop["eta"] + spec["own_loading"] * pop["own"][name]
            + spec["site_loading"] * pop["site_out"][pop["site"]])


def _item_spec(P, name, eq5d_version):
    return P["items"][f"eq5d_{eq5d_version}" if name == "eq5d" else name]


def _draw_items(rng, pop, P, latents, eq5d_version):
    """Complete item codes for every instrument from instrument latents (dict name -> (n,))."""
    n = pop["n"]
    eq_extra = np.array([P["eq5d_condition_offsets"].get(c, [0.0] * 5) for c in pop["conds"]])[pop["cond"]]
    codes, noise = {}, {}
    for name in ("ascot", "ghq12", "eq5d", "carer_ascot", "carer_health"):
        spec = _item_spec(P, name, eq5d_version)
        k = len(spec["offsets"])
        noise[name] = rng.normal(0, spec["noise_sd"], (n, k))
        codes[name] = _ordinal(latents[name], spec, noise[name], eq_extra if name == "eq5d" else None)
    v = P["eq_vas"]
    noise["eq_vas"] = rng.normal(0, v["noise_sd"], n)
    return codes, noise, eq_extra


def _vas(P, latent, noise):
    v = P["eq_vas"]
    return np.clip(np.round(v["intercept"] + v["per_latent"] * latent + noise), 0, 100)


def _baseline(rng, pop, P, eq5d_version):
    lat = {k: _latent0(pop, P, k) for k in P["latents"]}
    codes, noise, _ = _draw_items(rng, pop, P, lat, eq5d_version)
    codes["eq_vas"] = _vas(P, lat["eq5d"], noise["eq_vas"])[:, None]
    return dict(latent=lat, codes=codes)


def _allocate(rng, pop, base, n_phb, P):
    """PHB = the n_phb largest allocation scores + Gumbel noise (weighted sampling without replacement)."""
    a = P["allocation"]
    raw = base["codes"]["ascot"].sum(axis=1).astype(float)
    ghq = base["codes"]["ghq12"].sum(axis=1).astype(float)
    alloc = np.array([P["condition"][c]["alloc"] for c in pop["conds"]])[pop["cond"]]
    score = a["ascot_raw"] * _z(raw) + a["ghq12_likert"] * _z(ghq) + alloc + pop["site_alloc"][pop["site"]]
    key = score + rng.gumbel(size=pop["n"])
    phb = np.zeros(pop["n"], bool)
    phb[np.argsort(-key, kind="stable")[:n_phb]] = True
    return phb


def _allocate_observed(rng, pop, base, pre, n_phb, P, scorer):
    """PHB = the n_phb largest (logit score + logistic noise): P(PHB | recorded columns) is logistic in them
    (the cut-off is a quantile, i.e. the intercept). Scores are those of complete baseline items."""
    a = P["allocation_observed"]
    s = scorer.scores({k: base["codes"][k].astype(float) for k in ("ascot", "ghq12")})
    alloc = np.array([P["condition"][c]["alloc"] for c in pop["conds"]])[pop["cond"]]
    score = (alloc + pop["site_alloc"][pop["site"]] + a["ascot_raw_t0"] * s["ascot_raw"]
             + a["ghq12_likert_t0"] * s["ghq12_likert"] + a["age_per_10_years"] * pop["age"] / 10
             + sum(b * np.log1p(pre[col]) for col, b in a["log1p_pre"].items()))
    key = score + rng.logistic(size=pop["n"])
    phb = np.zeros(pop["n"], bool)
    phb[np.argsort(-key, kind="stable")[:n_phb]] = True
    return phb


def _planted_att(P, phb, budget, fu, fate, svc, scorer):
    """The ATT each estimator targets, over the PHB holders whose outcome is observed (complete items
    aside): scores over holders alive and followed up; each service's rate ratio = Σ post counts with the
    budget / Σ without it over holders whose post window is recorded; total cost difference (£, budget +
    indirect with the budget − conventional package + indirect without it, costed as ``phb_eval.costs``
    does at the default price year) over the same holders."""
    from .costs import load_unit_costs, person_costs
    s1 = scorer.scores({k: v.astype(float) for k, v in fu["treated"].items()})
    s0 = scorer.scores({k: v.astype(float) for k, v in fu["untreated"].items()})
    followed = phb & ~fate["died"] & ~fate["lost"]
    carer = {"carer_scrqol", "carer_ascot_raw", "carer_health", "carer_health_good"}
    scores = {k: _mean_diff(s1[k], s0[k], followed & (fate["has_carer"] if k in carer else True)) for k in s1}
    seen = phb & ~fate["lost"] & ~(fate["died"] & ~fate["date_known"])
    cols = _count_columns(svc)
    rates = {c: float(post[seen].sum() / untreated[seen].sum()) if untreated[seen].sum() > 0 else None
             for c, (_pre, post, untreated) in cols.items()}
    price_year = DEFAULT_PRICE_YEAR
    unit = load_unit_costs(None, price_year)

    def indirect(which):
        frame = pd.DataFrame({f"{c}_post": v[which][seen].astype(float) for c, v in cols.items()})
        return person_costs(frame, unit)[0]["cost_indirect"].to_numpy()

    direct = budget["amount"][seen] - budget["package"][seen]
    cost = float(np.mean(direct + indirect(1) - indirect(2))) if seen.any() else None
    return {"definition": ("over PHB holders whose outcome is recorded: scores = mean individual difference "
                           "(with - without the budget) among holders alive and followed up; services = ratio "
                           "of summed post-window counts with / without the budget among holders with a "
                           "recorded post window; total_cost = mean difference in £ per person per year "
                           f"among the same holders at {price_year} unit costs"),
            "scores": scores, "rate_ratio": rates, "total_cost": cost,
            "n": {"followed_up": int(followed.sum()), "post_recorded": int(seen.sum())}}


def _budgets(rng, pop, phb, P):
    n, conds, cond = pop["n"], pop["conds"], pop["cond"]
    b = P["budget"]
    z_eta = _z(pop["eta"])
    med = np.array([b["median"][c] for c in conds], float)[cond]
    sdl = np.array([b["sdlog"][c] for c in conds], float)[cond]
    amount = np.maximum(np.round(med * np.exp(b["need_shift"] * z_eta + sdl * rng.normal(size=n))), b["floor"])
    cp = P["control_package"]
    cmed = np.array([cp["median"][c] for c in conds], float)[cond]
    package = np.maximum(np.round(cmed * np.exp(cp["need_shift"] * z_eta + cp["sdlog"] * rng.normal(size=n))),
                         cp["floor"])
    f = P["flexibility"]
    common = rng.normal(size=pop["n_sites"])
    feats = {}
    for name in FLEXIBILITY_FEATURES:
        site_logit = f["mean"][name] + f["site_sd"] * (f["site_common"] * common + np.sqrt(1 - f["site_common"] ** 2)
                                                        * rng.normal(size=pop["n_sites"]))
        feats[name] = (rng.random(n) < _expit(site_logit[pop["site"]] + f["individual_sd"] * rng.normal(size=n))
                       ).astype(int)
    d = P["deployment"]
    p_direct = (d["direct_payment_base"] + d["direct_payment_if_chose"] * feats["chose_deployment"]
                + d["direct_payment_chc"] * (np.asarray(conds)[cond] == "chc"))
    probs = np.column_stack([p_direct, np.full(n, d["third_party"]), 1 - p_direct - d["third_party"]])
    deployment = np.array(["direct_payment", "third_party", "notional"], dtype=object)[_categorical(rng, probs)]
    return dict(amount=amount, package=package, feats=feats, deployment=deployment)


def _strata_labels(budget_amount, feats, phb, cut):
    """budget_band and implementation_model per person, by the same code derive.py uses (NaN for controls)."""
    frame = pd.DataFrame({"group": np.where(phb, "phb", "control"), **feats})
    band = budget_band(pd.Series(np.where(phb, budget_amount, np.nan)), [cut])
    model = implementation_model(frame, {"model1": list(FLEXIBILITY_FEATURES)}, "model2")
    return band.to_numpy(dtype=object), model.to_numpy(dtype=object)


def _effects(pop, phb, budget, P):
    """Latent-scale effect of the budget per person (0 for controls), before instrument loadings."""
    e = P["effects"]
    band, model = _strata_labels(budget["amount"], budget["feats"], phb, P["budget"]["cut"])
    table = e["by_stratum"]
    base = np.array([table[f"{b};{m}"] if p else 0.0 for b, m, p in zip(band, model, phb)], float)
    return base * np.exp(e["need_gradient"] * _z(pop["eta"]))


def _follow_up(rng, pop, base, effect, P, eq5d_version):
    """Follow-up latents and items twice: with the effect (as observed) and without (counterfactual)."""
    e = P["effects"]
    n = pop["n"]
    change = {k: rng.normal(0, e["change_sd"], n) for k in P["latents"]}
    lat1 = {k: base["latent"][k] + e["trend"][k] + change[k] for k in P["latents"]}
    # Noise for the items at t1 is drawn once and used for both worlds.
    codes0, noise, eq_extra = _draw_items(rng, pop, P, lat1, eq5d_version)
    treated_lat = {k: lat1[k] + e["loading"][k] * effect for k in P["latents"]}
    codes1 = {k: _ordinal(treated_lat[k], _item_spec(P, k, eq5d_version), noise[k],
                          eq_extra if k == "eq5d" else None) for k in codes0}
    codes0["eq_vas"] = _vas(P, lat1["eq5d"], noise["eq_vas"])[:, None]
    codes1["eq_vas"] = _vas(P, treated_lat["eq5d"], noise["eq_vas"])[:, None]
    return dict(untreated=codes0, treated=codes1)


def _fate(rng, pop, P):
    """Deaths (with day of death and whether the date is recorded), carers, loss to follow-up."""
    n, z_eta = pop["n"], _z(pop["eta"])
    m, l, c = P["mortality"], P["loss_to_follow_up"], P["carer"]
    died = rng.random(n) < _expit(m["intercept"] + m["need"] * z_eta)
    death_day = np.where(died, rng.integers(1, WINDOW_DAYS, n), WINDOW_DAYS)   # days alive in the window
    date_known = died & (rng.random(n) < m["death_date_known"])
    lost = ~died & (rng.random(n) < _expit(l["intercept"] + l["need"] * z_eta))
    has_carer = rng.random(n) < _expit(c["intercept"] + c["need"] * z_eta)
    return dict(died=died, death_day=death_day, date_known=date_known, lost=lost, has_carer=has_carer)


def _service_rates(rng, pop, P):
    conds, cond, site = pop["conds"], pop["cond"], pop["site"]
    sp = P["sites"]
    site_common = rng.normal(0, sp["service_sd"], pop["n_sites"])
    mult = P["service_condition_multiplier"]
    rates = {}
    for ev, s in P["services"].items():
        site_eff = site_common + rng.normal(0, sp["service_specific_sd"], pop["n_sites"])
        cm = np.array([mult.get(c, {}).get(ev, 1.0) for c in conds])[cond]
        rates[ev] = s["rate"] * cm * np.exp(s["need"] * pop["eta"] + site_eff[site])
    return rates


def _services(rng, pop, phb, fate, P):
    """True counts per service and period: pre, post without the budget (untreated) and as observed.

    Inpatient admissions are spells with a length of stay; the others are counts.
    """
    n = pop["n"]
    rates = _service_rates(rng, pop, P)
    k_f, k_g = P["frailty_shape"], P["period_noise_shape"]
    frailty = rng.gamma(k_f, 1.0 / k_f, n)
    exposure = fate["death_day"] / WINDOW_DAYS
    los = P["length_of_stay"]
    cond_name = np.asarray(pop["conds"])[pop["cond"]]
    los_mean = los["mean"] * np.exp(los["need"] * _z(pop["eta"])) * np.where(
        cond_name == "chc", los["chc"], np.where(cond_name == "mental_health", los["mental_health"], 1.0))
    out = {}
    for ev, s in P["services"].items():
        pre = rng.poisson(rates[ev] * frailty * rng.gamma(k_g, 1.0 / k_g, n))
        mu_post = rates[ev] * np.exp(s["trend"]) * frailty * rng.gamma(k_g, 1.0 / k_g, n) * exposure
        untreated = rng.poisson(mu_post)
        rr = s["rate_ratio"]
        extra = np.where(phb, rng.poisson(mu_post * max(rr - 1.0, 0.0)), 0)   # only when rr > 1
        total = untreated + extra                                              # contacts drawn
        owner = np.repeat(np.arange(n), total)
        first = np.repeat(np.cumsum(total) - total, total)
        rank = np.arange(owner.size) - first                                   # 0.. within person
        in_untreated = rank < untreated[owner]
        keep = np.where(phb[owner], rng.random(owner.size) < min(rr, 1.0), True) | ~in_untreated
        entry = dict(pre=pre, untreated=untreated, owner=owner, in_untreated=in_untreated, in_treated=keep)
        entry["observed"] = np.bincount(owner[keep], minlength=n)
        if ev == "inpatient":
            lp = los_mean[np.repeat(np.arange(n), pre)]
            entry["los_pre"] = 1 + rng.poisson(rng.gamma(1.0, np.maximum(lp - 1, 0)))
            entry["days_pre"] = np.bincount(np.repeat(np.arange(n), pre), weights=entry["los_pre"], minlength=n)
            entry["los_post"] = 1 + rng.poisson(rng.gamma(1.0, np.maximum(los_mean[owner] - 1, 0)))
            entry["days_untreated"] = np.bincount(owner[in_untreated], weights=entry["los_post"][in_untreated],
                                                  minlength=n)
            entry["days_observed"] = np.bincount(owner[keep], weights=entry["los_post"][keep], minlength=n)
        out[ev] = entry
    return out


def _count_columns(svc):
    """Contract count column -> (pre, observed post, untreated post) true counts."""
    ip = svc["inpatient"]
    cols = {"inpatient_days": (ip["days_pre"], ip["days_observed"], ip["days_untreated"]),
            "inpatient_admissions": (ip["pre"], ip["observed"], ip["untreated"])}
    for ev, col in EVENT_SERVICES.items():
        e = svc[ev]
        cols[col] = (e["pre"], e["observed"], e["untreated"])
    return {c: cols[c] for c in SERVICES + OPTIONAL_SERVICES}


def _assemble(rng, pop, phb, budget, base, fu, fate, svc, P, scorer, eq5d_version):
    """The participant table in the contract layout, rows in participant_id order (ids in random order)."""
    n = pop["n"]
    order = rng.permutation(n)            # row r of the table is person order[r]
    width = len(str(n))
    ids = np.array([f"P{i + 1:0{width}d}" for i in range(n)], dtype=object)
    observed_t1 = ~fate["died"] & ~fate["lost"]
    rate = P["item_nonresponse"]

    def items(codes, name, respond):
        x = codes[name].astype(float)
        miss = rng.random(x.shape) < rate
        x[miss] = np.nan
        x[~respond] = np.nan
        return x

    cols = {}
    cols["participant_id"] = ids
    cols["group"] = np.where(phb, "phb", "control").astype(object)
    cols["site"] = np.array([f"site{s + 1:02d}" for s in range(pop["n_sites"])], dtype=object)[pop["site"]]
    cols["condition"] = np.asarray(pop["conds"], dtype=object)[pop["cond"]]
    cols["consent_date"] = pop["consent"].astype("datetime64[ns]")
    cols["age"] = pop["age"]
    cols["sex"] = np.where(pop["female"], "female", "male").astype(object)
    cols["died"] = fate["died"].astype(int)
    death = pop["consent"] + fate["death_day"].astype("timedelta64[D]")
    cols["death_date"] = np.where(fate["date_known"], death, np.datetime64("NaT")).astype("datetime64[ns]")
    cols["budget_gbp_per_year"] = np.where(phb, budget["amount"], np.nan)
    cols["deployment"] = np.where(phb, budget["deployment"], None)
    for f in FLEXIBILITY_FEATURES:
        cols[f] = np.where(phb, budget["feats"][f], np.nan)
    cols["direct_cost_gbp_per_year"] = np.where(phb, budget["amount"], budget["package"])
    cols["has_carer"] = fate["has_carer"].astype(int)

    scores = {}
    for wave, codes, respond in (("t0", base["codes"], np.ones(n, bool)), ("t1", fu["treated"], observed_t1)):
        got = {}
        for name in ("ascot", "ghq12", "eq5d"):
            got[name] = items(codes, name, respond)
            for j, stem in enumerate(ITEMS[name]):
                cols[f"{stem}_{wave}"] = got[name][:, j]
        got["eq_vas"] = items(codes, "eq_vas", respond)
        cols[f"eq_vas_{wave}"] = got["eq_vas"][:, 0]
        carer_ok = respond & fate["has_carer"]
        got["carer_ascot"] = items(codes, "carer_ascot", carer_ok)
        for j, stem in enumerate(ITEMS["carer_ascot"]):
            cols[f"{stem}_{wave}"] = got["carer_ascot"][:, j]
        got["carer_health"] = items(codes, "carer_health", carer_ok)
        cols[f"carer_health_{wave}"] = got["carer_health"][:, 0]
        scores[wave] = scorer.scores(got)
    for wave in ("t0", "t1"):   # rounded: float sums of the weights may land a hair above 1.00
        cols[f"scrqol_{wave}"] = np.round(scores[wave]["scrqol"], SCORE_DECIMALS)
        cols[f"carer_scrqol_{wave}"] = np.round(scores[wave]["carer_scrqol"], SCORE_DECIMALS)

    post_seen = ~fate["lost"] & ~(fate["died"] & ~fate["date_known"])
    for col, (pre, post, _untreated) in _count_columns(svc).items():
        cols[f"{col}_pre"] = pre.astype(float)
        cols[f"{col}_post"] = np.where(post_seen, post, np.nan)

    frame = pd.DataFrame({k: (v[order] if k != "participant_id" else v) for k, v in cols.items()})
    ints = ([c for c in frame.columns if c.endswith(("_t0", "_t1")) and not c.startswith(("scrqol", "carer_scrqol"))]
            + ["age", "died", "has_carer", *FLEXIBILITY_FEATURES]
            + [c for c in frame.columns if c.endswith(("_pre", "_post"))])
    frame[ints] = frame[ints].astype("Int64")
    frame["deployment"] = frame["deployment"].astype(object).where(frame["deployment"].notna(), None)
    return frame, order


def _mean_diff(a, b, mask):
    d = (a - b)[mask]
    d = d[~np.isnan(d)]
    return float(d.mean()) if d.size else None


def _truth(seed, n_phb, n_control, sites, eq5d_version, P, pop, phb, budget, base, fu, fate, svc, scorer,
           cohort, order):
    """Planted effects on the users' scales, computed from the two worlds; plus rates and parameters."""
    s1 = scorer.scores({k: v.astype(float) for k, v in fu["treated"].items()})
    s0 = scorer.scores({k: v.astype(float) for k, v in fu["untreated"].items()})
    band, model = _strata_labels(budget["amount"], budget["feats"], phb, P["budget"]["cut"])
    followed = ~fate["died"] & ~fate["lost"]
    carer_scores = {"carer_scrqol", "carer_ascot_raw", "carer_health", "carer_health_good"}
    strata = {"all": phb}
    for b in sorted(set(band[phb])):
        strata[f"budget_band={b}"] = phb & (band == b)
    for m in sorted(set(model[phb])):
        strata[f"implementation_model={m}"] = phb & (model == m)
    for b in sorted(set(band[phb])):
        for m in sorted(set(model[phb])):
            strata[f"budget_band={b};implementation_model={m}"] = phb & (band == b) & (model == m)
    for c in sorted(set(np.asarray(pop["conds"])[pop["cond"]][phb])):
        strata[f"condition={c}"] = phb & (np.asarray(pop["conds"])[pop["cond"]] == c)

    def table(extra_mask):
        out = {}
        for score in s1:
            applies = fate["has_carer"] if score in carer_scores else np.ones(pop["n"], bool)
            out[score] = {k: _mean_diff(s1[score], s0[score], m & applies & extra_mask) for k, m in strata.items()}
        return out

    def counts(extra_mask):
        return {k: {"phb": int((m & extra_mask).sum()),
                    "with_carer": int((m & extra_mask & fate["has_carer"]).sum())} for k, m in strata.items()}

    service = {}
    for col, (_pre, post, untreated) in _count_columns(svc).items():
        ev = "inpatient" if col.startswith("inpatient") else SERVICE_TO_EVENT[col][0]
        service[col] = {"rate_ratio_planted": P["services"][ev]["rate_ratio"],
                        "rate_ratio_att": float(post[phb].sum() / untreated[phb].sum())
                        if untreated[phb].sum() > 0 else None}

    base_scores = scorer.scores({k: v.astype(float) for k, v in base["codes"].items()})
    cond_name = np.asarray(pop["conds"])[pop["cond"]]
    z_eta = _z(pop["eta"])
    truth = {
        "generator": "phb_eval.simulate.simulate_pilot",
        "seed": int(seed),
        "n": {"phb": int(n_phb), "control": int(n_control), "total": int(n_phb + n_control), "sites": int(sites)},
        "eq5d_version": eq5d_version,
        "eq5d_value_set": scorer.value_set.id,
        "ascot_weights": "SYNTHETIC demo weights: config/demo/ascot_weights_synthetic.csv and "
                         "carer_ascot_weights_synthetic.csv (not the licensed ASCOT weights)",
        "effects": {
            "estimand": ("ATT: mean over PHB holders of (follow-up score with the budget) - (follow-up score "
                         "without it), both worlds drawn with the same noise and scored from complete items "
                         "(no item non-response); carer outcomes over PHB holders with a carer. 'att' covers "
                         "every PHB holder (as if all had been followed up); 'att_followed_up' only those "
                         "alive and not lost at follow-up. Differences are PHB minus no-PHB on each score's "
                         "own scale: GHQ-12 scores are distress (negative = improvement); carer_health is "
                         "1 very good .. 5 very bad (negative = better)."),
            "strata_definition": {"budget_band": f"budget_gbp_per_year < {P['budget']['cut']:g} or >=",
                                  "implementation_model": "model1 = knew_budget, flexible_spend and "
                                                          "chose_deployment all 1; model2 otherwise"},
            "att": table(np.ones(pop["n"], bool)),
            "att_followed_up": table(followed),
            "n": counts(np.ones(pop["n"], bool)),
            "n_followed_up": counts(followed),
            "mortality_risk_difference": 0.0,
        },
        "service_use": {
            "note": ("rate_ratio_planted multiplies every PHB holder's post-window rate; rate_ratio_att is "
                     "sum of post counts with the budget / without it over PHB holders (true counts, "
                     "including unobserved windows; inpatient_days follow admissions, stays unchanged)."),
            **service},
        "baseline_difference": {   # PHB mean - control mean at t0 (complete items): the planted confounding
            score: float(np.nanmean(vals[phb]) - np.nanmean(vals[~phb]))
            for score, vals in base_scores.items() if score not in carer_scores},
        "rates": {
            "died": {"phb": float(fate["died"][phb].mean()), "control": float(fate["died"][~phb].mean()),
                     "all": float(fate["died"].mean())},
            "death_date_recorded_among_died": float(fate["date_known"][fate["died"]].mean())
            if fate["died"].any() else None,
            "lost_to_follow_up": {"phb": float(fate["lost"][phb].mean()), "control": float(fate["lost"][~phb].mean()),
                                  "all": float(fate["lost"].mean())},
            "has_carer": float(fate["has_carer"].mean()),
            "budget_under_cut": float((budget["amount"][phb] < P["budget"]["cut"]).mean()),
            "model1_share": float((model[phb] == "model1").mean()),
            "need_by_arm": {"phb": float(z_eta[phb].mean()), "control": float(z_eta[~phb].mean())},
            "condition_share": {c: float((cond_name == c).mean()) for c in pop["conds"]},
        },
        "parameters": P,
    }
    return _plain(truth)


def _unit_costs(P):
    tab = pd.read_csv(UNIT_COSTS_FILE, comment="#")
    cost = dict(zip(tab["item"], tab["cost_gbp"].astype(float)))
    return {ev: cost[item] for ev, item in P["event_costs"]["unit_cost_item"].items()}


def _events(rng, pop, fate, svc, P, order):
    """Record-linked event table consistent with the count columns (see the module docstring).

    Rows are sorted by participant_id, event_date and service.
    """
    n = pop["n"]
    unit = _unit_costs(P)
    ec = P["event_costs"]
    names = list(svc)
    owners, days, kinds, qtys, costs = [], [], [], [], []
    for k, (ev, e) in enumerate(svc.items()):
        pre_owner = np.repeat(np.arange(n), e["pre"])
        pre_day = -rng.integers(1, WINDOW_DAYS + 1, pre_owner.size)          # -365 .. -1
        keep = e["in_treated"]
        post_owner = e["owner"][keep]
        post_day = np.floor(rng.random(post_owner.size) * fate["death_day"][post_owner]).astype(int)  # 0 .. alive-1
        owner = np.concatenate([pre_owner, post_owner])
        owners.append(owner)
        days.append(np.concatenate([pre_day, post_day]))
        kinds.append(np.full(owner.size, k, dtype=np.int8))
        qtys.append(np.concatenate([e["los_pre"], e["los_post"][keep]]) if ev == "inpatient"
                    else np.ones(owner.size, dtype=np.int64))
        cost = np.full(owner.size, np.nan)
        if ev in unit:
            has = rng.random(owner.size) < ec["share_with_cost"]
            cost[has] = np.round(unit[ev] * np.exp(rng.normal(0, ec["sdlog"], int(has.sum()))), 2)
        costs.append(cost)
    owner, day, kind = np.concatenate(owners), np.concatenate(days), np.concatenate(kinds)
    row_of = np.empty(n, dtype=np.int64)
    row_of[order] = np.arange(n)                      # person -> row of the cohort (= participant_id order)
    row = row_of[owner]
    when = pop["consent"][owner] + day.astype("timedelta64[D]")
    label = np.asarray(names, dtype=object)
    sort = np.lexsort((np.argsort(np.argsort(label))[kind], when.astype(np.int64), row))
    width = len(str(n))
    ids = np.array([f"P{i + 1:0{width}d}" for i in range(n)], dtype=object)
    return pd.DataFrame({
        "participant_id": ids[row[sort]],
        "event_date": when[sort].astype("datetime64[ns]"),
        "service": label[kind[sort]],
        "quantity": pd.array(np.concatenate(qtys)[sort], dtype="Int64"),
        "cost_gbp": np.concatenate(costs)[sort],
    })


# ---- writing ----------------------------------------------------------------------------------------
def _csv_bytes(frame: pd.DataFrame) -> bytes:
    # Fixed float format and line ending: same numbers, same bytes.
    return frame.to_csv(index=False, float_format="%.10g", date_format="%Y-%m-%d", lineterminator="\n"
                        ).encode("utf-8")


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False, engine="pyarrow", compression="snappy")
    return buf.getvalue()


def _cell_values(series: pd.Series) -> list:
    if pd.api.types.is_datetime64_any_dtype(series):
        return [None if pd.isna(v) else date(v.year, v.month, v.day) for v in series]
    if isinstance(series.dtype, pd.Int64Dtype):
        return [None if v is pd.NA else int(v) for v in series.tolist()]
    if pd.api.types.is_float_dtype(series):
        return [None if np.isnan(v) else float(v) for v in series.to_numpy()]
    return [None if (v is None or (isinstance(v, float) and np.isnan(v))) else v for v in series.tolist()]


def _xlsx_bytes(frame: pd.DataFrame, sheet: str = "cohort") -> bytes:
    import openpyxl
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(sheet)
    ws.append(list(frame.columns))
    for row in zip(*(_cell_values(frame[c]) for c in frame.columns)):
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    # openpyxl stamps the document with the time of saving and the zip entries with the clock: fix both.
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, \
            zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                text = data.decode("utf-8")
                for tag in ("dcterms:created", "dcterms:modified"):
                    text = re.sub(rf"(<{tag}[^>]*>)[^<]*(</{tag}>)", rf"\g<1>{FIXED_XLSX_TIME}\g<2>", text)
                data = text.encode("utf-8")
            fixed = zipfile.ZipInfo(info.filename, date_time=ZIP_EPOCH)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            dst.writestr(fixed, data)
    return out.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_simulation(sim: SimulatedPilot, out_dir, fmt: str = "csv", force: bool = False) -> dict[str, Path]:
    """Write ``cohort.<fmt>``, ``events.csv`` (when the simulation has events) and ``truth.json``.

    Parameters
    ----------
    sim : the result of ``simulate_pilot``.
    out_dir : folder to write into (created if needed).
    fmt : ``"csv"``, ``"parquet"`` or ``"xlsx"`` for the cohort table.
    force : overwrite files that already exist — only in a folder whose truth.json this function wrote
        (a real cohort.csv beside no simulated truth is never replaced).

    Returns
    -------
    dict role -> path: ``cohort``, ``truth`` and, with events, ``events``.

    Raises
    ------
    PhbEvalError : unknown format, or a file to be written exists and ``force`` is False or the folder
        was not written by this function (nothing is written then); the folder cannot be written.

    Notes
    -----
    The same simulation gives byte-identical files: CSV uses a fixed float format (``%.10g``), ISO dates
    and ``\\n`` line ends; Parquet is written by pyarrow (deterministic for equal data and versions);
    the xlsx workbook has fixed document created/modified stamps and fixed zip entry times. Each file
    is written to a temporary file in ``out_dir`` and then renamed.
    """
    if fmt not in FORMATS:
        raise PhbEvalError(f"simulate: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise PhbEvalError(f"{out}: exists and is not a folder. Fix: give a folder path for --out")
    targets = {"cohort": out / f"cohort.{fmt}", "truth": out / "truth.json"}
    if sim.events is not None:
        targets["events"] = out / "events.csv"
    for path in targets.values():
        if path.exists() and not force:
            raise PhbEvalError(f"{path}: the file already exists and was not overwritten. "
                               "Fix: choose another folder, or use --force (force=True) to replace it")
    existing = [p for p in targets.values() if p.exists()]
    if existing and not _simulated_here(out):
        raise PhbEvalError(f"{existing[0]}: --force replaces only files 'phb-eval simulate' wrote, and {out} has no "
                           "truth.json from it; nothing was overwritten. Fix: choose a new folder for --out")
    from .report.outdir import check_room, system_error
    check_room(out / "cohort")
    try:
        out.mkdir(parents=True, exist_ok=True)
        writers = {"csv": _csv_bytes, "parquet": _parquet_bytes, "xlsx": _xlsx_bytes}
        _atomic_write(targets["cohort"], writers[fmt](sim.cohort))
        if "events" in targets:
            _atomic_write(targets["events"], _csv_bytes(sim.events))
        _atomic_write(targets["truth"], (json.dumps(sim.truth, indent=2) + "\n").encode("utf-8"))
    except OSError as exc:
        raise system_error(exc, out, "writing the simulated cohort") from None
    return dict(sorted(targets.items()))


def _simulated_here(out: Path) -> bool:
    """Whether ``out`` holds a truth.json written by ``write_simulation`` (so --force may replace its files)."""
    try:
        truth = json.loads((out / "truth.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(truth, dict) and truth.get("generator") == "phb_eval.simulate.simulate_pilot"
