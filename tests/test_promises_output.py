"""Issue 18, output safety: each test is named after a finding of the hostile-input probe and holds one
promise of the README's "Promises" section (real files, real subprocesses, real mounts where needed)."""
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from phb_eval.report import outdir
from phb_eval.simulate import simulate_pilot, write_simulation
from cli_runner import run

NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
PAYLOADS = ['=HYPERLINK("http://x","y")', "<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    paths = write_simulation(simulate_pilot(n_phb=150, n_control=150, sites=6, seed=11, events=True), d)
    plan = d / "fast.yaml"
    plan.write_text(yaml.safe_dump({"cea": {"bootstrap": 100, "strata": ["all"]},
                                    "imputation": {"m": 3, "iterations": 3}, "estimators": ["ancova"],
                                    "subgroups": {"variables": ["sex"], "prespecified": []}}))
    return paths, plan


def _snapshot(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _env():
    root = str(Path(__file__).parents[1])
    return {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}


# --------------------------------------------------------------------- finding 1: --force deletes inputs
def test_force_never_deletes_inputs(data, tmp_path, capsys, monkeypatch):
    paths, plan = data
    folder = tmp_path / "pilot"
    folder.mkdir()
    cohort = folder / "cohort.csv"
    shutil.copy(paths["cohort"], cohort)
    (folder / "notes.txt").write_text("my own notes")
    before = _snapshot(tmp_path)
    for out in (folder, tmp_path, folder / "cohort.csv"):
        code, _, err = run(["compare", cohort, "--plan", plan, "--out", out, "--force"], capsys)
        assert code == 2 and "input" in err and "Traceback" not in err, err
    monkeypatch.chdir(folder)
    code, _, err = run(["compare", "cohort.csv", "--plan", plan, "--out", ".", "--force"], capsys)
    assert code == 2 and "holds the input file cohort.csv" in err
    # the plan's folder and the events file's folder are inputs too
    code, _, err = run(["compare", cohort, "--plan", plan, "--out", plan.parent, "--force"], capsys)
    assert code == 2 and str(plan) in err
    assert _snapshot(tmp_path) == before


def test_force_replaces_only_a_folder_phb_eval_wrote(data, tmp_path, capsys):
    paths, plan = data
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.docx").write_bytes(b"years of work")
    code, _, err = run(["compare", paths["cohort"], "--plan", plan, "--out", mine, "--force"], capsys)
    assert code == 2 and "--force replaces only a folder phb-eval wrote" in err
    assert (mine / "thesis.docx").read_bytes() == b"years of work"
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(["compare", paths["cohort"], "--plan", plan, "--out", empty], capsys)
    assert code == 0, err
    assert json.loads((empty / "manifest.json").read_text())["written_by"] == "phb-eval"
    (empty / "tables" / "my_extra.csv").write_text("a,b\n")  # a file we did not write: --force now refuses
    code, _, err = run(["compare", paths["cohort"], "--plan", plan, "--out", empty, "--force"], capsys)
    assert code == 2 and "tables/my_extra.csv" in err and (empty / "tables" / "my_extra.csv").exists()
    (empty / "tables" / "my_extra.csv").unlink()
    code, _, err = run(["compare", paths["cohort"], "--plan", plan, "--out", empty, "--force"], capsys)
    assert code == 0, err


def test_budget_impact_and_simulate_and_score_never_overwrite_inputs(data, tmp_path, capsys):
    paths, plan = data
    results = tmp_path / "results"
    results.mkdir()
    (results / "results.json").write_text("{}")
    code, _, err = run(["budget-impact", "--from-results", results, "--out", results, "--force"], capsys)
    assert code == 2 and "overlaps the input folder" in err
    code, _, err = run(["budget-impact", "--from-results", results, "--out", tmp_path, "--force"], capsys)
    assert code == 2 and (results / "results.json").read_text() == "{}"
    events_before = paths["events"].read_bytes()
    code, _, err = run(["score", paths["cohort"], "--events", paths["events"], "--out", paths["events"],
                        "--force"], capsys)
    assert code == 2 and "is the input file" in err and paths["events"].read_bytes() == events_before
    real = tmp_path / "study"
    real.mkdir()
    (real / "cohort.csv").write_text("participant_id\nreal-1\n")
    code, _, err = run(["simulate", "--out", real, "--n-phb", 10, "--n-control", 10, "--sites", 2, "--force"],
                       capsys)
    assert code == 2 and "truth.json" in err and (real / "cohort.csv").read_text() == "participant_id\nreal-1\n"


# --------------------------------------------------------------- finding 2: two runs into one new --out
def test_two_runs_into_one_out_are_serialised(data, tmp_path, capsys):
    paths, plan = data
    out = tmp_path / "shared"
    lock = tmp_path / ".shared.phb-eval.lock"
    first = subprocess.Popen([sys.executable, "-m", "phb_eval.cli", "compare", str(paths["cohort"]), "--plan",
                              str(plan), "--out", str(out), "-q"], env=_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not lock.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert lock.exists(), first.communicate()
    code, _, err = run(["compare", paths["cohort"], "--plan", plan, "--out", out], capsys)
    assert code == 2 and f"another phb-eval run (pid {first.pid})" in err
    _, first_err = first.communicate(timeout=120)
    assert first.returncode == 0, first_err
    assert (out / "report.html").is_file() and not lock.exists()
    # a lock left by a process that no longer runs is removed, with a note
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock.write_text(dead.stdout)
    code, _, err = run(["compare", paths["cohort"], "--plan", plan, "--out", out, "--force"], capsys)
    assert code == 0 and f"a lock left by a stopped run (pid {int(dead.stdout)})" in err
    assert not lock.exists()


# ------------------------------------------------ finding 8: system errors shown as bugs, after the analysis
@pytest.fixture
def mount(tmp_path):
    """mount(size, ro=False) -> a fresh tmpfs; skipped where this user may not mount."""
    mounted = []

    def _mount(size="2m", ro=False):
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        opts = f"size={size}" + (",ro" if ro else "")
        if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(point)],
                                                           capture_output=True).returncode != 0:
            pytest.skip("cannot mount a tmpfs here (needs root)")
        mounted.append(point)
        return point
    yield _mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def test_output_problems_are_sentences_before_the_analysis(tmp_path, capsys, mount):
    """The data file does not exist: a message about --out proves --out was checked first."""
    missing = tmp_path / "not_read_yet.csv"
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("x")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "gone")
    cases = {
        "is a file, so the folder": a_file / "out",
        "symbolic link to nothing": dangling,
        "too long for this file system": tmp_path / ("n" * 250),
        "MB free": mount("2m") / "out",
        "read-only": mount("2m", ro=True) / "out",
    }
    for expected, out in cases.items():
        code, _, err = run(["compare", missing, "--out", out], capsys)
        assert code == 2 and expected in err and "Traceback" not in err, (expected, err)
        assert "not_read_yet" not in err


