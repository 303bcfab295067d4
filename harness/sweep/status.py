"""State of every sweep job, from three sources in this order: the scheduler (``squeue`` for SLURM
jobs it still knows, the controller process for local jobs), the results store (a finished run has
a record for every evaluation set), and submitit's result pickle (a failed job's traceback)."""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from submitit.core.utils import JobPaths, pickle_load
from tabulate import tabulate

from .folder import SweepFolder
from .grid import JobSpec, finished_records, store_records

PENDING = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SUSPENDED", "STOPPED"}
RUNNING = {"RUNNING", "CONFIGURING", "COMPLETING", "RESIZING", "SIGNALING", "STAGE_OUT"}
ENDED_BADLY = {"FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"}


@dataclass
class JobStatus:
    key: str
    job_id: str
    method: str
    dataset: str
    seed: int
    state: str            # pending | running | done | failed | not submitted
    record: str = ""
    error: str = ""
    log: str = ""


def squeue_states(job_ids: list[str]) -> dict[str, str]:
    """{job id: SLURM state} for the jobs squeue still knows (array tasks one per line)."""
    ids = sorted({j.split("_")[0] for j in job_ids if j})
    if not ids or shutil.which("squeue") is None:
        return {}
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-t", "all", "-j", ",".join(ids), "-o", "%i|%T"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    states = {}
    for line in out.stdout.splitlines():
        jid, _, state = line.strip().partition("|")
        if jid:
            states[jid] = state.split()[0] if state else ""
    return states


def local_alive(job_id: str) -> bool:
    """A local job's id is its submitit controller's pid."""
    try:
        pid = int(job_id)
        os.kill(pid, 0)
        return b"submitit" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except (ValueError, OSError):
        return False


def read_result(logs: Path, job_id: str) -> tuple[str, str] | None:
    """('success', '') or ('error', last traceback line) from submitit's result pickle, None if absent."""
    path = JobPaths(logs, job_id, 0).result_pickle
    if not path.is_file():
        return None
    try:
        kind, value = pickle_load(path)
    except Exception as exc:  # a pickle from another submitit version or a half-written file
        return "error", f"unreadable result {path.name}: {exc}"
    if kind != "error":
        return kind, ""
    lines = [ln.strip() for ln in str(value).splitlines() if ln.strip()]
    return kind, (lines[-1] if lines else "failed")


def job_status(job: JobSpec, executor: str, logs: Path, records: list[dict], sched: dict[str, str]) -> JobStatus:
    rec = finished_records(job, records)
    st = JobStatus(job.key, job.job_id or "-", job.method, job.dataset, job.seed, "pending",
                   record=rec[job.train_dataset] if rec else "")
    if not job.job_id:
        st.state = "done" if rec else "not submitted"
        st.job_id = "skipped" if rec else "-"
        return st
    st.log = str(JobPaths(logs, job.job_id, 0).stdout)
    sstate = sched.get(job.job_id, "")
    if sstate in PENDING:
        st.state = "requeued" if sstate.startswith("REQUEUE") else "pending"
    elif sstate in RUNNING or (executor == "local" and local_alive(job.job_id)):
        st.state = "running"
    elif rec:
        st.state = "done"
    else:
        result = read_result(logs, job.job_id)
        if result is not None and result[0] == "error":
            st.state, st.error = "failed", result[1]
        elif result is not None:
            st.state, st.error = "failed", "finished without writing every record; see the log"
        elif sstate in ENDED_BADLY:
            st.state, st.error = "failed", f"SLURM state {sstate}; see the log"
        elif Path(st.log).exists() or sstate:
            st.state, st.error = "failed", "ended without a result (killed or cancelled); see the log"
    return st


def sweep_status(folder: SweepFolder) -> tuple[dict, list[JobStatus]]:
    data = folder.load()
    jobs: list[JobSpec] = data["jobs"]
    ids = [j.job_id for j in jobs if j.job_id] + [data.get("leaderboard_job_id") or ""]
    sched = squeue_states(ids) if data["executor"] == "slurm" else {}
    data["_sched"] = sched
    records = store_records(data["results_dir"])
    return data, [job_status(j, data["executor"], folder.logs, records, sched) for j in jobs]


def leaderboard_state(data: dict, folder: SweepFolder) -> str:
    jid = data.get("leaderboard_job_id")
    if data["executor"] == "local" or not jid:
        return data.get("leaderboard", "not built")
    sstate = data.get("_sched", {}).get(jid, "")
    if sstate in PENDING:
        return f"job {jid} pending (runs after every sweep job ends)"
    if sstate in RUNNING:
        return f"job {jid} running"
    result = read_result(folder.logs, jid)
    if result is None:
        return f"job {jid} {sstate.lower() or 'ended without a result'}"
    return f"job {jid} built {data['leaderboard_dir']}" if result[0] == "success" else f"job {jid} failed: {result[1]}"


def active(statuses: list[JobStatus]) -> bool:
    return any(s.state in ("pending", "requeued", "running") for s in statuses)


def status_table(folder: SweepFolder, data: dict, statuses: list[JobStatus]) -> str:
    rows = [[s.job_id, s.method, s.dataset, s.seed, s.state, s.record or (s.error or s.log)] for s in statuses]
    counts = {}
    for s in statuses:
        counts[s.state] = counts.get(s.state, 0) + 1
    lines = [f"sweep {folder.path} ({data['executor']}): " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())),
             tabulate(rows, headers=["job", "method", "dataset", "seed", "state", "record / last error / log"],
                      tablefmt="simple", disable_numparse=True),
             f"leaderboard: {leaderboard_state(data, folder)}"]
    return "\n".join(lines)
