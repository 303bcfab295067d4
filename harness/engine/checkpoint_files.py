"""Checkpoint and run-folder files as untrusted input: a sha256 beside each checkpoint, checked before eval or
resume; resume from the newest intact checkpoint; old checkpoints pruned only after the new one is complete.

torch's zip reader checks no CRC, so a flipped byte inside a ``.pth`` loads and evaluates; the digest written
when the checkpoint was saved (``epoch_3.pth.sha256``, ``sha256sum`` format) is what catches it. Every
failure to read a checkpoint, ``last_checkpoint`` or ``harness_config.json`` is one :class:`CheckpointError`
line naming the file and what to do.
"""
from __future__ import annotations

import json
import logging
import pickle
import re
import shutil
import zipfile
from collections import deque
from pathlib import Path

import torch
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.registry import HOOKS

from .. import atomic
from ..errors import CheckpointError, OutputError, one_line
from ..hashing import sha256_file
from .model import METHOD_KEY_PREFIX
from . import checkpoint_compat  # noqa: F401  (torch weights_only loading of mmengine checkpoints)

SUFFIX = ".sha256"
LAST = "last_checkpoint"
log = logging.getLogger(__name__)


def digest_file(path: Path) -> Path:
    return path.with_name(path.name + SUFFIX)


def write_digest(path: str | Path) -> Path:
    """``<checkpoint>.sha256`` beside a complete checkpoint, written under a temporary name and renamed."""
    path = Path(path)
    out = digest_file(path)
    return atomic.write_text(out, f"{sha256_file(path)}  {path.name}\n")


def check_digest(path: Path) -> bool | None:
    """True: the digest matches; False: it does not (or cannot be read); None: no digest was written."""
    side = digest_file(path)
    if not side.is_file():
        return None
    try:
        want = side.read_text().split()[0]
    except (OSError, UnicodeDecodeError, IndexError):
        return False
    return sha256_file(path) == want


def load_checkpoint(path: str | Path) -> dict:
    """The checkpoint's contents (``weights_only``), after its size and digest are checked; any unreadable
    file is one line naming it (never torch's advice to turn ``weights_only`` off)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the checkpoint is empty (0 bytes; a run killed while saving?); use an "
                              "earlier epoch_N.pth of the run folder")
    if check_digest(path) is False:
        raise CheckpointError(f"{path}: sha256 differs from {digest_file(path).name} written when it was saved (the "
                              "file is damaged); use an earlier epoch_N.pth or retrain")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, zipfile.BadZipFile, OSError, KeyError,
            AttributeError, TypeError, IndexError, UnicodeDecodeError, MemoryError) as exc:
        why = ("weights-only unpickling refused its contents" if isinstance(exc, pickle.UnpicklingError)
               else one_line(exc).split(". ")[0][:160])
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(exc).__name__}: {why}); it may be "
                              "truncated or not a .pth written by `harness run`") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a checkpoint dict")
    return state


def load_method_weights(method, state: dict, path: Path) -> None:
    """Put a checkpoint's method weights into ``method``; weights of another architecture are one line."""
    sd = state.get("state_dict", state)
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise CheckpointError(f"{path}: has no state_dict of tensors; not a method checkpoint")
    sd = {str(k).removeprefix("module.").removeprefix(METHOD_KEY_PREFIX): v for k, v in sd.items()}
    try:
        missing, unexpected = method.load_state_dict(sd, strict=False)
    except (RuntimeError, KeyError, AssertionError, ValueError, IndexError) as exc:
        raise CheckpointError(f"{path}: weights do not fit the method of its run folder "
                              f"({type(exc).__name__}: {one_line(exc, 200)})") from None
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match the method "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")


def read_run_meta(path: Path) -> dict:
    """``harness_config.json`` of a run folder: a JSON object with the run's ``config`` and ``num_classes``."""
    if not path.is_file():
        raise CheckpointError(f"{path} not found: `harness eval` needs the run folder written by `harness run`")
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc}); it is written by `harness run` (rerun it)") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{path}: expected a JSON object with a 'config' object, found "
                              f"{type(meta).__name__}; it is written by `harness run` (rerun it)")
    n = meta.get("num_classes")
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise CheckpointError(f"{path}: 'num_classes' must be an integer >= 0, found {n!r}")
    cfg = meta["config"]
    for key in ("method", "dataset"):
        if not isinstance(cfg.get(key), dict) or not isinstance(cfg[key].get("type"), str):
            raise CheckpointError(f"{path}: config.{key}.type is missing; rerun `harness run`")
    return meta


def _epoch(p: Path) -> int:
    m = re.fullmatch(r"epoch_(\d+)\.pth", p.name)
    return int(m.group(1)) if m else -1


