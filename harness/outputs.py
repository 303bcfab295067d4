"""Output locations checked before the work starts: a results store, work dir or leaderboard folder that is a
file, cannot be written, or has no room for a checkpoint is one line at the start, not a traceback after
hours of training. The check writes (and removes) a probe file, because permission bits say nothing about
read-only mounts, and root ignores them."""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from .errors import OutputError

#: errors that mean "this location cannot take the output", never a bug: one line naming the path, exit 2
ENVIRONMENT_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.ENOTDIR,
                      errno.EISDIR, errno.ENAMETOOLONG}


_CHECKED: dict[str, Path] = {}  # output locations this process checked (an error without a path names them)


def _nearest_existing(p: Path) -> Path:
    p = p.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_writable_dir(path: str | os.PathLike, what: str) -> Path:
    """``path`` is (or can be created as) a folder this process can write files in."""
    p = Path(path).expanduser()
    if p.exists() and not p.is_dir():
        raise OutputError(f"{what} {p} is a file, not a folder; pass a folder path")
    base = _nearest_existing(p)
    if not base.is_dir():
        raise OutputError(f"{what} {p}: {base} is a file, so the folder cannot be created; pass another path")
    try:
        fd, probe = tempfile.mkstemp(dir=base, prefix=".tipr-write-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{what} {p}: cannot write in {base} ({exc.strerror}); make it writable or pass another "
                          "folder") from None
    _CHECKED[what] = p
    return p


def check_free_space(path: str | os.PathLike, need_bytes: int, what: str) -> None:
    """At least ``need_bytes`` free on the file system that will hold ``path``."""
    p = Path(path)
    free = shutil.disk_usage(_nearest_existing(p)).free
    if free < need_bytes:
        raise OutputError(f"{what} {p}: {free / 2**20:.0f} MiB free on its file system, but a checkpoint needs "
                          f"about {need_bytes / 2**20:.0f} MiB; free some space or pass another folder")


def checkpoint_bytes(method) -> int:
    """What one mmengine checkpoint of ``method`` takes: weights, plus Adam's two moments of every trainable
    parameter, plus 10 % and 1 MiB for the pickle and the message hub (measured sizes are below this)."""
    weights = sum(t.numel() * t.element_size() for t in method.state_dict().values())
    moments = sum(2 * p.numel() * 4 for p in method.parameters() if p.requires_grad)
    return int(1.1 * (weights + moments)) + 2**20


def describe_os_error(exc: OSError) -> str:
    """One line for an environment fault: the path, what the OS said, and what to do."""
    where = exc.filename or "a file"
    if exc.filename2:
        where = f"{where} -> {exc.filename2}"
    if not exc.filename and exc.errno in (errno.ENOSPC, errno.EDQUOT) and _CHECKED:  # write() names no file
        free = []
        for what, p in _CHECKED.items():
            try:
                free.append(f"{what} {p}: {shutil.disk_usage(_nearest_existing(p)).free / 2**20:.0f} MiB free")
            except OSError:
                continue
        where = f"writing output ({'; '.join(free)})"
    hint = {errno.ENOSPC: "free some space or write elsewhere", errno.EDQUOT: "free some quota or write elsewhere",
            errno.EROFS: "the file system is read-only; write elsewhere (--work-dir, --results-dir, TIPR_CACHE)",
            errno.EACCES: "make it writable or write elsewhere (--work-dir, --results-dir, TIPR_CACHE, HOME)",
            }.get(exc.errno, "check the path")
    return f"{where}: {exc.strerror or exc}; {hint}"
