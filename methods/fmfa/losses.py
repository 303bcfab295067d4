"""FMFA/IRRA objectives: SDM and A-SDM, ID, MLM (IRR) and EFA.

Formulas follow ../shared/research/irra_fmfa.md §3-4; where the released code and the paper
differ, both are available and the choice is a config key recorded with every result.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def sdm_loss(image_feats, text_feats, pids, logit_scale: float, epsilon: float = 1e-8,
             asdm: str = "off", alpha: float = 0.1, detach_weight: bool = False):
    """Similarity distribution matching, optionally with FMFA's adaptive weights.

    asdm='off'   : plain IRRA SDM.
    asdm='code'  : released FMFA code: w = 1 + alpha*(cos(pred) - cos(gt)) when top-1 != first in-batch
                   positive, on raw cosine, not detached (alpha hard-coded 0.1 there).
    asdm='paper' : FMFA paper: w = alpha*(max_k p_ik - p_ii) + 1 on softmax probabilities (alpha 10; 1 on RSTP).
    detach_weight: stop the gradient through w (the released code lets it flow; the paper does not say).
    """
    labels = (pids[:, None] == pids[None, :]).float()
    q = labels / labels.sum(dim=1, keepdim=True)
    img = F.normalize(image_feats, dim=-1)
    txt = F.normalize(text_feats, dim=-1)
    cos_t2i = txt @ img.t()
    cos_i2t = cos_t2i.t()
    out = 0.0
    for cos in (cos_i2t, cos_t2i):
        logits = logit_scale * cos
        p = F.softmax(logits, dim=1)
        kl = (p * (F.log_softmax(logits, dim=1) - torch.log(q + epsilon))).sum(1)
        if asdm == "off":
            w = torch.ones_like(kl)
        elif asdm == "code":
            pred = logits.argmax(1)
            gt = q.argmax(1)  # first in-batch positive
            gap = cos.gather(1, pred[:, None])[:, 0] - cos.gather(1, gt[:, None])[:, 0]
            w = torch.where(pred != gt, 1 + alpha * gap, torch.ones_like(gap))
        elif asdm == "paper":
            w = alpha * (p.max(1).values - p.diagonal()) + 1
        else:
            raise ValueError(f"asdm must be off|code|paper, got {asdm!r}")
        out = out + ((w.detach() if detach_weight else w) * kl).mean()
    return out


def itc_loss(image_feats, text_feats, logit_scale: float):
    """CLIP's symmetric InfoNCE with in-batch pairs as the only positives (IRRA model/objectives.py:50-72)."""
    logits = logit_scale * F.normalize(text_feats, dim=-1) @ F.normalize(image_feats, dim=-1).t()
    tgt = torch.arange(len(logits), device=logits.device)
    return 0.5 * (F.cross_entropy(logits, tgt) + F.cross_entropy(logits.t(), tgt))


def id_loss(classifier, image_feats, text_feats, pids):
    return 0.5 * (F.cross_entropy(classifier(image_feats), pids) + F.cross_entropy(classifier(text_feats), pids))


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


def efa_aggregate(text_tokens, patch_tokens, threshold: float | None = None, strict: bool = True):
    """Language-grouped vision embeddings E [B, L, D]: per text token, a sparse, min-max-normalised
    weighting of the paired image's patches (threshold 1/N by default)."""
    s = text_tokens @ patch_tokens.transpose(1, 2)  # [B, L, N]
    lo, hi = s.min(-1, keepdim=True).values, s.max(-1, keepdim=True).values
    s = (s - lo) / (hi - lo).clamp_min(1e-12)  # the released code has no epsilon here (NaN risk)
    thr = 1.0 / patch_tokens.shape[1] if threshold is None else threshold
    keep = s > thr if strict else s >= thr
    s = torch.where(keep, s, torch.zeros_like(s))
    agg = s / s.sum(-1, keepdim=True).clamp_min(1e-12)
    return agg @ patch_tokens


def efa_contrast(x, e, margin: float, temperature: float = 1.0, row_normalise: bool = True,
                 x_mask: torch.Tensor | None = None):
    """Hard-coded (max) token matching, LSE pooling, then a soft-margin ranking loss over the batch.

    sims[a, b] = logsumexp_x max_c cos(X_a[x], E_b[c]); row L2-normalised as in the released code.
    """
    xn, en = F.normalize(x, dim=-1), F.normalize(e, dim=-1)
    B, Lx, D = xn.shape
    Lc = en.shape[1]
    # one [B*Lx, B*Lc] matmul instead of a batched einsum: same numbers, far less copying
    sim = (xn.reshape(B * Lx, D) @ en.reshape(-1, D).t()).view(B, Lx, B, Lc).amax(-1)  # [a, x, b]
    sim = sim.permute(0, 2, 1)  # [a, b, x]
    if x_mask is not None:
        sim = sim.masked_fill(~x_mask[:, None, :], float("-inf"))
    sims = torch.logsumexp(sim, dim=-1)
    if row_normalise:
        sims = F.normalize(sims, dim=-1)
    diag = sims.diagonal()
    eye = torch.eye(len(sims), dtype=torch.bool, device=sims.device)
    a = ((sims - diag[:, None] + margin) / temperature).masked_fill(eye, 0)
    b = ((sims - diag[None, :] + margin) / temperature).masked_fill(eye, 0)
    return torch.logsumexp(a, dim=0).mean() + torch.logsumexp(b, dim=0).mean()
