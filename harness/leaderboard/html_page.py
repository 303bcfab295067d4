"""The leaderboard's HTML page: tables, a legend for every mark and column, provenance, and plots.

Plots are inline SVG with real text (so a browser, and tests/test_leaderboard_browser.py, can measure
their labels): a forest plot of the differences to the best row and R@k curves that stop at the gallery
size. Rows are named in plots by their number in the table (``#3``) and a wrapped, at most three-line,
label; the table gives every full name. Every string from a record is HTML-escaped, and ``$`` is escaped
for matplotlib (which would parse it as math). The page carries no script.
"""
from __future__ import annotations

import html
import io
import textwrap

import numpy as np

from ..results import ResultsStore
from .rows import short_labels

CSS = ("body{font-family:'DejaVu Sans',sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;margin:.6em 0;font-size:90%}td,th{border:1px solid #ccc;padding:2px 6px;"
       "text-align:right;"
       "overflow-wrap:break-word}td:nth-child(2),th:nth-child(2){text-align:left;overflow-wrap:anywhere}"
       "td.n{white-space:nowrap}table.comp td:first-child{text-align:left}table.board td:nth-child(2){min-width:10em}"
       "tr.paper td{font-style:italic;color:#666;background:#f4f4f4}caption{text-align:left;font-weight:bold;"
       "padding:.3em 0}.note{color:#555;font-size:90%}details{margin:.5em 0}dl.legend{font-size:90%;display:grid;"
       "grid-template-columns:max-content 1fr;gap:.2em 1em}dl.legend dt{font-weight:bold}dl.legend dd{margin:0}"
       "figure{margin:.8em 0}figcaption{font-size:90%;color:#555}svg{max-width:100%;height:auto}")
WRAP, MAX_LINES = 30, 3


def plot_label(i: int, label: str) -> str:
    """``#i`` and the label wrapped at WRAP characters, at most MAX_LINES lines (the table has the rest)."""
    lines = textwrap.wrap(label, WRAP, break_long_words=True, break_on_hyphens=False) or [""]
    if len(lines) > MAX_LINES:
        lines = lines[:MAX_LINES]
        lines[-1] = lines[-1][:WRAP - 1] + "…"
    return "\n".join([f"#{i} {lines[0]}", *lines[1:]]).replace("$", r"\$")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _svg(fig, salt: str) -> str:
    import matplotlib

    plt = _plt()
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def forest_plot(table) -> str | None:
    """ΔR1 and ΔmAP (best row − other row) with identity-bootstrap 95% CIs; red = significant (Holm)."""
    comp = table.comp
    if not len(comp):
        return None
    best = table.rows[0].label
    vs = comp[comp["a"] == best]
    if not len(vs):
        return None
    plt = _plt()
    number = {r.label: i for i, r in enumerate(table.rows, 1)}
    short = dict(zip((r.label for r in table.rows), short_labels(table.rows)[0]))
    others = list(dict.fromkeys(vs["b"]))
    labels = [plot_label(number[o], short[o]) for o in others]
    heights = [lab.count("\n") + 1 for lab in labels]
    fig, axes = plt.subplots(1, 2, figsize=(9, 0.9 + 0.15 * sum(heights) + 0.1 * len(others)), dpi=100,
                             sharey=True, layout="constrained")
    y = np.arange(len(others))
    for ax, metric in zip(axes, ("R1", "mAP")):
        sub = vs[vs["metric"] == metric].set_index("b").reindex(others)
        lo = (sub["delta"] - sub["ci_low"]).fillna(0).values
        hi = (sub["ci_high"] - sub["delta"]).fillna(0).values
        colors = ["#c0392b" if s else "#555" for s in sub["significant"].fillna(False)]
        for k in range(len(y)):
            ax.errorbar(sub["delta"].iloc[k], y[k], xerr=[[lo[k]], [hi[k]]], fmt="o", color=colors[k], capsize=3)
        ax.axvline(0, color="#999", lw=1)
        ax.set_xlabel(f"Δ{metric} (pp): #1 − row")
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(y, labels, fontsize=8)
    axes[0].set_ylim(len(others) - 0.5, -0.5)  # first row on top, half a row of margin
    return _svg(fig, f"{table.slug}-forest")


