"""LaTeX tables for papers: booktabs rules, the best mean of each column bold and the second underlined.

``annotated`` adds the [n] deviation markers and, under the tabular, what † and [n] mean and each row's
provenance; without it the table is paper-ready (rows and numbers, † kept: it is a result). Only this
harness's rows are ranked for bold/underline; the papers' rows follow under their own rule. Every string
from a record is escaped, so a row name cannot inject LaTeX.
"""
from __future__ import annotations

_ESC = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
        "†": r"\textsuperscript{\dag}", "±": r"$\pm$", "−": "-", "Δ": r"$\Delta$", "—": "---", "×": r"$\times$"}


def escape(s: str) -> str:
    return "".join(_ESC.get(c, c) for c in str(s))


def _ranks(means: list[float]) -> list[int]:
    """0 for the best value (ties included), 1 for the second distinct value, 2 otherwise (at 2 decimals)."""
    distinct = sorted({round(m, 2) for m in means}, reverse=True)
    return [min(distinct.index(round(m, 2)), 2) for m in means]


def table(t, annotated: bool) -> str:
    cols = t.metrics
    lines = [f"% {t.title}", "% needs \\usepackage{booktabs}",
             "\\begin{tabular}{l" + "c" * len(cols) + "}", "\\toprule",
             " & ".join(["Method"] + [escape(c) for c in cols]) + " \\\\", "\\midrule"]
    means = {k: [t.values(r, k).mean() for r in t.rows] for k in cols}
    ranks = {k: _ranks(means[k]) for k in cols}
    for i, row in enumerate(t.rows):
        name = escape(row.label)
        if annotated and t.marker(row):
            name += f"\\textsuperscript{{{escape(t.marker(row))}}}"
        cells = [name]
        for k in cols:
            vals = t.values(row, k)
            v = f"{vals.mean():.2f}"
            v = {0: f"\\textbf{{{v}}}", 1: f"\\underline{{{v}}}"}.get(ranks[k][i], v)
            if len(vals) > 1:
                v += f"\\,{{\\scriptsize$\\pm${vals.std(ddof=1):.2f}}}"
            if (row.label, k) in t.marked:
                v += "\\textsuperscript{\\dag}"
            cells.append(v)
        lines.append(" & ".join(cells) + " \\\\")
    if t.reported:
        lines.append("\\midrule")
        for m, _d, *vals, src in t.reported:
            shown = ["-" if v is None else f"{v:.2f}" for v in vals][:len(cols)]
            shown += ["-"] * (len(cols) - len(shown))
            lines.append(" & ".join([f"{escape(m)} ({escape(src)})"] + shown) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}"]
    dagger = ("\\dag: significantly below the best row: two-level method test (seeds and test identities both "
              "random), Holm over every pairwise comparison of the table; rows with one seed get none. "
              "Mean over seeds, $\\pm$ sample std.")
    if not annotated:
        return "\n".join(lines + [f"% {dagger}"]) + "\n"
    notes = [dagger] + [f"[{n}] {escape(d)}" for n, d in enumerate(t.deviations, 1)]
    for prov in t.provenance():
        _i, label, config, seeds, weights, code, sel, git, kinds = prov
        notes.append(f"{escape(label)}: config {escape(config)}, seeds {escape(seeds)}, weights {escape(weights)}, "
                     f"plugin source {escape(code)}, selection {escape(sel)}, git {escape(git)}, "
                     f"records {escape(kinds)}.")
    lines += ["", "\\par\\smallskip{\\footnotesize"] + [n + "\\par" for n in notes] + ["}"]
    return "\n".join(lines) + "\n"

