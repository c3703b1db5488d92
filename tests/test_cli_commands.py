"""score, compare, subgroups and demo as a user runs them: real files in, a real output folder out."""
import json
import subprocess
import sys

import pandas as pd
import pytest

from phb_eval.plan import load_plan
import yaml

from phb_eval.simulate import simulate_pilot, write_simulation
from cli_runner import run


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    paths = write_simulation(simulate_pilot(n_phb=300, n_control=300, sites=8, seed=11), d)
    plan = d / "fast.yaml"
    plan.write_text(yaml.safe_dump({"cea": {"bootstrap": 100, "strata": ["all", "budget_band"]},
                                    "imputation": {"m": 3, "iterations": 3},
                                    "subgroups": {"variables": ["budget_band", "sex"]}}))
    return paths, plan


def test_score_writes_scores_and_never_overwrites(data, tmp_path, capsys):
    paths, _ = data
    before = paths["cohort"].read_bytes()
    target = tmp_path / "scored.parquet"
    code, out, err = run(["score", str(paths["cohort"]), "--out", str(target)], capsys)
    assert code == 0, err
    scored = pd.read_parquet(target)
    for col in ("ascot_raw_t0", "ghq12_likert_t1", "ghq12_caseness_t1", "eq5d_index_t0", "qaly", "carer_health_good_t1"):
        assert col in scored, col
    assert "_row" not in scored and "_file" not in scored
    assert "n_scored" in err                                   # the per-score summary
    assert paths["cohort"].read_bytes() == before              # input untouched
    code, _, err = run(["score", str(paths["cohort"]), "--out", str(target)], capsys)
    assert code == 2 and "--force" in err
    code, _, err = run(["score", str(paths["cohort"]), "--out", str(paths["cohort"]), "--force"], capsys)
    assert code == 2 and "input" in err
    assert paths["cohort"].read_bytes() == before


def test_compare_writes_the_folder_and_refuses_to_replace_it(data, tmp_path, capsys):
    paths, plan = data
    out = tmp_path / "res"
    code, stdout, err = run(["compare", str(paths["cohort"]), "--plan", str(plan), "--out", str(out),
                             "--format", "html,md", "--quiet"], capsys)
    assert code == 0, err
    for name in ("report.html", "report.md", "results.json", "manifest.json", "tables.xlsx",
                 "tables/estimates.csv", "tables/flow.csv", "tables/cea.csv", "figures/forest_effects.png"):
        assert (out / name).exists(), name
    assert str(out / "report.html") in stdout
    results = json.loads((out / "results.json").read_text())
    methods = {r["method"] for r in results["estimates"] if r["analysis"] == "outcome"}
    tag = {"cr1": "cr1", "cr2": "cr2", "wild_bootstrap": "wcb"}[load_plan(None).variance]
    assert {f"{e}_{tag}_site" for e in ("ancova", "ancova_mi", "did", "ancova_ipw")} <= methods
    manifest = json.loads((out / "manifest.json").read_text())
    assert str(paths["cohort"]) in json.dumps(manifest)
    html = (out / "report.html").read_text()
    ids = pd.read_csv(paths["cohort"], dtype=str)["participant_id"]
    assert not any(f">{i}<" in html for i in ids[:50])
    flow = pd.read_csv(out / "tables/flow.csv", dtype=str)
    for arm in ("phb", "control"):                             # disclosure control: '*' or multiples of 5
        assert all(v == "*" or int(v) % 5 == 0 for v in flow[arm]), flow[arm].tolist()
    assert "Disclosure control (NHS Digital 2018 rule)" in html
    stamp = (out / "results.json").stat().st_mtime_ns
    code, _, err = run(["compare", str(paths["cohort"]), "--plan", str(plan), "--out", str(out)], capsys)
    assert code == 2 and "--force" in err
    assert (out / "results.json").stat().st_mtime_ns == stamp


def test_compare_two_files_gives_the_same_estimates_as_one(data, tmp_path, capsys):
    paths, plan = data
    frame = pd.read_csv(paths["cohort"], dtype={"participant_id": str})
    phb, ctl = tmp_path / "phb.csv", tmp_path / "control.csv"
    frame[frame.group == "phb"].drop(columns="group").to_csv(phb, index=False)
    frame[frame.group == "control"].drop(columns="group").to_csv(ctl, index=False)
    plan_doc = yaml.safe_load(plan.read_text())
    plan_doc.update({"estimators": ["ancova"], "cea": {"bootstrap": 50, "strata": ["all"]}})
    small = tmp_path / "plan.yaml"
    small.write_text(yaml.safe_dump(plan_doc))
    one, two = tmp_path / "one", tmp_path / "two"
    assert run(["compare", str(paths["cohort"]), "--plan", str(small), "--out", str(one), "-q"], capsys)[0] == 0
    assert run(["compare", "--treatment", str(phb), "--control", str(ctl), "--plan", str(small), "--out", str(two),
                "-q"], capsys)[0] == 0
    a = pd.read_csv(one / "tables/estimates.csv")
    b = pd.read_csv(two / "tables/estimates.csv")
    pd.testing.assert_frame_equal(a, b)


