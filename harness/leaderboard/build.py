"""Rebuild every leaderboard table from the results store alone (never from logs).

One table per evaluation set and training data (both identified by fingerprint): mean ± std over seeds
per row (a row = method x config variant x encoder weights), every pair of rows compared (Holm over
the whole table), per-row provenance and the methods' declared deviations as footnotes. Rows reported
by the papers appear, marked, only when the table's test split has the published counts. One
cross-domain table (train on X, test on Y, per source). Markdown, CSV, LaTeX and an HTML page.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from ..data.formats import PUBLISHED_COUNTS
from ..results import ResultsStore
from . import DEFAULT_ALPHA, DEFAULT_RESAMPLES, render
from .compare import below_best, pairwise, seed_averaged_scores
from .reported import REPORTED
from .rows import Row, group_rows, label_rows, usable_records

METRICS = ["R1", "R5", "R10", "mAP", "mINP"]


def matches_published(name: str, fingerprint: dict) -> bool:
    """True when the evaluation set's test split has exactly the published (ids, images, captions)."""
    want = PUBLISHED_COUNTS.get(name, {}).get("test")
    got = fingerprint.get("counts", {}).get("test", {})
    return bool(want) and all(w is None or got.get(k) == w for k, w in zip(("ids", "images", "captions"), want))


class Table:
    """One in-domain leaderboard table: rows sorted by mean R1, comparisons, provenance, footnotes."""

    def __init__(self, rows: list[Row], resamples: int, alpha: float):
        first = rows[0].first
        self.eval_dataset, self.train_dataset = first["eval_dataset"], first["train_dataset"]
        self.fingerprint = first["eval_fingerprint"]
        label_rows(rows, self.train_dataset)
        self.rows = sorted(rows, key=lambda r: (-np.mean([x["metrics"]["R1"] for x in r.records]), r.label))
        self.scores = [seed_averaged_scores(r) for r in self.rows]
        self.comp = pairwise(self.rows, resamples, alpha, self.scores) if len(self.rows) > 1 else pd.DataFrame()
        self.marked = below_best(self.comp, self.rows[0].label) if len(self.comp) else set()
        self.deviations = self._footnotes()
        self.reported = [r for r in REPORTED if r[1] == self.eval_dataset] \
            if matches_published(self.eval_dataset, self.fingerprint) else []

    def _footnotes(self) -> list[str]:
        notes: dict[str, int] = {}
        for row in self.rows:
            for d in row.first.get("deviations", []):
                text = f"{row.method}: {d['id']}: {d['ours']} (released: {d['released']})" + \
                       (f"; switch: {d['switch']}" if d.get("switch") else "")
                notes.setdefault(text, len(notes) + 1)
                row.footnotes.append(notes[text])
        return list(notes)

    def cells(self) -> list[list]:
        out = []
        for row in self.rows:
            mark = "".join(f"[{n}]" for n in sorted(set(row.footnotes)))
            cells = [row.label + (f" {mark}" if mark else ""), "reproduced", len(row.records)]
            for k in METRICS:
                vals = np.array([r["metrics"][k] for r in row.records])
                dag = "†" if (row.label, k) in self.marked else ""
                std = f" ± {vals.std(ddof=1):.2f}" if len(vals) > 1 else ""
                cells.append(f"{vals.mean():.2f}{std}{dag}")
            out.append(cells)
        return out

    def reported_cells(self) -> list[list]:
        return [[m, f"reported by the paper ({src})", "-"] + ["-" if v is None else f"{v:.2f}" for v in vals]
                for m, _d, *vals, src in self.reported]

    def provenance(self) -> list[list]:
        out = []
        for row in self.rows:
            recs = row.records
            w = row.first.get("encoder_weights", "random-init")
            weights = w if isinstance(w, str) else ", ".join(f"{Path(x['path']).name} ({x['sha256'][:8]})" for x in w)
            states = [s for r in recs for s in [*(r.get("code_history") or []), r]]  # trained by, and scored by
            shas = sorted({(s.get("git_sha") or "none")[:10] + ("+dirty" if s.get("git_dirty") else "")
                           for s in states})
            sel = sorted({f"{r['selection']['rule']} (epoch {r['selection'].get('selected_epoch')})" for r in recs})
            out.append([row.label, row.config_hash, ", ".join(map(str, row.seeds)), weights, "; ".join(sel),
                        ", ".join(shas), ", ".join(sorted({r["kind"] for r in recs}))])
        return out

    @property
    def title(self) -> str:
        fp = self.fingerprint
        trained = f" (trained on {self.train_dataset})" if self.train_dataset != self.eval_dataset else ""
        return (f"{self.eval_dataset}{trained} — data {fp['annotation_sha256'][:8]}, "
                f"{fp['num_queries']} queries, {fp['num_gallery']} gallery images")

    @property
    def slug(self) -> str:
        """File name stem: the evaluation set plus a short hash of the table's data key (fingerprints)."""
        import hashlib

        key = json.dumps([self.train_dataset, self.fingerprint, self.rows[0].first["train_fingerprint"]],
                         sort_keys=True)
        return f"{self.eval_dataset}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


