"""Results records in the exact stored layout (record.json + per_query.npz), made without training:
per-query ranks drawn at random, every record field the schema checks filled consistently (metrics are
the per-query means, the fingerprint hashes the query ids), written through ResultsStore.write."""
from __future__ import annotations

import copy

import numpy as np

from harness.config import config_hash
from harness.results import ResultsStore
from harness.results.labels import label, variant
from harness.results.schema import query_ids_sha256

DEFAULT = dict(method=dict(type="fmfa", temperature=0.02, asdm_mode="code"), train=dict(epochs=2, batch_size=8),
               dataset=dict(type="synth", test_ids=8))


def per_query(rng, n_ids=8, caps=4, gallery=16, skill=0.5, source=None):
    n = n_ids * caps
    pid = np.repeat(np.arange(1, n_ids + 1), caps)
    hit = rng.random(n) < skill
    first_rank = np.where(hit, 1, rng.integers(2, gallery + 1, n)).astype(np.int64)
    ap = np.clip(1.0 / first_rank + rng.random(n) * 0.01, 0, 1)
    inp = ap * 0.5
    keys = np.array([f"images/{p}_{i % 2}.jpg#{i // 2}" for i, p in enumerate(pid)], dtype="U")
    src = np.array([source or (f"synth-{'ab'[i % 2]}") for i in range(n)], dtype="U")
    return dict(first_rank=first_rank, ap=ap, inp=inp, query_key=keys, query_pid=pid,
                query_image=np.arange(n) // 2, query_source=src)


def record(pq, method="fmfa", seed=0, config=None, train="synth", evaluated="synth", kind="run", gallery=16,
           reference=None, **extra):
    config = copy.deepcopy(config or DEFAULT)
    config["method"]["type"] = method
    fr = pq["first_rank"]
    metrics = {"R1": float((fr <= 1).mean() * 100), "R5": float((fr <= 5).mean() * 100),
               "R10": float((fr <= 10).mean() * 100), "mAP": float(pq["ap"].mean() * 100),
               "mINP": float(pq["inp"].mean() * 100), "mSD": 10.0}
    counts = {"test": {"ids": int(len(set(pq["query_pid"].tolist()))), "images": gallery, "captions": len(fr)}}
    parts = variant(config, reference if reference is not None else {**DEFAULT, "method": {**DEFAULT["method"],
                                                                                         "type": method}})
    rec = dict(kind=kind, method=method, seed=seed, config=config, config_hash=config_hash(config),
               deviations=[dict(id="fp32", ours="fp32", released="fp16 (model.py:1)", switch="")],
               encoder_weights="random-init", train_dataset=train,
               train_fingerprint=dict(name=train, annotation_sha256="ab" * 32, counts=counts),
               checkpoint=dict(path="work_dirs/x/epoch_2.pth", sha256="cd" * 32, epoch=2),
               selection=dict(rule="last", selected_epoch=2, epochs=2), harness_version="0.1.0",
               git_sha="ef" * 20, git_dirty=False, code_history=[dict(git_sha="ef" * 20, git_dirty=False)],
               eval_dataset=evaluated, split="test",
               eval_fingerprint=dict(name=evaluated, annotation_sha256=("12" if evaluated == train else "34") * 32,
                                     counts=counts, num_queries=len(fr), num_gallery=gallery,
                                     query_ids_sha256=query_ids_sha256(pq["query_pid"], pq["query_key"])),
               metrics=metrics, per_source={}, num_queries=len(fr), num_gallery=gallery,
               display=dict(label=label(method, parts), variant=parts, published_counts=False))
    if evaluated != train:  # cross-domain: R1 of each source's queries
        rec["per_source"] = {str(src): {"R1": float((fr[pq["query_source"] == src] <= 1).mean() * 100)}
                             for src in sorted(set(pq["query_source"].tolist()))}
    if kind == "eval":
        rec["selection"] = dict(rule="given", selected_epoch=2)
    rec.update(extra)
    return rec


def write(store_dir, rec, pq):
    return ResultsStore(store_dir).write(copy.deepcopy(rec), pq)


def small_store(store_dir, seeds=(0, 1), methods=("fmfa", "ivt"), evaluated="synth", seed=0):
    """Two methods x two seeds on one evaluation set."""
    rng = np.random.default_rng(seed)
    paths = []
    for m, skill in zip(methods, (0.7, 0.3, 0.5, 0.6)):
        for s in seeds:
            pq = per_query(rng, skill=skill)
            paths.append(write(store_dir, record(pq, method=m, seed=s, evaluated=evaluated), pq))
    return paths
