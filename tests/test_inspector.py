"""`harness inspect` on records written by the real store from a real ranking: the page, the --vs
counts, the breakdowns and their CSV, and the one-line errors (different queries, no data root)."""
from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest
import torch
from conftest import make_records, write_image

from harness.cli import main
from harness.data.splits import EvalSet
from harness.engine.evaluate import retrieval_arrays
from harness.data.fingerprint import dataset_fingerprint, query_keys
from harness.evaluation import evaluate_similarity, summarise
from harness.evaluation.ranking import top_k
from harness.inspector import disagreements, inspect_records, load_record, worst
from harness.results import ResultsStore


def write_record(tmp_path, seed=0, k=5, n_ids=(0, 0, 6), method="m", drop_images=0, root_name="data"):
    """A cuhk-layout test split on disk, scored by a random similarity, stored through ResultsStore as
    ``records.build_record`` builds it (same per-query and retrieval arrays)."""
    root = tmp_path / root_name
    recs = [r for r in make_records("cuhk", n_ids=n_ids) if r["split"] == "test"]
    if not (root / "reid_raw.json").exists():
        for i, r in enumerate(recs):
            if i >= drop_images:
                write_image(root / "imgs" / r["file_path"], seed=i)
        (root / "reid_raw.json").write_text(json.dumps(recs))
    from harness.data.formats import CUHKPEDES

    splits = CUHKPEDES(root).load()
    ev = EvalSet.from_records(splits.test, splits.image_root)
    sim = torch.as_tensor(np.random.default_rng(seed).standard_normal((len(ev.query_captions), len(ev.gallery_paths))),
                          dtype=torch.float32)
    pq = evaluate_similarity(sim, ev.query_pids, ev.gallery_pids, chunk_size=3, topk=k)  # k=0: none kept
    per_query = dict(pq.as_dict(), query_key=np.array(query_keys(ev), dtype="U"), query_pid=np.asarray(ev.query_pids),
                     query_image=np.asarray(ev.query_image_index), query_source=np.array([""] * len(ev.query_pids)),
                     **retrieval_arrays(ev, splits, pq))
    rec = dict(method=method, train_dataset="cuhk", eval_dataset="cuhk", seed=seed, metrics=summarise(pq),
               eval_fingerprint=dataset_fingerprint(splits, ev), config={})
    return ResultsStore(tmp_path / "results").write(rec, per_query), root, pq, sim


def test_topk_is_the_stable_descending_order_and_agrees_with_first_rank():
    rng = np.random.default_rng(1)
    sim = torch.tensor(rng.integers(0, 4, (40, 30)).astype(np.float32))  # ties everywhere, at the k-th too
    qp = rng.integers(0, 5, 40)
    gp = np.concatenate([np.arange(5), rng.integers(0, 5, 25)])
    pq = evaluate_similarity(sim, qp, gp, chunk_size=7, topk=8)
    ref = torch.sort(sim, dim=1, descending=True, stable=True)
    assert np.array_equal(pq.topk_index, ref.indices[:, :8].numpy())
    assert np.array_equal(pq.topk_score, ref.values[:, :8].numpy())
    hit = gp[pq.topk_index] == qp[:, None]
    seen = hit.any(1)
    assert np.array_equal(hit.argmax(1)[seen] + 1, pq.first_rank[seen]) and (pq.first_rank[~seen] > 8).all()
    idx, _ = top_k(sim[:3], 100)  # k above the gallery size: the whole row
    assert idx.shape == (3, 30)


def test_record_folder_holds_retrievals_and_the_page_marks_true_matches(tmp_path):
    folder, root, pq, _ = write_record(tmp_path)
    assert (folder / "retrievals.npz").is_file()
    with np.load(folder / "per_query.npz") as z:  # the leaderboard's file is unchanged
        assert "topk_index" not in z.files and "query_caption" not in z.files
    r = load_record(folder)
    assert r.image_dir == "imgs" and str(r.gallery_path[0]).startswith("CUHK01/")
    assert r.caption[0].startswith("person ")
    res = inspect_records(folder, root, tmp_path / "out", worst_n=4)
    page = res.page.read_text()
    assert res.shown == 4 and res.missing_images == 0
    assert "http://" not in page and "https://" not in page  # nothing fetched
    blocks = re.findall(r'<div class="query" data-query="(\d+)" data-first-rank="(\d+)" data-hits="(\d+)">', page)
    assert [int(q) for q, _, _ in blocks] == worst(r, 4)
    for q, fr, nh in blocks:
        q = int(q)
        assert int(fr) == pq.first_rank[q]
        assert int(nh) == int((r.gallery_pid[r.topk_index[q]] == r.query_pid[q]).sum())
    assert page.count('class="hit"') == sum(int(nh) for *_, nh in blocks)
    assert page.count("data:image/png;base64,") == 4 * 5


