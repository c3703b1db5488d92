"""Progress bars: drawn on a terminal, silent when quiet or when stderr is not a terminal."""
from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import termios

from phb_eval import progress as prog


def _run_on_pty(**kwargs) -> bytes:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
    with os.fdopen(slave, "w", buffering=1) as stream:
        assert stream.isatty()
        with prog.progress(total=5, desc="bootstrap", file=stream, **kwargs) as bar:
            for _ in range(5):
                bar.update(1)
    out = b""
    os.set_blocking(master, False)
    try:
        while chunk := os.read(master, 65536):
            out += chunk
    except (BlockingIOError, OSError):
        pass
    os.close(master)
    return out


def test_draws_on_a_terminal():
    out = _run_on_pty(quiet=False)
    assert b"bootstrap" in out and b"/5" in out


def test_quiet_on_a_terminal_draws_nothing():
    assert _run_on_pty(quiet=True) == b""


def test_not_a_terminal_draws_nothing():
    buf = io.StringIO()
    assert list(prog.progress(range(3), desc="imputation", file=buf, quiet=False)) == [0, 1, 2]
    assert buf.getvalue() == ""


def test_configured_default():
    try:
        prog.configure(quiet=True)
        assert _run_on_pty() == b""
    finally:
        prog.configure(quiet=False)
    assert b"bootstrap" in _run_on_pty()
