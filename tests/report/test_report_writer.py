"""The output folder: layout, results.json = estimates.csv, workbook = tables, manifest, privacy, atomicity."""
from __future__ import annotations

import hashlib
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from openpyxl import load_workbook

from fake_results import ALL_IDS, build_results
from phb_eval.disclosure import describe_rule
from phb_eval.errors import PhbEvalError
from phb_eval.plan import load_plan
from phb_eval.report import PrivacyError, write_outputs
from phb_eval.report.writer import redact_ids, sheet_names, table_file_names, to_jsonable
from phb_eval.results import Results, estimate_row


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One full write of the realistic Results (HTML and Markdown, disclosure on)."""
    root = tmp_path_factory.mktemp("out")
    res = build_results()
    out = write_outputs(res, root / "run", plan=load_plan(), formats=("html", "md"))
    return out, res


def _small() -> Results:
    res = Results()
    res.add([estimate_row("outcome", "scrqol", "ancova_cr1_site", 0.04, 0.01, 0.02, 0.06, 0.001, 100, 90),
             estimate_row("outcome", "eq5d_index", "ancova_cr1_site", 0.01, 0.02, -0.03, 0.05, 0.6, 100, 90)])
    res.tables["flow"] = pd.DataFrame({"stage": ["recruited"], "phb": [120], "control": [110]})
    res.meta["participant_ids"] = ["PHB-0001", "CTL-0001"]
    return res


def _litter(parent, name):
    return [p.name for p in parent.iterdir() if p.name.startswith(f".{name}.")]


def test_layout(written):
    out, res = written
    for rel in ["results.json", "manifest.json", "report.html", "report.md", "tables.xlsx", "tables/estimates.csv",
                "tables/flow.csv", "tables/balance.csv", "tables/ceac.csv", "tables/cea_draws.csv",
                "figures/love_plot.png", "figures/forest_effects.png", "figures/ce_plane.png", "figures/ceac.png",
                "figures/subgroup_forest.png", "figures/service_use_forest.png", "figures/budget_impact_fan.png"]:
        assert (out / rel).is_file(), rel
    assert _litter(out.parent, out.name) == []
    for png in (out / "figures").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_json_is_valid_and_equals_estimates_csv(written):
    out, res = written

    def no_constants(name):
        raise AssertionError(f"results.json holds a non-JSON constant {name}")

    doc = json.loads((out / "results.json").read_text(encoding="utf-8"), parse_constant=no_constants)
    assert set(doc) == {"meta", "estimates"}
    assert len(doc["estimates"]) == len(res.estimates)
    from_json = pd.DataFrame(doc["estimates"])
    from_csv = pd.read_csv(out / "tables" / "estimates.csv", keep_default_na=True)
    assert list(from_json.columns) == list(from_csv.columns) == list(res.estimates.columns)
    for col in from_csv.columns:
        a = pd.to_numeric(from_json[col], errors="coerce")
        b = pd.to_numeric(from_csv[col], errors="coerce")
        if a.notna().any() or b.notna().any():   # numeric column: identical to the last bit, NaN <-> null
            np.testing.assert_array_equal(a.to_numpy(float), b.to_numpy(float), err_msg=col)
            # text cells ('*' from disclosure) agree too
            ta = from_json[col][a.isna() & from_json[col].notna()].astype(str).tolist()
            tb = from_csv[col][b.isna() & from_csv[col].notna()].astype(str).tolist()
            assert ta == tb, col
        else:
            assert from_json[col].fillna("").astype(str).tolist() == from_csv[col].fillna("").astype(str).tolist()
    # model estimates are published unrounded
    np.testing.assert_array_equal(from_json["estimate"].to_numpy(float), res.estimates["estimate"].to_numpy(float))
    assert doc["meta"]["seed"] == load_plan().seed
    assert doc["meta"]["plan"]["name"] == "default"


def test_every_table_has_a_csv_and_a_sheet(written):
    out, res = written
    manifest = json.loads((out / "manifest.json").read_text())
    names = ["estimates", *res.tables]
    assert sorted(manifest["tables"]) == sorted(names)
    for name, rel in manifest["tables"].items():
        assert (out / rel).is_file()
    book = load_workbook(out / "tables.xlsx", read_only=True)
    expected = [n for n in names if res.table_specs.get(n, {}).get("xlsx", True)]
    assert book.sheetnames == [manifest["xlsx_sheets"][n] for n in expected]
    assert all(len(s) <= 31 for s in book.sheetnames)
    assert len({s.lower() for s in book.sheetnames}) == len(book.sheetnames)
    assert "cea_draws" not in manifest["xlsx_sheets"]  # spec xlsx: False keeps long draws CSV-only
    # a sheet holds the same cells as its CSV
    sheet = pd.read_excel(out / "tables.xlsx", sheet_name=manifest["xlsx_sheets"]["ceac"])
    csv = pd.read_csv(out / "tables" / "ceac.csv")
    pd.testing.assert_frame_equal(sheet, csv, check_dtype=False)


def test_manifest_records_what_is_needed_to_rerun(written):
    out, res = written
    m = json.loads((out / "manifest.json").read_text())
    assert m["inputs"] == res.meta["inputs"]
    assert m["command"] == res.meta["command"]
    assert m["seed"] == res.meta["seed"]
    assert m["plan"] == res.meta["plan"]
    for pkg in ("numpy", "pandas", "scipy", "statsmodels", "pingouin", "duckdb", "python", "phb-eval"):
        assert m["versions"].get(pkg), pkg
    assert m["timings"]["estimate"] == 3.9 and m["timings"]["write_outputs"] > 0
    assert m["phb_eval_version"] == m["versions"]["phb-eval"]
    for rel, digest in m["outputs_sha256"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest, rel
    assert m["disclosure"]["applied"] is True


def test_no_participant_id_in_any_output_file(written):
    out, _ = written
    blobs = {}
    for path in out.rglob("*"):
        if path.is_file():
            blobs[str(path)] = path.read_bytes()
    with zipfile.ZipFile(out / "tables.xlsx") as z:
        for member in z.namelist():
            blobs[f"tables.xlsx:{member}"] = z.read(member)
    assert len(blobs) > 20
    for where, data in blobs.items():
        for pid in ALL_IDS:
            assert pid.encode() not in data, f"{pid} in {where}"
        assert b"participant_ids" not in data, where
    assert "[participant id]" in (out / "report.html").read_text(encoding="utf-8")  # the warning was redacted


def test_disclosure_applied_to_published_tables(written):
    out, _ = written
    plan = load_plan()
    flow = pd.read_csv(out / "tables" / "flow.csv", dtype=str).set_index("stage")
    assert flow.loc["analysed, complete cases: carer_health", "phb"] == "*"   # 6 people
    assert flow.loc["analysed, complete cases: carer_health", "control"] == "*"   # 3 people
    assert flow.loc["recruited", "phb"] == "1170"   # 1171 rounded to the nearest 5
    bal = pd.read_csv(out / "tables" / "balance.csv", dtype=str).set_index("variable")
    assert bal.loc["condition=stroke", "phb_mean"] == "*"   # a mean of 5 people
    est = pd.read_csv(out / "tables" / "estimates.csv", dtype=str)
    assert (est.loc[est["stratum"] == "condition=stroke", "n_phb"] == "*").all()
    html = (out / "report.html").read_text(encoding="utf-8")
    assert describe_rule(plan.disclosure) in html
    assert "Disclosure control was OFF" not in html


def test_disclosure_off_is_stated(tmp_path):
    out = write_outputs(build_results(), tmp_path / "run", plan=load_plan(), disclosure=False)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Disclosure control was OFF" in html and "--no-disclosure" in html
    flow = pd.read_csv(out / "tables" / "flow.csv").set_index("stage")
    assert flow.loc["analysed, complete cases: carer_health", "phb"] == 6


def test_refuses_an_existing_folder_without_force(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "keep.txt").write_text("earlier report")
    with pytest.raises(PhbEvalError) as err:
        write_outputs(_small(), target, plan=load_plan())
    assert str(target) in str(err.value) and "--force" in str(err.value)
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert _litter(tmp_path, "run") == []


def test_an_empty_existing_folder_is_used(tmp_path):
    (tmp_path / "run").mkdir()
    out = write_outputs(_small(), tmp_path / "run", plan=load_plan())
    assert (out / "report.html").is_file()


def test_force_replaces_the_old_folder(tmp_path):
    target = tmp_path / "run"
    write_outputs(_small(), target, plan=load_plan())
    first = (target / "manifest.json").read_text()
    out = write_outputs(_small(), target, plan=load_plan(), force=True)
    assert (out / "report.html").is_file() and (out / "manifest.json").read_text() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def _broken_figure():
    fig = Figure()
    FigureCanvasAgg(fig)
    fig.add_subplot().set_title(r"$\frac{1}{$")   # mathtext that cannot be parsed: savefig raises
    return fig


def test_a_failure_mid_write_keeps_the_old_folder_and_leaves_no_litter(tmp_path):
    target = tmp_path / "run"
    write_outputs(_small(), target, plan=load_plan())
    before = {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()}
    res = _small()
    res.figures["broken"] = _broken_figure()
    with pytest.raises(ValueError):
        write_outputs(res, target, plan=load_plan(), force=True)
    assert {p.relative_to(target): p.read_bytes() for p in target.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_failure_leaves_no_half_report(tmp_path):
    res = _small()
    res.figures["broken"] = _broken_figure()
    with pytest.raises(ValueError):
        write_outputs(res, tmp_path / "new", plan=load_plan())
    assert list(tmp_path.iterdir()) == []


def test_privacy_guard_refuses_participant_rows(tmp_path):
    res = _small()
    res.tables["leak"] = pd.DataFrame({"participant_id": ["PHB-0001"], "scrqol": [0.5]})
    with pytest.raises(PrivacyError, match="participant_id"):
        write_outputs(res, tmp_path / "a", plan=load_plan())
    res = _small()
    res.tables["leak"] = pd.DataFrame({"who": ["CTL-0001"], "scrqol": [0.5]})
    with pytest.raises(PrivacyError, match="leak"):
        write_outputs(res, tmp_path / "b", plan=load_plan())
    res = _small()
    del res.meta["participant_ids"]
    res.tables["leak"] = pd.DataFrame({"who": ["X9"], "scrqol": [0.5]})
    with pytest.raises(PrivacyError):
        write_outputs(res, tmp_path / "c", plan=load_plan(), participant_ids=["X9"])
    assert list(tmp_path.iterdir()) == []


def test_unknown_format_is_a_user_error(tmp_path):
    with pytest.raises(PhbEvalError, match="--format"):
        write_outputs(_small(), tmp_path / "x", plan=load_plan(), formats=("pdf",))


def test_sheet_and_file_names():
    names = ["service_use_model_comparison_inpatient_days", "service_use_model_comparison_inpatient_admissions",
             "a/b:c", "Flow", "flow"]
    sheets = sheet_names(names)
    assert all(len(s) <= 31 for s in sheets.values())
    assert len({s.lower() for s in sheets.values()}) == len(names)
    assert sheets["a/b:c"] == "a_b_c"
    files = table_file_names(["a b", "a_b", "../x"])
    assert files == {"a b": "a_b", "a_b": "a_b_2", "../x": "x"}


def test_json_conversion_and_redaction():
    assert to_jsonable({"a": float("nan"), "b": np.int64(3), "c": (1, np.float32(2.5)),
                        "d": pd.Timestamp("2011-06-01")}) == {"a": None, "b": 3, "c": [1, 2.5],
                                                               "d": "2011-06-01T00:00:00"}
    assert redact_ids(["row 12: id PHB-0001 repeated (PHB-0001)."], ["PHB-0001", "12"]) == \
        ["row 12: id [participant id] repeated ([participant id])."]


# ---- issue 18: output safety as a rule of the writer (the CLI tests are in tests/test_promises_output.py) --
def test_writer_force_refuses_a_folder_it_did_not_write(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "old.txt").write_text("someone's notes")
    with pytest.raises(PhbEvalError, match="--force replaces only a folder phb-eval wrote"):
        write_outputs(_small(), target, plan=load_plan(), force=True)
    assert [p.name for p in target.iterdir()] == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no lock or partial folder left


def test_writer_never_writes_into_an_input_folder(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "cohort.csv").write_text("participant_id\n")
    res = _small()
    res.meta["files"] = {"data": str(data / "cohort.csv")}  # the pipeline records its inputs here
    for out in (data, tmp_path):
        with pytest.raises(PhbEvalError, match="input file"):
            write_outputs(res, out, plan=load_plan(), force=True)
    with pytest.raises(PhbEvalError, match="overlaps the input folder"):
        write_outputs(_small(), data / "inside", plan=load_plan(), inputs=[data])
    assert [p.name for p in data.iterdir()] == ["cohort.csv"]


def test_writer_cells_are_spreadsheet_safe_and_numbers_stay_numbers(tmp_path):
    from phb_eval.report.cells import neutralise
    res = _small()
    res.tables["levels"] = pd.DataFrame({"level": ["=1+1", "+x", "-y", "@z", "\tq", "-0.5", "ok", None],
                                         "mean": [-1.5, 2.0, -3.0, 0.0, 1.0, 1.0, 1.0, 1.0],
                                         "=col": ["a"] * 8})
    out = write_outputs(res, tmp_path / "run", plan=load_plan())
    import csv
    with (out / "tables" / "levels.csv").open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    assert [r[0] for r in rows] == ["'=1+1", "'+x", "'-y", "'@z", "'\tq", "-0.5", "ok", ""]
    assert [r[1] for r in rows][:3] == ["-1.5", "2.0", "-3.0"] and header[2] == "'=col"
    ws = load_workbook(out / "tables.xlsx")["levels"]
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
    assert ws["B2"].value == -1.5 and ws["B2"].data_type == "n"
    assert neutralise(pd.DataFrame({"x": pd.Categorical(["=a", "b"])}))["x"].tolist() == ["'=a", "b"]
    assert neutralise(pd.DataFrame({"x": ["\rcmd", "1e-3", "-"]}))["x"].tolist() == ["'\rcmd", "1e-3", "'-"]


def test_writer_removes_a_stale_lock_with_a_note(tmp_path, capsys):
    import subprocess
    import sys
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    (tmp_path / ".run.phb-eval.lock").write_text(f"{dead}\n")
    write_outputs(_small(), tmp_path / "run", plan=load_plan())
    assert f"a lock left by a stopped run (pid {dead})" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
