"""Leaderboard rows: keyed by what produced them, compared only when truly comparable, honest rendering;
the output folder written whole; several stores; cross-domain tables; LaTeX for papers."""
import copy
import json
import shutil

import numpy as np
import pytest
from leaderboard_records import per_query, record, small_store, write

from harness.cli import main
from harness.config import config_hash, load_config, to_plain
from harness.data.formats import CUHKPEDES
from harness.engine.run import run_job
from harness.leaderboard.tables import build_leaderboards
from harness.leaderboard.output import MANIFEST
from harness.results import ResultsStore
from harness.results.labels import record_display

TINY = dict(dataset=dict(type="synth", train_ids=12, val_ids=2, test_ids=6, images_per_id=2, xdomain_ids=4,
                         image_size=(32, 16)),
            cross_domain=[], method=dict(encoder=dict(image_size=(32, 16), context_length=40)),
            train=dict(epochs=1, batch_size=8, log_interval=5))


@pytest.fixture(scope="module")
def real_record(tmp_path_factory):
    root = tmp_path_factory.mktemp("lb")
    (path,) = run_job(load_config("fmfa", "synth", options=copy.deepcopy(TINY)), work_dir=str(root / "wd"),
                      results_dir=str(root / "seed"), progress=False)
    rec = json.loads((path / "record.json").read_text())
    with np.load(path / "per_query.npz") as z:
        pq = {k: z[k] for k in z.files}
    return rec, pq


def _store(store, rec, pq, **changes):
    rec = copy.deepcopy(rec)
    for k in ("schema_version", "record_id", "created"):
        rec.pop(k, None)
    rec.update(changes)
    rec["config_hash"] = config_hash(rec["config"])
    return store.write(rec, pq)


def _shuffled(pq, seed):
    """Per-query results of another model on the same queries (the record's metrics follow them)."""
    rng = np.random.default_rng(seed)
    out = dict(pq)
    perm = rng.permutation(len(pq["first_rank"]))
    for k in ("first_rank", "ap", "inp", "n_pos", "sd"):
        if k in pq:
            out[k] = pq[k][perm]
    return out


def test_real_record_carries_its_label(real_record):
    rec, _ = real_record
    variant = rec["display"]["variant"]
    assert rec["display"]["label"] == f"fmfa [{', '.join(variant)}]"
    assert "train.epochs=1" in variant and not any(v.startswith(("dataset.", "cross_domain")) for v in variant)


def test_rows_are_keyed_by_config_and_kind_and_seeds_are_distinct(real_record, tmp_path, capsys):
    rec, pq = real_record
    store = ResultsStore(tmp_path / "results")
    _store(store, rec, pq)
    _store(store, rec, _shuffled(pq, 1), seed=1)  # same metrics: a permutation keeps the means
    _store(store, rec, pq, seed=1)  # seed 1 re-run: replaces, no phantom seed
    _store(store, rec, pq, kind="eval")  # a checkpoint scored by harness eval: a row of its own, never averaged in
    paper = copy.deepcopy(rec["config"])
    paper["method"]["asdm_mode"] = "paper"
    _store(store, rec, _shuffled(pq, 2), config=paper, display=dict(rec["display"], label="fmfa [asdm_mode=paper]"))
    _store(store, rec, pq, split="val")  # not ranked
    old = dict(rec, schema_version=1)
    old.pop("eval_fingerprint")
    store.write(old, pq)
    out = tmp_path / "boards"
    build_leaderboards(tmp_path / "results", out, resamples=199)
    text = (out / "README.md").read_text()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "schema 1 record" in err[0]
    assert "7 stored records read, 4 used" in text and "1 val-split evaluations" in text
    assert text.count("## synth") == 1 and "## Not ranked" in text
    lines = [line for line in text.splitlines() if line.startswith("| ") and "this harness" in line]
    seeds = {("eval" if "harness eval" in line else "paper" if "asdm_mode=paper" in line else "run"):
             line.split("|")[4].strip() for line in lines}
    assert seeds == {"run": "2", "eval": "1", "paper": "1"}


