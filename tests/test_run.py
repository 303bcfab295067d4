"""End-to-end jobs on a tiny synthetic dataset: records, resume, NaN guard, cross-domain eval, CLI errors."""
import json
import subprocess
import sys

import numpy as np
import pytest

from harness.cli import main
from harness.config import load_config
from harness.hashing import sha256_file
from harness.engine.run import run_job
from harness.engine.train import record_code_state
from harness.errors import TrainingDivergedError
from harness.registry import METHODS
from harness.results import ResultsStore
from tipr_methods.fmfa import FMFA

TINY_OPTS = {
    "dataset": dict(type="synth", train_ids=16, val_ids=4, test_ids=8, images_per_id=2, xdomain_ids=6,
                    image_size=(32, 16)),
    "cross_domain": [dict(type="synth3c", train_ids=16, val_ids=4, test_ids=8, images_per_id=2, xdomain_ids=6,
                          image_size=(32, 16))],
    "method": dict(encoder=dict(image_size=(32, 16), context_length=40)),
    "train": dict(epochs=2, batch_size=8, log_interval=5),
}


def _cfg(**extra):
    opts = json.loads(json.dumps(TINY_OPTS))
    for k, v in extra.items():
        opts.setdefault(k, {}).update(v) if isinstance(v, dict) else opts.__setitem__(k, v)
    return load_config("fmfa", "synth", options=opts)


def _commits_during_the_run():
    """git_state() as a checkout would answer it if a commit landed while the job trained."""
    calls = []

    def state():
        calls.append(1)
        return dict(git_sha="sha-at-start" if len(calls) == 1 else "sha-committed-later", git_dirty=False)
    return state


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("harness.engine.run.git_state", _commits_during_the_run())
        paths = run_job(_cfg(), work_dir=str(root / "wd"), results_dir=str(root / "results"), progress=False)
    return root, paths


def test_run_writes_one_record_per_evaluation_set(finished_run):
    root, paths = finished_run
    recs = {r["eval_dataset"]: r for r in ResultsStore(root / "results").records()}
    assert set(recs) == {"synth", "synth3c"}
    assert {r["git_sha"] for r in recs.values()} == {"sha-at-start"}  # the code that ran, not a later commit
    assert [s["git_sha"] for s in recs["synth"]["code_history"]] == ["sha-at-start"]
    r = recs["synth"]
    assert r["method"] == "fmfa" and r["seed"] == 0 and r["kind"] == "run"
    assert r["selection"] == dict(rule="last", selected_epoch=2, epochs=2)
    assert r["checkpoint"]["epoch"] == 2 and r["checkpoint"]["path"].endswith("epoch_2.pth")
    assert r["checkpoint"]["sha256"] == sha256_file(r["checkpoint"]["path"])
    assert r["encoder_weights"] == "random-init" and r["schema_version"] == 2
    fp = r["eval_fingerprint"]
    assert fp["counts"]["test"] == dict(ids=8, images=16, captions=32) and len(fp["query_ids_sha256"]) == 64
    assert r["train_fingerprint"]["annotation_sha256"] == fp["annotation_sha256"]
    assert r["config"]["seed"] == 0 and len(r["config_hash"]) == 10 and isinstance(r["deviations"], list)
    assert r["num_gallery"] == 16 and r["num_queries"] == 32
    assert set(r["metrics"]) >= {"R1", "R5", "R10", "mAP", "mINP", "mSD"}
    pq = ResultsStore.per_query(r)
    assert len(pq["first_rank"]) == 32 and np.isclose(pq["ap"].mean() * 100, r["metrics"]["mAP"])
    assert set(recs["synth3c"]["per_source"]) == {"synth-a", "synth-b"}
    assert r["method_info"]["asdm_mode"] == "code"


def _write_tiny_config(path):
    from harness.config import REPO_ROOT
    base = REPO_ROOT / "methods" / "fmfa" / "configs" / "synth.py"
    body = "".join(f"{k} = {v!r}\n" for k, v in TINY_OPTS.items())
    path.write_text(f"_base_ = [{str(base)!r}]\n" + body)
    return path


