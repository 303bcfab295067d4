"""Every built-in method trains and evaluates through ``harness run`` on a tiny synth set; P x K sampler."""
import pytest

from harness.config import load_config
from harness.data.samplers import IdentitySampler
from harness.engine.run import run_job
from harness.results import ResultsStore

TINY_DATA = dict(type="synth", train_ids=12, val_ids=2, test_ids=6, images_per_id=2, xdomain_ids=4, image_size=(32, 16))
METHOD_OPTS = {
    "ivt": dict(vision=dict(image_size=(32, 16))),
    "lgur": dict(vision=dict(image_size=(32, 16)), dim=64, dict_size=20, part_dim=32,
                 recon=dict(heads=2, dim_head=16, mlp_dim=64), proto=dict(heads=2, dim_head=32, mlp_dim=64)),
}


@pytest.mark.parametrize("method", sorted(METHOD_OPTS))
def test_method_trains_and_is_scored_through_the_harness(method, tmp_path):
    cfg = load_config(method, "synth", options=dict(dataset=TINY_DATA, cross_domain=[], method=METHOD_OPTS[method],
                                                    train=dict(epochs=1, batch_size=8, log_interval=5)))
    paths = run_job(cfg, work_dir=str(tmp_path / "wd"), results_dir=str(tmp_path / "results"), progress=False)
    (rec,) = ResultsStore(tmp_path / "results").records()
    assert len(paths) == 1 and rec["method"] == method and rec["num_gallery"] == 12 and rec["num_queries"] == 24
    assert 0 <= rec["metrics"]["R1"] <= 100 and rec["metrics"]["R10"] >= rec["metrics"]["R1"]
    assert rec["method_info"]["encoder_text"] == "tiny"
    assert {"epochs", "batch-size"} <= {d["id"] for d in rec["deviations"]}  # the record judged the run config too


class _Items:
    def __init__(self, pids):
        self.item_pids = pids


def test_identity_sampler_groups_k_per_identity_and_is_seeded(monkeypatch):
    pids = [p for p in range(6) for _ in range(2 + p)]  # 2..7 items per identity
    s = IdentitySampler(_Items(pids), num_instances=2, seed=3)
    order = list(s)
    assert len(order) == len(s) and len(set(order)) == len(order)
    groups = [order[i:i + 2] for i in range(0, len(order), 2)]
    assert all(pids[a] == pids[b] for a, b in groups)
    assert order == list(IdentitySampler(_Items(pids), num_instances=2, seed=3))
    s.set_epoch(1)
    assert list(s) != order
    # two DDP ranks take disjoint whole groups of equal length
    monkeypatch.setattr("harness.data.samplers.get_dist_info", lambda: (0, 2))
    r0 = list(IdentitySampler(_Items(pids), num_instances=2, seed=3))
    monkeypatch.setattr("harness.data.samplers.get_dist_info", lambda: (1, 2))
    r1 = list(IdentitySampler(_Items(pids), num_instances=2, seed=3))
    assert len(r0) == len(r1) and all(pids[r0[i]] == pids[r0[i + 1]] for i in range(0, len(r0), 2))
    # identities with a single item are topped up to K by resampling
    assert list(IdentitySampler(_Items([0, 1, 1]), num_instances=2, seed=0)).count(0) == 2
