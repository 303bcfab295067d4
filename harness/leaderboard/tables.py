"""Rebuild every leaderboard table from results stores alone (never from logs, configs or plugins).

One table per evaluation set and training data (both identified by fingerprint), in-domain and
cross-domain alike: mean ± std over seeds per row (harness/leaderboard/rows.py), every pair of rows
compared (Holm over the whole table), per-row provenance and the methods' declared deviations as
footnotes. Rows reported by the papers appear, marked, only when the records say the table's test split
has the published counts. Markdown, CSV, LaTeX (annotated and paper-ready) and a self-explanatory HTML
page, written as a whole into the output folder (harness/leaderboard/output.py).
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from ..errors import HarnessError
from ..results.store import read_stores
from . import DEFAULT_ALPHA, DEFAULT_RESAMPLES, html_page, latex, output
from .compare import below_best, pairwise, seed_averaged_scores
from .rows import plugin_source, Row, group_rows, label_rows, usable_records

METRICS = ["R1", "R5", "R10", "mAP", "mINP"]
CROSS_METRICS = ["mSD"]  # cross-domain tables also show the rank-ordered mSD and per-source R1
HARNESS, PAPER = "this harness", "paper"


class Table:
    """One leaderboard table: rows sorted by mean R1, comparisons, provenance, footnotes."""

    def __init__(self, rows: list[Row], resamples: int, alpha: float):
        first = rows[0].first
        self.eval_dataset, self.train_dataset = first["eval_dataset"], first["train_dataset"]
        self.cross = self.eval_dataset != self.train_dataset
        self.fingerprint = first["eval_fingerprint"]
        self.train_fingerprint = first["train_fingerprint"]
        label_rows(rows)
        self.rows = sorted(rows, key=lambda r: (-np.mean([x["metrics"]["R1"] for x in r.records]), r.label))
        self.scores = [seed_averaged_scores(r) for r in self.rows]
        self.comp = pairwise(self.rows, resamples, alpha, self.scores) if len(self.rows) > 1 else pd.DataFrame()
        self.marked = below_best(self.comp, self.rows[0].label) if len(self.comp) else set()
        self.deviations = self._footnotes()
        published = all(r.get("display", {}).get("published_counts") for row in self.rows for r in row.records)
        self.reported = self._paper_rows() if published else []
        self.metrics = METRICS + ([m for m in CROSS_METRICS if all(m in r["metrics"] for row in self.rows
                                                                   for r in row.records)] if self.cross else [])
        self.sources = sorted({s for row in self.rows for r in row.records for s in r.get("per_source", {})}) \
            if self.cross else []

    def _paper_rows(self) -> list[tuple]:
        """(method, dataset, R1, R5, R10, mAP, mINP, source) of the papers' numbers the rows' records carry
        (each method declares its own: ``RetrievalMethod.published``), one per method and source."""
        seen = {}
        for row in self.rows:
            for p in row.newest.get("display", {}).get("published", []):
                seen.setdefault((row.method, p["source"]), (row.method, p["dataset"], p["R1"], p["R5"], p["R10"],
                                                            p["mAP"], p["mINP"], p["source"]))
        return [seen[k] for k in sorted(seen)]

    def _footnotes(self) -> list[str]:
        notes: dict[str, int] = {}
        for row in self.rows:
            for d in row.newest.get("deviations", []):
                text = f"{row.method}: {d['id']}: {d['ours']} (released: {d['released']})" + \
                       (f"; switch: {d['switch']}" if d.get("switch") else "")
                notes.setdefault(text, len(notes) + 1)
                row.footnotes.append(notes[text])
        return list(notes)

    def values(self, row: Row, metric: str) -> np.ndarray:
        return np.array([r["metrics"][metric] for r in row.records], float)

    def marker(self, row: Row) -> str:
        return "".join(f"[{n}]" for n in sorted(set(row.footnotes)))

    @property
    def headers(self) -> list[str]:
        return ["#", "row", "numbers from", "seeds"] + self.metrics + (["R1 per source"] if self.sources else [])

    def cells(self) -> list[list]:
        out = []
        for i, row in enumerate(self.rows, 1):
            mark = self.marker(row)
            cells = [str(i), row.label + (f" {mark}" if mark else ""), HARNESS, str(len(row.records))]
            for k in self.metrics:
                vals = self.values(row, k)
                dag = "†" if (row.label, k) in self.marked else ""
                std = f" ± {vals.std(ddof=1):.2f}" if len(vals) > 1 else ""
                cells.append(f"{vals.mean():.2f}{std}{dag}")
            if self.sources:
                per = []
                for s in self.sources:
                    v = [r["per_source"][s]["R1"] for r in row.records if s in r.get("per_source", {})]
                    per.append(f"{s}: {np.mean(v):.2f}" if v else f"{s}: -")
                cells.append(", ".join(per))
            out.append(cells)
        return out

    def reported_cells(self) -> list[list]:
        extra = len(self.headers) - 4 - len(METRICS)
        return [["-", m, f"{PAPER} ({src})", "-"] + ["-" if v is None else f"{v:.2f}" for v in vals] + ["-"] * extra
                for m, _d, *vals, src in self.reported]

    def provenance(self) -> list[list]:
        out = []
        for i, row in enumerate(self.rows, 1):
            recs = row.records
            w = row.newest.get("encoder_weights", "random-init")
            weights = w if isinstance(w, str) else ", ".join(f"{x['path'].replace(chr(92), '/').rsplit('/', 1)[-1]} "
                                                             f"({x['sha256'][:8]})" for x in w)
            states = [s for r in recs for s in [*(r.get("code_history") or []), r]]  # trained by, and scored by
            shas = sorted({(s.get("git_sha") or "none")[:10] + ("+dirty" if s.get("git_dirty") else "")
                           for s in states})
            sel = sorted({f"{r['selection']['rule']} (epoch {r['selection'].get('selected_epoch')})" for r in recs})
            out.append([str(i), row.label, row.config_hash, ", ".join(map(str, row.seeds)), weights,
                        plugin_source(row.first)[:12], "; ".join(sel), ", ".join(shas),
                        ", ".join(sorted({r["kind"] for r in recs}))])
        return out

    @property
    def title(self) -> str:
        fp = self.fingerprint
        trained = f" (trained on {self.train_dataset})" if self.cross else ""
        return (f"{self.eval_dataset}{trained} — data {fp['annotation_sha256'][:8]}, "
                f"{fp['num_queries']} queries, {fp['num_gallery']} gallery images")

    @property
    def slug(self) -> str:
        """File name stem: the evaluation set plus a short hash of the table's data key (fingerprints)."""
        key = json.dumps([self.train_dataset, self.fingerprint, self.train_fingerprint], sort_keys=True)
        stem = re.sub(r"[^A-Za-z0-9_-]+", "_", self.eval_dataset).strip("_-")[:40] or "table"  # never a path
        return f"{stem}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


