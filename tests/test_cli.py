"""The command line as a user meets it: help everywhere, errors without tracebacks, exit codes."""
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from phb_eval.cli import cli, main

COMMANDS = sorted(cli.commands)


def test_every_command_has_help_with_an_example():
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    for name in COMMANDS:
        assert name in top.output
        res = runner.invoke(cli, [name, "--help"])
        assert res.exit_code == 0, name
        assert "Example" in res.output and f"phb-eval {name}" in res.output, name


def test_commands_are_documented_in_readme():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for name in COMMANDS:
        assert f"phb-eval {name}" in readme, name


def test_user_error_exits_2_without_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["validate", str(tmp_path / "nope.csv")])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "nope.csv" in err and "Traceback" not in err


def test_conflicting_inputs_rejected_in_a_sentence(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["validate", "a.csv", "--treatment", "t.csv", "--control", "c.csv"])
    assert exit_.value.code == 2
    assert "not both" in capsys.readouterr().err


def test_init_writes_a_valid_plan_and_refuses_to_overwrite(tmp_path, capsys):
    from phb_eval.plan import Plan, load_plan
    target = tmp_path / "plan.yaml"
    with pytest.raises(SystemExit) as ok:
        main(["init", str(target)])
    assert ok.value.code in (0, None)
    assert load_plan(target) == Plan()
    assert "#" in target.read_text()  # commented for the user
    with pytest.raises(SystemExit) as again:
        main(["init", str(target)])
    assert again.value.code == 2 and "--force" in capsys.readouterr().err
    with pytest.raises(SystemExit) as pilot:
        main(["init", str(target), "--pilot", "--force"])
    assert pilot.value.code in (0, None)
    assert load_plan(target).name == "pilot_2012"


def test_installed_entry_point_runs_in_a_subprocess(tmp_path):
    exe = Path(sys.executable).with_name("phb-eval")
    assert exe.exists(), "phb-eval is not installed in this environment (pip install '.[test]')"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert "phb-eval" in out.stdout
    bad = subprocess.run([str(exe), "validate", str(tmp_path / "absent.csv")], capture_output=True, text=True)
    assert bad.returncode == 2 and "absent.csv" in bad.stderr and "Traceback" not in bad.stderr
