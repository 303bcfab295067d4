"""The leaderboard's output folder: written as a whole, swapped in, and never someone else's.

Every file of a board is rendered first, into a sibling temporary folder; only then is the old board
replaced: the whole folder is renamed into place when it held nothing but the earlier board, else each
file is renamed over its old version and the earlier board's files that are no longer produced are
removed. Which files a board wrote, and from which results stores, is kept in its manifest
(``.leaderboard.json``), so nothing the leaderboard did not write is ever removed or overwritten.

A board is replaced only by one built from the same stores: ``harness leaderboard`` run with its
defaults from the repository root (``--results-dir results --out leaderboards``) is refused, because
``leaderboards/`` is the committed board of ``leaderboards/records``; ``--force`` (asked for) replaces it.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from .. import atomic
from ..errors import HarnessError

MANIFEST = ".leaderboard.json"
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}")


@dataclass
class Plan:
    out: Path
    stores: list[str]  # relative to ``out``
    old_files: list[str]  # what the earlier board's manifest lists


def _store_names(out: Path, stores) -> list[str]:
    base = out.resolve()
    return sorted({os.path.relpath(Path(s).resolve(), base) for s in stores})


def _read_manifest(out: Path) -> dict | None:
    f = out / MANIFEST
    if not f.exists():
        return None
    try:
        m = json.loads(f.read_text())
        files, stores = m["files"], m["stores"]
        if not (isinstance(files, list) and isinstance(stores, list) and all(isinstance(s, str) for s in stores)):
            raise ValueError("files and stores must be lists of strings")
        for name in files:
            if not isinstance(name, str) or not _FILE_NAME.fullmatch(name) or name == MANIFEST:
                raise ValueError(f"{name!r} is not a file name a board writes")
        return m
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise HarnessError(f"{f}: not a leaderboard manifest ({exc}); remove it, or choose another --out") from None


def plan(out: Path, stores, force: bool) -> Plan:
    """Check that ``out`` may be (re)written; nothing is touched yet."""
    if out.exists() and not out.is_dir():
        raise HarnessError(f"--out {out} is a file, not a folder")
    names = _store_names(out, stores)
    manifest = _read_manifest(out) if out.is_dir() else None
    if manifest is not None and sorted(manifest["stores"]) != names and not force:
        raise HarnessError(f"{out} holds the board of {', '.join(manifest['stores'])} (relative to {out}), not of "
                           f"{', '.join(names)}: choose another --out, or pass --force to replace it")
    old = list(manifest["files"]) if manifest else []
    if manifest is None and out.is_dir() and not force:
        foreign = sorted(p.name for p in out.iterdir() if not p.is_dir() and not p.name.startswith("."))
        if foreign:
            raise HarnessError(f"{out} holds files no leaderboard manifest lists ({', '.join(foreign[:3])}"
                               f"{', ...' if len(foreign) > 3 else ''}): choose another --out, or pass --force to "
                               "write the board there (files of the same name are replaced, others kept)")
    return Plan(out, names, old)


def commit(p: Plan, files: dict[str, bytes]) -> list[Path]:
    """Write ``files`` (name -> bytes) as the board in ``p.out``; return their paths, manifest last."""
    for name in files:
        if not _FILE_NAME.fullmatch(name) or name == MANIFEST:
            raise ValueError(f"bad board file name {name!r}")  # a bug: names are built by the leaderboard
    out = p.out
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.new-{uuid.uuid4().hex[:8]}"
    stage.mkdir()
    try:
        for name, data in files.items():
            (stage / name).write_bytes(data)
        manifest = dict(stores=p.stores, files=sorted(files))
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        ours = set(p.old_files) | {MANIFEST}
        if not out.exists():
            atomic.publish_folder(stage, out)
        elif all(e.name in ours for e in out.iterdir()):  # only the earlier board: swap the folder whole
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(out, old)
            atomic.publish_folder(stage, out)
            shutil.rmtree(old, ignore_errors=True)
        else:  # the folder holds other things too (leaderboards/records): swap file by file
            for name in sorted(files):
                atomic.write_bytes(out / name, files[name])
            for name in set(p.old_files) - set(files):
                f = out / name
                if f.is_symlink() or f.is_file():
                    f.unlink()
            atomic.write_bytes(out / MANIFEST, (stage / MANIFEST).read_bytes())
    except OSError as exc:
        raise HarnessError(f"cannot write the board into {out}: {exc}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [out / name for name in files] + [out / MANIFEST]
