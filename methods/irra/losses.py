"""IRRA's objectives (anosorae/IRRA@cfc2378 model/objectives.py): SDM, ID, ITC and the IRR masked-language loss.

FMFA (methods/fmfa) builds its A-SDM on ``sdm_directions`` and reuses the rest unchanged.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class SDMDirection(NamedTuple):
    """One direction of SDM (image-to-text, then text-to-image): ``kl`` per query row, plus what an adaptive
    weighting needs (``cos`` the raw cosines, ``logits`` = scale * cos, ``p`` its softmax, ``q`` the target)."""

    cos: torch.Tensor
    logits: torch.Tensor
    p: torch.Tensor
    q: torch.Tensor
    kl: torch.Tensor


def sdm_directions(image_feats, text_feats, pids, logit_scale: float, epsilon: float = 1e-8) -> list[SDMDirection]:
    """KL(p || q) per row for i2t and t2i (objectives.py:6-40): q spreads the mass over every in-batch pair of
    the same identity (:11-13, 33), p = softmax(scale * cosine) (:23-37), log(q + 1e-8) (:36, 38)."""
    labels = (pids[:, None] == pids[None, :]).float()
    q = labels / labels.sum(dim=1, keepdim=True)
    img = F.normalize(image_feats, dim=-1)
    txt = F.normalize(text_feats, dim=-1)
    cos_t2i = txt @ img.t()
    out = []
    for cos in (cos_t2i.t(), cos_t2i):
        logits = logit_scale * cos
        p = F.softmax(logits, dim=1)
        kl = (p * (F.log_softmax(logits, dim=1) - torch.log(q + epsilon))).sum(1)
        out.append(SDMDirection(cos, logits, p, q, kl))
    return out


def sdm_loss(image_feats, text_feats, pids, logit_scale: float, epsilon: float = 1e-8):
    """IRRA's SDM: mean_i KL_i2t + mean_i KL_t2i (objectives.py:40)."""
    out = 0.0
    for d in sdm_directions(image_feats, text_feats, pids, logit_scale, epsilon):
        out = out + d.kl.mean()
    return out


def itc_loss(image_feats, text_feats, logit_scale: float):
    """CLIP's symmetric InfoNCE with in-batch pairs as the only positives (IRRA model/objectives.py:50-72)."""
    logits = logit_scale * F.normalize(text_feats, dim=-1) @ F.normalize(image_feats, dim=-1).t()
    tgt = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, tgt) + F.cross_entropy(logits.t(), tgt))


def id_loss(classifier, image_feats, text_feats, pids):
    """(CE(image logits) + CE(text logits)) / 2 with one shared classifier (objectives.py:74-83); logits from
    the classifier's own dtype, returned as float32 (model/build.py:113-114 casts the features to half)."""
    dtype = classifier.weight.dtype
    img = classifier(image_feats.to(dtype)).float()
    txt = classifier(text_feats.to(dtype)).float()
    return 0.5 * (F.cross_entropy(img, pids) + F.cross_entropy(txt, pids))


def mask_tokens(ids: torch.Tensor, mask_id: int, generator: torch.Generator | None, prob: float = 0.15):
    """IRRA masking: each real token (0 < t < mask_id) is picked with p=0.15; 80% -> mask, 10% random,
    10% kept. Labels hold the original id at picked positions and 0 elsewhere."""
    real = (ids > 0) & (ids < mask_id)
    u = torch.rand(ids.shape, generator=generator)
    picked = real & (u < prob)
    none = ~picked.any(1)
    forced = torch.zeros_like(picked)
    # nothing picked: IRRA/FMFA put <mask> at position 1 (FMFA datasets/bases.py:212-214); skipped only for an
    # empty caption, whose position 1 is EOT (the released code would mask the EOT that pooling needs)
    forced[:, 1] = none & real[:, 1]
    picked = picked | forced
    v = torch.rand(ids.shape, generator=generator)
    rand_ids = torch.randint(1, mask_id, ids.shape, generator=generator)
    masked = ids.clone()
    masked = torch.where(picked & ((v < 0.8) | forced), torch.full_like(ids, mask_id), masked)
    masked = torch.where(picked & ~forced & (v >= 0.8) & (v < 0.9), rand_ids, masked)
    labels = torch.where(picked, ids, torch.zeros_like(ids))
    return masked, labels


def mlm_loss(head, hidden, labels):
    """IRR loss: ``head`` runs on the picked positions (labels > 0) only, which gives IRRA's cross-entropy
    with ignore_index=0 over all positions (IRRA model/objectives.py:45-47) for a fraction of the FLOPs."""
    sel = labels > 0
    if not sel.any():  # only when every caption in the batch is empty
        return hidden.sum() * 0
    return F.cross_entropy(head(hidden[sel]).float(), labels[sel])
