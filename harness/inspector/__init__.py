"""``harness inspect``: what a record retrieved, per query, from the results store alone (no model, no
torch): the page of top-k thumbnails with true matches marked, two records' disagreements side by side,
and R1/mAP breakdowns with identity-bootstrap CIs (also as CSV)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import atomic
from .breakdown import breakdowns, to_csv
from .load import InspectError, Inspected, load_record, same_queries
from .page import page_html, query_block
from .thumbs import Thumbnails

DEFAULT_SHOWN = 10

__all__ = ["InspectError", "Inspected", "InspectResult", "inspect_records", "load_record"]


@dataclass
class InspectResult:
    page: Path
    csv: Path
    shown: int  # queries shown
    missing_images: int
    counts: dict  # --vs: {"a_only": n, "b_only": n}


def _query_ids(r: Inspected, ids: list[str]) -> list[int]:
    by_key = {str(k): i for i, k in enumerate(r.query_key)}
    out = []
    for q in ids:
        if q in by_key:
            out.append(by_key[q])
        elif q.isdigit() and int(q) < len(r.query_key):
            out.append(int(q))
        else:
            raise InspectError(f"--query {q}: no such query in {r.folder} (give an index 0..{len(r.query_key) - 1} "
                               f"or a query key such as {r.query_key[0]})")
    return out


def worst(r: Inspected, n: int) -> list[int]:
    """The ``n`` queries whose first true match is ranked lowest (ties: the lower AP first)."""
    return [int(i) for i in np.lexsort((r.ap, -r.first_rank))[:n]]


def disagreements(a: Inspected, b: Inspected, n: int) -> tuple[list[int], list[int], int, int]:
    """Queries A gets at rank 1 and B does not (the worse B's rank the earlier), and the reverse; both counts."""
    a_only = np.nonzero((a.first_rank == 1) & (b.first_rank > 1))[0]
    b_only = np.nonzero((b.first_rank == 1) & (a.first_rank > 1))[0]
    a_sorted = a_only[np.argsort(-b.first_rank[a_only], kind="stable")]
    b_sorted = b_only[np.argsort(-a.first_rank[b_only], kind="stable")]
    return [int(i) for i in a_sorted[:n]], [int(i) for i in b_sorted[:n]], len(a_only), len(b_only)


def inspect_records(record: str | Path, data_root: str | Path | None, out: str | Path | None = None,
                    vs: str | Path | None = None, worst_n: int | None = None, queries: list[str] | None = None,
                    resamples: int = 1000) -> InspectResult:
    """Write ``index.html`` and ``breakdowns.csv`` into ``out``; every check runs before anything is written."""
    a = load_record(record)
    b = load_record(vs) if vs else None
    if b is not None:
        same_queries(a, b)
    if data_root is None:
        raise InspectError(f"--data-root: not given; pass the dataset folder {a.folder.name} was evaluated on "
                           f"(the evaluation read {a.data_root_hint})")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise InspectError(f"--data-root {root}: no such folder (the evaluation read {a.data_root_hint})")
    if worst_n is not None and worst_n < 1:
        raise InspectError(f"--worst {worst_n}: give a number of queries >= 1")
    thumbs = Thumbnails(root, a.image_dir)
    records = [a] + ([b] if b is not None else [])
    tables = [(r.label, breakdowns(r, root, resamples)) for r in records]
    sections, counts, shown = [], {}, 0
    n = worst_n or DEFAULT_SHOWN
    asked = _query_ids(a, queries) if queries else []
    if b is None:
        if asked:
            sections.append(("queries", "Queries asked for", "".join(query_block(a, q, thumbs) for q in asked)))
            shown += len(asked)
        if worst_n is not None or not asked:
            picked = worst(a, n)
            sections.append(("worst", f"The {len(picked)} worst first-match ranks",
                             "".join(query_block(a, q, thumbs) for q in picked)))
            shown += len(picked)
    else:
        def pair(q):
            return (f'<div class="pair">{query_block(a, q, thumbs, "A")}{query_block(b, q, thumbs, "B")}</div>')

        if asked:
            sections.append(("queries", "Queries asked for (A | B)", "".join(pair(q) for q in asked)))
            shown += len(asked)
        a_only, b_only, na, nb = disagreements(a, b, n)
        counts = dict(a_only=na, b_only=nb, both=int(((a.first_rank == 1) & (b.first_rank == 1)).sum()),
                      neither=int(((a.first_rank > 1) & (b.first_rank > 1)).sum()))
        head = (f'<p class="note" id="vs-counts" data-a-only="{na}" data-b-only="{nb}">A = {a.label}, B = {b.label}: '
                f"{na} queries at rank 1 for A only, {nb} for B only, {counts['both']} for both, "
                f"{counts['neither']} for neither. Shown: up to {n} of each, where the other record ranks the true "
                "match lowest first.</p>")
        sections.append(("vs-a", f"A at rank 1, B not ({na})", head + ("".join(pair(q) for q in a_only) or
                                                                      '<p class="note">none</p>')))
        sections.append(("vs-b", f"B at rank 1, A not ({nb})", "".join(pair(q) for q in b_only) or
                         '<p class="note">none</p>'))
        shown += len(a_only) + len(b_only)
    page = page_html(records, sections, tables, thumbs)
    out = Path(out) if out else Path("inspect") / a.folder.name
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(out / "index.html", page)
    named = [(str(r.record.get("record_id", r.folder.name)), bds) for r, (_, bds) in zip(records, tables)]
    atomic.write_text(out / "breakdowns.csv", to_csv(named))
    return InspectResult(out / "index.html", out / "breakdowns.csv", shown, len(thumbs.missing), counts)
