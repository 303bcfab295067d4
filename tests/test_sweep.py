"""``harness sweep`` with submitit's local executor: two tiny synth jobs run side by side with a
thread budget each, then the leaderboard is rebuilt; a rerun skips them; a failing job is reported
with its error line; SLURM resource options are validated."""
import os
import re
from datetime import datetime
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import ConfigError
from harness.results import ResultsStore
from harness.sweep import SweepFolder, build_resources, expand_grid, finished_records
from harness.sweep.grid import scoped_options
from harness.sweep.options import parse_time

TINY = ["dataset.train_ids=12", "dataset.val_ids=2", "dataset.test_ids=6", "dataset.images_per_id=2",
        "dataset.xdomain_ids=4", "dataset.image_size=(32,16)", "cross_domain=[]", "method.encoder.image_size=(32,16)",
        "method.encoder.context_length=40", "train.epochs=1", "train.batch_size=8"]


def _sweep_args(root: Path, *extra: str, seeds="0,1", name="tiny"):
    return ["sweep", "--methods", "fmfa", "--datasets", "synth", "--seeds", seeds, "--jobs", "2", "--name", name,
            "--resamples", "200", "--results-dir", str(root / "results"), "--out", str(root / "leaderboards"),
            "--sweeps-dir", str(root / "sweeps"), *extra, "--cfg-options", *TINY]


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    cwd = os.getcwd()
    os.chdir(root)  # the jobs' work_dirs/ land here
    try:
        rc = main(_sweep_args(root))
    finally:
        os.chdir(cwd)
    return root, rc


def _interval(out_log: Path):
    text = out_log.read_text()
    stamps = re.findall(r"submitit INFO \((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)\) - (Starting|Job completed)", text)
    parse = {k: datetime.strptime(t, "%Y-%m-%d %H:%M:%S,%f") for t, k in stamps}
    return parse["Starting"], parse["Job completed"]


