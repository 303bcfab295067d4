"""One record folder read for ``harness inspect``: the record, its per-query arrays and its retrievals,
checked for the shapes and ranges the page relies on. Nothing read here is imported or executed; the
gallery paths are used only below the ``--data-root`` the user gives (see ``thumbs.py``)."""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import HarnessError, one_line

RETRIEVALS = "retrievals.npz"  # written by harness.results.store when the evaluation kept a top-k


class InspectError(HarnessError):
    """A record that cannot be inspected as given (names the folder and what is wrong)."""


@dataclass
class Inspected:
    """Everything the page shows of one record; arrays are per query (Q) unless noted."""

    folder: Path
    record: dict
    first_rank: np.ndarray  # int64, 1-based
    ap: np.ndarray  # float64
    n_pos: np.ndarray  # int64: gallery images of the query's identity
    query_key: np.ndarray  # str
    query_pid: np.ndarray  # int64
    query_source: np.ndarray  # str ('' when the dataset has none)
    caption: np.ndarray  # str
    topk_index: np.ndarray  # [Q, k] int
    topk_score: np.ndarray  # [Q, k] float
    gallery_path: np.ndarray  # [G] str, relative to the image folder
    gallery_pid: np.ndarray  # [G] int64
    image_dir: str  # the image folder relative to the data root
    data_root_hint: str  # the folder the evaluation read: quoted in messages, never opened

    @property
    def label(self) -> str:
        r = self.record
        return (f"{r.get('method', '?')} s{r.get('seed', '?')} "
                f"({r.get('train_dataset', '?')} -> {r.get('eval_dataset', '?')})")

    @property
    def hits(self) -> np.ndarray:
        """[Q, k] bool: the retrieved image shows the query's identity."""
        return self.gallery_pid[self.topk_index] == self.query_pid[:, None]


def _npz(path: Path, folder: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise InspectError(f"{path}: unreadable ({one_line(exc)})") from None


def load_record(folder: str | Path) -> Inspected:
    folder = Path(folder)
    rec_file = folder / "record.json"
    if not rec_file.is_file():
        raise InspectError(f"{folder}: not a record folder (no record.json); give a folder under the results store, "
                           "e.g. results/<record_id>")
    try:
        record = json.loads(rec_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InspectError(f"{rec_file}: unreadable ({exc})") from None
    if not isinstance(record, dict):
        raise InspectError(f"{rec_file}: expected a JSON object, found {type(record).__name__}")
    if not (folder / RETRIEVALS).is_file():
        raise InspectError(f"{folder}: no {RETRIEVALS} (the record was made before retrievals were stored, or with "
                           "eval.store_topk=0); evaluate the checkpoint again with `harness eval`")
    pq = _npz(folder / "per_query.npz", folder) if (folder / "per_query.npz").is_file() else None
    if pq is None:
        raise InspectError(f"{folder}: no per_query.npz")
    rt = _npz(folder / RETRIEVALS, folder)

    def need(d, name, fname, kind):
        if name not in d:
            raise InspectError(f"{folder / fname}: no array '{name}'")
        a = d[name]
        if kind == "int" and not np.issubdtype(a.dtype, np.integer):
            raise InspectError(f"{folder / fname}: '{name}' must be integers, found {a.dtype}")
        if kind == "float" and not (np.issubdtype(a.dtype, np.floating) and np.isfinite(a).all()):
            raise InspectError(f"{folder / fname}: '{name}' must be finite numbers")
        if kind == "str" and a.dtype.kind != "U":
            raise InspectError(f"{folder / fname}: '{name}' must be text, found {a.dtype}")
        return a

    fr = need(pq, "first_rank", "per_query.npz", "int").astype(np.int64)
    Q = len(fr)
    arrays = dict(ap=need(pq, "ap", "per_query.npz", "float"), n_pos=need(pq, "n_pos", "per_query.npz", "int"),
                  query_key=need(pq, "query_key", "per_query.npz", "str"),
                  query_pid=need(pq, "query_pid", "per_query.npz", "int"),
                  caption=need(rt, "query_caption", RETRIEVALS, "str"))
    for name, a in arrays.items():
        if a.shape != (Q,):
            raise InspectError(f"{folder}: '{name}' has shape {a.shape}; expected ({Q},) like first_rank")
    src = pq.get("query_source")
    src = src if src is not None and src.dtype.kind == "U" and src.shape == (Q,) else np.full(Q, "", dtype="U1")
    gpath = need(rt, "gallery_path", RETRIEVALS, "str")
    idx = need(rt, "topk_index", RETRIEVALS, "int").astype(np.int64)
    score = need(rt, "topk_score", RETRIEVALS, "float")
    G = len(gpath)
    if idx.ndim != 2 or idx.shape[0] != Q or score.shape != idx.shape or idx.shape[1] == 0:
        raise InspectError(f"{folder / RETRIEVALS}: topk_index {idx.shape} / topk_score {score.shape} do not match "
                           f"{Q} queries")
    if Q == 0 or idx.min() < 0 or idx.max() >= G:
        raise InspectError(f"{folder / RETRIEVALS}: topk_index outside the {G} gallery images")
    if fr.min() < 1 or fr.max() > G:
        raise InspectError(f"{folder / 'per_query.npz'}: first_rank outside 1..{G}")
    image_dir = str(rt.get("image_dir", np.array("."))[()])
    hint = str(rt.get("data_root_hint", np.array("?"))[()])
    gpid = need(rt, "gallery_pid", RETRIEVALS, "int").astype(np.int64)
    if gpid.shape != (G,):
        raise InspectError(f"{folder / RETRIEVALS}: gallery_pid has shape {gpid.shape}; expected ({G},)")
    return Inspected(folder, record, fr, arrays["ap"].astype(np.float64), arrays["n_pos"].astype(np.int64),
                     arrays["query_key"], arrays["query_pid"].astype(np.int64), src, arrays["caption"], idx, score,
                     gpath, gpid, image_dir, hint)


def same_queries(a: Inspected, b: Inspected) -> None:
    """Two records can be set side by side only on the same queries in the same order."""
    fa, fb = (r.record.get("eval_fingerprint") or {} for r in (a, b))
    sa, sb = (f.get("query_ids_sha256") if isinstance(f, dict) else None for f in (fa, fb))
    if len(a.query_key) != len(b.query_key) or not np.array_equal(a.query_key, b.query_key) or sa != sb:
        raise InspectError(f"{a.folder} and {b.folder} are evaluated on different queries "
                           f"({a.record.get('eval_dataset')}, {len(a.query_key)} queries vs "
                           f"{b.record.get('eval_dataset')}, {len(b.query_key)}); --vs needs two records of one "
                           "evaluation set")
