"""What keeping each query's top-k costs: the record folder's added bytes per 1,000 queries, and the peak
memory of the chunked 100k x 100k evaluation with the top-k kept (the README's 8 GiB target).

    python benchmarks/bench_retrievals.py                     # both parts (the memory part takes minutes)
    python benchmarks/bench_retrievals.py --part size --queries 6156 --gallery 3074   # CUHK-PEDES test size
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from tabulate import tabulate


def part_size(n_queries: int, n_gallery: int, k: int) -> dict:
    """retrievals.npz as the store writes it, for synthetic captions of CUHK-PEDES length (~23 words)."""
    from harness.results.store import RETRIEVALS, ResultsStore

    rng = np.random.default_rng(0)
    words = ["a", "woman", "man", "wearing", "black", "white", "red", "blue", "shirt", "jacket", "pants", "shoes",
             "with", "and", "her", "his", "hair", "long", "short", "carrying", "bag", "backpack", "the", "is"]
    caps = [" ".join(rng.choice(words, size=int(rng.integers(15, 35)))) for _ in range(n_queries)]
    paths = [f"CUHK01/{i:07d}.png" for i in range(n_gallery)]
    gpid = np.arange(n_gallery) // 2
    idx = np.stack([rng.choice(n_gallery, size=k, replace=False) for _ in range(n_queries)]).astype(np.int32)
    score = np.sort(rng.random((n_queries, k)).astype(np.float32), axis=1)[:, ::-1]
    pq = dict(first_rank=rng.integers(1, 50, n_queries), ap=rng.random(n_queries))
    retr = dict(topk_index=idx, topk_score=score, query_caption=np.array(caps, dtype="U"),
                gallery_path=np.array(paths, dtype="U"), gallery_pid=gpid, image_dir=np.array("imgs"),
                data_root_hint=np.array("/data/CUHK-PEDES"))
    with tempfile.TemporaryDirectory() as d:
        rec = dict(method="m", train_dataset="d", eval_dataset="d", seed=0)
        folder = ResultsStore(d).write(rec, dict(pq, **retr))
        total = (folder / RETRIEVALS).stat().st_size
        topk_only = ResultsStore(Path(d) / "t").write(rec, dict(pq, topk_index=idx, topk_score=score)) / RETRIEVALS
        topk_bytes = topk_only.stat().st_size
    res = dict(queries=n_queries, gallery=n_gallery, k=k, retrievals_bytes=total, topk_bytes=topk_bytes,
               kib_per_1000_queries=total / 1024 / n_queries * 1000,
               topk_kib_per_1000_queries=topk_bytes / 1024 / n_queries * 1000)
    print(tabulate([[f"{n_queries} x {n_gallery}", k, f"{total / 1024:.0f}", f"{res['kib_per_1000_queries']:.1f}",
                     f"{res['topk_kib_per_1000_queries']:.1f}"]],
                   ["queries x gallery", "k", "retrievals.npz KiB", "KiB / 1,000 queries (all)",
                    "KiB / 1,000 queries (top-k arrays only)"], tablefmt="github"))
    return res


def part_memory(n: int, dim: int, k: int) -> dict:
    """bench_metrics.py's 100k x 100k run with ``topk=k``, in a child so ru_maxrss is this evaluation's peak."""
    code = f"""
import json, resource, time, numpy as np, torch
from harness.evaluation.ranking import evaluate_features, summarise
n, dim, k = {n}, {dim}, {k}
rng = np.random.default_rng(0)
g = np.arange(n) // 4
q = rng.choice(g, size=n)
gen = torch.Generator().manual_seed(0)
centres = torch.randn(int(g.max()) + 1, dim, generator=gen)
gf = centres[g] + 2.0 * torch.randn(n, dim, generator=gen)
qf = centres[q] + 2.0 * torch.randn(n, dim, generator=gen)
t = time.perf_counter()
pq = evaluate_features(qf, gf, q, g, chunk_size=512, with_sd=True, topk=k)
m = summarise(pq)
print(json.dumps({{"seconds": time.perf_counter() - t, "R1": m["R1"], "topk_shape": list(pq.topk_index.shape),
                  "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    res = json.loads(out.splitlines()[-1])
    print(tabulate([[f"{n} x {n}", dim, k, f"{res['seconds']:.1f}", f"{res['peak_rss_gib']:.2f}"]],
                   ["queries x gallery", "feature dim", "top-k", "seconds", "peak RSS (GiB)"], tablefmt="github"))
    return dict(n=n, dim=dim, k=k, **res)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--part", choices=["size", "memory", "all"], default="all")
    ap.add_argument("--queries", type=int, default=6156)
    ap.add_argument("--gallery", type=int, default=3074)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--memory-n", type=int, default=100000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--json")
    a = ap.parse_args()
    out = {}
    if a.part in ("size", "all"):
        out["size"] = part_size(a.queries, a.gallery, a.k)
    if a.part in ("memory", "all"):
        out["memory"] = part_memory(a.memory_n, a.dim, a.k)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
