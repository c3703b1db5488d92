"""Files a plan names (unit costs, inflation index, ASCOT weights) and the plan itself: regular files of
bounded size, checked before they are read — so ``/dev/zero``, a folder or a FIFO is a sentence, not a
hang or an exhausted memory."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import PhbEvalError

__all__ = ["MAX_SETTINGS_FILE_BYTES", "MAX_PLAN_BYTES", "check_settings_file"]

MAX_SETTINGS_FILE_BYTES = 50 * 2 ** 20
MAX_PLAN_BYTES = 1 * 2 ** 20


def check_settings_file(path, what: str, limit: int = MAX_SETTINGS_FILE_BYTES) -> Path:
    """``path`` if it is a regular file (after links) no bigger than ``limit``; else a ``PhbEvalError``.

    ``what`` names the file in the message, e.g. ``"unit-cost file (plan costs.unit_costs)"``.
    A missing file is left to the caller, whose message says what the file should hold.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return p
    except OSError as exc:
        raise PhbEvalError(f"{p}: the {what} cannot be read ({exc.strerror}). Fix: give the path of a readable "
                           "file") from None
    if stat.S_ISDIR(st.st_mode):
        raise PhbEvalError(f"{p}: the {what} is a folder, not a file. Fix: give the path of the file itself")
    if not stat.S_ISREG(st.st_mode):
        kind = "a pipe (FIFO)" if stat.S_ISFIFO(st.st_mode) else "a device or socket"
        raise PhbEvalError(f"{p}: the {what} is {kind}, not a regular file. Fix: give the path of a file on disk")
    if st.st_size > limit:
        raise PhbEvalError(f"{p}: the {what} is {st.st_size / 2 ** 20:.1f} MB, more than the {limit / 2 ** 20:g} MB "
                           "such a file can be. Fix: check that this is the right file")
    return p
