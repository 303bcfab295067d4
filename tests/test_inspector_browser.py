"""The inspect page in a real browser: headless Chromium (Debian's package, `.ci/chromium_up.sh`) renders
the page of a real `harness run` on the built-in data; the rendered DOM (`--dump-dom`, after the page's
own load-time image check) must show no broken image, a ✓-marked figure for every query whose true
match is in the top k, and no empty section; the screenshot must have the window's size."""
from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.cli import main
from harness.results import ResultsStore

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH: run .ci/chromium_up.sh (Debian's "
                                                          "chromium package) to enable the browser tests")]

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WINDOW = (1280, 1800)


def chromium(*args) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              timeout=120)


class Dom(HTMLParser):
    """Elements of the rendered page, each with its attributes, the id of its section and the text inside."""

    def __init__(self):
        super().__init__()
        self.elements, self.section, self.stack, self.text = [], None, [], {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.section = a.get("id")
        el = dict(tag=tag, attrs=a, section=self.section, query=next((e for e in reversed(self.stack)
                                                                      if e["attrs"].get("class") == "query"), None))
        self.elements.append(el)
        if tag not in ("img", "meta", "br", "input"):
            self.stack.append(el)

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()["tag"] == tag:
                break

    def handle_data(self, data):
        for el in self.stack:
            el["text"] = el.get("text", "") + data


def rendered(page: Path) -> Dom:
    out = chromium("--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri())
    assert out.returncode == 0, out.stderr.decode()[-2000:]
    dom = Dom()
    dom.feed(out.stdout.decode())
    return dom


def check_page(page: Path, sections: list[str]) -> Dom:
    dom = rendered(page)
    els = dom.elements
    (check,) = [e for e in els if e["attrs"].get("id") == "render-check"]
    assert check["attrs"].get("data-done") == "1", "the page's load-time check did not run"
    assert check["attrs"]["data-broken"] == "0", [e["attrs"].get("alt") for e in els if "data-broken" in e["attrs"]]
    imgs = [e for e in els if e["tag"] == "img"]
    assert imgs and int(check["attrs"]["data-images"]) == len(imgs)
    for sid in ["summary", "breakdowns", *sections]:
        inside = [e for e in els if e["section"] == sid]
        assert inside, f"section {sid} missing"
        assert any(e["tag"] in ("figure", "tr") for e in inside) or "none" in "".join(e.get("text", "") for e in
                                                                                    inside), f"section {sid} empty"
    assert any(e["tag"] == "td" for e in els if e["section"] == "breakdowns")
    queries = [e for e in els if e["attrs"].get("class") == "query"]
    assert queries
    for q in queries:
        figs = [e for e in els if e["tag"] == "figure" and e["query"] is q]
        hits = [f for f in figs if f["attrs"]["class"] == "hit"]
        k = len(figs)
        assert k > 0 and len(hits) == int(q["attrs"]["data-hits"])
        if int(q["attrs"]["data-first-rank"]) <= k:
            assert hits, f"query {q['attrs']['data-query']}: true match in the top {k} but no mark"
        for h in hits:
            assert "✓" in h.get("text", "")
    return dom


def screenshot(page: Path, tmp: Path) -> tuple[int, int, int]:
    shot = tmp / "shot.png"
    out = chromium(f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--screenshot={shot}", page.resolve().as_uri())
    assert out.returncode == 0 and shot.is_file(), out.stderr.decode()[-2000:]
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", head[16:24])
    return w, h, shot.stat().st_size


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """`harness run` on the built-in data with test_run.py's tiny options, one epoch."""
    root = tmp_path_factory.mktemp("browser")
    small = ("train_ids=16", "val_ids=4", "test_ids=8", "images_per_id=2", "image_size=(32,16)")
    opts = [*(f"dataset.{o}" for o in small),
            "cross_domain=[dict(type='synth3c',xdomain_ids=6,images_per_id=2,image_size=(32,16))]",
            "method.encoder.image_size=(32,16)", "method.encoder.context_length=40", "train.batch_size=8",
            "train.log_interval=5"]
    assert main(["run", "--method", "fmfa", "--dataset", "synth", "--epochs", "1", "--work-dir", str(root / "wd"),
                 "--results-dir", str(root / "results"), "--cfg-options", *opts]) == 0
    recs = {r["eval_dataset"]: r for r in ResultsStore(root / "results").records()}
    from harness.inspector import load_record

    data = {name: Path(load_record(r["_path"]).data_root_hint) for name, r in recs.items()}
    return root, recs, data


def test_inspect_page_of_a_real_run_renders_with_marks_and_every_section(real_run, tmp_path):
    root, recs, data = real_run
    rec = recs["synth"]
    assert main(["inspect", rec["_path"], "--data-root", str(data["synth"]), "--worst", "6", "--query", "0",
                 "--out", str(tmp_path / "page")]) == 0
    dom = check_page(tmp_path / "page" / "index.html", ["queries", "worst"])
    captions = [e["attrs"]["caption"] if "caption" in e["attrs"] else e.get("text", "") for e in dom.elements
                if e["tag"] == "caption"]
    assert any("colour-swapped twin" in c for c in captions) and any("upper garment" in c for c in captions)
    w, h, size = screenshot(tmp_path / "page" / "index.html", tmp_path)
    assert (w, h) == WINDOW and size > 20_000  # a blank page of this size compresses to a few kB


def test_cross_domain_page_shows_sources_and_placeholders(real_run, tmp_path):
    root, recs, data = real_run
    rec = recs["synth3c"]
    copy = tmp_path / "data"  # the data root with two images gone: placeholders, counted, and no broken image
    shutil.copytree(data["synth3c"], copy)
    gone = sorted((copy / "images").iterdir())[:2]
    for f in gone:
        f.unlink()
    assert main(["inspect", rec["_path"], "--data-root", str(copy), "--worst", "36", "--out", str(tmp_path / "p")]) == 0
    dom = check_page(tmp_path / "p" / "index.html", ["worst"])
    (missing,) = [e for e in dom.elements if e["attrs"].get("id") == "missing"]
    assert missing["attrs"]["data-missing"] == "2"
    assert any(e["attrs"].get("class") == "placeholder" for e in dom.elements)
    assert any("by source" in e.get("text", "") for e in dom.elements if e["tag"] == "caption")
