"""The code behind a run: the harness commit when a job starts, and the history of every start that
trained a work dir's checkpoints (a run resumed after a commit was trained by two versions of the code)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from mmengine.dist import is_main_process

from .. import atomic
from ..config import REPO_ROOT

CODE_HISTORY = "code_history.json"  # in a run folder: the code of every start that trained its checkpoints


def git_state() -> dict:
    """The commit of the harness source, when it runs from a git checkout (an installed wheel has none).
    Jobs read it when they start: the code that runs is the code loaded then, whatever is committed later."""
    if not (REPO_ROOT / ".git").exists():
        return dict(git_sha=None, git_dirty=None)
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=REPO_ROOT, capture_output=True, text=True,  # noqa: E731
                                        timeout=5).stdout.strip()
        sha = run("rev-parse", "HEAD") or None
        dirty = bool(run("status", "--porcelain", "--untracked-files=no")) if sha else None
        return dict(git_sha=sha, git_dirty=dirty)
    except (OSError, subprocess.SubprocessError):
        return dict(git_sha=None, git_dirty=None)


def record_code_state(work_dir: Path, code: dict, resume: bool) -> list[dict]:
    """Append this start's code (``git_state()``) to the work dir's history and return the history.

    A run resumed after a commit was trained by two versions of the code; its record names both. A start
    that does not resume (no checkpoint, or ``resume=False``) trains from scratch and begins a new history.
    """
    last = work_dir / "last_checkpoint"
    resumed_from = last.read_text().strip() if resume and last.is_file() else None
    path = work_dir / CODE_HISTORY
    history = json.loads(path.read_text()) if resumed_from and path.is_file() else []
    history.append(dict(code, resumed_from=resumed_from))
    if is_main_process():  # before the Runner sets up torchrun's group every rank counts as main: each writes
        atomic.write_json(path, history)  # its own temporary file, renamed over the history
    return history


def read_code_history(run_dir: Path) -> list | None:
    """The code that trained a run folder's checkpoints, when ``harness run`` recorded it."""
    path = run_dir / CODE_HISTORY
    return json.loads(path.read_text()) if path.is_file() else None
