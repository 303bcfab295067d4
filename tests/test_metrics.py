import numpy as np
import pytest
import torch

from harness.evaluation import evaluate_features, evaluate_similarity, rank_reference, summarise


def _random_problem(seed, Q=300, G=200, ids=40, decimals=1):
    g = torch.Generator().manual_seed(seed)
    gp = torch.randint(0, ids, (G,), generator=g)
    qp = gp[torch.randint(0, G, (Q,), generator=g)]
    sim = torch.randn(Q, G, generator=g)
    if decimals is not None:
        sim = sim.round(decimals=decimals)  # many exact ties
    return sim, qp, gp


@pytest.mark.parametrize("seed,chunk", [(0, 7), (1, 64), (2, 1000)])
def test_equals_irra_rank_including_ties(seed, chunk):
    sim, qp, gp = _random_problem(seed)
    s = summarise(evaluate_similarity(sim, qp, gp, chunk_size=chunk))
    cmc, mAP, mINP, _ = rank_reference(sim, qp, gp)
    assert abs(s["R1"] - float(cmc[0])) < 1e-4
    assert abs(s["R5"] - float(cmc[4])) < 1e-4
    assert abs(s["R10"] - float(cmc[9])) < 1e-4
    assert abs(s["mAP"] - mAP) < 1e-6
    assert abs(s["mINP"] - mINP) < 1e-4  # the reference accumulates INP in float32


def test_per_query_first_rank_matches_reference_order():
    sim, qp, gp = _random_problem(3, decimals=None)
    pq = evaluate_similarity(sim, qp, gp)
    _, _, _, idx = rank_reference(sim, qp, gp)
    matches = (gp[idx] == qp[:, None]).numpy()
    assert np.array_equal(pq.first_rank, matches.argmax(1) + 1)
    assert np.array_equal(pq.n_pos, matches.sum(1))


def _msd_literal(sim, qp, gp):
    """The intended (rank-ordered) mSD formula, written per query with a full sort."""
    out = []
    for i in range(sim.shape[0]):
        s = sim[i].double() * 0.5 + 0.5
        order = torch.sort(sim[i], descending=True, stable=True).indices
        r = (gp[order] == qp[i]).double()
        ss = s[order]
        P, N = r.sum(), len(r) - r.sum()
        mu_p, mu_n = (r * ss).sum() / P, ((1 - r) * ss).sum() / N
        w = 1 - torch.exp(-mu_p / mu_n)
        c = torch.cumsum(r * ss, 0) / torch.cumsum(ss, 0)
        out.append(float(w * (r * c).sum() / P))
    return np.array(out)


def test_msd_matches_its_definition():
    sim, qp, gp = _random_problem(4, decimals=None)
    sim = torch.tanh(sim)  # cosine-like scores in [-1, 1]
    pq = evaluate_similarity(sim, qp, gp, with_sd=True, chunk_size=50)
    assert np.allclose(pq.sd, _msd_literal(sim, qp, gp), atol=1e-9)


def test_msd_perfect_ranking_bound():
    gp = torch.arange(10).repeat_interleave(3)
    qp = torch.arange(10)
    sim = (qp[:, None] == gp[None, :]).float()  # positives cos 1, negatives cos 0
    s = summarise(evaluate_similarity(sim, qp, gp, with_sd=True))
    assert s["R1"] == 100 and s["mAP"] == 100
    assert abs(s["mSD"] - 100 * (1 - np.exp(-2))) < 1e-6  # 86.47, as derived in the research notes


def test_features_path_normalises_and_chunks():
    g = torch.Generator().manual_seed(0)
    qf, gf = torch.randn(50, 16, generator=g), torch.randn(30, 16, generator=g)
    gp = torch.arange(30) % 10
    qp = torch.arange(50) % 10
    a = evaluate_features(qf * 5, gf, qp, gp, chunk_size=8)
    sim = torch.nn.functional.normalize(qf, dim=1) @ torch.nn.functional.normalize(gf, dim=1).t()
    b = evaluate_similarity(sim, qp, gp, with_sd=True)
    assert np.array_equal(a.first_rank, b.first_rank)
    assert np.allclose(a.ap, b.ap) and np.allclose(a.sd, b.sd)


def test_query_without_positive_is_an_error():
    with pytest.raises(ValueError, match="no positive"):
        evaluate_similarity(torch.randn(2, 3), [0, 9], [0, 1, 2])


def test_nan_similarity_is_an_error_naming_the_row():
    sim = torch.randn(4, 5)
    sim[2, 1] = float("nan")
    with pytest.raises(ValueError, match="row 2 contains NaN"):
        evaluate_similarity(sim, [0, 1, 2, 3], [0, 1, 2, 3, 4])


@pytest.mark.parametrize("block_bytes", [64, 4 << 20])
def test_cache_blocking_gives_the_same_answer(monkeypatch, block_bytes):
    """Row sub-blocks (down to one row) and the tie correction on a subset of rows agree with IRRA."""
    from harness.evaluation import ranking
    monkeypatch.setattr(ranking, "_BLOCK_BYTES", block_bytes)
    sim, qp, gp = _random_problem(5, Q=120, G=90, ids=12, decimals=0)
    sim = torch.tanh(sim)
    s = summarise(evaluate_similarity(sim, qp, gp, with_sd=True, chunk_size=33))
    cmc, mAP, _, _ = rank_reference(sim, qp, gp)
    assert abs(s["R1"] - float(cmc[0])) < 1e-4 and abs(s["mAP"] - mAP) < 1e-6
    assert np.allclose(evaluate_similarity(sim, qp, gp, with_sd=True).sd, _msd_literal(sim, qp, gp), atol=1e-9)


def test_infinite_scores_are_ranked_and_only_nan_is_an_error():
    """The NaN check reads row sums; +inf and -inf in one row sum to NaN but are valid scores."""
    sim, qp, gp = _random_problem(6, Q=40, G=30, ids=6, decimals=None)
    sim[3, 4], sim[3, 5], sim[7, 0] = float("inf"), float("-inf"), float("inf")
    s = summarise(evaluate_similarity(sim, qp, gp, chunk_size=8))
    cmc, mAP, _, _ = rank_reference(sim, qp, gp)
    assert abs(s["R1"] - float(cmc[0])) < 1e-4 and abs(s["mAP"] - mAP) < 1e-6
    sim[37, 2] = float("nan")
    with pytest.raises(ValueError, match="row 37 contains NaN"):
        evaluate_similarity(sim, qp, gp, chunk_size=8)


def test_cpu_chunks_shared_out_to_threads_give_the_same_answer_and_restore_the_thread_count():
    sim, qp, gp = _random_problem(7, Q=200, G=90, ids=12, decimals=1)
    n = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = evaluate_similarity(sim, qp, gp, with_sd=True, chunk_size=16)
        torch.set_num_threads(4)  # four ranking threads over 13 chunks
        four = evaluate_similarity(sim, qp, gp, with_sd=True, chunk_size=16)
        assert torch.get_num_threads() == 4
    finally:
        torch.set_num_threads(n)
    assert np.array_equal(one.first_rank, four.first_rank) and np.array_equal(one.ap, four.ap)
    assert np.array_equal(one.sd, four.sd)
