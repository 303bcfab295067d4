"""LGUR's building blocks (released ``vit_pytorch.mydecoder`` and ``model/DETR_model.py``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


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


def semi_hard_ranking_loss(a: torch.Tensor, b: torch.Tensor, pids: torch.Tensor, margin: float = 0.3,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """LGUR's ``RankingLoss``: positives on the diagonal; for each row (and column) anchor one random
    *semi-hard* negative j (other identity, ``s_ii - margin < s_ij < s_ii``); anchors without one are
    skipped; hinge terms are summed (so the loss scales with the batch)."""
    s = F.normalize(a.flatten(1), dim=1) @ F.normalize(b.flatten(1), dim=1).t()
    pos = s.diagonal()
    other = pids[:, None] != pids[None, :]
    total = s.new_zeros(())
    for sim, p in ((s, pos), (s.t(), pos)):
        gap = sim - p[:, None] + margin
        cand = other & (gap > 0) & (gap < margin)
        has = cand.any(dim=1)
        if not has.any():
            continue
        noise = torch.rand(cand.shape, generator=generator).to(sim.device)
        pick = torch.where(cand, noise, torch.full_like(noise, -1.0)).argmax(dim=1)
        rows = has.nonzero().squeeze(1)
        total = total + (margin - p[rows] + sim[rows, pick[rows]]).clamp(min=0).sum()
    return total
