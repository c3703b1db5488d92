"""Rules for the output folder, checked before any analysis runs and again when writing.

- ``--out`` is never an input file, never the folder holding an input, and never contains one.
- An existing non-empty folder is replaced only with ``force`` and only when phb-eval wrote it: its
  ``manifest.json`` carries our marker and every file in it is one the manifest lists.
- One run at a time per folder: ``output_lock`` creates ``.<name>.phb-eval.lock`` beside it (O_EXCL,
  holding the pid); a second run refuses; a lock left by a dead process is removed with a note.
  Hand-written rather than ``fcntl.flock``: the pid tells the second run who holds it, and the file
  is gone after the run.
- The folder can be created and written, has room (``MIN_FREE_BYTES``) and a name the file system
  takes — so a run never fails after the analysis for want of a writable folder.
- Leftovers of killed runs (``.<name>.partial-<pid>-*``, ``.<name>.old-<pid>-*``) whose process is dead
  are removed (or, for a moved-aside old output whose replacement never arrived, put back) with a note.
- ``system_error`` turns an ``OSError`` into a ``PhbEvalError`` naming the path and the fix.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

from ..errors import PhbEvalError

__all__ = ["MARKER", "MIN_FREE_BYTES", "check_target", "check_room", "prepare_target", "output_lock",
           "remove_leftovers", "system_error", "partial_name", "old_name", "is_ours", "pid_alive"]

MARKER = {"written_by": "phb-eval"}
MIN_FREE_BYTES = 50 * 2 ** 20
LONGEST_SUFFIX = len(".partial-4194304-") + 8 + 1  # the longest name we put beside the folder, minus its name
LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|old)-(?P<pid>\d+)-[0-9a-f]{8}$")
FIXES = {
    errno.EACCES: "choose a folder you can write to (or fix its permissions)",
    errno.EPERM: "choose a folder you can write to (or fix its permissions)",
    errno.EROFS: "the file system is read-only; choose a folder on a writable disk",
    errno.ENOSPC: "free some disk space, or choose a folder on a disk with more room",
    errno.EDQUOT: "your disk quota is used up; free some space or choose another disk",
    errno.ENAMETOOLONG: "choose a shorter folder name or path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose a path made of folders",
    errno.EISDIR: "a folder is in the way of a file; choose another path",
    errno.ELOOP: "the path has a symbolic link loop; choose a path without it",
    errno.EEXIST: "something is already at that path; choose another",
}


def _note(text: str) -> None:
    print(f"note: {text}", file=sys.stderr)


def partial_name(out: Path) -> Path:
    """Where a run builds its output: a hidden sibling named with our pid (so leftovers can be judged)."""
    return out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def old_name(out: Path) -> Path:
    """Where a replaced output waits until the new one is in place."""
    return out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.phb-eval.lock"


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (a zombie counts as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def system_error(exc: OSError, path: Path | str, doing: str = "writing the output") -> PhbEvalError:
    """An ``OSError`` as one sentence: the path, what went wrong, and the fix."""
    where = exc.filename or path
    fix = FIXES.get(exc.errno, "check the path and the disk, then run again")
    return PhbEvalError(f"{where}: {doing} failed ({exc.strerror or exc}); nothing was written to {path}. "
                        f"Fix: {fix}")


# -------------------------------------------------------------------------------------------- inputs
def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _check_inputs(out: Path, inputs) -> None:
    """Refuse an ``--out`` that is an input, holds one, or contains one (input folders: also inside)."""
    real = Path(os.path.realpath(out))
    for given in inputs or ():
        p = Path(os.path.realpath(Path(given).expanduser()))
        if p.is_dir():
            if _inside(p, real) or _inside(real, p):
                raise PhbEvalError(f"--out {out} overlaps the input folder {given}; inputs are never "
                                   "modified. Fix: choose an --out folder outside it")
        elif real == p:
            raise PhbEvalError(f"--out {out} is the input file {given}; inputs are never overwritten. "
                               "Fix: choose another --out")
        elif _inside(p.parent, real):
            what = "holds" if p.parent == real else "contains the folder of"
            raise PhbEvalError(f"--out {out} {what} the input file {given}; replacing it would delete "
                               "your inputs. Fix: choose a new --out folder that holds no input")


def is_ours(out: Path) -> tuple[bool, str]:
    """(True, "") when phb-eval wrote ``out``: our manifest, and no file the manifest does not list."""
    manifest = out / "manifest.json"
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False, "it has no phb-eval manifest.json"
    if not isinstance(doc, dict):
        return False, "its manifest.json is not one phb-eval wrote"
    legacy = "phb_eval_version" in doc and isinstance(doc.get("outputs_sha256"), dict)
    if doc.get("written_by") != MARKER["written_by"] and not legacy:
        return False, "its manifest.json is not one phb-eval wrote"
    listed = set(doc.get("outputs_sha256") or {}) | {"manifest.json"}
    for p in sorted(out.rglob("*")):
        if (p.is_file() or p.is_symlink()) and p.relative_to(out).as_posix() not in listed:
            return False, f"it holds {p.relative_to(out).as_posix()}, a file phb-eval did not write"
    return True, ""


def check_target(out: Path, force: bool, inputs=()) -> None:
    """Refuse an ``--out`` that would overwrite inputs or files phb-eval did not write (no side effects)."""
    out = Path(out).expanduser().absolute()
    _check_inputs(out, inputs)
    if out.is_symlink() and not out.exists():
        raise PhbEvalError(f"{out}: is a symbolic link to nothing (it points to {os.readlink(out)}); nothing was "
                           "written. Fix: remove the link or choose another --out")
    if out.exists() and not out.is_dir():
        raise PhbEvalError(f"{out}: exists and is a file, not a folder; nothing was written. "
                           "Fix: give --out a folder path")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise PhbEvalError(f"{out}: the output folder already exists and is not empty; nothing was written. "
                               "Fix: choose a new --out folder, or add --force to replace it")
        ours, why = is_ours(out)
        if not ours:
            raise PhbEvalError(f"{out}: --force replaces only a folder phb-eval wrote, and {why}; nothing was "
                               "written or deleted. Fix: choose a new --out folder (or empty this one yourself)")


def _existing_ancestor(out: Path) -> Path:
    """The nearest part of ``out``'s path that exists; a file or dangling link there is an error."""
    p = out.parent
    while True:
        if p.is_symlink() and not p.exists():
            raise PhbEvalError(f"{p}: is a symbolic link to nothing, so {out} cannot be created. "
                               "Fix: remove the link or choose another --out")
        if p.exists():
            if not p.is_dir():
                raise PhbEvalError(f"{p}: is a file, so the folder {out} cannot be created under it. "
                                   "Fix: choose an --out path made of folders")
            return p
        p = p.parent


