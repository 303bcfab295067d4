"""Results store. Each record is a folder ``<root>/<record_id>/`` holding ``record.json`` and
``per_query.npz``. It is written under a hidden temporary name and renamed into place, so a reader
(the leaderboard) never sees a half-written record and concurrent writers never collide.

``read`` is the leaderboard's way in: a store may have been copied, damaged or written by someone else,
so every folder is validated (harness/results/schema.py) and a bad one comes back as (folder, reason)
instead of a record; nothing a record names is opened, imported or executed."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..atomic import publish_folder
from .schema import MAX_RECORD_BYTES, RecordProblem, check_npz_sizes, validate_per_query, validate_record

SCHEMA_VERSION = 2
RETRIEVALS = "retrievals.npz"  # top-k retrievals, captions and gallery paths, for `harness inspect` only
RETRIEVAL_KEYS = ("topk_index", "topk_score", "query_caption", "gallery_path", "gallery_pid", "image_dir",
                  "data_root_hint")


def _name_part(v) -> str:
    """A record id component: never a path separator or '..', whatever the method or dataset is called."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(v)).strip(".") or "_"


TMP_PREFIX = ".tmp-"  # a record being written: .tmp-<host>-<pid>-<record id>-<random>


def _host() -> str:
    return _name_part(socket.gethostname())[:64]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def temporary_writer(d: Path) -> tuple[str, int] | None:
    """(host, pid) of the process writing the temporary record folder ``d``, read from its name; None for
    a name that does not say (made before the writer was named)."""
    m = re.match(re.escape(TMP_PREFIX) + r"([A-Za-z0-9._-]+?)-(\d+)-", d.name)
    return (m.group(1), int(m.group(2))) if m else None


class ResultsStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def write(self, record: dict, per_query: dict[str, np.ndarray]) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        rid = "__".join(_name_part(record[k]) for k in ("method", "train_dataset", "eval_dataset")) + \
            f"__s{_name_part(record['seed'])}__{stamp}-{uuid.uuid4().hex[:6]}"
        record = {"schema_version": SCHEMA_VERSION, "record_id": rid,
                  "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), **record}
        self.remove_dead_temporaries()
        tmp = self.root / f"{TMP_PREFIX}{_host()}-{os.getpid()}-{rid}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()  # mode 0777 & ~umask (tempfile.mkdtemp's 0700 hid records from colleagues sharing the store)
        try:
            retrievals = {k: per_query[k] for k in RETRIEVAL_KEYS if k in per_query}
            if retrievals:  # its own file: the leaderboard's per_query.npz stays as it was
                np.savez_compressed(tmp / RETRIEVALS, **retrievals)
            np.savez_compressed(tmp / "per_query.npz", **{k: v for k, v in per_query.items() if k not in retrievals})
            (tmp / "record.json").write_text(json.dumps(record, indent=2, default=_json_default))
            final = self.root / rid
            publish_folder(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def temporaries(self) -> list[tuple[Path, str]]:
        """Temporary record folders of unfinished writes, each with what is known of its writer."""
        out = []
        if not self.root.is_dir():
            return out
        here = _host()
        for d in sorted(self.root.glob(TMP_PREFIX + "*")):
            w = temporary_writer(d)
            if w is None:
                state = "an unfinished record write by an unnamed writer; remove it when no job writes to this store"
            elif w[0] == here and not _pid_alive(w[1]):
                state = (f"an unfinished record write whose writer (pid {w[1]} on {w[0]}) has ended; the next "
                         "`harness run`/`eval` writing to this store removes it")
            else:
                state = f"a record being written by pid {w[1]} on {w[0]}"
            out.append((d, state))
        return out

    def remove_dead_temporaries(self) -> list[Path]:
        """Remove temporary folders left by writers of this host that have ended (a kill inside ``write``).
        Folders of live writers, other hosts or unnamed writers are left alone: their writer may still run."""
        gone = []
        if not self.root.is_dir():
            return gone
        here = _host()
        for d in self.root.glob(TMP_PREFIX + "*"):
            w = temporary_writer(d)
            if w is not None and w[0] == here and w[1] != os.getpid() and not _pid_alive(w[1]):
                shutil.rmtree(d, ignore_errors=True)
                gone.append(d)
        return gone

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

    def read(self) -> tuple[list[dict], list[tuple[str, str]]]:
        """(validated records, [(folder, reason)] for every folder that is not one). Each good record
        carries its folder (``_path``) and its checked per-query arrays (``_per_query``)."""
        good, bad = [], []
        if not self.root.is_dir():
            return good, [(str(self.root), "not a folder")]
        bad += [(str(d), state) for d, state in self.temporaries() if "being written" not in state]
        for d in sorted(self.root.iterdir()):
            if d.name.startswith("."):
                continue  # a writer's temporary folder (listed above when its writer has ended), or hidden
            if not d.is_symlink() and not d.is_dir():
                continue  # a stray file is no record
            try:
                good.append(_read_folder(d))
            except RecordProblem as exc:
                bad.append((str(d), str(exc)))
        return good, bad

    @staticmethod
    def per_query(record: dict) -> dict[str, np.ndarray]:
        if "_per_query" in record:  # checked on read (ResultsStore.read)
            return record["_per_query"]
        with np.load(Path(record["_path"]) / "per_query.npz", allow_pickle=False) as z:
            return {k: z[k] for k in z.files}


def _regular_file(d: Path, name: str) -> Path:
    f = d / name
    if f.is_symlink() or (f.exists() and not f.is_file()):
        raise RecordProblem(f"{name} is not a regular file (links are not followed out of the store)")
    if not f.exists():
        raise RecordProblem(f"{name} is missing")
    return f


def _reject_constant(name):
    raise RecordProblem(f"record.json: {name} is not a number the schema allows")


def _read_folder(d: Path) -> dict:
    if d.is_symlink():
        raise RecordProblem("the record folder is a symbolic link (links are not followed out of the store)")
    f = _regular_file(d, "record.json")
    if f.stat().st_size > MAX_RECORD_BYTES:
        raise RecordProblem(f"record.json is larger than {MAX_RECORD_BYTES} bytes")
    try:
        rec = json.loads(f.read_bytes().decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise RecordProblem(f"record.json is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise RecordProblem(f"record.json is not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except RecursionError:
        raise RecordProblem("record.json is nested too deeply") from None
    validate_record(rec)
    rec = {k: v for k, v in rec.items() if not k.startswith("_")}  # the store's own keys, never the file's
    npz = _regular_file(d, "per_query.npz")
    try:
        with np.load(npz, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise RecordProblem("per_query.npz is not an .npz archive")
            check_npz_sizes(z.zip.infolist(), rec["eval_fingerprint"]["num_queries"])
            pq = {k: z[k] for k in z.files}
    except RecordProblem:
        raise
    except Exception as exc:  # noqa: BLE001  (zip, npy header, pickle refusal: all mean an unreadable file)
        raise RecordProblem(f"per_query.npz cannot be read: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:160]}") from None
    validate_per_query(pq, rec)
    rec["_path"], rec["_per_query"] = str(d), pq
    return rec


def content_digest(rec: dict) -> str:
    """sha256 of a read record's fields and per-query arrays: equal for copies of one record."""
    h = hashlib.sha256(json.dumps({k: v for k, v in rec.items() if not k.startswith("_")}, sort_keys=True).encode())
    for k, a in sorted(rec["_per_query"].items()):
        h.update(k.encode() + str(a.dtype).encode() + np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def read_stores(roots) -> tuple[list[dict], list[tuple[str, str]], int]:
    """Records of several stores, each counted once: (records, problems, copies dropped). A record id
    found twice with the same content is one record; with different content neither is believed."""
    by_id: dict[str, list[dict]] = {}
    problems: list[tuple[str, str]] = []
    seen_roots = set()
    for root in roots:
        key = Path(root).resolve()
        if key in seen_roots:
            continue
        seen_roots.add(key)
        good, bad = ResultsStore(root).read()
        problems += bad
        for rec in good:
            by_id.setdefault(rec["record_id"], []).append(rec)
    out, copies = [], 0
    for rid, recs in by_id.items():
        digests = {content_digest(r) for r in recs}
        if len(digests) == 1:
            out.append(recs[0])
            copies += len(recs) - 1
        else:
            where = ", ".join(r["_path"] for r in recs)
            problems += [(r["_path"], f"record id {rid} is stored {len(recs)} times with different content "
                                      f"({where}); none of them is ranked") for r in recs]
    return sorted(out, key=lambda r: r["_path"]), problems, copies


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
