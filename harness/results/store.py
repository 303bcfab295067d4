"""Results store. Each record is a folder ``<root>/<record_id>/`` holding ``record.json`` and
``per_query.npz``. It is written under a hidden temporary name and renamed into place, so a reader
(the leaderboard) never sees a half-written record and concurrent writers never collide."""
from __future__ import annotations

import json
import os
import shutil
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 2


def _fsync_file(path: Path):
    with open(path, "rb") as f:
        os.fsync(f.fileno())


class ResultsStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def write(self, record: dict, per_query: dict[str, np.ndarray]) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        rid = (f"{record['method']}__{record['train_dataset']}__{record['eval_dataset']}__s{record['seed']}"
               f"__{stamp}-{uuid.uuid4().hex[:6]}")
        record = {"schema_version": SCHEMA_VERSION, "record_id": rid,
                  "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **record}
        tmp = self.root / f".tmp-{rid}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()  # mode 0777 & ~umask (tempfile.mkdtemp's 0700 hid records from colleagues sharing the store)
        try:
            np.savez_compressed(tmp / "per_query.npz", **per_query)
            (tmp / "record.json").write_text(json.dumps(record, indent=2, default=_json_default))
            _fsync_file(tmp / "per_query.npz")
            _fsync_file(tmp / "record.json")
            final = self.root / rid
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def records(self) -> list[dict]:
        """Every complete record (hidden temporary folders are ignored)."""
        out = []
        if not self.root.exists():
            return out
        for d in sorted(self.root.iterdir()):
            if d.name.startswith(".") or not d.is_dir():
                continue
            f = d / "record.json"
            if not f.is_file() or not (d / "per_query.npz").is_file():
                continue
            try:
                rec = json.loads(f.read_text())
            except json.JSONDecodeError as exc:
                warnings.warn(f"skipping unreadable record {f}: {exc}")
                continue
            rec["_path"] = str(d)
            out.append(rec)
        return out

    @staticmethod
    def per_query(record: dict) -> dict[str, np.ndarray]:
        with np.load(Path(record["_path"]) / "per_query.npz", allow_pickle=False) as z:
            return {k: z[k] for k in z.files}


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, (np.ndarray,)):
        return o.tolist()
    if isinstance(o, (Path, tuple, set)):
        return str(o) if isinstance(o, Path) else list(o)
    return repr(o)
