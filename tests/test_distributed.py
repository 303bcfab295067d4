"""Multi-process training through torchrun: DDP with the gloo backend, 2 processes on CPU."""
import json
import math
import os
import socket
import subprocess
import sys

import pytest
import torch

from harness.data.resolve import resolve_dataset as load_dataset
from harness.results import ResultsStore

DATA = dict(type="synth", train_ids=12, val_ids=2, test_ids=6, images_per_id=2, xdomain_ids=4, image_size=(32, 16))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_torchrun_two_gloo_processes_train_and_write_one_record(tmp_path):
    n_pairs = sum(len(r.captions) for r in load_dataset(dict(DATA)).train)  # generate the data once, before the ranks
    opts = [f"dataset={json.dumps(DATA)}".replace("true", "True"), "cross_domain=[]",
            "method.encoder.image_size=(32,16)", "method.encoder.context_length=40", "train.batch_size=8"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "harness", "run", "--method", "fmfa", "--dataset", "synth", "--epochs", "1", "--launcher", "pytorch",
           "--work-dir", str(tmp_path / "wd"), "--results-dir", str(tmp_path / "results"), "--cfg-options", *opts]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    (rec,) = ResultsStore(tmp_path / "results").records()  # rank 0 writes; rank 1 writes nothing
    assert rec["world_size"] == 2 and rec["num_queries"] == 24
    ckpt = torch.load(tmp_path / "wd" / "epoch_1.pth", map_location="cpu", weights_only=False)
    assert ckpt["meta"]["iter"] == math.ceil(n_pairs / 2 / 8)  # each rank saw half of the pairs
