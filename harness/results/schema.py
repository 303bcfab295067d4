"""What a results record and its per-query file must hold before the leaderboard believes them.

The leaderboard ranks numbers from folders someone else may have written, copied or damaged, so every
field it reads is checked here on read: types, required fields, finite values, ranges (ranks 1 ..
gallery size, AP in [0, 1], metrics in [0, 100]), equal array lengths, and that the per-query file is
the one its record describes (its query ids hash to the record's fingerprint, its means are the
record's metrics). A failed check is a ``RecordProblem`` whose text names the field; the store turns it
into one line naming the folder. Nothing here imports, executes or opens anything a record names.
"""
from __future__ import annotations

import hashlib
import math
import re
from datetime import datetime

import numpy as np

MIN_SCHEMA = 2  # schema 1 records have no dataset fingerprint or checkpoint provenance
METRIC_KEYS = ("R1", "R5", "R10", "mAP", "mINP")
PERCENT_KEYS = (*METRIC_KEYS, "mSD")  # percentages; anything else in `metrics` (rSum) only has to be finite
PER_QUERY_REQUIRED = ("first_rank", "ap", "query_key", "query_pid")
PER_QUERY_KNOWN = (*PER_QUERY_REQUIRED, "inp", "n_pos", "sd", "query_image", "query_source")
_TEXT = re.compile(r"[^\x00-\x1f\x7f]{1,300}")  # printable, one line: shown in tables and one-line messages
_HEX = re.compile(r"[0-9a-f]{6,64}")
MAX_RECORD_BYTES = 16 << 20
MAX_BYTES_PER_QUERY = 4096  # bound on an uncompressed per-query array member, per query (zip bombs)


class RecordProblem(ValueError):
    """A record or per-query file the leaderboard cannot stand behind; the text names the field."""


PUBLISHED_KEYS = {"dataset", "R1", "R5", "R10", "mAP", "mINP", "source"}  # plugin.PublishedResult.as_dict()