PROV_HEADERS = ["#", "row", "config", "seeds", "encoder weights", "plugin source", "checkpoint selection", "git",
                "records"]
COMP_HEADERS = ["A", "B", "metric", "Δ (A − B)", "p (method)", "p Holm", "95% CI (identity bootstrap)",
                "p (identity)", "p (query)", "p seeds (Welch)"]


def _p(v) -> str:
    return "n/a" if v is None or pd.isna(v) else f"{v:.4f}"


def comparison_cells(comp: pd.DataFrame) -> list[list]:
    ci = lambda r: "n/a" if pd.isna(r.ci_low) else f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]"  # noqa: E731
    return [[r.a, r.b, r.metric, f"{r.delta:+.2f}", _p(getattr(r, "p_method", None)),
             _p(r.p_holm) + (" *" if r.significant else ""), ci(r), _p(r.p_identity), _p(r.p_query), _p(r.p_seeds)]
            for r in comp.itertuples()]


def shown_path(path) -> str:
    """``path`` relative to the working folder when it lies inside it, so that the command written into a
    committed leaderboard is the one that rebuilds it from a checkout anywhere."""
    p = Path(path).expanduser().resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def md_escape(s) -> str:
    """A record's text in Markdown: no raw HTML, no cell-breaking pipes, one line."""
    return " ".join(str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|")
                    .split())


def _md(rows, headers) -> str:
    return tabulate([[md_escape(c) for c in r] for r in rows], headers=headers, tablefmt="github",
                    disable_numparse=True)


def intro(command: str, resamples: int, alpha: float) -> list[str]:
    return [
        "A row is one method × config variant × encoder weights × plugin source (the method package's code) × "
        "kind of record (a training run's own scores, or a checkpoint scored by `harness eval`, never averaged "
        "together). Its name is the method and the "
        "config keys in which it differed from the method's default config when the record was made (stored "
        "in the record); keys every row of a table shares by construction (`dataset.*`) are left out. A table "
        "holds only rows evaluated on the same queries of the same data (dataset fingerprint) after training "
        "on the same data.",
        "",
        f"'{HARNESS}' rows: mean ± sample std over seeds of the checkpoint picked by the selection rule shown "
        "in the provenance (never the test split). "
        "† = below the table's best row (row #1) by the method test (harness/leaderboard/compare.py: two-level, "
        "over the rows' seeds and the test identities, so the training seed counts as chance), Holm-adjusted "
        f"over every pairwise comparison in the table (R1 and mAP), p < {alpha}; a row with one seed gets no "
        f"method test and no †. The identity-clustered randomization p ({resamples} resamples), the identity "
        "bootstrap CI, the query-level p and Welch over seeds are shown for reference. "
        "[n] = declared deviation of the method from its released code "
        f"(listed under the table). '{PAPER}' rows are the papers' numbers on the real datasets, shown only "
        "where the evaluation set has the published test counts; they were not produced here.",
        "",
        "Files: `<table>.csv` (the table), `<table>_comparisons.csv`, `<table>.tex` (booktabs, best bold, "
        "second underlined, with † [n] and provenance notes), `<table>_paper.tex` (the same without [n] "
        f"markers and provenance), `index.html` (the page, with plots). Rebuild: `{command}`.",
        "",
    ]


