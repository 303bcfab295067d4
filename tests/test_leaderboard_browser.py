"""The leaderboard page in a real browser: headless Chromium (Debian's package, installed in CI by
.ci/chromium_up.sh) renders the committed page and a 20-row page. A small script, added to a copy of the
page only, measures every label after layout and writes what it finds into the DOM, which --dump-dom
returns: plot labels that overlap or fall outside their plot, table cells whose content overflows, a page
wider than the window, and plot labels that are not the table's row names (abbreviated with '…' at most).
"""
from __future__ import annotations

import copy
import json
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from leaderboard_records import DEFAULT, per_query, record, write

from harness.leaderboard.tables import build_leaderboards

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (`bash .ci/chromium_up.sh` installs Debian's "
                             "chromium package; CI runs it before the tests)")]
WINDOW = (1280, 900)

PROBE = """<script>(function () {
  const out = {overlaps: [], outside: [], overflowing: [], texts: 0, cells: 0, sections: []};
  const hit = (r, q) => Math.min(r.right, q.right) - Math.max(r.left, q.left) > 1 &&
                        Math.min(r.bottom, q.bottom) - Math.max(r.top, q.top) > 1;
  document.querySelectorAll('svg').forEach((svg, si) => {
    const sb = svg.getBoundingClientRect();
    const texts = Array.from(svg.querySelectorAll('text')).filter(t => t.textContent.trim());
    out.texts += texts.length;
    const rs = texts.map(t => t.getBoundingClientRect());
    rs.forEach((r, i) => {
      if (r.left < sb.left - 1 || r.right > sb.right + 1 || r.top < sb.top - 1 || r.bottom > sb.bottom + 1)
        out.outside.push([si, texts[i].textContent]);
      for (let j = i + 1; j < rs.length; j++)
        if (hit(r, rs[j])) out.overlaps.push([si, texts[i].textContent, texts[j].textContent]);
    });
  });
  document.querySelectorAll('td, th').forEach(c => {
    out.cells++;
    if (c.scrollWidth > c.clientWidth + 1) out.overflowing.push(c.textContent.slice(0, 80));
  });
  document.querySelectorAll('section').forEach(sec => {
    const table = sec.querySelector('table');
    const rows = Array.from(table.querySelectorAll('tbody tr:not(.paper)')).map(tr => tr.cells[1].textContent);
    const plots = [];
    sec.querySelectorAll('svg g').forEach(g => {
      const lines = Array.from(g.children).filter(e => e.tagName === 'text').map(t => t.textContent);
      if (lines.length && /^#\\d+ /.test(lines[0])) plots.push(lines.join(' '));
    });
    out.sections.push({rows: rows, plots: plots});
  });
  out.pageWidth = document.documentElement.scrollWidth;
  out.viewport = window.innerWidth;
  const pre = document.createElement('pre');
  pre.id = 'layout-report';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();</script>"""


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp / 'profile'}", f"--window-size={WINDOW[0]},{WINDOW[1]}", "--hide-scrollbars"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=180)