def _fail(field: str, why: str):
    raise RecordProblem(f"{field}: {why}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _text(rec: dict, key: str, where: str = "") -> str:
    v = rec.get(key)
    if not isinstance(v, str) or not _TEXT.fullmatch(v):
        _fail(where + key, "missing" if v is None else f"must be one line of printable text, got {_show(v)}")
    return v


def _show(v) -> str:
    s = repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _int(d: dict, key: str, where: str, lo: int | None = None, optional: bool = False):
    v = d.get(key)
    if v is None and optional:
        return None
    if not _is_int(v) or (lo is not None and v < lo):
        _fail(where + key, "missing" if v is None else f"must be an integer{f' >= {lo}' if lo is not None else ''}, "
              f"got {_show(v)}")
    return v


def _dict(d: dict, key: str, where: str = "", optional: bool = False) -> dict:
    v = d.get(key, {} if optional else None)
    if not isinstance(v, dict):
        _fail(where + key, "missing" if v is None else f"must be an object, got {_show(v)}")
    return v


def _metrics(m: dict, where: str, required=METRIC_KEYS) -> None:
    for k in required:
        if k not in m:
            _fail(f"{where}.{k}", "missing")
    for k, v in m.items():
        if not isinstance(k, str) or not _TEXT.fullmatch(k):
            _fail(where, f"bad metric name {_show(k)}")
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            _fail(f"{where}.{k}", f"must be a finite number, got {_show(v)}")
        if k in PERCENT_KEYS and not 0 <= v <= 100:
            _fail(f"{where}.{k}", f"must be a percentage in [0, 100], got {v}")


def _counts(fp: dict, where: str) -> None:
    counts = _dict(fp, "counts", where)
    for split, c in counts.items():
        if not isinstance(c, dict):
            _fail(f"{where}counts.{split}", "must be an object")
        for k in ("ids", "images", "captions"):
            _int(c, k, f"{where}counts.{split}.", lo=0, optional=True)


def _fingerprint(rec: dict, key: str, evaluation: bool) -> None:
    fp = _dict(rec, key)
    where = f"{key}."
    sha = fp.get("annotation_sha256")
    if not isinstance(sha, str) or not _HEX.fullmatch(sha):
        _fail(where + "annotation_sha256", f"must be a hex digest, got {_show(sha)}")
    _counts(fp, where)
    if evaluation:
        _int(fp, "num_queries", where, lo=1)
        _int(fp, "num_gallery", where, lo=1)
        q = fp.get("query_ids_sha256")
        if not isinstance(q, str) or not _HEX.fullmatch(q):
            _fail(where + "query_ids_sha256", f"must be a hex digest, got {_show(q)}")


def _weights(rec: dict) -> None:
    w = rec.get("encoder_weights", "random-init")
    if isinstance(w, str):
        if not _TEXT.fullmatch(w):
            _fail("encoder_weights", "must be one line of text")
        return
    if not isinstance(w, list) or not w:
        _fail("encoder_weights", f"must be 'random-init' or a list of {{path, sha256}}, got {_show(w)}")
    for i, x in enumerate(w):
        if not isinstance(x, dict):
            _fail(f"encoder_weights[{i}]", "must be an object")
        _text(x, "path", f"encoder_weights[{i}].")
        if not isinstance(x.get("sha256"), str) or not _HEX.fullmatch(x["sha256"]):
            _fail(f"encoder_weights[{i}].sha256", "must be a hex digest")


def _code(d: dict, where: str) -> None:
    sha, dirty = d.get("git_sha"), d.get("git_dirty")
    if sha is not None and (not isinstance(sha, str) or not _HEX.fullmatch(sha)):
        _fail(where + "git_sha", f"must be a hex commit id or null, got {_show(sha)}")
    if dirty is not None and not isinstance(dirty, bool):
        _fail(where + "git_dirty", f"must be true, false or null, got {_show(dirty)}")


def _deviations(rec: dict) -> None:
    devs = rec.get("deviations", [])
    if not isinstance(devs, list):
        _fail("deviations", "must be a list")
    for i, d in enumerate(devs):
        if not isinstance(d, dict):
            _fail(f"deviations[{i}]", "must be an object")
        for k in ("id", "ours", "released"):
            v = d.get(k)
            if not isinstance(v, str) or not v.strip() or not v.isprintable():
                _fail(f"deviations[{i}].{k}", "must be printable text")
        if d.get("switch") not in (None, "") and (not isinstance(d["switch"], str) or not d["switch"].isprintable()):
            _fail(f"deviations[{i}].switch", "must be printable text")


def _display(rec: dict) -> None:
    if "display" not in rec:
        return  # records written before the label was stored: the leaderboard derives one from the config
    d = _dict(rec, "display")
    _text(d, "label", "display.")
    variant = d.get("variant")
    if not isinstance(variant, list) or not all(isinstance(v, str) and _TEXT.fullmatch(v) for v in variant):
        _fail("display.variant", "must be a list of one-line strings")
    if not isinstance(d.get("published_counts"), bool):
        _fail("display.published_counts", "must be true or false")
    published = d.get("published", [])
    if not isinstance(published, list):
        _fail("display.published", f"must be a list, got {_show(published)}")
    for i, p in enumerate(published):
        where = f"display.published[{i}]"
        if not isinstance(p, dict) or set(p) != PUBLISHED_KEYS:
            _fail(where, f"must be an object with exactly {', '.join(sorted(PUBLISHED_KEYS))}")
        if p["dataset"] != rec.get("eval_dataset"):
            _fail(f"{where}.dataset", f"must be the record's eval_dataset, got {_show(p['dataset'])}")
        _text(p, "source", where + ".")
        for k in ("R1", "R5", "R10", "mAP", "mINP"):
            v = p[k]
            if v is None and k in ("mAP", "mINP"):
                continue
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or not 0 <= v <= 100:
                _fail(f"{where}.{k}", f"must be a percentage in [0, 100]{' or null' if k in ('mAP', 'mINP') else ''}, "
                      f"got {_show(v)}")


def validate_record(rec) -> dict:
    """``rec`` (parsed record.json) checked field by field; returns it, or raises RecordProblem."""
    if not isinstance(rec, dict):
        raise RecordProblem(f"record.json must hold an object, not {type(rec).__name__}")
    version = _int(rec, "schema_version", "", lo=1)
    if version < MIN_SCHEMA:
        raise RecordProblem(f"schema {version} record has no dataset fingerprint or checkpoint provenance; "
                            f"re-create it with `harness eval` (schema {MIN_SCHEMA} or later)")
    for key in ("record_id", "method", "train_dataset", "eval_dataset", "split", "config_hash"):
        _text(rec, key)
    created = _text(rec, "created")
    try:
        datetime.fromisoformat(created)
    except ValueError:
        _fail("created", f"not an ISO date-time: {_show(created)}")
    if rec.get("kind") not in ("run", "eval"):
        _fail("kind", f"must be 'run' or 'eval', got {_show(rec.get('kind'))}")
    _int(rec, "seed", "")
    _dict(rec, "config")
    _fingerprint(rec, "train_fingerprint", evaluation=False)
    _fingerprint(rec, "eval_fingerprint", evaluation=True)
    _metrics(_dict(rec, "metrics"), "metrics")
    for src, m in _dict(rec, "per_source", optional=True).items():
        if not isinstance(m, dict):
            _fail(f"per_source.{src}", "must be an object")
        _metrics(m, f"per_source.{src}", required=("R1",))
    sel = _dict(rec, "selection")
    _text(sel, "rule", "selection.")
    _int(sel, "selected_epoch", "selection.", lo=0, optional=True)
    _int(_dict(rec, "checkpoint", optional=True), "epoch", "checkpoint.", lo=0, optional=True)
    _weights(rec)
    _code(rec, "")
    history = rec.get("code_history") or []
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        _fail("code_history", "must be a list of objects or null")
    for i, h in enumerate(history):
        _code(h, f"code_history[{i}].")
    _deviations(rec)
    _display(rec)
    return rec


def query_ids_sha256(pids, keys) -> str:
    """The fingerprint's hash of the ordered (identity, query key) pairs (harness/engine/record_builder.py)."""
    blob = "\n".join(f"{pid}\t{key}" for pid, key in zip(pids.tolist(), keys.tolist()))
    return hashlib.sha256(blob.encode()).hexdigest()


def check_npz_sizes(infos, num_queries: int) -> None:
    """Refuse members whose uncompressed size no honest per-query array of ``num_queries`` reaches."""
    bound = 1024 + MAX_BYTES_PER_QUERY * num_queries
    for info in infos:
        if info.file_size > bound:
            raise RecordProblem(f"per_query.npz: member {info.filename} would unpack to {info.file_size} bytes, more "
                                f"than any array of {num_queries} queries")


def validate_per_query(pq: dict[str, np.ndarray], rec: dict) -> dict[str, np.ndarray]:
    """Arrays of per_query.npz checked against their (validated) record; returns them or raises."""
    fp = rec["eval_fingerprint"]
    n, gallery = fp["num_queries"], fp["num_gallery"]
    for k in PER_QUERY_REQUIRED:
        if k not in pq:
            _fail(f"per_query.npz: {k}", "missing")
    for k, a in pq.items():
        if k not in PER_QUERY_KNOWN:
            continue  # an array the leaderboard does not read (written by a later harness) is no reason to refuse
        if a.ndim != 1 or len(a) != n:
            _fail(f"per_query.npz: {k}", f"must hold one value per query ({n}), has shape {a.shape}")
    fr, ap = pq["first_rank"], pq["ap"]
    if fr.dtype.kind not in "iu":
        _fail("per_query.npz: first_rank", f"must be integers, not {fr.dtype}")
    if fr.min() < 1 or fr.max() > gallery:
        _fail("per_query.npz: first_rank", f"ranks must lie in 1..{gallery} (gallery size), found "
              f"{fr.min()}..{fr.max()}")
    for k in ("ap", "inp"):
        if k in pq:
            a = pq[k]
            if a.dtype.kind != "f" or not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
                _fail(f"per_query.npz: {k}", "must be finite floats in [0, 1]")
    if pq["query_key"].dtype.kind != "U":
        _fail("per_query.npz: query_key", f"must be strings, not {pq['query_key'].dtype}")
    if pq["query_pid"].dtype.kind not in "iu":
        _fail("per_query.npz: query_pid", f"must be integers, not {pq['query_pid'].dtype}")
    if "query_source" in pq and pq["query_source"].dtype.kind != "U":
        _fail("per_query.npz: query_source", "must be strings")
    if query_ids_sha256(pq["query_pid"], pq["query_key"]) != fp["query_ids_sha256"]:
        _fail("per_query.npz: query_key/query_pid", "are not the queries of eval_fingerprint.query_ids_sha256")
    m = rec["metrics"]
    derived = {"R1": (fr <= 1).mean() * 100, "R5": (fr <= 5).mean() * 100, "R10": (fr <= 10).mean() * 100,
               "mAP": ap.mean() * 100}
    if "inp" in pq:
        derived["mINP"] = pq["inp"].mean() * 100
    for k, v in derived.items():
        if abs(float(v) - m[k]) > 1e-6 * max(1.0, abs(m[k])):
            _fail(f"metrics.{k}", f"{m[k]} is not what per_query.npz gives ({float(v)})")
    return pq