def test_missing_images_are_placeholders_and_counted(tmp_path):
    folder, root, _, _ = write_record(tmp_path, drop_images=3)
    res = inspect_records(folder, root, tmp_path / "out", worst_n=24)
    page = res.page.read_text()
    assert res.missing_images == 3 and 'data-missing="3"' in page
    assert page.count('class="placeholder"') >= 1


def test_vs_counts_the_queries_where_the_two_records_disagree(tmp_path, capsys):
    a, root, pa, _ = write_record(tmp_path, seed=0, method="a")
    b, _, pb, _ = write_record(tmp_path, seed=1, method="b")
    a_only, b_only, na, nb = disagreements(load_record(a), load_record(b), 100)
    assert na == int(((pa.first_rank == 1) & (pb.first_rank > 1)).sum()) and len(a_only) == na
    assert nb == int(((pb.first_rank == 1) & (pa.first_rank > 1)).sum()) and len(b_only) == nb
    assert na + nb > 0
    assert main(["inspect", str(a), "--vs", str(b), "--data-root", str(root), "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert f"rank 1 for A only: {na}, for B only: {nb}" in out
    page = (tmp_path / "o" / "index.html").read_text()
    assert f'data-a-only="{na}" data-b-only="{nb}"' in page
    assert page.count('class="pair"') == min(na, 10) + min(nb, 10)


def test_breakdowns_count_every_query_and_match_the_overall_metrics(tmp_path):
    folder, root, pq, _ = write_record(tmp_path, n_ids=(0, 0, 8))
    inspect_records(folder, root, tmp_path / "out", resamples=199)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "breakdowns.csv").read_text())))
    by = {}
    for row in rows:
        by.setdefault(row["breakdown"], []).append(row)
    assert set(by) >= {"caption length (words)", "gallery images of the query's identity"}
    for groups in by.values():
        n = sum(int(g["queries"]) for g in groups)
        assert n == len(pq.first_rank)
        r1 = sum(float(g["R1"]) * int(g["queries"]) for g in groups) / n
        assert abs(r1 - 100 * (pq.first_rank == 1).mean()) < 0.01 * len(groups)
        for g in groups:
            if g["R1_low"] != "nan":
                assert float(g["R1_low"]) <= float(g["R1"]) <= float(g["R1_high"])


@pytest.mark.parametrize("case", ["different_queries", "no_data_root", "missing_root", "bad_query", "not_a_record",
                                  "no_retrievals"])
def test_one_line_errors(tmp_path, capsys, case):
    a, root, _, _ = write_record(tmp_path)
    argv = ["inspect", str(a), "--data-root", str(root), "--out", str(tmp_path / "o")]
    if case == "different_queries":
        other, _, _, _ = write_record(tmp_path / "x", n_ids=(0, 0, 4))
        argv += ["--vs", str(other)]
    elif case == "no_data_root":
        argv = argv[:2] + argv[4:]
    elif case == "missing_root":
        argv[3] = str(tmp_path / "nowhere")
    elif case == "bad_query":
        argv += ["--query", "9999"]
    elif case == "not_a_record":
        argv[1] = str(tmp_path)
    elif case == "no_retrievals":
        (a / "retrievals.npz").unlink()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_gallery_paths_leaving_the_data_root_are_never_opened(tmp_path):
    folder, root, _, _ = write_record(tmp_path)
    secret = tmp_path / "secret.png"
    write_image(secret)
    rt = dict(np.load(folder / "retrievals.npz"))
    rt["gallery_path"] = np.array(["../../secret.png", str(secret)] + list(rt["gallery_path"][2:]))
    np.savez_compressed(folder / "retrievals.npz", **rt)
    r = load_record(folder)
    from harness.inspector.thumbs import Thumbnails

    t = Thumbnails(root, r.image_dir)
    assert t.data_uri("../../secret.png") is None and t.data_uri(str(secret)) is None
    assert t.data_uri(str(r.gallery_path[2])) is not None


def test_store_topk_is_checked_and_zero_keeps_no_retrievals(tmp_path):
    from harness.config import load_config
    from harness.engine.settings import eval_settings
    from harness.errors import ConfigError

    assert eval_settings(load_config("fmfa", "synth")).store_topk == 10
    assert eval_settings(load_config("fmfa", "synth", options={"eval": {"store_topk": 3}})).store_topk == 3
    for bad in (-1, 1001, 2.5, "10"):
        with pytest.raises(ConfigError, match="eval.store_topk"):
            load_config("fmfa", "synth", options={"eval": {"store_topk": bad}})
    folder, *_ = write_record(tmp_path, k=0)
    assert not (folder / "retrievals.npz").exists()