def render_in_chromium(page: Path, tmp: Path) -> tuple[dict, tuple[int, int], int]:
    """(layout report, screenshot size in pixels, screenshot bytes) of ``page`` as Chromium lays it out."""
    html = page.read_text()
    assert "<script" not in html.lower()  # the page itself runs nothing; the probe goes into a copy only
    probe = tmp / "probe.html"
    probe.write_text(html.replace("</body>", PROBE + "</body>"))
    dom = _chromium(tmp, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    m = re.search(r'<pre id="layout-report">(.*?)</pre>', dom.stdout, re.S)
    assert m, f"no layout report in the rendered DOM: {dom.stderr[-500:]}"
    report = json.loads(m.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    shot = tmp / "shot.png"
    _chromium(tmp, f"--screenshot={shot}", page.as_uri())
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return report, struct.unpack(">II", data[16:24]), len(data)


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


def check_layout(report: dict, size, nbytes) -> None:
    assert size == WINDOW and nbytes > 20_000, (size, nbytes)  # a real, non-blank rendering of the window
    assert not report["overlaps"], f"overlapping plot labels: {report['overlaps'][:5]}"
    assert not report["outside"], f"plot labels cut off at the plot's edge: {report['outside'][:5]}"
    assert not report["overflowing"], f"table cells whose content overflows: {report['overflowing'][:5]}"
    assert report["pageWidth"] <= report["viewport"], "the page is wider than the window"
    for sec in report["sections"]:
        shown = [re.match(r"#(\d+) (.*)", text, re.S).groups() for text in sec["plots"]]
        for num, text in shown:  # '#k label' in a plot names row k of the table above it
            row = _squash(sec["rows"][int(num) - 1])
            words = re.findall(r"[^\s\[\],]+", re.sub(r" \(\d+ seeds\)$", "", text))
            if text.endswith("…"):
                words = words[:-1]  # abbreviated: the last word is cut
            assert all(w in row for w in words), (text, row)
        for plot in (shown[:len(shown) // 2], shown[len(shown) // 2:]):
            names = [re.sub(r" \(\d+ seeds\)$", "", t) for _n, t in plot]
            assert len(set(names)) == len(names), f"two rows look alike in a plot: {names}"


def test_committed_page_renders_cleanly(tmp_path, monkeypatch):
    report, size, nbytes = render_in_chromium(REPO / "leaderboards" / "index.html", tmp_path)
    assert report["cells"] > 20
    check_layout(report, size, nbytes)
    monkeypatch.chdir(REPO)  # and the page the current code builds from the committed records
    build_leaderboards("leaderboards/records", tmp_path / "board", resamples=99)
    report, size, nbytes = render_in_chromium(tmp_path / "board" / "index.html", tmp_path)
    assert len(report["sections"]) == 2 and report["texts"] > 40  # in-domain and cross-domain, with plots
    check_layout(report, size, nbytes)


@pytest.fixture(scope="module")
def twenty_row_page(tmp_path_factory):
    """20 variants of one method with long, similar names (they differ only at their ends), 2 seeds each."""
    root = tmp_path_factory.mktemp("twenty")
    rng = np.random.default_rng(0)
    for i in range(20):
        cfg = copy.deepcopy(DEFAULT)
        cfg["method"]["temperature"] = 0.01 + i / 1000
        parts = ["asdm_mode=paper", f"encoder.checkpoint=/data/weights/clip/ViT-B-16-finetuned-{i:02d}.pt",
                 "losses=[\"itc\",\"asdm\",\"id\",\"mlm\",\"efa\"]", f"temperature={0.01 + i / 1000:.3f}"]
        label = "fmfa [" + ", ".join(parts) + "]"
        for seed in (0, 1):
            pq = per_query(rng, skill=0.2 + i * 0.03)
            write(root / "store", record(pq, seed=seed, config=cfg,
                                         display=dict(label=label, variant=parts, published_counts=False)), pq)
    build_leaderboards(root / "store", root / "board", resamples=99)
    return root / "board" / "index.html"


def test_twenty_row_page_has_no_overlapping_or_cut_labels(twenty_row_page, tmp_path):
    report, size, nbytes = render_in_chromium(twenty_row_page, tmp_path)
    (sec,) = report["sections"]
    assert len(sec["rows"]) == 20 and len(sec["plots"]) == 19 + 20  # forest plot (vs #1) and R@k legend
    assert report["texts"] > 60
    check_layout(report, size, nbytes)


def test_the_probe_sees_overlapping_and_cut_labels(tmp_path):
    """The checks above can fail: a plot whose labels overlap and run off its edge, and a cell that
    cannot hold its text, are reported."""
    from harness.leaderboard import html_page as r

    plt = r._plt()
    fig, ax = plt.subplots(figsize=(4, 1.2))  # no layout engine: long tick labels run off the left edge
    ax.set_yticks([0, 0.05], ["#1 a very long row name that does not fit", "#2 another long row name"])
    svg = r._svg(fig, "probe-test")
    page = tmp_path / "bad.html"
    page.write_text("<html><body><section><table><tbody><tr><td>1</td><td style='white-space:nowrap;max-width:3em;"
                    "overflow:hidden'>a cell far too narrow for its text</td></tr></tbody></table>"
                    f"<figure>{svg}</figure></section></body></html>")
    report, size, _ = render_in_chromium(page, tmp_path)
    assert size == WINDOW
    assert report["outside"] and report["overlaps"] and report["overflowing"]