def test_killed_run_resumes_and_matches_uninterrupted(finished_run, tmp_path):
    """SIGKILL a real `harness run` after its first checkpoint, rerun the same command, compare."""
    import os
    import signal
    import time

    root, _ = finished_run
    full = {r["eval_dataset"]: r["metrics"] for r in ResultsStore(root / "results").records()}
    cfg = _write_tiny_config(tmp_path / "tiny.py")
    wd, res = tmp_path / "wd", tmp_path / "results"
    cmd = [sys.executable, "-m", "harness.cli", "run", "--config", str(cfg), "--work-dir", str(wd),
           "--results-dir", str(res)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while not (wd / "epoch_1.pth").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (wd / "epoch_1.pth").exists() and not (wd / "epoch_2.pth").exists()
    assert ResultsStore(res).records() == []  # nothing half-written
    subprocess.run(cmd, check=True, capture_output=True)
    resumed = {r["eval_dataset"]: r["metrics"] for r in ResultsStore(res).records()}
    assert set(resumed) == set(full)
    for k in full:
        for m in ("R1", "mAP", "mINP"):
            assert abs(full[k][m] - resumed[k][m]) < 1e-6, (k, m)


class NaNMethod(FMFA):
    def loss(self, batch):
        out = super().loss(batch)
        out["sdm_loss"] = out["sdm_loss"] * float("nan")
        return out


def test_nan_loss_stops_the_run_and_writes_nothing(tmp_path):
    METHODS.register_module(name="nanfmfa", module=NaNMethod, force=True)
    NaNMethod.config_dir = FMFA.config_dir
    cfg = _cfg(method=dict(type="nanfmfa"))
    with pytest.raises(TrainingDivergedError, match="sdm_loss.*nan"):
        run_job(cfg, work_dir=str(tmp_path / "wd"), results_dir=str(tmp_path / "results"), progress=False)
    assert ResultsStore(tmp_path / "results").records() == []


def test_eval_command_scores_a_checkpoint_on_another_dataset(finished_run, tmp_path, capsys):
    root, _ = finished_run
    ckpt = root / "wd" / "epoch_2.pth"
    # the synth3c defaults differ from the run's tiny synth3c; evaluate on the run's test split instead
    code = main(["eval", "--checkpoint", str(ckpt), "--dataset", "synth", "--results-dir", str(tmp_path)])
    assert code == 0
    (rec,) = ResultsStore(tmp_path).records()
    original = [r for r in ResultsStore(root / "results").records() if r["eval_dataset"] == "synth"][0]
    assert abs(rec["metrics"]["R1"] - original["metrics"]["R1"]) < 1e-6


@pytest.mark.parametrize("argv,message", [
    (["run", "--method", "nope", "--dataset", "synth"], "unknown method 'nope'; available: fmfa"),
    (["run", "--method", "fmfa", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["run", "--method", "fmfa", "--dataset", "synth", "--cfg-options", "train.bogus=1"],
     "unknown config key(s) train.bogus"),
    (["run", "--method", "fmfa", "--dataset", "synth", "--cfg-options", "method.bogus=1"],
     "unknown config key(s) method.bogus for method 'fmfa'"),
    (["run", "--method", "fmfa", "--dataset", "icfg", "--data-root", "/nonexistent"],
     "data root /nonexistent does not exist"),
])
def test_cli_errors_are_clear_and_nonzero(argv, message, capsys, tmp_path):
    assert main(argv + ["--results-dir", str(tmp_path / "res")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "res").exists()


def test_cli_list_shows_plugins_from_entry_points():
    out = subprocess.run([sys.executable, "-m", "harness.cli", "list"], capture_output=True, text=True,
                         check=True).stdout
    assert "fmfa (tipr_methods.fmfa:FMFA)" in out and "ufine3c" in out and "synth" in out


def test_missing_images_fail_before_training(tmp_path, dataset_factory):
    root = dataset_factory("cuhk")
    recs = json.loads((root / "reid_raw.json").read_text())
    (root / "imgs" / recs[0]["file_path"]).unlink()
    code = main(["run", "--method", "fmfa", "--dataset", "cuhk", "--data-root", str(root),
                 "--results-dir", str(tmp_path / "r")])
    assert code == 2 and not (tmp_path / "r").exists()


def test_fmfa_trains_on_an_icfg_layout_and_evaluates_on_ufine3c(tmp_path, dataset_factory, capsys):
    """`harness run --method fmfa --dataset icfg --data-root PATH` on files in the public ICFG-PEDES
    format, then `harness eval` of its checkpoint on a UFine3C-format set with per-source metrics."""
    from conftest import make_records
    icfg = dataset_factory("icfg", make_records("icfg", n_ids=(6, 0, 3)))
    u3c = dataset_factory("ufine3c")
    opts = ["method.encoder.preset=tiny", "method.encoder.image_size=(32,16)", "method.encoder.context_length=40",
            "method.cmt_depth=1", "train.batch_size=4", "train.log_interval=2"]
    argv = ["run", "--method", "fmfa", "--dataset", "icfg", "--data-root", str(icfg), "--epochs", "1",
            "--work-dir", str(tmp_path / "wd"), "--results-dir", str(tmp_path / "r"), "--cfg-options", *opts]
    assert main(argv) == 2  # random-init encoders on real data must be asked for
    assert "method.encoder.checkpoint" in capsys.readouterr().err and not (tmp_path / "r").exists()
    assert main(argv + ["method.encoder.checkpoint=random"]) == 0
    (rec,) = ResultsStore(tmp_path / "r").records()
    assert rec["encoder_weights"] == "random-init" and rec["config"]["method"]["encoder"]["checkpoint"] == "random"
    (rec,) = ResultsStore(tmp_path / "r").records()
    assert rec["train_dataset"] == "icfg" and rec["eval_dataset"] == "icfg" and rec["num_gallery"] == 6
    code = main(["eval", "--checkpoint", str(tmp_path / "wd" / "epoch_1.pth"), "--dataset", "ufine3c",
                 "--data-root", str(u3c), "--results-dir", str(tmp_path / "r")])
    assert code == 0
    x = [r for r in ResultsStore(tmp_path / "r").records() if r["eval_dataset"] == "ufine3c"]
    assert len(x) == 1 and x[0]["train_dataset"] == "icfg" and x[0]["per_source"]


def test_a_resumed_run_names_the_code_of_every_start(tmp_path):
    first, second = dict(git_sha="aaa", git_dirty=False), dict(git_sha="bbb", git_dirty=True)
    assert record_code_state(tmp_path, first, resume=True) == [dict(first, resumed_from=None)]
    (tmp_path / "last_checkpoint").write_text(str(tmp_path / "epoch_3.pth"))
    history = record_code_state(tmp_path, second, resume=True)  # resumed at epoch 3 after a commit
    assert history == [dict(first, resumed_from=None), dict(second, resumed_from=str(tmp_path / "epoch_3.pth"))]
    assert json.loads((tmp_path / "code_history.json").read_text()) == history
    assert record_code_state(tmp_path, first, resume=False) == [dict(first, resumed_from=None)]  # from scratch