def test_other_queries_make_another_table_and_a_mismatched_file_is_refused(real_record, tmp_path, capsys):
    rec, pq = real_record
    store = ResultsStore(tmp_path / "results")
    _store(store, rec, pq)
    fp = dict(rec["eval_fingerprint"], query_ids_sha256="0" * 64)  # claims other queries than its file holds
    bad = _store(store, rec, pq, eval_fingerprint=fp)
    build_leaderboards(tmp_path / "results", tmp_path / "b", resamples=99)
    err = capsys.readouterr().err
    assert bad.name in err and "are not the queries of eval_fingerprint" in err


def test_record_display_reads_published_counts_when_the_record_is_made():
    ids, images, captions = CUHKPEDES.published_counts["test"]
    base = dict(method="fmfa", config=dict(method=dict(type="fmfa")), config_hash="x", train_dataset="cuhk",
                eval_dataset="cuhk")
    counts = lambda i, im, c: dict(counts=dict(test=dict(ids=i, images=im, captions=c)))  # noqa: E731
    assert record_display(dict(base, eval_fingerprint=counts(ids, images, captions)))["published_counts"] is True
    assert record_display(dict(base, eval_fingerprint=counts(8, 16, 32)))["published_counts"] is False
    assert record_display(dict(base, eval_dataset="synth", eval_fingerprint=counts(8, 16, 32)))["published_counts"] \
        is False


def test_html_explains_itself_and_has_no_paper_rows_on_synth(real_record, tmp_path):
    rec, pq = real_record
    store = ResultsStore(tmp_path / "results")
    _store(store, rec, pq)
    other = copy.deepcopy(rec["config"])
    other["method"]["temperature"] = 0.05
    _store(store, rec, _shuffled(pq, 3), config=other, display=dict(rec["display"], label="fmfa [temperature=0.05]"))
    build_leaderboards(tmp_path / "results", tmp_path / "b", resamples=99)
    html = (tmp_path / "b" / "index.html").read_text()
    assert "Provenance" in html and "Difference of row #1" in html and "<svg" in html
    assert 'class="paper"' not in html and "this harness" in html and "reproduced" not in html
    for mark in ("†", "[n]", "p (identity)", "p (query)", "p Holm", "shaded band", "numbers from", "mINP", "± s"):
        assert mark in html, mark  # the legend explains every mark and column
    assert "<script" not in html  # the page runs nothing
    assert to_plain(rec["config"])["method"]["type"] == "fmfa"


# --- the output folder ---

def _board(tmp_path, store="s", **kw):
    return build_leaderboards(tmp_path / store, tmp_path / "b", resamples=99, **kw)


def test_board_is_swapped_in_whole_and_stale_files_of_the_board_go(tmp_path):
    small_store(tmp_path / "s", seeds=(0, 1))
    pq = per_query(np.random.default_rng(3))
    x = write(tmp_path / "s", record(pq, evaluated="synth3c", seed=0), pq)  # a cross-domain table
    first = {p.name for p in _board(tmp_path)}
    assert any(n.startswith("synth3c-") for n in first)
    (tmp_path / "b" / "notes.txt").write_text("mine")  # not the board's: kept
    shutil.rmtree(x)
    second = {p.name for p in _board(tmp_path)}
    left = {p.name for p in (tmp_path / "b").iterdir()}
    assert left == second | {"notes.txt"} and not any(n.startswith("synth3c-") for n in left)
    assert json.loads((tmp_path / "b" / MANIFEST).read_text())["files"] == sorted(second - {MANIFEST})
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".b.")]  # no temporary folder left
    (tmp_path / "b" / "notes.txt").unlink()
    third = {p.name for p in _board(tmp_path)}  # only the board in the folder: the folder itself is swapped
    assert {p.name for p in (tmp_path / "b").iterdir()} == third


