"""Rebuild every leaderboard table from the results store alone (never from logs).

Per evaluation dataset (in-domain: trained and tested on it) one table of mean ± std over seeds,
a comparison table (each method vs the best by R1: ΔR1/ΔmAP with identity-bootstrap 95% CI,
identity-clustered paired randomization p, Holm-adjusted within the table, Welch p over seeds),
and rows reported by the papers. One cross-domain table (train on X, test on Y, per source).
Outputs Markdown, CSV, LaTeX, and an HTML page with R@K curves.
"""
from __future__ import annotations

import base64
import io
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from tabulate import tabulate

from ..results import ResultsStore
from .reported import REPORTED
from .stats import bootstrap_ci, holm, randomization_test, seed_test

METRICS = ["R1", "R5", "R10", "mAP", "mINP"]


def _latest_per_seed(records):
    """Keep the newest record per (method, train, eval, seed, config_hash)."""
    best = {}
    for r in sorted(records, key=lambda r: r["created"]):
        best[(r["method"], r["train_dataset"], r["eval_dataset"], r["seed"], r.get("config_hash"))] = r
    return list(best.values())


def _seed_avg_per_query(recs):
    pqs = [ResultsStore.per_query(r) for r in recs]
    n = {len(p["first_rank"]) for p in pqs}
    if len(n) != 1:
        raise ValueError("records of one method disagree on the query set")
    hit1 = np.mean([(p["first_rank"] <= 1).astype(float) for p in pqs], axis=0)
    ap = np.mean([p["ap"] for p in pqs], axis=0)
    return dict(R1=hit1 * 100, mAP=ap * 100, pid=pqs[0]["query_pid"])


def in_domain_tables(records, resamples: int, alpha: float):
    out = {}
    groups = defaultdict(lambda: defaultdict(list))
    for r in records:
        if r["train_dataset"] == r["eval_dataset"]:
            groups[r["eval_dataset"]][r["method"]].append(r)
    for ds, by_method in sorted(groups.items()):
        rows = []
        for m, recs in sorted(by_method.items()):
            vals = {k: np.array([x["metrics"][k] for x in recs]) for k in METRICS}
            row = {"method": m, "kind": "reproduced", "seeds": len(recs)}
            for k in METRICS:
                row[k] = vals[k].mean()
                row[k + "_std"] = vals[k].std(ddof=1) if len(recs) > 1 else 0.0
            rows.append(row)
        table = pd.DataFrame(rows).sort_values("R1", ascending=False).reset_index(drop=True)
        best = table.loc[0, "method"]
        comps = []
        ref = _seed_avg_per_query(by_method[best])
        for m in table["method"][1:]:
            other = _seed_avg_per_query(by_method[m])
            for metric in ("R1", "mAP"):
                d, lo, hi = bootstrap_ci(ref[metric], other[metric], ref["pid"], n_resamples=resamples)
                p = randomization_test(ref[metric], other[metric], ref["pid"], n_resamples=resamples)
                pq = randomization_test(ref[metric], other[metric], None, n_resamples=resamples)
                ps = seed_test([x["metrics"][metric] for x in by_method[best]], [x["metrics"][metric] for x in by_method[m]])
                comps.append(dict(baseline=best, method=m, metric=metric, delta=d, ci_low=lo, ci_high=hi,
                                  p_identity=p, p_query=pq, p_seeds=ps))
        comp = pd.DataFrame(comps)
        if len(comp):
            comp["p_holm"] = holm(comp["p_identity"].values)
            comp["significant"] = comp["p_holm"] < alpha
        out[ds] = (table, comp, best)
    return out


def _fmt_table(ds, table, comp):
    sig = set()
    if len(comp):
        sig = {(r.method, r.metric) for r in comp.itertuples() if r.significant}
    rows = []
    for r in table.itertuples():
        cells = [r.method, r.kind, r.seeds]
        for k in METRICS:
            mean, std = getattr(r, k), getattr(r, k + "_std")
            mark = "†" if (r.method, k) in sig else ""
            cells.append(f"{mean:.2f} ± {std:.2f}{mark}" if r.seeds > 1 else f"{mean:.2f}{mark}")
        rows.append(cells)
    for m, d, *vals, src in REPORTED:
        if d == ds:
            rows.append([m, f"reported ({src})", "-"] + ["-" if v is None else f"{v:.2f}" for v in vals])
    return rows