def rk_plot(table) -> str:
    """Seed-averaged R@k for k = 1 .. min(50, gallery size); band: lowest to highest seed."""
    plt = _plt()
    kmax = min(50, int(table.fingerprint["num_gallery"]))
    ks = np.arange(1, kmax + 1)
    labels = [plot_label(i, f"{short} ({len(row.records)} seeds)")
              for i, (row, short) in enumerate(zip(table.rows, short_labels(table.rows)[0]), 1)]
    legend_lines = sum(lab.count("\n") + 1 for lab in labels)
    fig, ax = plt.subplots(figsize=(9, max(3.4, 0.9 + 0.16 * legend_lines)), dpi=100, layout="constrained")
    for row, lab in zip(table.rows, labels):
        frs = [ResultsStore.per_query(r)["first_rank"] for r in row.records]
        curves = np.array([[np.mean(fr <= k) * 100 for k in ks] for fr in frs])
        (line,) = ax.plot(ks, curves.mean(0), label=lab)
        if len(frs) > 1:
            ax.fill_between(ks, curves.min(0), curves.max(0), alpha=0.2, color=line.get_color())
    ax.set_xlim(1, kmax)
    ax.set_xlabel(f"k (gallery: {table.fingerprint['num_gallery']} images)")
    ax.set_ylabel("R@k (%)")
    ax.set_title(f"{table.eval_dataset}: text-to-image R@k".replace("$", r"\$"), fontsize=10)
    ax.grid(alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=7)
    return _svg(fig, f"{table.slug}-rk")


def _cell(c) -> str:
    return html.escape(str(c))


def _html_table(rows, headers, caption="", paper_from: int | None = None, cls: str = "", nowrap=()) -> str:
    head = "".join(f"<th>{_cell(h)}</th>" for h in headers)
    body = []
    for i, r in enumerate(rows):
        paper = ' class="paper"' if paper_from is not None and i >= paper_from else ""
        body.append(f"<tr{paper}>" + "".join(f"<td class='n'>{_cell(c)}</td>" if j in nowrap else f"<td>{_cell(c)}</td>"
                                             for j, c in enumerate(r)) + "</tr>")
    cap = f"<caption>{_cell(caption)}</caption>" if caption else ""
    table = f'<table class="{cls}">' if cls else "<table>"
    return f"{table}{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def table_section(table, rows, comp_rows, comp_headers, prov_headers) -> str:
    level = "h3" if table.cross else "h2"
    parts = [f"<section><{level}>{_cell(table.title)}</{level}>",
             _html_table(rows, table.headers, paper_from=len(table.rows), cls="board",
                         nowrap=range(4, 4 + len(table.metrics)))]
    if table.deviations:
        parts.append("<p class='note'>Declared deviations from the released code ([n] in the table):</p><ol "
                     "class='note'>" + "".join(f"<li>{_cell(d)}</li>" for d in table.deviations) + "</ol>")
    parts.append("<details open><summary>Provenance</summary>" + _html_table(table.provenance(), prov_headers) +
                 "</details>")
    shared = short_labels(table.rows)[1]
    named = ("Rows are named in the plots by their # in the table and without the config keys every row shares"
             f" ({', '.join(shared)})." if shared else "Rows are named in the plots by their # in the table.")
    if comp_rows:
        parts.append(_html_table(comp_rows, comp_headers, "Pairwise comparisons (* significant after Holm)",
                                 cls="comp"))
        fp = forest_plot(table)
        if fp:
            parts.append(f"<figure>{fp}<figcaption>Difference of row #1 (the best by R1) minus each other row, with "
                         "the 95% identity-bootstrap interval; red: significant by the method test after Holm (the "
                         f"rows marked †). {_cell(named)}</figcaption></figure>")
    parts.append(f"<figure>{rk_plot(table)}<figcaption>R@k: the share of queries whose first correct image is "
                 "within the top k, mean over the row's seeds; the shaded band spans the lowest to the highest seed "
                 f"(no band for one seed). k stops at the gallery size. {_cell(named)}</figcaption></figure></section>")
    return "".join(parts)


