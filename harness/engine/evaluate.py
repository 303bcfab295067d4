"""Encode an evaluation split with a method and compute per-query metrics (harness-owned scoring).

Everything the method receives -- image batches and the tokenizer's output, whatever its form (a
tensor, a dict of tensors as BERT tokenizers give, lists of them) -- is moved to the method's device,
and the features stay there, so the ranking runs on the GPU when the method is on one.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.loading import GalleryImages
from ..data.splits import EvalSet, Splits
from ..evaluation import PerQuery, evaluate_features
from .precision import resolve_precision
from .settings import EvalSettings


def to_device(obj, device: torch.device, non_blocking: bool = False):
    """Tensors anywhere in dicts, lists and tuples (or objects with ``.to``, like a transformers
    ``BatchEncoding``) moved to ``device``; other values returned as they are."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, dict):
        return type(obj)((k, to_device(v, device, non_blocking)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        items = [to_device(v, device, non_blocking) for v in obj]
        return type(obj)(*items) if hasattr(obj, "_fields") else type(obj)(items)
    return obj.to(device) if hasattr(obj, "to") else obj


@torch.no_grad()
def encode_eval_set(method, ev: EvalSet, batch_size: int = 256, num_workers: int = 0, pin_memory: bool = False,
                    amp: str = "off", progress: bool = True):
    """(query features, gallery features), float32, on the method's device."""
    was_training = method.training
    method.eval()
    device = next(method.parameters()).device
    precision = resolve_precision(amp, device.type)
    pin = pin_memory and device.type == "cuda"
    loader = DataLoader(GalleryImages(ev.gallery_paths, ev.image_root, method.image_spec), batch_size=batch_size,
                        num_workers=num_workers, pin_memory=pin)
    try:
        with precision.autocast(device):
            g = [method.encode_image(x.to(device, non_blocking=pin)).float()
                 for x in tqdm(loader, desc="gallery", unit="batch", leave=False, disable=not progress)]
            q = []
            caps = ev.query_captions
            for a in tqdm(range(0, len(caps), batch_size), desc="queries", unit="batch", leave=False,
                          disable=not progress):
                q.append(method.encode_text(to_device(method.tokenize(caps[a:a + batch_size]), device)).float())
    finally:
        method.train(was_training)
    return torch.cat(q), torch.cat(g)


def evaluate_method(method, ev: EvalSet, batch_size: int = 256, chunk_size: int = 512, progress: bool = True, *,
                    num_workers: int = 0, pin_memory: bool = False, amp: str = "off", topk: int = 0) -> PerQuery:
    """Encode ``ev`` and rank it on the method's device; ``topk`` > 0 keeps each query's top-k gallery
    indices and scores too. ``EvalSettings.encode_options()`` gives the other keywords from a config."""
    qf, gf = encode_eval_set(method, ev, batch_size, num_workers=num_workers, pin_memory=pin_memory, amp=amp,
                             progress=progress)
    with_sd = method.score_type == "cosine"
    return evaluate_features(qf, gf, np.asarray(ev.query_pids), np.asarray(ev.gallery_pids), chunk_size=chunk_size,
                             with_sd=with_sd, progress=progress, topk=topk)


@dataclass
class Scored:
    """One evaluation split as scored: what ``records.build_record`` writes down."""

    splits: Splits
    split: str
    eval_set: EvalSet
    per_query: PerQuery
    seconds: float


def score_split(method, splits: Splits, records: list, split: str, settings: EvalSettings,
                progress: bool = True) -> Scored:
    """Encode and rank one split of ``splits`` (its ``records``) as ``settings`` say."""
    ev = EvalSet.from_records(records, splits.image_root)
    t = time.time()
    pq = evaluate_method(method, ev, progress=progress, topk=settings.store_topk, **settings.encode_options())
    return Scored(splits, split, ev, pq, round(time.time() - t, 2))


def retrieval_arrays(ev: EvalSet, splits: Splits, pq: PerQuery) -> dict[str, np.ndarray]:
    """What ``harness inspect`` shows without the model: each query's top-k gallery indices and scores,
    its caption, and the gallery image paths relative to the data root (``image_dir`` + path, where
    ``image_dir`` is the image folder relative to the folder of the annotation file). Empty when no
    top-k was kept. ``data_root_hint`` is the folder the run read, quoted in messages only (never opened)."""
    if pq.topk_index is None:
        return {}
    root = Path(splits.annotation_file).parent
    try:
        image_dir = Path(ev.image_root).relative_to(root).as_posix()
    except ValueError:  # an annotation file outside the data root: paths stay relative to the image folder
        image_dir = "."
    return dict(topk_index=pq.topk_index, topk_score=pq.topk_score,
                query_caption=np.array(ev.query_captions, dtype="U"),
                gallery_path=np.array(ev.gallery_paths, dtype="U"), gallery_pid=np.asarray(ev.gallery_pids),
                image_dir=np.array(image_dir),
                data_root_hint=np.array(str(root)))