def build_leaderboards(results_dir="results", out="leaderboards", resamples: int = 10000, alpha: float = 0.05):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = _latest_per_seed(ResultsStore(results_dir).records())
    written = []
    headers = ["method", "rows", "seeds"] + METRICS
    md = ["# Leaderboards", "",
          f"Built by `harness leaderboard --results-dir {results_dir}` from {len(records)} stored records. "
          "Reproduced rows: mean ± sample std over seeds of the last-epoch checkpoint (no test-set model selection). "
          f"† = differs from the best method of the table: identity-clustered paired randomization test, "
          f"{resamples} resamples, Holm-adjusted within the table's comparisons (R1 and mAP), p < {alpha}. "
          "Rows marked 'reported' are the papers' numbers on the real datasets, not produced here.", ""]
    html_parts = []
    for ds, (table, comp, best) in in_domain_tables(records, resamples, alpha).items():
        rows = _fmt_table(ds, table, comp)
        md += [f"## {ds}", "", _write_table(out, ds, rows, headers), ""]
        if len(comp):
            md += [f"Comparisons against **{best}** (Δ = {best} − method, percentage points):", "",
                   tabulate([[r.method, r.metric, f"{r.delta:+.2f}", f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}]",
                              f"{r.p_identity:.4f}", f"{r.p_holm:.4f}", f"{r.p_query:.4f}",
                              "-" if r.p_seeds is None or pd.isna(r.p_seeds) else f"{r.p_seeds:.3f}"] for r in comp.itertuples()],
                            headers=["method", "metric", "Δ", "95% CI (identity bootstrap)", "p (identity)", "p Holm",
                                     "p (query)", "p seeds (Welch)"], tablefmt="github", disable_numparse=True), ""]
            comp.to_csv(out / f"{ds}_comparisons.csv", index=False)
        written += [out / f"{ds}.csv", out / f"{ds}.tex"]
        html_parts.append((ds, rows, headers, _rk_plot(records, ds)))
    xrows = cross_domain_rows(records)
    if xrows:
        xh = ["method", "train", "eval", "seeds", "R1", "mAP", "mINP", "mSD", "R1 per source"]
        md += ["## Cross-domain", "", "Trained on `train`, evaluated without adaptation on `eval` (gallery kept whole; "
               "per-source R1 computed from the per-query results). mSD is the rank-ordered definition (see "
               "harness/evaluation/ranking.py), not the released script's.", "",
               _write_table(out, "cross_domain", xrows, xh), ""]
        written += [out / "cross_domain.csv", out / "cross_domain.tex"]
        html_parts.append(("cross-domain", xrows, xh, None))
    (out / "README.md").write_text("\n".join(md) + "\n")
    (out / "index.html").write_text(_html(html_parts))
    return [out / "README.md", out / "index.html"] + written


def _write_table(out: Path, name: str, rows, headers) -> str:
    """Write ``name``.csv and ``name``.tex; return the Markdown rendering for the README."""
    pd.DataFrame(rows, columns=headers).to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.tex").write_text(tabulate(rows, headers=headers, tablefmt="latex_booktabs", disable_numparse=True) + "\n")
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def cross_domain_rows(records):
    groups = defaultdict(list)
    for r in records:
        if r["train_dataset"] != r["eval_dataset"]:
            groups[(r["method"], r["train_dataset"], r["eval_dataset"])].append(r)
    rows = []
    for (m, tr, ev), recs in sorted(groups.items()):
        mean = lambda k: np.mean([x["metrics"].get(k, np.nan) for x in recs])  # noqa: E731
        srcs = sorted({s for x in recs for s in x.get("per_source", {})})
        per_src = ", ".join(f"{s}: {np.mean([x['per_source'][s]['R1'] for x in recs if s in x.get('per_source', {})]):.2f}" for s in srcs)
        rows.append([m, tr, ev, len(recs), f"{mean('R1'):.2f}", f"{mean('mAP'):.2f}", f"{mean('mINP'):.2f}",
                     f"{mean('mSD'):.2f}", per_src or "-"])
    return rows


def _rk_plot(records, ds):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=110)
    ks = np.arange(1, 51)
    by_m = defaultdict(list)
    for r in records:
        if r["eval_dataset"] == ds and r["train_dataset"] == ds:
            by_m[r["method"]].append(ResultsStore.per_query(r)["first_rank"])
    for m, frs in sorted(by_m.items()):
        curves = np.array([[np.mean(fr <= k) * 100 for k in ks] for fr in frs])
        ax.plot(ks, curves.mean(0), label=f"{m} ({len(frs)} seeds)")
        if len(frs) > 1:
            ax.fill_between(ks, curves.min(0), curves.max(0), alpha=0.2)
    ax.set_xlabel("k")
    ax.set_ylabel("R@k (%)")
    ax.set_title(f"{ds}: text-to-image R@k")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _html(parts):
    body = []
    for title, rows, headers, png in parts:
        body.append(f"<h2>{title}</h2>" + tabulate(rows, headers=headers, tablefmt="html", disable_numparse=True))
        if png:
            body.append(f'<img alt="R@k curve for {title}" src="data:image/png;base64,{png}">')
    return ("<!doctype html><html><head><meta charset='utf-8'><title>TIPR leaderboards</title><style>"
            "body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>"
            "<h1>TIPR leaderboards</h1>" + "".join(body) + "</body></html>\n")