def test_zero_ranked_records_is_exit_2_and_nothing_is_touched(tmp_path, capsys):
    small_store(tmp_path / "s", seeds=(0,))
    _board(tmp_path)
    before = {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()}
    (tmp_path / "empty").mkdir()
    assert main(["leaderboard", "--results-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "b"), "--force"]) == 2
    assert "can be ranked" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (tmp_path / "b").iterdir()} == before


def test_a_board_of_other_stores_is_not_overwritten_unless_forced(tmp_path, capsys, monkeypatch):
    """From the repository root the defaults (--results-dir results --out leaderboards) cannot replace the
    committed board of leaderboards/records; a copy of that layout stands in for the checkout here."""
    monkeypatch.chdir(tmp_path)
    small_store(tmp_path / "leaderboards" / "records", seeds=(0,))
    assert main(["leaderboard", "--results-dir", "leaderboards/records", "--out", "leaderboards",
                 "--resamples", "99"]) == 0
    committed = {p.name: p.read_bytes() for p in (tmp_path / "leaderboards").iterdir() if p.is_file()}
    small_store(tmp_path / "results", seeds=(0,), methods=("lgur",))
    assert main(["leaderboard", "--resamples", "99"]) == 2
    assert "holds the board of records" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (tmp_path / "leaderboards").iterdir() if p.is_file()} == committed
    assert main(["leaderboard", "--resamples", "99", "--force"]) == 0  # asked for
    assert len(list((tmp_path / "leaderboards" / "records").iterdir())) == 2  # the store inside is never touched
    assert "lgur" in (tmp_path / "leaderboards" / "README.md").read_text()
    (tmp_path / "mine").mkdir()  # a folder with files no board wrote is refused too
    (tmp_path / "mine" / "README.md").write_text("my notes")
    assert main(["leaderboard", "--out", "mine", "--resamples", "99"]) == 2
    assert (tmp_path / "mine" / "README.md").read_text() == "my notes"


def test_several_stores_count_a_shared_record_once(tmp_path):
    paths = small_store(tmp_path / "a", seeds=(0, 1))
    (tmp_path / "b_store").mkdir()
    shutil.copytree(paths[0], tmp_path / "b_store" / paths[0].name)  # the same record in both stores
    small_store(tmp_path / "b_store", seeds=(2,), seed=9)
    out = tmp_path / "out"
    build_leaderboards([tmp_path / "a", tmp_path / "b_store"], out, resamples=99)
    text = (out / "README.md").read_text()
    assert "7 stored records read, 6 used" in text and "1 copies found in two stores counted once" in text
    seeds = [ln.split("|")[4].strip() for ln in text.splitlines() if ln.startswith("| ") and "this harness" in ln]
    assert seeds == ["3", "3"]
    # the same record id with different content in two stores: neither is believed
    rec = json.loads((paths[1] / "record.json").read_text())
    (tmp_path / "c").mkdir()
    shutil.copytree(paths[1], tmp_path / "c" / paths[1].name)
    rec["seed"] = 7
    (tmp_path / "c" / paths[1].name / "record.json").write_text(json.dumps(rec))
    build_leaderboards([tmp_path / "a", tmp_path / "c"], tmp_path / "out2", resamples=99, log=lambda line: None)
    text = (tmp_path / "out2" / "README.md").read_text()
    assert text.split("## Not ranked")[1].count("stored 2 times with different content") == 2


def test_cross_domain_tables_get_the_main_tables_treatment(tmp_path):
    rng = np.random.default_rng(4)
    for m, skill in (("fmfa", 0.9), ("ivt", 0.1)):
        for s in (0, 1, 2):
            pq = per_query(rng, skill=skill)
            write(tmp_path / "s", record(pq, method=m, seed=s, evaluated="synth3c"), pq)
    pq = per_query(rng, skill=0.8)  # a checkpoint scored by harness eval: never averaged into the run row
    write(tmp_path / "s", record(pq, method="fmfa", seed=3, evaluated="synth3c", kind="eval"), pq)
    build_leaderboards(tmp_path / "s", tmp_path / "b", resamples=199)
    text = (tmp_path / "b" / "README.md").read_text()
    section = text.split("## Cross-domain", 1)[1]
    assert "### synth3c (trained on synth)" in section and "Provenance:" in section
    assert "Pairwise comparisons" in section and "R1 per source" in section
    rows = [line for line in section.splitlines() if "this harness" in line]
    assert len(rows) == 3 and " ± " in rows[0] and "†" in [r for r in rows if "ivt" in r][0]
    assert [r for r in rows if "harness eval" in r][0].split("|")[4].strip() == "1"