def _intact(path: Path) -> str | None:
    """None when ``path`` can be resumed from, else why not."""
    if not path.is_file():
        return "missing"
    if path.stat().st_size == 0:
        return "empty"
    ok = check_digest(path)
    if ok is False:
        return "sha256 differs from the one written when it was saved"
    if ok is None:  # a run from before the digests, or a kill before the digest was written: read it
        try:
            load_checkpoint(path)
        except CheckpointError as exc:
            return str(exc).split(": ", 1)[-1]
    return None


def resume_point(work_dir: Path) -> Path | None:
    """The checkpoint to resume from: ``last_checkpoint`` when intact, else the newest intact ``epoch_N.pth``
    (``last_checkpoint`` is rewritten to name it); None when the folder holds no checkpoint at all. Damaged
    checkpoints and no intact one is one line."""
    work_dir = Path(work_dir)
    last = work_dir / LAST
    pointed = None
    if last.is_file():
        text = last.read_text(errors="replace").strip()
        if text:  # checkpoints live in the work dir: a copied or moved folder never resumes from another one
            pointed = work_dir / Path(text).name
    epochs = sorted((p for p in work_dir.glob("epoch_*.pth") if _epoch(p) >= 0), key=_epoch, reverse=True)
    candidates = ([pointed] if pointed is not None else []) + [p for p in epochs if p != pointed]
    damaged = []
    for c in candidates:
        why = _intact(c)
        if why is None:
            if c != pointed:
                log.warning(f"{last}: {'names ' + str(pointed) if pointed else 'is empty or missing'}"
                            f"{' (' + damaged[0][1] + ')' if damaged else ''}; resuming from {c.name}, the newest "
                            "intact checkpoint")
                if is_main_process():
                    atomic.write_text(last, str(c))
            return c
        damaged.append((c, why))
    # a checkpoint last_checkpoint named, or one with a digest, was complete once: losing it is not silent.
    # One with neither is a save that was interrupted (the pointer and digest follow a complete save): ignored.
    lost = [(c, why) for c, why in damaged if c.exists() and (c == pointed or check_digest(c) is not None)]
    if lost:
        shown = "; ".join(f"{c.name}: {why}" for c, why in lost[:3])
        raise CheckpointError(f"{work_dir}: no intact checkpoint to resume from ({shown}); start again with "
                              "--no-resume (or another --work-dir)")
    for c, why in damaged:
        if c.exists():
            log.warning(f"{c}: {why}; an interrupted save (no digest, not in {LAST}), ignored")
    if last.is_file() and is_main_process():  # an empty or dangling pointer with no checkpoint: a fresh start
        log.warning(f"{last}: names no checkpoint ({str(pointed) if pointed else 'empty'}); training from scratch")
        last.unlink()
    return None


@HOOKS.register_module()
class HarnessCheckpointHook(CheckpointHook):
    """mmengine's CheckpointHook, but the digest is written beside each checkpoint once it is complete, and
    ``max_keep_ckpts`` prunes only after that: a kill while ``epoch_N.pth`` is written leaves the previous
    checkpoint, still named by ``last_checkpoint``. (mmengine deletes the oldest first, then saves.)"""

    def _save_checkpoint_with_step(self, runner, step, meta):
        keep, self.max_keep_ckpts = self.max_keep_ckpts, -1
        ids = deque(self.keep_ckpt_ids)
        if keep > 0 and not (ids and ids[-1] == step):
            ids.append(step)
            runner.message_hub.update_info("keep_ckpt_ids", list(ids))  # saved with the checkpoint, unpruned
        try:
            super()._save_checkpoint_with_step(runner, step, meta)
        except (OSError, RuntimeError) as exc:  # a full disk: torch says "file write failed", with no path
            if isinstance(exc, RuntimeError) and "write" not in str(exc).lower():
                raise
            path = Path(self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(step)))
            path.unlink(missing_ok=True)  # never leave a half-written checkpoint for a resume to trip on
            free = shutil.disk_usage(path.parent).free if path.parent.is_dir() else 0
            raise OutputError(f"{path}: cannot write the checkpoint ({one_line(exc, 120)}; "
                              f"{free / 2**20:.0f} MiB free there); free some space and rerun: it resumes from "
                              "the previous checkpoint") from None
        finally:
            self.max_keep_ckpts = keep
        if not is_main_process():
            return
        write_digest(self.last_ckpt)
        if keep > 0:
            while len(ids) > keep:
                old = Path(self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(ids.popleft())))
                for f in (old, digest_file(old)):
                    if f.is_file():
                        f.unlink()
            self.keep_ckpt_ids = ids
            runner.message_hub.update_info("keep_ckpt_ids", list(ids))