HEADERS = ["method", "rows", "seeds"] + METRICS
PROV_HEADERS = ["row", "config", "seeds", "encoder weights", "checkpoint selection", "git", "records"]
COMP_HEADERS = ["A", "B", "metric", "Δ (A − B)", "95% CI (identity bootstrap)", "p (identity)", "p Holm",
                "p (query)", "p seeds (Welch)"]


def _p(v) -> str:
    return "n/a" if v is None or pd.isna(v) else f"{v:.4f}"


def comparison_cells(comp: pd.DataFrame) -> list[list]:
    ci = lambda r: "n/a" if pd.isna(r.ci_low) else f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]"  # noqa: E731
    return [[r.a, r.b, r.metric, f"{r.delta:+.2f}", ci(r), _p(r.p_identity),
             _p(r.p_holm) + (" *" if r.significant else ""), _p(r.p_query), _p(r.p_seeds)]
            for r in comp.itertuples()]


def shown_path(path) -> str:
    """``path`` relative to the working folder when it lies inside it, so that the command written into a
    committed leaderboard is the one that rebuilds it from a checkout anywhere."""
    p = Path(path).expanduser().resolve()
    try:
        return str(p.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def build_leaderboards(results_dir="results", out="leaderboards", resamples: int = DEFAULT_RESAMPLES,
                       alpha: float = DEFAULT_ALPHA):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stored = ResultsStore(results_dir).records()
    records, skipped = usable_records(stored)
    tables_by_key = group_rows(records)
    in_domain = [Table(rows, resamples, alpha) for key, rows in sorted(tables_by_key.items(), key=lambda kv: kv[0])
                 if key[0] == key[1]]
    used = sum(len(r.records) for t in in_domain for r in t.rows)
    ordered = sorted(tables_by_key.items(), key=lambda kv: kv[0])
    cross = [row for key, rows in ordered if key[0] != key[1] for row in rows]
    used += sum(len(r.records) for r in cross)
    skipped_note = "; ".join(f"{n} {why}" for why, n in sorted(skipped.items()))
    command = (f"harness leaderboard --results-dir {shown_path(results_dir)}"
               + (f" --resamples {resamples}" if resamples != DEFAULT_RESAMPLES else "")
               + (f" --alpha {alpha}" if alpha != DEFAULT_ALPHA else ""))
    md = ["# Leaderboards", "",
          f"Built by `{command}`: {len(stored)} stored records, {used} used "
          f"(the newest per seed of each row){'; not ranked: ' + skipped_note if skipped_note else ''}.", "",
          "A row is one method × config variant (named by its difference from the method's default config) × "
          "encoder weights; a table holds only rows evaluated on the same queries of the same data (dataset "
          "fingerprint) after training on the same data. Reproduced rows: mean ± sample std over seeds of the "
          "checkpoint picked by the selection rule shown under each table (never the test split). "
          f"† = below the table's best row: identity-clustered paired randomization test ({resamples} resamples, "
          f"exact enumeration up to 16 identities), Holm-adjusted over every pairwise comparison in the table "
          f"(R1 and mAP), p < {alpha}. [n] = declared deviation of the method from its released code (listed "
          "under the table). Rows 'reported by the paper' are the papers' numbers on the real datasets, shown only "
          "where the evaluation set has the published test counts; they were not produced here.", ""]
    html = []
    written = []
    for t in in_domain:
        rows = t.cells()
        md += [f"## {t.title}", "", _write_table(out, t.slug, rows + t.reported_cells(), HEADERS), ""]
        written += [out / f"{t.slug}.csv", out / f"{t.slug}.tex"]
        md += ["Provenance:", "", tabulate(t.provenance(), headers=PROV_HEADERS, tablefmt="github",
                                           disable_numparse=True), ""]
        if t.deviations:
            md += ["Declared deviations from the released code:", ""] + \
                  [f"{i}. {d}" for i, d in enumerate(t.deviations, 1)] + [""]
        if len(t.comp):
            md += ["Pairwise comparisons (* = significant after Holm over the table):", "",
                   tabulate(comparison_cells(t.comp), headers=COMP_HEADERS, tablefmt="github", disable_numparse=True),
                   ""]
            t.comp.to_csv(out / f"{t.slug}_comparisons.csv", index=False)
            written.append(out / f"{t.slug}_comparisons.csv")
        html.append(render.table_section(t, rows, HEADERS, PROV_HEADERS, comparison_cells(t.comp) if len(t.comp)
                                         else [], COMP_HEADERS))
    if cross:
        xrows = cross_domain_rows(cross)
        xh = ["method", "train", "eval", "seeds", "R1", "mAP", "mINP", "mSD", "R1 per source"]
        md += ["## Cross-domain", "", "Trained on `train`, evaluated without adaptation on `eval` (gallery kept whole; "
               "per-source R1 computed from the per-query results). mSD is the rank-ordered definition (see "
               "harness/evaluation/ranking.py), not the released script's.", "",
               _write_table(out, "cross_domain", xrows, xh), ""]
        written += [out / "cross_domain.csv", out / "cross_domain.tex"]
        html.append(render.plain_section("Cross-domain", xrows, xh))
    (out / "README.md").write_text("\n".join(md) + "\n")
    (out / "index.html").write_text(render.page(html))
    return [out / "README.md", out / "index.html"] + written


def _write_table(out: Path, name: str, rows, headers) -> str:
    """Write ``name``.csv and ``name``.tex; return the Markdown rendering for the README."""
    pd.DataFrame(rows, columns=headers).to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.tex").write_text(tabulate(rows, headers=headers, tablefmt="latex_booktabs",
                                              disable_numparse=True) + "\n")
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def cross_domain_rows(rows: list[Row]) -> list[list]:
    label_groups = defaultdict(list)
    for row in rows:
        label_groups[row.method].append(row)
    for group in label_groups.values():
        label_rows(group, group[0].first["train_dataset"])
    out = []
    for row in rows:
        recs = row.records
        mean = lambda k, recs=recs: np.mean([x["metrics"].get(k, np.nan) for x in recs])  # noqa: E731
        srcs = sorted({s for x in recs for s in x.get("per_source", {})})
        per_src = ", ".join(f"{s}: {np.mean([x['per_source'][s]['R1'] for x in recs if s in x['per_source']]):.2f}"
                            for s in srcs)
        out.append([row.label, row.first["train_dataset"], row.first["eval_dataset"], len(recs), f"{mean('R1'):.2f}",
                    f"{mean('mAP'):.2f}", f"{mean('mINP'):.2f}", f"{mean('mSD'):.2f}", per_src or "-"])
    return out
