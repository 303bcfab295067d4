"""Leaderboard rows: keyed by what produced them, compared only when truly comparable, honest rendering."""
import copy
import json

import numpy as np
import pytest

from harness.config import config_hash, load_config, to_plain
from harness.data.formats import PUBLISHED_COUNTS
from harness.engine.run import run_job
from harness.leaderboard.build import build_leaderboards, matches_published
from harness.results import ResultsStore

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
    rng = np.random.default_rng(seed)
    out = dict(pq)
    out["first_rank"] = rng.permutation(pq["first_rank"])
    out["ap"] = rng.permutation(pq["ap"])
    return out


def test_rows_are_keyed_by_config_and_seeds_are_distinct(real_record, tmp_path, capsys):
    rec, pq = real_record
    store = ResultsStore(tmp_path / "results")
    _store(store, rec, pq)
    _store(store, rec, _shuffled(pq, 1), seed=1)
    _store(store, rec, pq, kind="eval")  # the seed-0 checkpoint evaluated again: replaces, no phantom seed
    paper = copy.deepcopy(rec["config"])
    paper["method"]["asdm_mode"] = "paper"
    _store(store, rec, _shuffled(pq, 2), config=paper)
    _store(store, rec, pq, split="val")  # not ranked
    old = dict(rec, schema_version=1)
    old.pop("eval_fingerprint")
    store.write(old, pq)
    # a different evaluation set (other queries): a table of its own, never paired with the first
    other_fp = dict(rec["eval_fingerprint"], query_ids_sha256="0" * 64)
    _store(store, rec, pq, eval_fingerprint=other_fp)
    out = tmp_path / "boards"
    build_leaderboards(tmp_path / "results", out, resamples=199)
    text = (out / "README.md").read_text()
    err = capsys.readouterr().err
    assert "schema 1 record" in err and len(err.strip().splitlines()) == 1
    assert "7 stored records, 4 used" in text and "1 val-split evaluations (not ranked)" in text
    assert text.count("## synth") == 2  # two evaluation sets, two tables
    tables = [t for t in sorted(out.glob("synth-*.csv")) if not t.name.endswith("_comparisons.csv")]
    assert len(tables) == 2
    assert sum("asdm_mode=paper" in t.read_text() for t in tables) == 1
    lines = [line for line in text.splitlines() if line.startswith("| fmfa")]
    seeds = [line.split("|")[3].strip() for line in lines if "reproduced" in line]
    assert sorted(seeds) == ["1", "1", "2"]


def test_reported_rows_only_for_published_counts():
    ids, images, captions = PUBLISHED_COUNTS["cuhk"]["test"]
    assert matches_published("cuhk", dict(counts=dict(test=dict(ids=ids, images=images, captions=captions))))
    assert not matches_published("cuhk", dict(counts=dict(test=dict(ids=8, images=16, captions=32))))
    assert not matches_published("synth", dict(counts=dict(test=dict(ids=8, images=16, captions=32))))


def test_html_has_provenance_forest_plot_and_no_paper_rows_on_synth(real_record, tmp_path):
    rec, pq = real_record
    store = ResultsStore(tmp_path / "results")
    _store(store, rec, pq)
    other = copy.deepcopy(rec["config"])
    other["method"]["temperature"] = 0.05
    _store(store, rec, _shuffled(pq, 3), config=other)
    build_leaderboards(tmp_path / "results", tmp_path / "b", resamples=99)
    html = (tmp_path / "b" / "index.html").read_text()
    assert "Provenance" in html and "forest plot" in html and "reported" not in html.split("<h2>", 1)[1]
    assert to_plain(rec["config"])["method"]["type"] == "fmfa"