def _check_name(out: Path, base: Path) -> None:
    """Refuse a name the file system cannot hold once we add our suffixes (``.partial-<pid>-…``)."""
    try:
        name_max = os.pathconf(base, "PC_NAME_MAX")
        path_max = os.pathconf(base, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    long_part = max(out.relative_to(base).parts, key=len, default="")
    if len(out.name.encode()) + LONGEST_SUFFIX > name_max or len(long_part.encode()) > name_max \
            or len(str(out).encode()) + LONGEST_SUFFIX + 40 > path_max:
        raise PhbEvalError(f"{out}: the folder name is too long for this file system (at most "
                           f"{name_max - LONGEST_SUFFIX} characters for the last part). Fix: choose a shorter --out")


def check_room(out: Path) -> None:
    """The folder can be made and written, its name fits the file system, and the disk has room."""
    out = Path(out).expanduser().absolute()
    base = _existing_ancestor(out)
    _check_name(out, base)
    try:
        fd, probe = tempfile.mkstemp(prefix=".phb-eval-probe-", dir=base)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise PhbEvalError(f"{base}: cannot write here ({exc.strerror}), so {out} cannot be written; nothing was "
                           f"run. Fix: {FIXES.get(exc.errno, 'choose another --out folder')}") from None
    free = shutil.disk_usage(base).free
    if free < MIN_FREE_BYTES:
        raise PhbEvalError(f"{base}: only {free / 2 ** 20:.1f} MB free on this disk; a run needs at least "
                           f"{MIN_FREE_BYTES // 2 ** 20} MB for {out}. Nothing was run. Fix: free some space, "
                           "or choose an --out folder on a disk with more room")


def remove_leftovers(out: Path, note=_note) -> None:
    """Remove partial folders of dead runs beside ``out``; put back an old output a dead run moved aside."""
    out = Path(out).expanduser().absolute()
    if not out.parent.is_dir():
        return
    for p in sorted(out.parent.glob(f".{glob_escape(out.name)}.*-*-*")):
        m = LEFTOVER.match(p.name)
        if not m or m["name"] != out.name or pid_alive(int(m["pid"])) or not p.is_dir():
            continue
        if m["kind"] == "old" and not out.exists():
            os.replace(p, out)
            note(f"put back {out}, which a stopped run (pid {m['pid']}) had moved aside to {p.name}")
            continue
        shutil.rmtree(p, ignore_errors=True)
        note(f"removed {p}, left behind by a stopped run (pid {m['pid']})")


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def prepare_target(out: Path, force: bool, inputs=(), note=_note) -> None:
    """Every check before a run: the target rules, room to write, leftovers of killed runs cleared."""
    check_target(out, force, inputs)
    check_room(out)
    remove_leftovers(out, note)


def _take_lock(lock: Path, out: Path, note) -> bool:
    """Create the lock (True), or find this process already holds it (False); refuse a live holder."""
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                pid = int(lock.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pid = -1
            if pid == os.getpid():
                return False
            if pid_alive(pid):
                raise PhbEvalError(f"{out}: another phb-eval run (pid {pid}) is writing this folder; nothing was "
                                   f"run. Fix: wait for it to finish, or choose another --out (if no run is going, "
                                   f"delete {lock})") from None
            with contextlib.suppress(FileNotFoundError):
                lock.unlink()
            note(f"removed {lock.name}, a lock left by a stopped run (pid {pid if pid > 0 else 'unknown'})")
            continue
        except OSError as exc:
            raise system_error(exc, out, "creating the lock file") from None
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        return True
    raise PhbEvalError(f"{out}: could not take the lock {lock}. Fix: delete it and run again")


@contextlib.contextmanager
def output_lock(out: Path, note=_note):
    """Hold ``.<name>.phb-eval.lock`` beside ``out`` for the duration; refuse if another live run holds it.

    Re-entrant within one process (the CLI takes it before the analysis, the writer again when writing).
    """
    out = Path(out).expanduser().absolute()
    lock = _lock_path(out)
    _check_name(out, _existing_ancestor(out))
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise system_error(exc, out, "creating the output's parent folder") from None
    owner = _take_lock(lock, out, note)
    try:
        yield lock
    finally:
        if owner:
            with contextlib.suppress(OSError):
                lock.unlink()
