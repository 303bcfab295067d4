"""What identifies the data behind a number: the annotation file's sha256, the split counts and, for an
evaluation set, the ordered query ids (two records are paired-comparable only when those agree)."""
from __future__ import annotations

import hashlib

from ..hashing import sha256_file
from .splits import EvalSet, Splits


def query_keys(ev: EvalSet) -> list[str]:
    """A stable id per query, in evaluation order: gallery image path and caption number within it."""
    seen: dict[int, int] = {}
    keys = []
    for img in ev.query_image_index:
        k = seen.get(img, 0)
        seen[img] = k + 1
        keys.append(f"{ev.gallery_paths[img]}#{k}")
    return keys


def dataset_fingerprint(splits: Splits, ev: EvalSet | None = None) -> dict:
    """What identifies the data behind a number: the annotation file's sha256, per-split counts and,
    for an evaluation set, the sha256 of its ordered query ids (two records are paired-comparable only
    when those agree)."""
    fp = dict(name=splits.name, annotation_sha256=sha256_file(splits.annotation_file), counts=splits.counts())
    if ev is not None:
        blob = "\n".join(f"{pid}\t{key}" for pid, key in zip(ev.query_pids, query_keys(ev)))
        fp.update(num_queries=len(ev.query_captions), num_gallery=len(ev.gallery_paths),
                  query_ids_sha256=hashlib.sha256(blob.encode()).hexdigest())
    return fp


def train_data_facts(splits: Splits) -> dict:
    """What a record says about the training data; saved in the work dir so `harness eval` can repeat it."""
    return dict(dataset=splits.name, fingerprint=dataset_fingerprint(splits), notes=list(splits.notes),
                skipped=dict(splits.skipped), stats=dict(splits.stats))
