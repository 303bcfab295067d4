"""The one way the harness puts a file or a folder in place.

Everything is written under a temporary name beside its target, flushed to disk (``fsync``), renamed
over the target, and the parent folder's entry flushed: a reader never sees half a file, and a crash or
power cut leaves the old version or the new one, never a mix. One rule for every writer: results
records, checkpoints' sidecars, the best-val weights, sweep state, the generated dataset, the cached
vocab, inspector pages and leaderboards.
"""
from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync(path: str | Path) -> None:
    """Flush a file's data, or a folder's entries, to disk (a folder cannot be opened for fsync on
    Windows; there rename is already durable)."""
    path = Path(path)
    try:
        flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if path.is_dir() else 0)
        fd = os.open(path, flags)
    except OSError:
        if path.is_dir():
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not path.is_dir():
            raise
    finally:
        os.close(fd)


def temporary_name(target: Path) -> Path:
    """A hidden sibling of ``target`` no other writer picks (pid and a random part)."""
    return target.with_name(f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextmanager
def replacing(target: str | Path) -> Iterator[Path]:
    """``with replacing(path) as tmp: torch.save(obj, tmp)``: ``path`` gets what was written to ``tmp``
    once the block succeeds; on an exception ``path`` is left as it was and ``tmp`` removed."""
    target = Path(target)
    tmp = temporary_name(target)
    try:
        yield tmp
        fsync(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync(target.parent)


def write_bytes(target: str | Path, data: bytes) -> Path:
    with replacing(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | Path, text: str) -> Path:
    return write_bytes(target, text.encode("utf-8"))


def write_json(target: str | Path, obj, **dump_args) -> Path:
    return write_text(target, json.dumps(obj, **{"indent": 2, **dump_args}))


def publish_folder(tmp: Path, target: Path) -> None:
    """Rename the finished folder ``tmp`` to ``target`` (which must not exist, or be empty), every file
    in it flushed first; raises ``OSError`` when ``target`` exists, e.g. another writer finished first."""
    for f in sorted(tmp.rglob("*")):
        if f.is_file() and not f.is_symlink():
            fsync(f)
    fsync(tmp)
    os.rename(tmp, target)
    fsync(target.parent)
