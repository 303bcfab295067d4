"""Encode an evaluation split with a method and compute per-query metrics (harness-owned scoring)."""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..data.loading import GalleryImages
from ..data.records import EvalSet
from ..evaluation import PerQuery, evaluate_features


@torch.no_grad()
def encode_eval_set(method, ev: EvalSet, batch_size: int = 256, num_workers: int = 0, progress: bool = True):
    was_training = method.training
    method.eval()
    device = next(method.parameters()).device
    loader = DataLoader(GalleryImages(ev.gallery_paths, ev.image_root, method.image_spec), batch_size=batch_size,
                        num_workers=num_workers)
    g = [method.encode_image(x.to(device)).float().cpu()
         for x in tqdm(loader, desc="gallery", unit="batch", leave=False, disable=not progress)]
    q = []
    caps = ev.query_captions
    for a in tqdm(range(0, len(caps), batch_size), desc="queries", unit="batch", leave=False, disable=not progress):
        tok = method.tokenize(caps[a:a + batch_size])
        tok = tok.to(device) if hasattr(tok, "to") else tok
        q.append(method.encode_text(tok).float().cpu())
    method.train(was_training)
    return torch.cat(q), torch.cat(g)


def evaluate_method(method, ev: EvalSet, batch_size: int = 256, chunk_size: int = 512, progress: bool = True) -> PerQuery:
    qf, gf = encode_eval_set(method, ev, batch_size, progress=progress)
    with_sd = getattr(method, "score_type", "cosine") == "cosine"
    return evaluate_features(qf, gf, np.asarray(ev.query_pids), np.asarray(ev.gallery_pids), chunk_size=chunk_size,
                             with_sd=with_sd, progress=progress)
