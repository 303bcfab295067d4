"""Per-query retrieval metrics, exactly as IRRA's ``rank()`` defines them, without a full argsort.

IRRA sorts every gallery row (Q x G argsort) and loops over all G columns in Python. Every metric
it reports depends only on the ranks of the *positives* of each query, so we compute those ranks
directly: under a stable descending sort (ties broken by lower gallery index first),

    rank(g) = #{j : s_j > s_g} + #{j : s_j == s_g and j < g}.

With the sorted 0-based positive ranks r_1 < ... < r_P of a query:
    R@k  = [r_1 < k],   AP = (1/P) sum_i i / (r_i + 1),   INP = P / (r_P + 1).
Queries are processed in chunks so memory stays bounded for any Q x G.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class PerQuery:
    """One row per query. ``first_rank`` is 1-based (1 = the top image is a correct identity)."""

    first_rank: np.ndarray  # int64
    ap: np.ndarray  # float64 in [0, 1]
    inp: np.ndarray  # float64 in [0, 1]
    n_pos: np.ndarray  # int64
    sd: np.ndarray | None = None  # mSD per-query term (cosine scores only)

    def hits(self, k: int) -> np.ndarray:
        return (self.first_rank <= k).astype(np.float64)

    def as_dict(self) -> dict[str, np.ndarray]:
        d = dict(first_rank=self.first_rank, ap=self.ap, inp=self.inp, n_pos=self.n_pos)
        if self.sd is not None:
            d["sd"] = self.sd
        return d

    @classmethod
    def from_dict(cls, d) -> "PerQuery":
        return cls(np.asarray(d["first_rank"]), np.asarray(d["ap"]), np.asarray(d["inp"]), np.asarray(d["n_pos"]),
                   np.asarray(d["sd"]) if "sd" in d else None)

    def subset(self, mask: np.ndarray) -> "PerQuery":
        return PerQuery(self.first_rank[mask], self.ap[mask], self.inp[mask], self.n_pos[mask],
                        None if self.sd is None else self.sd[mask])


def summarise(pq: PerQuery, ks=(1, 5, 10)) -> dict[str, float]:
    """Percentages, as IRRA logs them."""
    out = {f"R{k}": float(pq.hits(k).mean() * 100) for k in ks}
    out["mAP"] = float(pq.ap.mean() * 100)
    out["mINP"] = float(pq.inp.mean() * 100)
    if pq.sd is not None:
        out["mSD"] = float(pq.sd.mean() * 100)
    out["rSum"] = sum(out[f"R{k}"] for k in ks)
    return out


def _positive_ranks(sim: torch.Tensor, pos: torch.Tensor, with_sd: bool):
    """Ranks (0-based, stable descending) of the positives of each row; padded with G."""
    C, G = sim.shape
    n_pos = pos.sum(1)
    if bool((n_pos == 0).any()):
        bad = int(torch.nonzero(n_pos == 0)[0])
        raise ValueError(f"query {bad} of this chunk has no positive in the gallery (IRRA's protocol requires one)")
    P = int(n_pos.max())
    # gallery indices of the positives in gallery order (nonzero, not a per-row argsort), padded with
    # the row's first positive (masked out later)
    rows, cols = pos.nonzero(as_tuple=True)
    first = torch.cumsum(n_pos, 0) - n_pos
    order = cols[first][:, None].repeat(1, P)
    order[rows, torch.arange(len(rows)) - first[rows]] = cols
    valid = torch.arange(P)[None, :] < n_pos[:, None]
    psim = sim.gather(1, order)  # [C, P]
    ranks = torch.empty(C, P, dtype=torch.long)
    cum_mass = torch.zeros(C, P, dtype=torch.float64) if with_sd else None
    gidx = torch.arange(G)
    # one positive column at a time keeps the temporary at C x G (bounded memory)
    for p in range(P):
        sp = psim[:, p:p + 1]
        ahead = (sim > sp) | ((sim == sp) & (gidx[None, :] < order[:, p:p + 1]))
        ranks[:, p] = ahead.view(torch.uint8).sum(1, dtype=torch.int32)  # int32 accumulation: half the time of bool.sum
        if with_sd:
            cum_mass[:, p] = ((sim.double() * 0.5 + 0.5) * ahead).sum(1) + (sp.double()[:, 0] * 0.5 + 0.5)
    ranks = torch.where(valid, ranks, torch.full_like(ranks, G))
    return ranks, valid, psim, cum_mass, n_pos


def _chunk_metrics(sim: torch.Tensor, pos: torch.Tensor, with_sd: bool):
    ranks, valid, psim, cum_mass, n_pos = _positive_ranks(sim, pos, with_sd)
    sranks, perm = ranks.sort(dim=1)
    svalid = valid.gather(1, perm)
    r = sranks.double()
    i = torch.arange(1, ranks.shape[1] + 1, dtype=torch.float64)[None, :]
    npos = n_pos.double()
    ap = torch.where(svalid, i / (r + 1), torch.zeros_like(r)).sum(1) / npos
    last = sranks.gather(1, (n_pos - 1)[:, None])[:, 0].double()
    inp = npos / (last + 1)
    sd = None
    if with_sd:
        s01 = sim.double() * 0.5 + 0.5
        ps01 = (psim.double() * 0.5 + 0.5)
        pos_sum = torch.where(valid, ps01, torch.zeros_like(ps01)).sum(1)
        neg_sum = s01.sum(1) - pos_sum
        G = sim.shape[1]
        mu_pos, mu_neg = pos_sum / npos, neg_sum / torch.clamp(G - npos, min=1)
        w = 1 - torch.exp(-(mu_pos / torch.clamp(mu_neg, min=1e-12)))
        # positive similarity mass within the top (rank_j + 1) = cumulative sum over sorted positives
        sps = torch.where(svalid, ps01.gather(1, perm), torch.zeros_like(r))
        c = sps.cumsum(1) / torch.where(svalid, cum_mass.gather(1, perm), torch.ones_like(r))
        sd = w * torch.where(svalid, c, torch.zeros_like(c)).sum(1) / npos
    return sranks[:, 0] + 1, ap, inp, n_pos, sd


def evaluate_similarity(sim, q_pids, g_pids, chunk_size: int = 512, with_sd: bool = False,
                        progress: bool = False) -> PerQuery:
    """Metrics for a precomputed [Q, G] similarity matrix (text queries x gallery images)."""
    sim = torch.as_tensor(sim)
    q = torch.as_tensor(np.asarray(q_pids))
    g = torch.as_tensor(np.asarray(g_pids))
    return _evaluate(lambda a, b: sim[a:b].float(), len(q), q, g, chunk_size, with_sd, progress)


@torch.no_grad()
def evaluate_features(q_feats, g_feats, q_pids, g_pids, chunk_size: int = 512, with_sd: bool = True,
                      progress: bool = False) -> PerQuery:
    """L2-normalise, score by cosine, rank chunk by chunk (never holds the full Q x G matrix)."""
    qf = F.normalize(torch.as_tensor(q_feats).float(), dim=1)
    gf = F.normalize(torch.as_tensor(g_feats).float(), dim=1)
    q = torch.as_tensor(np.asarray(q_pids))
    g = torch.as_tensor(np.asarray(g_pids))
    return _evaluate(lambda a, b: qf[a:b] @ gf.t(), len(q), q, g, chunk_size, with_sd, progress)


def _evaluate(sim_rows, Q, q, g, chunk_size, with_sd, progress) -> PerQuery:
    parts = []
    rng = range(0, Q, chunk_size)
    if progress:
        from tqdm import tqdm
        rng = tqdm(rng, desc="ranking", unit="chunk", leave=False)
    for a in rng:
        b = min(Q, a + chunk_size)
        sim = sim_rows(a, b)
        pos = q[a:b, None] == g[None, :]
        parts.append(_chunk_metrics(sim, pos, with_sd))
    cat = lambda k: torch.cat([p[k] for p in parts]).numpy()  # noqa: E731
    return PerQuery(cat(0).astype(np.int64), cat(1), cat(2), cat(3).astype(np.int64),
                    cat(4) if with_sd else None)


def rank_reference(similarity, q_pids, g_pids, max_rank: int = 10):
    """IRRA ``utils/metrics.py::rank`` written out literally (full argsort + cumulative sums), with a
    stable sort so ties are broken deterministically. Used by tests and the speed benchmark."""
    similarity = torch.as_tensor(similarity)
    q_pids, g_pids = torch.as_tensor(np.asarray(q_pids)), torch.as_tensor(np.asarray(g_pids))
    indices = torch.sort(similarity, dim=1, descending=True, stable=True).indices
    matches = g_pids[indices].eq(q_pids.view(-1, 1))
    cmc = matches[:, :max_rank].cumsum(1)
    cmc[cmc > 1] = 1
    all_cmc = cmc.float().mean(0) * 100
    num_rel = matches.sum(1)
    tmp_cmc = matches.cumsum(1)
    inp = [tmp_cmc[i][matches[i].nonzero()[-1]] / (matches[i].nonzero()[-1] + 1.0) for i in range(matches.shape[0])]
    mINP = torch.cat(inp).mean() * 100
    tmp = tmp_cmc.double() / torch.arange(1, tmp_cmc.shape[1] + 1, dtype=torch.float64)
    AP = (tmp * matches).sum(1) / num_rel
    mAP = AP.mean() * 100
    return all_cmc, float(mAP), float(mINP), indices
