"""Runs the phb-eval command line in-process, as a user would, and returns what it said."""
import pytest

from phb_eval.cli import main


def run(argv, capsys):
    """(exit code, stdout, stderr) of one `phb-eval` command."""
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    return exit_.value.code, out.out, out.err
