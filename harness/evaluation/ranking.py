"""Per-query retrieval metrics, exactly as IRRA's ``rank()`` defines them, without a full argsort.

IRRA sorts every gallery row (Q x G argsort) and loops over all G columns in Python. Every metric
it reports depends only on the ranks of the *positives* of each query, so we compute those ranks
directly: under a stable descending sort (ties broken by lower gallery index first),

    rank(g) = #{j : s_j > s_g} + #{j : s_j == s_g and j < g}.

With the sorted 0-based positive ranks r_1 < ... < r_P of a query:
    R@k  = [r_1 < k],   AP = (1/P) sum_i i / (r_i + 1),   INP = P / (r_P + 1).
Queries are processed in chunks so memory stays bounded for any Q x G. Scores are ranked on the
device the features are on (a GPU when they are there). On a CPU the chunks are shared out to Python
threads that each run single-threaded torch ops: a multi-threaded op waits at a barrier for every
thread, so when other processes (data-loader workers, other jobs) hold a core each of the thousands
of small ops per chunk waits a scheduler slice, and ranking slowed down 100x under load.
"""
from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
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
    topk_index: np.ndarray | None = None  # [Q, k] int32: the top-k gallery indices, stable descending order
    topk_score: np.ndarray | None = None  # [Q, k] float32: their scores

    def hits(self, k: int) -> np.ndarray:
        return (self.first_rank <= k).astype(np.float64)

    def as_dict(self) -> dict[str, np.ndarray]:
        d = dict(first_rank=self.first_rank, ap=self.ap, inp=self.inp, n_pos=self.n_pos)
        if self.sd is not None:
            d["sd"] = self.sd
        return d

    def subset(self, mask: np.ndarray) -> PerQuery:
        pick = lambda a: None if a is None else a[mask]  # noqa: E731
        return PerQuery(self.first_rank[mask], self.ap[mask], self.inp[mask], self.n_pos[mask], pick(self.sd),
                        pick(self.topk_index), pick(self.topk_score))


def summarise(pq: PerQuery, ks=(1, 5, 10)) -> dict[str, float]:
    """Percentages, as IRRA logs them."""
    out = {f"R{k}": float(pq.hits(k).mean() * 100) for k in ks}
    out["mAP"] = float(pq.ap.mean() * 100)
    out["mINP"] = float(pq.inp.mean() * 100)
    if pq.sd is not None:
        out["mSD"] = float(pq.sd.mean() * 100)
    out["rSum"] = sum(out[f"R{k}"] for k in ks)
    return out


_BLOCK_BYTES = 4 << 20  # a CPU sub-block of the similarity chunk that stays in L2/L3 on common CPUs