def build_leaderboards(results_dir="results", out="leaderboards", resamples: int = DEFAULT_RESAMPLES,
                       alpha: float = DEFAULT_ALPHA, force: bool = False, log=None) -> list[Path]:
    """Build the boards of ``results_dir`` (one store or a list) into ``out``; return the files written.
    Refuses (HarnessError, nothing touched) when no record can be ranked, or when ``out`` holds a board of
    other stores or files no board wrote, unless ``force``."""
    log = log or (lambda line: print(line, file=sys.stderr))
    stores = [results_dir] if isinstance(results_dir, (str, Path)) else list(results_dir)
    for s in stores:
        if not Path(s).is_dir():
            raise HarnessError(f"results folder {s} does not exist; run `harness run ...` first or pass "
                               "--results-dir DIR")
    stored, problems, copies = read_stores(stores)
    for folder, why in problems:
        log(f"skipping {shown_path(folder)}: {why}")
    records, skipped = usable_records(stored)
    if not records:
        raise HarnessError(f"no record in {', '.join(map(str, stores))} can be ranked ({len(stored)} valid, "
                           f"{len(problems)} refused); {out} left as it was")
    out = Path(out)
    plan = output.plan(out, stores, force)
    tables = [Table(rows, resamples, alpha) for _key, rows in sorted(group_rows(records).items(), key=lambda kv: kv[0])]
    tables.sort(key=lambda t: t.cross)  # in-domain first, cross-domain after; otherwise by key
    used = sum(len(r.records) for t in tables for r in t.rows)
    command = (f"harness leaderboard --results-dir {' '.join(shown_path(s) for s in stores)}"
               + (f" --resamples {resamples}" if resamples != DEFAULT_RESAMPLES else "")
               + (f" --alpha {alpha}" if alpha != DEFAULT_ALPHA else ""))
    not_ranked = [f"{shown_path(f)}: {why}" for f, why in problems] + \
                 [f"{n} {why} (only test-split records are ranked)" for why, n in sorted(skipped.items())]
    summary = (f"Built by `{command}`: {len(stored) + copies + len(problems)} stored records read, {used} used "
               f"(the newest per seed of each row)" + (f", {copies} copies found in two stores counted once"
                                                      if copies else "")
               + (f"; {len(not_ranked)} not ranked (listed at the end)" if not_ranked else "") + ".")
    md = ["# Leaderboards", "", summary, ""] + intro(command, resamples, alpha)
    files: dict[str, bytes] = {}
    sections = []
    for i, t in enumerate(tables):
        if t.cross and (i == 0 or not tables[i - 1].cross):
            md += ["## Cross-domain", "", "Trained on one dataset, evaluated without adaptation on another (gallery "
                   "kept whole; per-source R1 from the per-query results). mSD is the rank-ordered definition "
                   "(see harness/evaluation/ranking.py), not the released script's.", ""]
        rows, head = t.cells() + t.reported_cells(), t.headers
        files[f"{t.slug}.csv"] = pd.DataFrame(rows, columns=head).to_csv(index=False).encode()
        files[f"{t.slug}.tex"] = latex.table(t, annotated=True).encode()
        files[f"{t.slug}_paper.tex"] = latex.table(t, annotated=False).encode()
        level = "###" if t.cross else "##"
        md += [f"{level} {md_escape(t.title)}", "", _md(rows, head), "", "Provenance:", "",
               _md(t.provenance(), PROV_HEADERS), ""]
        if t.deviations:
            md += ["Declared deviations from the released code:", ""] + \
                  [f"{n}. {md_escape(d)}" for n, d in enumerate(t.deviations, 1)] + [""]
        comp_rows = comparison_cells(t.comp) if len(t.comp) else []
        if comp_rows:
            md += ["Pairwise comparisons (* = significant after Holm over the table):", "",
                   _md(comp_rows, COMP_HEADERS), ""]
            files[f"{t.slug}_comparisons.csv"] = t.comp.to_csv(index=False).encode()
        sections.append(html_page.table_section(t, rows, comp_rows, COMP_HEADERS, PROV_HEADERS))
    if not_ranked:
        md += ["## Not ranked", ""] + [f"- {md_escape(line)}" for line in not_ranked] + [""]
    files["README.md"] = ("\n".join(md) + "\n").encode()
    files["index.html"] = html_page.page(summary, html_page.legend(resamples, alpha), sections, not_ranked).encode()
    return output.commit(plan, files)
