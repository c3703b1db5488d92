"""Stage lines on stderr: one line per stage with its time when not a terminal; --quiet silences them."""
import io
import re

import pytest
import yaml

from phb_eval import progress as prog
from phb_eval.simulate import simulate_pilot, write_simulation
from cli_runner import run

LINE = re.compile(r"^phb-eval: (.+) (\d+\.\d\d) s \(total (\d+\.\d\d) s\)$")


@pytest.fixture(autouse=True)
def _default_not_quiet():
    prog.configure(quiet=False)
    yield
    prog.configure(quiet=False)


def _lines(text):
    return [m.groups() for m in map(LINE.match, text.splitlines()) if m]


def test_a_stage_writes_one_line_with_its_time_when_not_a_terminal():
    buf = io.StringIO()
    with prog.stage("imputation", file=buf):
        pass
    with prog.stage("my_step", file=buf):
        pass
    (first, seconds, total), (second, _s, total2) = _lines(buf.getvalue())
    assert len(buf.getvalue().splitlines()) == 2
    assert first == "multiple imputation" and second == "my step"
    assert 0 <= float(seconds) <= float(total) <= float(total2)


def test_quiet_stage_writes_nothing():
    buf = io.StringIO()
    with prog.stage("imputation", file=buf, quiet=True):
        pass
    prog.configure(quiet=True)
    with prog.stage("figures", file=buf):
        pass
    assert buf.getvalue() == ""


def test_a_failed_stage_writes_no_line_and_the_error_passes():
    buf = io.StringIO()
    with pytest.raises(ValueError), prog.stage("outcomes", file=buf):
        raise ValueError("boom")
    assert buf.getvalue() == ""


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("progress")
    paths = write_simulation(simulate_pilot(n_phb=150, n_control=150, sites=6, seed=5, events=True), d)
    plan = d / "fast.yaml"
    plan.write_text(yaml.safe_dump({"cea": {"bootstrap": 50, "strata": ["all"]},
                                    "imputation": {"m": 2, "iterations": 2}}))
    return paths, plan


def _run(argv, capsys):
    code, _, err = run(argv, capsys)
    return code, err


def test_compare_logs_every_stage_in_order_and_quiet_silences_it(data, tmp_path, capsys):
    paths, plan = data
    argv = ["compare", str(paths["cohort"]), "--events", str(paths["events"]), "--plan", str(plan)]
    code, err = _run([*argv, "--out", str(tmp_path / "a")], capsys)
    assert code == 0, err
    stages = [name for name, _s, _t in _lines(err)]
    expected = ["reading inputs", "validation", "event aggregation", "scoring", "multiple imputation",
                "outcome models", "service-use and cost models", "cost-effectiveness bootstrap", "writing tables",
                "figures", "writing the report"]
    assert [s for s in stages if s in expected] == expected
    totals = [float(t) for _n, _s, t in _lines(err)]
    assert totals == sorted(totals)                     # the running total only grows
    code, err = _run([*argv, "--out", str(tmp_path / "b"), "--quiet"], capsys)
    assert code == 0 and err == ""


def test_validate_and_score_log_their_stages(data, tmp_path, capsys):
    paths, _plan = data
    code, err = _run(["validate", str(paths["cohort"])], capsys)
    assert code == 0 and [n for n, _s, _t in _lines(err)] == ["reading inputs", "validation"]
    assert _run(["validate", str(paths["cohort"]), "--quiet"], capsys) == (0, "")
    code, err = _run(["score", str(paths["cohort"]), "--out", str(tmp_path / "s.csv")], capsys)
    assert code == 0 and [n for n, _s, _t in _lines(err)] == ["reading inputs", "validation", "scoring",
                                                               "writing outputs"]


def test_on_a_terminal_a_stage_is_a_line_left_on_screen():
    import fcntl
    import os
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with os.fdopen(slave, "w", buffering=1) as stream:
        with prog.stage("figures", file=stream):
            pass
    os.set_blocking(master, False)
    out = b""
    try:
        while chunk := os.read(master, 65536):
            out += chunk
    except (BlockingIOError, OSError):
        pass
    os.close(master)
    assert b"figures: " in out and b"done" in out and out.endswith(b"\n")