def test_local_sweep_runs_jobs_in_parallel_then_builds_the_leaderboard(local_sweep, capsys):
    root, rc = local_sweep
    assert rc == 0
    data = SweepFolder(root / "sweeps" / "tiny").load()
    jobs = data["jobs"]
    assert [(j.method, j.dataset, j.seed) for j in jobs] == [("fmfa", "synth", 0), ("fmfa", "synth", 1)]
    recs = ResultsStore(root / "results").records()
    assert sorted(r["seed"] for r in recs) == [0, 1]
    assert {r["config_hash"] for r in recs} == {j.config_hash for j in jobs}  # the planner's hash is the run's
    for j in jobs:
        assert finished_records(j, recs) is not None
    # both jobs were running at the same time, each with cores // 2 threads
    (a0, a1), (b0, b1) = (_interval(SweepFolder(root / "sweeps" / "tiny").logs / f"{j.job_id}_0_log.out")
                          for j in jobs)
    assert a0 < b1 and b0 < a1
    threads = max(1, len(os.sched_getaffinity(0)) // 2)
    for j in jobs:
        out = (root / "sweeps" / "tiny" / "logs" / f"{j.job_id}_0_log.out").read_text()
        assert f"threads per process: {threads}," in out
    board = (root / "leaderboards" / "README.md").read_text()
    assert "## synth" in board and "fmfa" in board and "2 stored records" in board
    capsys.readouterr()
    assert main(["sweep", "status", "--sweep", str(root / "sweeps" / "tiny")]) == 0
    table = capsys.readouterr().out
    assert "2 done" in table and table.count(" done ") == 2 and str(root / "results") in table


def test_rerun_skips_finished_jobs_and_a_changed_config_does_not(local_sweep, monkeypatch):
    root, _ = local_sweep
    monkeypatch.chdir(root)
    logs = set((root / "sweeps" / "tiny" / "logs").iterdir())
    assert main(_sweep_args(root)) == 0
    assert len(ResultsStore(root / "results").records()) == 2
    assert set((root / "sweeps" / "tiny" / "logs").iterdir()) == logs  # nothing was submitted
    jobs = SweepFolder(root / "sweeps" / "tiny").load()["jobs"]
    assert all(j.job_id is None and j.submitted.startswith("skipped") for j in jobs)
    recs = ResultsStore(root / "results").records()
    changed = expand_grid(["fmfa"], ["synth"], [0], TINY + ["train.batch_size=4"], results_dir=root / "results")
    assert changed[0].config_hash != jobs[0].config_hash and finished_records(changed[0], recs) is None
    seed2 = expand_grid(["fmfa"], ["synth"], [2], TINY, results_dir=root / "results")
    assert finished_records(seed2[0], recs) is None


def test_failed_job_is_reported_with_its_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "no_data"
    empty.mkdir()
    args = ["sweep", "--methods", "fmfa", "--datasets", "cuhk", "--seeds", "0", "--data-root", f"cuhk={empty}",
            "--results-dir", str(tmp_path / "results"), "--out", str(tmp_path / "lb"), "--sweeps-dir",
            str(tmp_path / "sweeps"), "--name", "bad"]
    assert main(args) == 1
    capsys.readouterr()
    assert main(["sweep", "status", "--sweep", str(tmp_path / "sweeps" / "bad")]) == 0
    out = capsys.readouterr().out
    assert "1 failed" in out and "no annotation file" in out
    assert not (tmp_path / "lb" / "README.md").exists()  # no records: nothing to rank


def test_scoped_cfg_options_apply_to_one_method_only():
    items = ["train.epochs=1", "fmfa:method.encoder.context_length=40", "ivt:method.vision.image_size=(32,16)",
             "dataset.root=/a:b"]
    names = {"fmfa", "ivt", "synth"}
    assert scoped_options(items, "fmfa", "synth", names) == ["train.epochs=1", "method.encoder.context_length=40",
                                                             "dataset.root=/a:b"]
    assert scoped_options(items, "ivt", "synth", names) == ["train.epochs=1", "method.vision.image_size=(32,16)",
                                                            "dataset.root=/a:b"]


def test_resources_from_file_and_flags(tmp_path):
    cfg = tmp_path / "slurm.py"
    cfg.write_text("slurm = dict(partition='gpu', account='lab', time='1-00:00:00', gpus_per_task=4, "
                   "cpus_per_task=32, mem='200G', sbatch={'--mail-type': 'END'}, setup=['module load cuda'])\n")
    res = build_resources(str(cfg), dict(partition="debug", time="2:30:00", sbatch={"exclusive": True},
                                         account=None))
    assert (res.partition, res.account, res.time, res.gpus_per_task, res.procs) == ("debug", "lab", 150, 4, 4)
    assert res.sbatch == {"mail-type": "END", "exclusive": True} and res.setup == ["module load cuda"]
    assert [parse_time(t, "x") for t in (90, "90", "1:30", "2-00", "0:59:30")] == [90, 90, 2, 2880, 60]
    cfg.write_text("slurm = dict(partiton='gpu')\n")
    with pytest.raises(ConfigError, match=r"slurm.py: unknown key 'partiton'"):
        build_resources(str(cfg), {})
    with pytest.raises(ConfigError, match="--time: time 'soon'"):
        build_resources(None, dict(time="soon"))
    with pytest.raises(ConfigError, match="--nodes"):
        build_resources(None, dict(nodes=0))


def test_sweep_needs_a_grid_and_status_needs_a_sweep(tmp_path, capsys):
    assert main(["sweep", "--methods", "fmfa"]) == 2
    assert main(["sweep", "status", "--sweeps-dir", str(tmp_path)]) == 2
    assert main(["sweep", "--methods", "fmfa", "--datasets", "synth", "--seeds", "a,b"]) == 2
    err = capsys.readouterr().err
    assert "give --methods and --datasets" in err and "no sweep found" in err and "integers" in err


def test_job_command_launches_ddp_per_node_from_the_slurm_environment(monkeypatch):
    """Multi-node: submitit starts one task per node; each runs torchrun with its node rank and the
    first node of SLURM_JOB_NODELIST as rendezvous, and splits the task's cores among its processes."""
    import submitit

    from harness.sweep.job import SweepJob

    for k, v in dict(SUBMITIT_EXECUTOR="slurm", SLURM_JOB_ID="77", SLURM_JOB_NUM_NODES="2", SLURM_NODEID="1",
                     SLURM_JOB_NODELIST="gpu[03-04]", SLURM_NTASKS="2", SLURM_PROCID="1", SLURM_LOCALID="0",
                     SLURM_CPUS_PER_TASK="32").items():
        monkeypatch.setenv(k, v)
    job = SweepJob("k", ["--method", "fmfa"], "/tmp", nproc_per_node=4)
    cmd = job.command(submitit.JobEnvironment())
    i = cmd.index("torch.distributed.run")
    assert cmd[i + 1:i + 5] == ["--nnodes=2", "--node_rank=1", "--master_addr=gpu03", cmd[i + 4]]
    assert cmd[i + 4].startswith("--master_port=") and "--nproc_per_node=4" in cmd
    assert cmd[-7:] == ["-m", "harness", "run", "--method", "fmfa", "--launcher", "pytorch"]
    assert job.thread_budget() == 8
    single = SweepJob("k", ["--seed", "0"], "/tmp")
    monkeypatch.setenv("SLURM_JOB_NUM_NODES", "1")
    assert single.command(submitit.JobEnvironment())[1:] == ["-m", "harness", "run", "--seed", "0"]


@pytest.mark.slow
def test_ctrl_c_on_a_local_sweep_names_the_jobs_that_go_on_running(tmp_path):
    """SIGINT to `harness sweep` once its job has started: one line naming the job and its pid, which goes on
    (the test then stops it), and the jobs never started; exit 130."""
    import signal
    import subprocess
    import sys
    import time

    argv = _sweep_args(tmp_path, seeds="0,1").copy()
    argv[argv.index("--jobs") + 1] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "harness", *argv], cwd=tmp_path, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # even under `&`
    pid = None
    try:
        deadline = time.time() + 120
        for line in proc.stderr:
            m = re.search(r"started (\S+) \(job (\d+)", line)
            if m:
                key, pid = m.group(1), int(m.group(2))
                break
            assert time.time() < deadline, "the sweep did not start its job"
        assert pid is not None
        time.sleep(3)  # the job's controller has exec'd (its command line names submitit)
        proc.send_signal(signal.SIGINT)  # to the sweep process alone, as a terminal would not do for a detached job
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 130
        (last,) = [ln for ln in err.splitlines() if ln.startswith("interrupted")]
        assert "1 job(s) go on running" in last and f"{key} (pid {pid})" in last and "1 job(s) not started" in last
        os.kill(pid, 0)  # still running
    finally:
        if pid is not None:  # the job's `harness run` child dies with it (PR_SET_PDEATHSIG)
            with __import__("contextlib").suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