def test_bad_data_stops_compare_with_a_sentence_and_no_folder(data, tmp_path, capsys):
    paths, plan = data
    frame = pd.read_csv(paths["cohort"], dtype={"participant_id": str})
    frame.loc[3, "age"] = 230
    bad = tmp_path / "bad.csv"
    frame.to_csv(bad, index=False)
    out = tmp_path / "never"
    code, _, err = run(["compare", str(bad), "--plan", str(plan), "--out", str(out)], capsys)
    assert code == 2
    assert "bad.csv" in err and "age" in err and "230" in err and "Traceback" not in err
    assert not out.exists()


def test_subgroups_command(data, tmp_path, capsys):
    paths, plan = data
    out = tmp_path / "sub"
    code, _, err = run(["subgroups", str(paths["cohort"]), "--plan", str(plan), "--out", str(out), "-q"], capsys)
    assert code == 0, err
    est = pd.read_csv(out / "tables/estimates.csv")
    tag = {"cr1": "cr1", "cr2": "cr2", "wild_bootstrap": "wcb"}[load_plan(None).variance]
    wald = est[est.method == f"interaction_wald_{tag}_site"]
    assert set(wald.stratum) == {"budget_band", "sex"}
    assert wald.p_adjusted.notna().all()
    assert (out / "figures/subgroup_forest.png").exists()


@pytest.mark.slow
def test_demo_runs_end_to_end_in_a_subprocess(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "phb_eval.cli", "demo", "--out", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert str(out / "report.html") in proc.stdout
    est = pd.read_csv(out / "tables/estimates.csv")
    assert {"outcome", "balance", "service_use", "cost", "cea", "subgroup", "budget_impact"} <= set(est.analysis)
    summary = (out / "report.md").read_text().split("## Analysis plan")[0]
    assert "By stratum, incremental net monetary benefit" in summary and "Budget impact over 8 years" in summary


@pytest.mark.parametrize("suffix", [".sav", ".dta", ".xlsx", ""])
def test_score_writes_every_format_readable_by_phb_eval(data, tmp_path, capsys, suffix):
    from phb_eval.io import read_table
    paths, _ = data
    frame = pd.read_csv(paths["cohort"], dtype={"participant_id": str}).head(60)
    small = tmp_path / "small.csv"
    frame.to_csv(small, index=False)
    code, stdout, err = run(["score", str(small), "--out", str(tmp_path / f"scored{suffix}"), "-q"], capsys)
    assert code == 0, err
    written = tmp_path / f"scored{suffix or '.csv'}"          # no suffix: the input's format
    back = read_table(written)
    assert len(back) == 60
    assert back["ascot_raw_t0"].notna().sum() > 0
    assert list(back["participant_id"].astype(str)) == list(frame["participant_id"])


def test_budget_impact_from_a_compare_run(data, tmp_path, capsys):
    paths, plan = data
    res = tmp_path / "res"
    assert run(["compare", str(paths["cohort"]), "--plan", str(plan), "--out", str(res), "-q"], capsys)[0] == 0
    out = tmp_path / "bi"
    code, stdout, err = run(["budget-impact", "--from-results", str(res), "--plan", str(plan), "--out", str(out),
                             "-q"], capsys)
    assert code == 0, err
    table = pd.read_csv(out / "tables/budget_impact.csv")
    assert len(table) == 5                                   # plan default: 5 years
    assert (table["net_impact_low"] <= table["net_impact"]).all() and (table["net_impact"] <= table["net_impact_high"]).all()
    assert (out / "figures/budget_impact_fan.png").exists() and (out / "figures/budget_impact_tornado.png").exists()
    # the projection uses the compare run's budgets by band
    est = pd.read_csv(res / "tables/estimates.csv")
    budgets = est[est.outcome.eq("budget_per_holder")].set_index("stratum")["estimate"]
    meta = json.loads((out / "results.json").read_text())["meta"]["budget_impact"]["settings"]
    for band, value in meta["budget_per_holder"].items():
        assert value == pytest.approx(budgets[f"budget_band={band}"])


def test_budget_impact_without_inputs_says_what_to_give(tmp_path, capsys):
    code, _, err = run(["budget-impact", "--out", str(tmp_path / "bi")], capsys)
    assert code == 2 and "budget_per_holder" in err and "Traceback" not in err
    assert not (tmp_path / "bi").exists()


def test_no_disclosure_shows_raw_counts_and_says_so(data, tmp_path, capsys):
    paths, plan = data
    doc = yaml.safe_load(plan.read_text())
    doc.update({"estimators": ["ancova"], "cea": {"bootstrap": 50, "strata": ["all"]}})
    small = tmp_path / "plan.yaml"
    small.write_text(yaml.safe_dump(doc))
    out = tmp_path / "raw"
    code, _, err = run(["compare", str(paths["cohort"]), "--plan", str(small), "--out", str(out), "--no-disclosure",
                        "-q"], capsys)
    assert code == 0, err
    flow = pd.read_csv(out / "tables/flow.csv").set_index("stage")
    recruited = pd.read_csv(paths["cohort"])["group"].value_counts()
    assert flow.loc["recruited", "phb"] == recruited["phb"] and flow.loc["recruited", "control"] == recruited["control"]
    assert "Disclosure control was OFF for this run" in (out / "report.html").read_text()
