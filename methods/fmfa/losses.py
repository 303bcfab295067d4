"""FMFA's objectives on top of IRRA's (methods/irra/losses.py): A-SDM and EFA.

Formulas follow the paper (arXiv 2509.13754v2 §3-4) and the released code; where the released code and the paper
differ, both are available and the choice is a config key recorded with every result. IRRA's SDM, ID, ITC,
masking and MLM terms are re-exported here unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.api import ConfigError

from ..irra.losses import id_loss, itc_loss, mask_tokens, mlm_loss, sdm_directions  # noqa: F401


def sdm_loss(image_feats, text_feats, pids, logit_scale: float, epsilon: float = 1e-8,
             asdm: str = "off", alpha: float = 0.1, detach_weight: bool = False):
    """Similarity distribution matching (IRRA's, ``irra.losses.sdm_directions``), optionally with FMFA's
    adaptive weights.

    asdm='off'   : plain IRRA SDM.
    asdm='code'  : released FMFA code: w = 1 + alpha*(cos(pred) - cos(gt)) when top-1 != first in-batch
                   positive, on raw cosine, not detached (alpha hard-coded 0.1 there).
    asdm='paper' : FMFA paper: w = alpha*(max_k p_ik - p_ii) + 1 on softmax probabilities (alpha 10; 1 on RSTP).
    detach_weight: stop the gradient through w (the released code lets it flow; the paper does not say).
    """
    if asdm not in ("off", "code", "paper"):
        raise ConfigError(f"method.asdm_mode must be off|code|paper, got {asdm!r}")
    out = 0.0
    for d in sdm_directions(image_feats, text_feats, pids, logit_scale, epsilon):
        if asdm == "off":
            w = torch.ones_like(d.kl)
        elif asdm == "code":
            pred = d.logits.argmax(1)
            gt = d.q.argmax(1)  # first in-batch positive
            gap = d.cos.gather(1, pred[:, None])[:, 0] - d.cos.gather(1, gt[:, None])[:, 0]
            w = torch.where(pred != gt, 1 + alpha * gap, torch.ones_like(gap))
        else:
            w = alpha * (d.p.max(1).values - d.p.diagonal()) + 1
        out = out + ((w.detach() if detach_weight else w) * d.kl).mean()
    return out


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
                 x_mask: torch.Tensor | None = None, e_mask: torch.Tensor | None = None):
    """Hard-coded (max) token matching, LSE pooling, then a soft-margin ranking loss over the batch.

    sims[a, b] = logsumexp_x max_c cos(X_a[x], E_b[c]); row L2-normalised as in the released code.
    ``x_mask`` [B, Lx] / ``e_mask`` [B, Lc]: False positions are left out of the LSE over x / the max over c
    (padding text tokens and the joint embeddings built for them).
    """
    xn, en = F.normalize(x, dim=-1), F.normalize(e, dim=-1)
    B, Lx, D = xn.shape
    Lc = en.shape[1]
    # one [B*Lx, B*Lc] matmul instead of a batched einsum: same numbers, far less copying
    sim = (xn.reshape(B * Lx, D) @ en.reshape(-1, D).t()).view(B, Lx, B, Lc)
    if e_mask is not None:
        sim = sim.masked_fill(~e_mask[None, None], float("-inf"))
    sim = sim.amax(-1)  # [a, x, b]
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
