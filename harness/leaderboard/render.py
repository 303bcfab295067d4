"""HTML page and plots for the leaderboards: tables, provenance, a forest plot of the comparisons
against the best row, and R@k curves that stop at the gallery size."""
from __future__ import annotations

import base64
import html
import io

import numpy as np
from tabulate import tabulate

from ..results import ResultsStore

CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
       "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
       "td:first-child,th:first-child{text-align:left}tr.reported td{font-style:italic;color:#666;background:#f4f4f4}"
       "caption{text-align:left;font-weight:bold;padding:.3em 0}.note{color:#555;font-size:90%}"
       "details{margin:.5em 0}")


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def forest_plot(table) -> str | None:
    """ΔR1 and ΔmAP (best row − other row) with identity-bootstrap 95% CIs."""
    comp = table.comp
    if not len(comp):
        return None
    best = table.rows[0].label
    vs = comp[comp["a"] == best]
    if not len(vs):
        return None
    plt = _plt()
    others = list(dict.fromkeys(vs["b"]))
    fig, axes = plt.subplots(1, 2, figsize=(8, 0.5 + 0.45 * len(others)), dpi=110, sharey=True)
    for ax, metric in zip(axes, ("R1", "mAP")):
        sub = vs[vs["metric"] == metric].set_index("b").reindex(others)
        y = np.arange(len(others))
        lo = (sub["delta"] - sub["ci_low"]).fillna(0).values
        hi = (sub["ci_high"] - sub["delta"]).fillna(0).values
        colors = ["#c0392b" if s else "#555" for s in sub["significant"].fillna(False)]
        for k in range(len(y)):
            ax.errorbar(sub["delta"].iloc[k], y[k], xerr=[[lo[k]], [hi[k]]], fmt="o", color=colors[k], capsize=3)
        ax.axvline(0, color="#999", lw=1)
        ax.set_xlabel(f"Δ{metric} (pp), {best[:30]} − row")
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_yticks(np.arange(len(others)), [o[:40] for o in others])
    axes[0].invert_yaxis()
    fig.tight_layout()
    return _png(fig)


def rk_plot(table) -> str:
    """Seed-averaged R@k for k = 1 .. min(50, gallery size)."""
    plt = _plt()
    kmax = min(50, int(table.fingerprint["num_gallery"]))
    ks = np.arange(1, kmax + 1)
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=110)
    for row in table.rows:
        frs = [ResultsStore.per_query(r)["first_rank"] for r in row.records]
        curves = np.array([[np.mean(fr <= k) * 100 for k in ks] for fr in frs])
        ax.plot(ks, curves.mean(0), label=f"{row.label[:40]} ({len(frs)} seeds)")
        if len(frs) > 1:
            ax.fill_between(ks, curves.min(0), curves.max(0), alpha=0.2)
    ax.set_xlim(1, kmax)
    ax.set_xlabel(f"k (gallery: {table.fingerprint['num_gallery']} images)")
    ax.set_ylabel("R@k (%)")
    ax.set_title(f"{table.eval_dataset}: text-to-image R@k")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _html_table(rows, headers, caption="", reported_from: int | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = []
    for i, r in enumerate(rows):
        cls = ' class="reported"' if reported_from is not None and i >= reported_from else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def table_section(table, rows, headers, prov_headers, comp_rows, comp_headers) -> str:
    parts = [f"<h2>{html.escape(table.title)}</h2>",
             _html_table(rows + table.reported_cells(), headers, reported_from=len(rows))]
    if table.reported:
        parts.append('<p class="note">Grey italic rows: reported by the papers on the real dataset, not produced '
                     "here.</p>")
    if table.deviations:
        parts.append("<ol class='note'>" + "".join(f"<li>{html.escape(d)}</li>" for d in table.deviations) + "</ol>")
    parts.append("<details open><summary>Provenance</summary>" +
                 _html_table(table.provenance(), prov_headers) + "</details>")
    if comp_rows:
        parts.append(_html_table(comp_rows, comp_headers, "Pairwise comparisons (* significant after Holm)"))
        fp = forest_plot(table)
        if fp:
            parts.append(f'<img alt="forest plot of differences to the best row" src="data:image/png;base64,{fp}">')
    parts.append(f'<img alt="R@k curve for {html.escape(table.eval_dataset)}" '
                 f'src="data:image/png;base64,{rk_plot(table)}">')
    return "".join(parts)


def plain_section(title, rows, headers) -> str:
    return f"<h2>{html.escape(title)}</h2>" + tabulate(rows, headers=headers, tablefmt="html", disable_numparse=True)


def page(sections) -> str:
    return ("<!doctype html><html><head><meta charset='utf-8'><title>TIPR leaderboards</title>"
            f"<style>{CSS}</style></head><body><h1>TIPR leaderboards</h1>" + "".join(sections) + "</body></html>\n")
