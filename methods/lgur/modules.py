"""LGUR's building blocks (released ``vit_pytorch.mydecoder`` and ``model/DETR_model.py``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from harness.api import ConfigError


class CrossAttentionLayer(nn.Module):
    """Queries attend to a memory; no self-attention among queries; ONE LayerNorm for both sides."""

    def __init__(self, dim: int, heads: int, dim_head: int, mlp_dim: int):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, mlp_dim), nn.ReLU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: torch.Tensor, memory: torch.Tensor, kv_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, Nq, _ = x.shape
        split = lambda t: t.reshape(B, t.shape[1], self.heads, -1).transpose(1, 2)  # noqa: E731
        q = split(self.to_q(self.norm(x)))
        k, v = (split(t) for t in self.to_kv(self.norm(memory)).chunk(2, dim=-1))
        mask = kv_mask[:, None, None, :].bool() if kv_mask is not None else None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.to_out(out.transpose(1, 2).reshape(B, Nq, -1))
        return x + self.ff(self.norm_ff(x))


class CrossAttentionDecoder(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int):
        super().__init__()
        self.layers = nn.ModuleList(CrossAttentionLayer(dim, heads, dim_head, mlp_dim) for _ in range(depth))

    def forward(self, x, memory, kv_mask=None):
        for layer in self.layers:
            x = layer(x, memory, kv_mask)
        return x


class BiLSTMHead(nn.Module):
    """BERT hidden states -> BiLSTM (no bias), packed by length; the two directions are averaged."""

    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.lstm = nn.LSTM(in_dim, dim, num_layers=1, bidirectional=True, bias=False, batch_first=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=x.shape[1])
        fwd, bwd = out.chunk(2, dim=-1)
        return (fwd + bwd) / 2


RANK_TEXT_ANCHORS = ("released", "corrected")


def _pick_semi_hard(sim: torch.Tensor, other: torch.Tensor, margin: float,
                    generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(anchors, negatives): per row of ``sim`` that has one, a random negative with
    ``0 < s_an - s_aa + margin < margin``; kept as tensors on ``sim``'s device (no per-row host sync).

    As released (``loss/RankingLoss.py`` lines 35-60): when *no* row has one, a single fallback triplet is
    kept, the last anchor with its first negative, whatever its hinge.
    """
    pos = sim.diagonal()
    gap = sim - pos[:, None] + margin
    cand = other & (gap > 0) & (gap < margin)
    noise = torch.rand(cand.shape, generator=generator).to(sim.device)
    pick = torch.where(cand, noise, torch.full_like(noise, -1.0)).argmax(dim=1)
    anchors = cand.any(dim=1).nonzero().flatten()
    if len(anchors):
        return anchors, pick[anchors]
    # the first negative of the last anchor; none on a batch of one identity (the released code would fail)
    negatives = other[-1].nonzero().flatten()[:1]
    return torch.full_like(negatives, len(sim) - 1), negatives


def ranking_loss(s: torch.Tensor, pids: torch.Tensor, margin: float = 0.3, text_anchor: str = "released",
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """LGUR's ``RankingLoss`` on a similarity matrix ``s`` (rows: first modality, columns: second).

    Positives on the diagonal; for each row anchor one random *semi-hard* negative column
    (``s_ii - margin < s_ij < s_ii``; harder ones excluded, anchors without one skipped, the fallback of
    ``_pick_semi_hard``), then the same for column anchors on ``s.T``; hinge terms are summed.

    ``text_anchor="released"`` keeps the released indexing (lines 64-74): the column-anchor negative is
    chosen on ``s.T`` but the hinge is taken on ``s[anchor, negative]``, so the second term is in effect
    another row-anchor term. ``"corrected"`` takes it on ``s.T[anchor, negative]``.
    """
    if text_anchor not in RANK_TEXT_ANCHORS:
        raise ConfigError(f"method.rank_text_anchor must be one of {RANK_TEXT_ANCHORS}, got {text_anchor!r}")
    other = pids[:, None] != pids[None, :]
    total = s.new_zeros(())
    for sim, hinge_on in ((s, s), (s.t(), s if text_anchor == "released" else s.t())):
        a, n = _pick_semi_hard(sim, other, margin, generator)
        total = total + (margin - hinge_on[a, a] + hinge_on[a, n]).clamp(min=0).sum()
    return total


def semi_hard_ranking_loss(a: torch.Tensor, b: torch.Tensor, pids: torch.Tensor, margin: float = 0.3,
                           generator: torch.Generator | None = None, text_anchor: str = "released") -> torch.Tensor:
    """``ranking_loss`` on the cosine similarity of the concatenated parts of ``a`` (rows) and ``b``."""
    s = F.normalize(a.flatten(1), dim=1) @ F.normalize(b.flatten(1), dim=1).t()
    return ranking_loss(s, pids, margin, text_anchor, generator)
