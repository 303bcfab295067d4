"""An independent generator of per-query TIPR results for testing the leaderboard's statistics.

It shares no code with harness.leaderboard: the tests check the implementation against data whose
truth is known. Structure (all effects Gaussian):

- 2-5 queries (captions) per identity; an identity effect and a query effect on the logit of a hit;
- each method has its own per-identity strengths (what it is good at) and an optional true shift;
- each trained model (a row's seed) adds a global shift of R1 (``seed_sd`` points on the probability
  scale) plus seed effects per identity and per query on the logit, then a Bernoulli draw per query.

AP is 0.6 x hit + 0.4 x a per-query sigmoid of the same latent, so it moves with the hit and the seed.
"""
from __future__ import annotations

import numpy as np


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def simulate_table(rng: np.random.Generator, n_ids: int, seeds: list[int], methods: list[int], seed_sd: float,
                   shift: dict | None = None, tau_method: float = 0.8, tau_seed: float = 0.3, base: float = 0.0):
    """(identity per query, one dict per row: {"R1": (seeds, queries), "mAP": (seeds, queries)} in points).

    ``seeds[r]`` seeds for row r, trained with method ``methods[r]`` (rows with the same method differ
    only by seed); ``shift[m]`` adds m's true R1 advantage in points; ``seed_sd`` is the sd of a trained
    model's global R1 shift, in points."""
    shift = shift or {}
    per_id = rng.integers(2, 6, n_ids)
    pid = np.repeat(np.arange(n_ids), per_id)
    q = len(pid)
    latent = base + rng.normal(0, 1.2, n_ids)[pid] + rng.normal(0, 0.8, q)
    strength = {m: rng.normal(0, tau_method, n_ids)[pid] for m in sorted(set(methods))}
    rows = []
    for n_seeds, m in zip(seeds, methods):
        r1, ap = [], []
        for _ in range(n_seeds):
            eta = latent + strength[m] + rng.normal(0, tau_seed, n_ids)[pid] + rng.normal(0, tau_seed, q)
            p = np.clip(_sigmoid(eta) + (rng.normal(0, seed_sd) + shift.get(m, 0.0)) / 100.0, 0.0, 1.0)
            hit = rng.random(q) < p
            r1.append(hit * 100.0)
            ap.append((0.6 * hit + 0.4 * _sigmoid(eta + rng.normal(0, 0.5, q))) * 100.0)
        rows.append(dict(R1=np.array(r1), mAP=np.array(ap)))
    return pid, rows


def as_scores(pid: np.ndarray, rows: list[dict]) -> list[dict]:
    """The simulated rows in the form harness.leaderboard.compare's functions take, best mean R1 first."""
    key = np.array([f"q{i}" for i in range(len(pid))])
    out = [dict(R1=r["R1"].mean(axis=0), mAP=r["mAP"].mean(axis=0), runs=r, pid=pid, key=key, path=f"row{i}")
           for i, r in enumerate(rows)]
    return sorted(out, key=lambda s: -s["R1"].mean())
