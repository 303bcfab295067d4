"""``harness sweep --executor slurm`` against a real SLURM (single node, started by .ci/slurm_up.sh):
an array of two tiny synth runs, one requeued mid-run with ``scontrol requeue``, the other sent the
preemption signal (USR2: submitit checkpoints and requeues it); every record, the resume from the
checkpoint (same metrics as an uninterrupted run) and the afterany leaderboard job are checked."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.results import ResultsStore
from harness.sweep import SweepFolder
from harness.sweep.status import read_result
from harness.sweep.submit import wait_for

TINY = ["dataset.train_ids=12", "dataset.val_ids=2", "dataset.test_ids=6", "dataset.images_per_id=2",
        "dataset.xdomain_ids=4", "dataset.image_size=(32,16)", "cross_domain=[]", "method.encoder.image_size=(32,16)",
        "method.encoder.context_length=40", "train.epochs=3", "train.batch_size=8"]


def _slurm_unavailable() -> str | None:
    """Why the test cannot run here, or None."""
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        return ("SLURM is not installed (no `sinfo`/`sbatch` on PATH); `bash .ci/slurm_up.sh` installs and "
                "starts a single-node SLURM on Debian/Ubuntu as root")
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return "`sinfo` did not answer within 15 s: slurmctld is not running (start it with `bash .ci/slurm_up.sh`)"
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return f"`sinfo` failed ({last}): slurmctld is not reachable (start it with `bash .ci/slurm_up.sh`)"
    states = set(out.stdout.split())
    if not states & {"idle", "mixed", "allocated"}:
        return (f"no SLURM node accepts jobs (sinfo states: {', '.join(sorted(states)) or 'none'}): slurmd is not "
                "running; see .ci/slurm_up.sh and its log under /var/tmp/tipr-slurm/")
    return None


REASON = _slurm_unavailable()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(REASON is not None, reason=str(REASON))]


def _resumed_from(log: str, wd: Path) -> bool:
    """The job's log shows mmengine loading an epoch checkpoint of this work dir (named absolute, or relative
    to the job's folder, as the resume point is read from last_checkpoint)."""
    prefix = "Loads checkpoint by local backend from path: "
    return any(line.startswith(prefix) and f"{wd.name}/epoch_" in line and
               (line[len(prefix):].startswith(str(wd)) or not line[len(prefix):].startswith("/"))
               for line in log.splitlines())


def _wait(cond, timeout, what):
    t0 = time.time()
    while not cond():
        if time.time() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.3)


def test_slurm_array_with_a_requeued_job_resumes_and_rebuilds_the_leaderboard(tmp_path, monkeypatch, capsys):
    tmp_path = tmp_path.resolve()
    monkeypatch.chdir(tmp_path)  # the batch jobs start in the submission folder: work_dirs/ lands here
    sweep = tmp_path / "sweeps" / "slurm"
    rc = main(["sweep", "--executor", "slurm", "--methods", "fmfa", "--datasets", "synth", "--seeds", "0,1",
               "--name", "slurm", "--sweeps-dir", str(tmp_path / "sweeps"), "--results-dir", str(tmp_path / "results"),
               "--out", str(tmp_path / "leaderboards"), "--resamples", "200", "--time", "15", "--cpus-per-task", "1",
               "--cfg-options", *TINY])
    assert rc == 0
    data = SweepFolder(sweep).load()
    j0, j1 = data["jobs"]
    array = j0.job_id.split("_")[0]
    assert (j0.job_id, j1.job_id) == (f"{array}_0", f"{array}_1")  # one sbatch array
    assert data["leaderboard_job_id"]
    script = (sweep / "logs" / f"{array}_submission.sh").read_text()
    assert "#SBATCH --array=0-1%" in script and "#SBATCH --requeue" in script and "#SBATCH --cpus-per-task=1" in script

    # the same run, uninterrupted, outside SLURM (same thread count as the job), for the metrics
    ref_argv = list(j0.argv)
    ref_argv[ref_argv.index("--results-dir") + 1] = str(tmp_path / "ref_results")
    ref = subprocess.Popen([sys.executable, "-m", "harness", "run", *ref_argv, "--work-dir", str(tmp_path / "ref_wd")],
                           env=dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    # once a job's first checkpoint is complete (mmengine writes last_checkpoint after it): requeue job 0
    # by hand, and give job 1 SLURM's preemption/time-limit warning (USR2), on which submitit
    # checkpoints the job (the same call) and requeues it itself
    wd, wd1 = tmp_path / "work_dirs" / j0.key, tmp_path / "work_dirs" / j1.key
    _wait(lambda: (wd / "last_checkpoint").exists(), 300, f"{wd}/last_checkpoint")
    assert not (wd / "epoch_3.pth").exists()
    subprocess.run(["scontrol", "requeue", j0.job_id], check=True, timeout=60)
    _wait(lambda: (wd1 / "last_checkpoint").exists(), 300, f"{wd1}/last_checkpoint")
    assert not (wd1 / "epoch_3.pth").exists()
    subprocess.run(["scancel", "--signal=USR2", j1.job_id], check=True, timeout=60)

    data, statuses = wait_for(SweepFolder(sweep), timeout_s=420, poll_s=2)
    assert [s.state for s in statuses] == ["done", "done"], statuses
    recs = ResultsStore(tmp_path / "results").records()
    assert sorted((r["seed"], r["eval_dataset"]) for r in recs) == [(0, "synth"), (1, "synth")]  # killed try: none
    log0 = (sweep / "logs" / f"{j0.job_id}_0_log.out").read_text()
    assert "stopped by SIGTERM" in log0 and "restart 1)" in log0
    assert _resumed_from(log0, wd)  # resumed, not restarted
    log1 = (sweep / "logs" / f"{j1.job_id}_0_log.out").read_text()
    log1 += (sweep / "logs" / f"{j1.job_id}_0_log.err").read_text()
    assert "Caught signal SIGUSR2" in log1 and "Calling checkpoint method" in log1 and "restart 1)" in log1
    assert "triggered an exception" not in log1  # the requeue's SIGTERM ended the first try without a result
    assert _resumed_from(log1, wd1)
    assert read_result(sweep / "logs", data["leaderboard_job_id"]) == ("success", "")
    board = (tmp_path / "leaderboards" / "README.md").read_text()
    assert "## synth" in board and "2 stored records" in board

    assert ref.wait(timeout=300) == 0, ref.stderr.read()[-2000:]
    (expected,) = ResultsStore(tmp_path / "ref_results").records()
    got = next(r for r in recs if r["seed"] == 0)
    for m in ("R1", "R5", "mAP", "mINP"):
        assert abs(got["metrics"][m] - expected["metrics"][m]) < 1e-6, (m, got["metrics"], expected["metrics"])

    capsys.readouterr()
    assert main(["sweep", "status", "--sweep", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "2 done" in out and f"job {data['leaderboard_job_id']} built" in out
    assert Path(got["_path"]).name in out
