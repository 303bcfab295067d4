"""IVT's losses and token dropping, as in the released code (``loss/cmps_loss.py``, ``vit_vl.py``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from harness.api import ConfigError


def cmpm_loss(image_feats: torch.Tensor, text_feats: torch.Tensor, pids: torch.Tensor,
              target_norm: str = "l2", eps: float = 1e-8) -> torch.Tensor:
    """Cross-modal projection matching, both directions, summed.

    The anchor is *not* normalised and the other side is (``x_i . z_j/||z_j||``), as in the paper
    (Zhang & Lu 2018). ``target_norm='l2'`` divides the identity mask by its L2 norm like IVT's code;
    'l1' gives the true distribution of the CMPM paper.
    """
    labels = (pids[:, None] == pids[None, :]).float()
    if target_norm == "l2":
        q = labels / labels.norm(dim=1, keepdim=True)
    elif target_norm == "l1":
        q = labels / labels.sum(dim=1, keepdim=True)
    else:
        raise ConfigError(f"method.cmpm_target_norm must be 'l2' or 'l1', got {target_norm!r}")
    i2t = image_feats @ F.normalize(text_feats, dim=1).t()
    t2i = text_feats @ F.normalize(image_feats, dim=1).t()

    def kl(logits):
        p = logits.softmax(dim=1)
        return (p * (F.log_softmax(logits, dim=1) - torch.log(q + eps))).sum(dim=1).mean()

    return kl(i2t) + kl(t2i)


def drop_tokens(x: torch.Tensor, mask: torch.Tensor | None, ratio: float, g: torch.Generator | None = None):
    """BMM: drop up to ``floor(ratio * N)`` tokens at the same positions for the whole batch; never [CLS].

    ``n_drop ~ U{0..floor(ratio*N)}`` with N counting [CLS]; positions were added before, so the
    remaining order does not matter. Padding may be dropped instead of words (as in the released code).
    """
    n = x.shape[1]
    n_drop = int(torch.randint(0, int(ratio * n) + 1, (), generator=g))
    if n_drop == 0:
        return x, mask
    order = torch.randperm(n - 1, generator=g) + 1
    keep = torch.cat([torch.zeros(1, dtype=torch.long), order[n_drop:].sort().values]).to(x.device)
    return x[:, keep], (mask[:, keep] if mask is not None else None)