LEGEND = [
    ("#", "the row's rank in its table (by mean R1); plots name rows by it"),
    ("row", "method, then [key=value] for every config key in which it differed from the method's default config "
            "when its records were made; '(harness eval, epoch k)' for checkpoints scored by harness eval"),
    ("numbers from", "'this harness': produced here, from the results store; 'paper': the published number on the "
                     "real dataset (grey italic rows, shown only when the evaluation set has the published counts)"),
    ("seeds", "how many seeds (training runs) the row averages"),
    ("R1, R5, R10", "recall at k: % of text queries whose first correct gallery image is ranked within the top k"),
    ("mAP", "mean average precision over the queries (%)"),
    ("mINP", "mean inverse negative penalty (%): how early the last correct image comes"),
    ("mSD, R1 per source", "cross-domain tables: rank-ordered mSD; R1 of the queries of each source dataset"),
    ("a ± s", "mean over seeds ± sample standard deviation (no ± with one seed)"),
    ("†", "significantly below row #1 by the method test (seeds and identities both counted as chance), "
          "Holm-adjusted over every pairwise comparison of the table, p < {alpha}; none for one-seed rows"),
    ("[n]", "declared deviation n of the method from its released code, listed under the table"),
    ("Δ, 95% CI", "comparisons: mean per-query difference A − B (percentage points) and its interval from "
                  "resampling identities (reference)"),
    ("p (method)", "two-level test of the methods: Welch over the per-seed scores plus the method x identity "
                   "variance; n/a when a side has one seed"),
    ("p Holm, *", "p (method) after Holm over the table; * = below alpha (the † of the table)"),
    ("p (identity)", "reference: paired randomization test ({resamples} resamples) on the seed-averaged "
                     "per-query scores, flipping whole identities (a person's captions move together)"),
    ("p (query)", "the same test treating queries as independent (for reference: too optimistic)"),
    ("p seeds (Welch)", "Welch's t-test on the per-seed values (n/a with fewer than two seeds on a side)"),
    ("provenance", "config hash, seeds, encoder weights (file and sha256), checkpoint selection rule and epoch, git "
                   "commits that trained and scored the row (+dirty: uncommitted changes), kind of records"),
]


def legend(resamples: int, alpha: float) -> str:
    items = "".join(f"<dt>{_cell(k)}</dt><dd>{_cell(v.format(resamples=resamples, alpha=alpha))}</dd>"
                    for k, v in LEGEND)
    return f"<details open><summary>How to read these tables</summary><dl class='legend'>{items}</dl></details>"


def page(summary: str, legend_html: str, sections, not_ranked) -> str:
    nr = ""
    if not_ranked:
        nr = ("<section><h2>Not ranked</h2><ul>" + "".join(f"<li>{_cell(x)}</li>" for x in not_ranked) +
              "</ul></section>")
    cross = any("<h3>" in s for s in sections)
    body = []
    for s in sections:
        if cross and "<h3>" in s and not any("<h3>" in b for b in body):
            body.append("<h2>Cross-domain</h2><p class='note'>Trained on one dataset, evaluated without adaptation "
                        "on another (gallery kept whole).</p>")
        body.append(s)
    return ("<!doctype html><html><head><meta charset='utf-8'><title>TIPR leaderboards</title>"
            f"<style>{CSS}</style></head><body><h1>TIPR leaderboards</h1><p>{_cell(summary)}</p>{legend_html}"
            + "".join(body) + nr + "</body></html>\n")