def test_latex_is_booktabs_with_best_bold_second_underlined(tmp_path):
    small_store(tmp_path / "s", seeds=(0, 1), methods=("fmfa", "ivt", "lgur"))
    files = {p.name: p for p in _board(tmp_path)}
    (full,) = [p for n, p in files.items() if n.endswith(".tex") and not n.endswith("_paper.tex")]
    (paper,) = [p for n, p in files.items() if n.endswith("_paper.tex")]
    for tex in (full.read_text(), paper.read_text()):
        assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
        body = [line for line in tex.splitlines() if line.endswith("\\\\") and not line.startswith("Method")]
        r1 = [line.split(" & ")[1] for line in body]
        assert r1[0].startswith("\\textbf{") and r1[1].startswith("\\underline{") and r1[2][0].isdigit()
    assert "\\textsuperscript{[1]}" in full.read_text() and "config " in full.read_text()
    assert "[1]" not in paper.read_text() and "config " not in paper.read_text()


def test_rows_split_when_the_plugin_source_differs(tmp_path):
    """Same method, config and weights, but the plugin's code changed between the runs: two rows, each
    naming its code, never one row averaging both versions (issue: a changed loss moved a row silently)."""
    rng = np.random.default_rng(5)
    for s, code in ((0, "aa" * 32), (1, "aa" * 32), (2, "bb" * 32), (3, "bb" * 32)):
        pq = per_query(rng)
        write(tmp_path / "s", record(pq, method="fmfa", seed=s, plugin_source_sha256=code), pq)
    build_leaderboards(tmp_path / "s", tmp_path / "b", resamples=99)
    text = (tmp_path / "b" / "README.md").read_text()
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and "this harness" in ln]
    assert len(rows) == 2 and "code aaaaaaaa" in text and "code bbbbbbbb" in text
    assert "aaaaaaaaaaaa" in text and "bbbbbbbbbbbb" in text  # the provenance table's plugin source column


def test_paper_rows_are_the_ones_the_rows_methods_declare(real_record, tmp_path):
    """A method package declares its paper's numbers (``RetrievalMethod.published``); a record on a dataset
    with the published test counts carries them, and the table shows the paper row of each method it ranks:
    FMFA's here, not IRRA's (no IRRA row), with no table of numbers kept in the harness core."""
    from harness.registry import get_method_class

    rec, pq = real_record
    (fmfa_cuhk,) = [p.as_dict() for p in get_method_class("fmfa").published if p.dataset == "cuhk"]
    ids, images, captions = CUHKPEDES.published_counts["test"]
    counts = dict(rec["eval_fingerprint"]["counts"], test=dict(ids=ids, images=images, captions=captions))
    as_cuhk = dict(eval_dataset="cuhk", train_dataset="cuhk",
                   eval_fingerprint=dict(rec["eval_fingerprint"], name="cuhk", counts=counts),
                   train_fingerprint=dict(rec["train_fingerprint"], name="cuhk"),
                   display=dict(rec["display"], published_counts=True, published=[fmfa_cuhk]))
    store = ResultsStore(tmp_path / "results")
    _store(store, rec, pq, **as_cuhk)
    _store(store, rec, _shuffled(pq, 1), seed=1, **as_cuhk)
    build_leaderboards(tmp_path / "results", tmp_path / "b", resamples=99)
    md = (tmp_path / "b" / "README.md").read_text()
    paper = [line for line in md.splitlines() if "paper (" in line]
    assert len(paper) == 1 and "FMFA paper v2, Table 3" in paper[0] and "74.16" in paper[0]
    assert "IRRA README" not in md
    # a record whose published numbers name another dataset is not ranked
    bad = dict(as_cuhk, display=dict(as_cuhk["display"], published=[dict(fmfa_cuhk, dataset="icfg")]))
    folder = _store(store, rec, pq, seed=2, **bad)
    from harness.results.store import read_stores

    problems = read_stores([tmp_path / "results"])[1]
    assert any(str(folder.name) in str(p) and "display.published[0].dataset" in str(p) for p in problems)
