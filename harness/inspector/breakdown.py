"""R1 and mAP of one record split by a property of the query: caption length, how many gallery images
its identity has, its source (UFine3C), and on the built-in data the generated attributes of its identity.
Each group carries its query and identity counts and an identity-bootstrap 95% CI (queries of one person
are not independent; ``harness.leaderboard.stats.bootstrap_ci`` resamples identities)."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .load import Inspected

WORD_EDGES = (10, 20, 40, 80)  # caption length buckets: 1-10, 11-20, 21-40, 41-80, > 80 words
POSITIVE_EDGES = (1, 2, 4, 8)  # gallery positives: 1, 2, 3-4, 5-8, > 8


@dataclass
class Group:
    name: str
    queries: int
    identities: int
    r1: tuple[float, float, float]  # value, CI low, CI high (percent)
    map: tuple[float, float, float]


@dataclass
class Breakdown:
    title: str
    groups: list[Group]
    note: str = ""


def _buckets(values: np.ndarray, edges, unit: str) -> list[tuple[str, np.ndarray]]:
    out, lo = [], 0
    for e in edges:
        label = f"{e} {unit}" if e == lo + 1 else f"{lo + 1}-{e} {unit}"
        out.append((label, values <= e if lo == 0 else (values > lo) & (values <= e)))
        lo = e
    out.append((f"> {lo} {unit}", values > lo))
    return out


def _ci(values: np.ndarray, pids: np.ndarray, resamples: int) -> tuple[float, float, float]:
    from ..leaderboard.stats import bootstrap_ci  # scipy: only when a page is built

    mean, lo, hi = bootstrap_ci(values, np.zeros_like(values), cluster=pids, n_resamples=resamples)
    return 100 * mean, 100 * lo, 100 * hi


def _groups(r: Inspected, parts: list[tuple[str, np.ndarray]], resamples: int) -> list[Group]:
    hit1 = (r.first_rank == 1).astype(np.float64)
    out = []
    for name, mask in parts:
        if not mask.any():
            continue
        pids = r.query_pid[mask]
        out.append(Group(name, int(mask.sum()), len(np.unique(pids)), _ci(hit1[mask], pids, resamples),
                         _ci(r.ap[mask], pids, resamples)))
    return out


def breakdowns(r: Inspected, data_root: Path | None, resamples: int = 1000) -> list[Breakdown]:
    words = np.array([len(str(c).split()) for c in r.caption])
    out = [Breakdown("caption length (words)", _groups(r, _buckets(words, WORD_EDGES, "words"), resamples)),
           Breakdown("gallery images of the query's identity",
                     _groups(r, _buckets(r.n_pos, POSITIVE_EDGES, "images"), resamples))]
    sources = sorted(set(r.query_source) - {""})
    if sources:
        out.append(Breakdown("source", _groups(r, [(s, r.query_source == s) for s in sources], resamples)))
    people = synth_people(r, data_root)
    if people is not None:
        out += attribute_breakdowns(r, people, resamples)
    return out


def synth_people(r: Inspected, data_root: Path | None) -> dict[int, dict] | None:
    """{identity id: generated attributes} on the built-in data, else None. ``synth`` writes them next to
    its annotations (``attributes.json``, identity id = position + 1); ``synth3c`` draws its identities
    first from ``default_rng(seed + 10000)`` (harness/data/synth/generate.py), so they are drawn again here
    from the seed and ``xdomain_ids`` in the record's config."""
    name = r.record.get("eval_dataset")
    if name == "synth":
        f = (data_root / "attributes.json") if data_root is not None else None
        if f is None or not f.is_file():
            return None
        try:
            rows = json.loads(f.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None
        if not isinstance(rows, list) or not all(isinstance(p, dict) for p in rows):
            return None
        return {i + 1: p for i, p in enumerate(rows)}
    if name == "synth3c":
        cfg = r.record.get("config") if isinstance(r.record.get("config"), dict) else {}
        sections = [cfg.get("dataset")] + list(cfg.get("cross_domain") or [])
        ds = next((s for s in sections if isinstance(s, dict) and s.get("type") == "synth3c"), None)
        if ds is None:
            return None
        from ..data.synth.attributes import sample_identities
        from ..data.synth.generate import DEFAULTS

        seed, n = ds.get("seed", DEFAULTS["seed"]), ds.get("xdomain_ids", DEFAULTS["xdomain_ids"])
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (seed, n)) or not 0 < n <= 100_000:
            return None
        people = sample_identities(n, np.random.default_rng(seed + 10_000))
        return {i + 1: dict(p.__dict__) for i, p in enumerate(people)}
    return None


def _person_key(p: dict, swap: bool = False) -> tuple:
    d = dict(p)
    if swap:
        d["upper_colour"], d["lower_colour"] = d.get("lower_colour"), d.get("upper_colour")
    return tuple(sorted((k, str(v)) for k, v in d.items()))


def attribute_breakdowns(r: Inspected, people: dict[int, dict], resamples: int) -> list[Breakdown]:
    """The colour-swapped pairs (an identity whose twin, upper and lower colours exchanged, is in the same
    gallery: a bag-of-colour-words model cannot tell them apart) vs the rest; upper and lower garment type."""
    gallery_ids = set(np.unique(r.gallery_pid).tolist())
    keys = {_person_key(people[i]) for i in gallery_ids if i in people}
    known = np.array([int(p) in people for p in r.query_pid])
    if not known.any():
        return []
    twin = np.array([bool(k) and _person_key(people[int(p)], swap=True) in keys
                     for p, k in zip(r.query_pid, known)])
    note = f"{int((~known).sum())} queries of identities without attributes left out" if (~known).any() else ""
    out = [Breakdown("colour-swapped twin in the gallery",
                     _groups(r, [("twin present", known & twin), ("no twin", known & ~twin)], resamples), note)]
    for field, title in (("upper", "upper garment"), ("lower", "lower garment")):
        vals = np.array([str(people[int(p)].get(field)) if k else "" for p, k in zip(r.query_pid, known)])
        out.append(Breakdown(title, _groups(r, [(v, vals == v) for v in sorted(set(vals) - {""})], resamples), note))
    return out


CSV_HEADER = ["record", "breakdown", "group", "queries", "identities", "R1", "R1_low", "R1_high", "mAP", "mAP_low",
              "mAP_high"]


def to_csv(tables: list[tuple[str, list[Breakdown]]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_HEADER)
    for rid, bds in tables:
        for b in bds:
            for g in b.groups:
                w.writerow([rid, b.title, g.name, g.queries, g.identities,
                            *(f"{x:.2f}" for x in (*g.r1, *g.map))])
    return buf.getvalue()