def test_full_disk_while_writing_is_a_sentence(data, capsys, mount, monkeypatch):
    """A real ENOSPC: the pre-check is told there is room (only it), the 1 MB disk then fills up."""
    paths, plan = data
    disk = mount("1m")
    real_usage = shutil.disk_usage
    monkeypatch.setattr(outdir.shutil, "disk_usage",
                        lambda p: real_usage(p)._replace(free=10 * outdir.MIN_FREE_BYTES))
    code, _, err = run(["compare", paths["cohort"], "--plan", plan, "--out", disk / "out"], capsys)
    assert code == 2 and "No space left on device" in err and "free some disk space" in err, err
    assert "Traceback" not in err and list(disk.iterdir()) == []


# ----------------------------------------------------------------- finding 8: SIGTERM leaves partial folders
def _start_and_wait_for_partial(paths, plan, out):
    proc = subprocess.Popen([sys.executable, "-m", "phb_eval.cli", "compare", str(paths["cohort"]), "--plan",
                             str(plan), "--out", str(out), "-q"], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while proc.poll() is None and time.time() < deadline:
        partial = list(out.parent.glob(f".{out.name}.partial-*"))
        if partial and any(partial[0].iterdir()):
            return proc, partial[0]
        time.sleep(0.005)
    raise AssertionError(f"no partial folder seen: {proc.communicate()}")


def test_sigterm_mid_write_removes_the_partial_folder(data, tmp_path):
    paths, plan = data
    out = tmp_path / "out"
    proc, partial = _start_and_wait_for_partial(paths, plan, out)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "stopped (SIGTERM)" in err and "Traceback" not in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_killed_run_leftovers_are_removed_on_the_next_run(data, tmp_path, capsys):
    paths, plan = data
    out = tmp_path / "out"
    proc, partial = _start_and_wait_for_partial(paths, plan, out)
    proc.kill()
    proc.wait()
    assert partial.is_dir() and (tmp_path / ".out.phb-eval.lock").exists()  # what a killed run leaves
    code, _, err = run(["compare", paths["cohort"], "--plan", plan, "--out", out], capsys)
    assert code == 0, err
    assert f"removed {partial}, left behind by a stopped run (pid {proc.pid})" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# ---------------------------------------------------------------------------- finding 6: formula injection
def test_formula_injection_is_neutralised_in_every_output(data, tmp_path, capsys):
    paths, plan = data
    frame = pd.read_csv(paths["cohort"])
    frame["sex"] = frame["sex"].map({"female": PAYLOADS[0], "male": PAYLOADS[1]})
    frame.loc[frame.index[::7], "sex"] = PAYLOADS[2]
    hostile = tmp_path / "hostile.csv"
    frame.to_csv(hostile, index=False)
    out = tmp_path / "out"
    code, _, err = run(["compare", hostile, "--plan", plan, "--out", out, "--format", "html,md", "--subgroups"],
                       capsys)
    assert code == 0, err
    quoted = negative = 0
    for table in (out / "tables").glob("*.csv"):
        for row in csv.reader(table.open(encoding="utf-8")):
            for cell in row:
                assert not (cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not NUMBER.match(cell)), (table, cell)
                quoted += cell == "'" + PAYLOADS[0]
                negative += bool(NUMBER.match(cell)) and cell.startswith("-")
    assert quoted and negative  # the payload is there, made inert; negative numbers stay numbers
    with zipfile.ZipFile(out / "tables.xlsx") as book:
        sheets = [book.read(n).decode("utf-8") for n in book.namelist() if n.startswith("xl/worksheets/")]
        strings = book.read("xl/sharedStrings.xml").decode("utf-8") if "xl/sharedStrings.xml" in book.namelist() \
            else ""
    assert sheets and not any("<f>" in s or "<f " in s for s in sheets)  # no formula anywhere
    assert "HYPERLINK" in "".join(sheets) + strings
    import openpyxl
    wb = openpyxl.load_workbook(out / "tables.xlsx")
    numbers = [c.value for ws in wb for row in ws.iter_rows() for c in row if isinstance(c.value, float)]
    assert any(v < 0 for v in numbers)  # negative numbers are numeric cells, not text
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "alert(1)" in md and "<script" not in md.lower() and "<img src=x" not in md
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "alert(1)" in html and "<script>alert" not in html and "<img src=x" not in html


# ------------------------------------------------ finding 7 and 8: bad plan-named files are sentences
def test_non_csv_inflation_or_unit_cost_file_is_a_sentence(data, tmp_path, capsys):
    paths, _ = data
    binary = tmp_path / "index.xlsx"
    binary.write_bytes(bytes(range(256)) * 40)
    for setting in ("inflation_index", "unit_costs"):
        plan = tmp_path / f"{setting}.yaml"
        plan.write_text(yaml.safe_dump({"costs": {setting: str(binary)}, "estimators": ["ancova"],
                                        "imputation": {"m": 2, "iterations": 1}, "cea": {"bootstrap": 50}}))
        code, _, err = run(["compare", paths["cohort"], "--plan", plan, "--out", tmp_path / setting], capsys)
        assert code == 2 and str(binary) in err and "not a readable CSV" in err and "Traceback" not in err, err
