"""The inspect page: one self-contained HTML file (thumbnails as data URIs, inline CSS and one inline
script, nothing fetched), with the breakdown tables and the shown queries' top-k retrievals, true
matches marked. The inline script only counts images the browser failed to decode, into
``#render-check`` (the browser test reads it)."""
from __future__ import annotations

import html

import numpy as np

from .breakdown import Breakdown
from .load import Inspected
from .thumbs import Thumbnails

CSS = ("body{font-family:sans-serif;margin:1.5em;color:#222}h2{margin-top:1.6em}"
       "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 7px;text-align:right}"
       "td:first-child,th:first-child{text-align:left}caption{text-align:left;font-weight:bold;padding:.3em 0}"
       ".query{border-top:1px solid #ddd;padding:.5em 0}.caption{margin:.2em 0;max-width:70em}"
       ".meta{color:#555;font-size:90%;margin:.2em 0}.row{display:flex;gap:6px;flex-wrap:wrap}"
       "figure{margin:0;border:3px solid #bbb;padding:1px;text-align:center;font-size:80%}"
       "figure.hit{border-color:#1a9c3a;background:#e3f6e7}figure img{display:block}"
       ".placeholder{width:48px;height:128px;background:repeating-linear-gradient(45deg,#eee,#eee 6px,#ddd 6px,"
       "#ddd 12px);color:#777;font-size:75%;display:flex;align-items:center;justify-content:center}"
       ".pair{display:grid;grid-template-columns:1fr 1fr;gap:1.5em}.note{color:#555;font-size:90%}"
       ".mark{color:#1a9c3a;font-weight:bold}")

CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = document.querySelectorAll('img'), broken = 0;
  imgs.forEach(function (i) {
    if (!i.complete || i.naturalWidth === 0) { broken++; i.setAttribute('data-broken', '1'); }
  });
  var c = document.getElementById('render-check');
  c.setAttribute('data-images', imgs.length); c.setAttribute('data-broken', broken); c.setAttribute('data-done', '1');
});
</script>"""

e = html.escape


def _pct(t) -> str:
    v, lo, hi = t
    ci = "n/a" if np.isnan(lo) else f"{lo:.1f}–{hi:.1f}"
    return f"<td>{v:.2f}</td><td>{ci}</td>"


def breakdown_tables(label: str, bds: list[Breakdown]) -> str:
    out = []
    for b in bds:
        rows = "".join(f"<tr><td>{e(g.name)}</td><td>{g.queries}</td><td>{g.identities}</td>{_pct(g.r1)}{_pct(g.map)}"
                       "</tr>" for g in b.groups)
        note = f'<p class="note">{e(b.note)}</p>' if b.note else ""
        out.append(f'<table class="breakdown"><caption>{e(label)}: by {e(b.title)}</caption>'
                   "<tr><th>group</th><th>queries</th><th>identities</th><th>R1</th><th>R1 95% CI</th><th>mAP</th>"
                   f"<th>mAP 95% CI</th></tr>{rows}</table>{note}")
    return "".join(out)


def query_block(r: Inspected, q: int, thumbs: Thumbnails, title: str = "") -> str:
    hits = r.hits[q]
    figs = []
    for j, (g, s) in enumerate(zip(r.topk_index[q], r.topk_score[q])):
        rel = str(r.gallery_path[g])
        uri = thumbs.data_uri(rel)
        body = (f'<img src="{uri}" alt="{e(rel)}" title="{e(rel)}">' if uri else
                f'<div class="placeholder" title="{e(rel)}">missing</div>')
        mark = ' <span class="mark">✓</span>' if hits[j] else ""
        figs.append(f'<figure class="{"hit" if hits[j] else "miss"}" data-gallery="{int(g)}">{body}'
                    f"<figcaption>{j + 1}{mark} · {s:.3f}</figcaption></figure>")
    fr = int(r.first_rank[q])
    head = f"<b>{e(title)}</b> " if title else ""
    return (f'<div class="query" data-query="{q}" data-first-rank="{fr}" data-hits="{int(hits.sum())}">'
            f'<p class="caption">{head}“{e(str(r.caption[q]))}”</p>'
            f'<p class="meta">query {q} ({e(str(r.query_key[q]))}) · identity {int(r.query_pid[q])} · '
            f"{int(r.n_pos[q])} gallery images of it · first true match at rank <b>{fr}</b></p>"
            f'<div class="row">{"".join(figs)}</div></div>')


def summary(r: Inspected) -> str:
    m = r.record.get("metrics") if isinstance(r.record.get("metrics"), dict) else {}
    vals = " · ".join(f"{k} {v:.2f}" for k, v in m.items() if isinstance(v, (int, float)))
    return (f"<tr><td>{e(r.label)}</td><td>{e(str(r.record.get('record_id', r.folder.name)))}</td>"
            f"<td>{len(r.first_rank)}</td><td>{len(r.gallery_path)}</td><td>{r.topk_index.shape[1]}</td>"
            f"<td>{e(vals)}</td></tr>")


def page_html(records: list[Inspected], sections: list[tuple[str, str, str]], tables: list[tuple[str, list]],
           thumbs: Thumbnails) -> str:
    """``sections``: (element id, heading, body HTML) in page order, built by the caller."""
    rows = "".join(summary(r) for r in records)
    missing = len(thumbs.missing)
    miss = (f'<p class="note" id="missing" data-missing="{missing}">{missing} gallery image(s) not found under '
            f"{e(str(thumbs.root))}: shown as striped placeholders.</p>" if missing else
            '<p class="note" id="missing" data-missing="0">every shown gallery image was found.</p>')
    bd = "".join(breakdown_tables(label, bds) for label, bds in tables)
    body = "".join(f'<section id="{sid}"><h2>{e(h)}</h2>{b}</section>' for sid, h, b in sections)
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>harness inspect</title>"
            f"<style>{CSS}</style></head><body><h1>Retrievals</h1>"
            '<section id="summary"><table><tr><th>record</th><th>id</th><th>queries</th><th>gallery</th><th>top-k</th>'
            f"<th>metrics</th></tr>{rows}</table>{miss}"
            '<p class="note">A green frame and ✓ mark a gallery image of the query\'s identity; the number under '
            "each image is its rank and score. CIs resample identities (harness.leaderboard.stats).</p>"
            f'</section><section id="breakdowns"><h2>Breakdowns</h2>{bd}</section>{body}'
            f'<p id="render-check" class="note"></p>{CHECK_SCRIPT}</body></html>')