def _positives(q: torch.Tensor, g: torch.Tensor):
    """Gallery indices of every query's positives, ascending, padded with the last one: [Q, P], and
    their counts [Q]. Built from the gallery sorted by identity (G log G), never from a Q x G mask."""
    g_sorted, perm = torch.sort(g, stable=True)
    ids, counts = torch.unique_consecutive(g_sorted, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    loc = torch.searchsorted(ids, q).clamp(max=len(ids) - 1)
    n_pos = torch.where(ids[loc] == q, counts[loc], torch.zeros_like(counts[loc]))
    if bool((n_pos == 0).any()):
        bad = int(torch.nonzero(n_pos == 0)[0])
        raise ValueError(f"query {bad} (identity {q[bad].item()}) has no positive in the gallery "
                         "(IRRA's protocol requires one)")
    P = int(n_pos.max())
    k = torch.minimum(torch.arange(P)[None, :], (n_pos - 1)[:, None])
    return perm[starts[loc][:, None] + k], n_pos


def _positive_ranks(sim: torch.Tensor, order: torch.Tensor, n_pos: torch.Tensor, with_sd: bool):
    """Ranks (0-based, stable descending) of the positives ``order`` [C, P] of each row; padding -> G."""
    sim = sim.contiguous()
    dev = sim.device
    C, G = sim.shape
    P = order.shape[1]
    valid = torch.arange(P, device=dev)[None, :] < n_pos[:, None]
    psim = sim.gather(1, order)  # [C, P]
    ranks = torch.empty(C, P, dtype=torch.long, device=dev)
    cum_mass = torch.zeros(C, P, dtype=torch.float64, device=dev) if with_sd else None
    # On a CPU, row blocks small enough to stay in cache: every positive of a row re-reads the same
    # block, so the P comparison passes cost one trip to memory instead of P. A GPU takes the chunk
    # whole. Comparisons are written as 0./1. floats and summed as floats (exact below 2**24): three
    # times faster than bool -> int sums.
    R = max(1, min(C, _BLOCK_BYTES // (4 * G))) if dev.type == "cpu" else C
    hit = torch.empty(R, G, dtype=sim.dtype, device=dev)
    count_dtype = sim.dtype if G < 2 ** 24 else torch.float64
    gidx = torch.arange(G, device=dev)
    for a in range(0, C, R):
        b = min(C, a + R)
        s, h = sim[a:b], hit[:b - a]
        for p in range(P):
            sp = psim[a:b, p:p + 1]
            ranks[a:b, p] = torch.gt(s, sp, out=h).sum(1, dtype=count_dtype).long()
            if with_sd:
                cum_mass[a:b, p] = torch.mul(h, s, out=h).sum(1, dtype=torch.float64)
            # ties with the positive's score count as ahead only at a lower gallery index (stable
            # sort); rare with real scores, so only rows that have any are corrected
            tied = torch.nonzero(torch.eq(s, sp, out=h).sum(1, dtype=count_dtype) > 1)[:, 0]
            if len(tied):
                ahead = (h[tied].bool() & (gidx[None, :] < order[a + tied, p:p + 1])).sum(1)
                ranks[a + tied, p] += ahead
                if with_sd:
                    cum_mass[a + tied, p] += sp[tied, 0].double() * ahead
    if with_sd:
        # sum over "ahead" of (s/2 + 1/2), plus the positive itself
        cum_mass = 0.5 * cum_mass + 0.5 * ranks + (psim.double() * 0.5 + 0.5)
    ranks = torch.where(valid, ranks, torch.full_like(ranks, G))
    return ranks, valid, psim, cum_mass


def top_k(sim: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices [C, k], scores [C, k]) of each row's k best gallery items in the order of the stable
    descending sort the ranks use (ties: lower gallery index first), so that the first true match among
    them is at ``first_rank``. ``torch.topk`` orders ties arbitrarily: the k are re-sorted by (score,
    index), and the rare rows whose k-th score ties with an item left out are sorted in full."""
    k = min(k, sim.shape[1])
    vals, idx = torch.topk(sim, k, dim=1)
    idx, p = idx.sort(dim=1)
    vals, p2 = vals.gather(1, p).sort(dim=1, descending=True, stable=True)
    idx = idx.gather(1, p2)
    kth = vals[:, -1:]
    boundary = torch.nonzero(torch.eq(sim, kth).sum(1) > torch.eq(vals, kth).sum(1))[:, 0]
    if len(boundary):
        v, i = torch.sort(sim[boundary], dim=1, descending=True, stable=True)
        vals[boundary], idx[boundary] = v[:, :k], i[:, :k]
    return idx, vals


def _chunk_metrics(sim: torch.Tensor, order: torch.Tensor, n_pos: torch.Tensor, with_sd: bool):
    ranks, valid, psim, cum_mass = _positive_ranks(sim, order, n_pos, with_sd)
    sranks, perm = ranks.sort(dim=1)
    svalid = valid.gather(1, perm)
    r = sranks.double()
    i = torch.arange(1, ranks.shape[1] + 1, dtype=torch.float64, device=sim.device)[None, :]
    npos = n_pos.double()
    ap = torch.where(svalid, i / (r + 1), torch.zeros_like(r)).sum(1) / npos
    last = sranks.gather(1, (n_pos - 1)[:, None])[:, 0].double()
    inp = npos / (last + 1)
    sd = None
    if with_sd:
        G = sim.shape[1]
        ps01 = (psim.double() * 0.5 + 0.5)
        pos_sum = torch.where(valid, ps01, torch.zeros_like(ps01)).sum(1)
        neg_sum = sim.sum(1, dtype=torch.float64) * 0.5 + 0.5 * G - pos_sum
        mu_pos, mu_neg = pos_sum / npos, neg_sum / torch.clamp(G - npos, min=1)
        w = 1 - torch.exp(-(mu_pos / torch.clamp(mu_neg, min=1e-12)))
        # positive similarity mass within the top (rank_j + 1) = cumulative sum over sorted positives
        sps = torch.where(svalid, ps01.gather(1, perm), torch.zeros_like(r))
        c = sps.cumsum(1) / torch.where(svalid, cum_mass.gather(1, perm), torch.ones_like(r))
        sd = w * torch.where(svalid, c, torch.zeros_like(c)).sum(1) / npos
    out = (sranks[:, 0] + 1, ap, inp, n_pos, sd)
    return tuple(None if t is None else t.cpu() for t in out)


def evaluate_similarity(sim, q_pids, g_pids, chunk_size: int = 512, with_sd: bool = False,
                        progress: bool = False, topk: int = 0) -> PerQuery:
    """Metrics for a precomputed [Q, G] similarity matrix (text queries x gallery images), ranked on
    the matrix's device; ``topk`` > 0 also keeps each query's top-k gallery indices and scores."""
    sim = torch.as_tensor(sim)
    q = torch.as_tensor(np.asarray(q_pids))
    g = torch.as_tensor(np.asarray(g_pids))
    return _evaluate(lambda a, b: sim[a:b].float(), len(q), q, g, sim.device, chunk_size, with_sd, progress, topk)


@torch.no_grad()
def evaluate_features(q_feats, g_feats, q_pids, g_pids, chunk_size: int = 512, with_sd: bool = True,
                      progress: bool = False, topk: int = 0) -> PerQuery:
    """L2-normalise, score by cosine, rank chunk by chunk (never holds the full Q x G matrix), on the
    device the features are on; ``topk`` > 0 also keeps each query's top-k (per chunk: Q x k in memory)."""
    qf = F.normalize(torch.as_tensor(q_feats).float(), dim=1)
    gf = F.normalize(torch.as_tensor(g_feats).float(), dim=1).to(qf.device)
    q = torch.as_tensor(np.asarray(q_pids))
    g = torch.as_tensor(np.asarray(g_pids))
    return _evaluate(lambda a, b: qf[a:b] @ gf.t(), len(q), q, g, qf.device, chunk_size, with_sd, progress, topk)


@contextlib.contextmanager
def _single_threaded_ops():
    """Torch ops run on the calling thread only, for the duration (restored after)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield n
    finally:
        torch.set_num_threads(n)


def _evaluate(sim_rows, Q, q, g, device, chunk_size, with_sd, progress, topk: int = 0) -> PerQuery:
    order, n_pos = _positives(q.cpu(), g.cpu())
    order, n_pos = order.to(device), n_pos.to(device)

    def chunk(a: int):
        b = min(Q, a + chunk_size)
        sim = sim_rows(a, b)
        # a row sum is NaN or infinite if the row holds a NaN: one read of the chunk instead of a
        # Q x G boolean mask (which cost as much as the ranking); suspects are then checked exactly
        suspect = torch.nonzero(~torch.isfinite(sim.sum(1)))[:, 0]
        nan_rows = suspect[torch.isnan(sim[suspect]).any(1)] if len(suspect) else suspect
        if len(nan_rows):
            bad = a + int(nan_rows[0])
            from ..errors import NonFiniteScoresError
            raise NonFiniteScoresError(f"similarity row {bad} contains NaN (non-finite features: the model diverged? "
                                       "lower optim_wrapper.optimizer.lr); ranks would be undefined, nothing stored")
        P = int(n_pos[a:b].max())  # this chunk's widest positive set, not the whole query set's
        out = _chunk_metrics(sim, order[a:b, :P], n_pos[a:b], with_sd)
        if topk > 0:
            idx, vals = top_k(sim, topk)
            out = (*out, idx.to(torch.int32).cpu(), vals.float().cpu())
        return out

    starts = range(0, Q, chunk_size)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(starts), desc="ranking", unit="chunk", leave=False)

    def tracked(a: int):
        out = chunk(a)
        if bar is not None:
            bar.update(1)
        return out

    if device.type == "cpu":
        with _single_threaded_ops() as n_threads:
            if n_threads > 1 and len(starts) > 1:
                with ThreadPoolExecutor(min(n_threads, len(starts)), thread_name_prefix="ranking") as pool:
                    parts = list(pool.map(tracked, starts))
            else:
                parts = [tracked(a) for a in starts]
    else:
        parts = [tracked(a) for a in starts]
    if bar is not None:
        bar.close()
    cat = lambda k: torch.cat([p[k] for p in parts]).numpy()  # noqa: E731
    return PerQuery(cat(0).astype(np.int64), cat(1), cat(2), cat(3).astype(np.int64),
                    cat(4) if with_sd else None, cat(5) if topk > 0 else None, cat(6) if topk > 0 else None)


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
