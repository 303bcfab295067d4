"""Submit a sweep: skip finished and still-queued jobs, then either run the rest on this machine
(K at a time, each with cores // K threads) and rebuild the leaderboards, or queue them on SLURM as
one job array plus a leaderboard job that depends on it (``afterany``: it runs once every task ended)."""
from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path

import submitit

from ..errors import ConfigError, HarnessError
from .folder import SweepFolder
from .grid import JobSpec, finished_records, store_records
from .job import SweepJob
from .options import JobResources
from .status import PENDING, RUNNING, active, job_status, local_alive, squeue_states, status_table, sweep_status

log = logging.getLogger("harness")


def rebuild_leaderboards(results_dir: str, out: str, resamples: int) -> list[str]:
    """The sweep's last step (also the body of the SLURM leaderboard job)."""
    from ..leaderboard.tables import build_leaderboards

    if not store_records(results_dir):
        print(f"no records in {results_dir}: leaderboards not built", flush=True)
        return []
    paths = [str(p) for p in build_leaderboards(results_dir, out, resamples=resamples)]
    print(f"leaderboards rebuilt in {out} from {results_dir}", flush=True)
    return paths


def _last_line(exc: Exception) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def plan(folder: SweepFolder, specs: list[JobSpec], executor: str, results_dir: str) -> list[JobSpec]:
    """Mark finished jobs as skipped, keep the job id of jobs a previous submission still has
    queued or running; return the jobs to submit now."""
    records = store_records(results_dir)
    previous = {}
    if folder.exists():
        old = folder.load()
        if old.get("executor") == executor:
            previous = {j.key: j for j in old["jobs"] if j.job_id}
    sched = squeue_states([j.job_id for j in previous.values()]) if executor == "slurm" else {}
    todo = []
    for spec in specs:
        if finished_records(spec, records):
            spec.submitted, spec.job_id = "skipped (finished record in the results store)", None
            continue
        prev = previous.get(spec.key)
        if prev is not None and job_status(prev, executor, folder.logs, [], sched).state in (
                "pending", "requeued", "running"):
            spec.job_id, spec.submitted = prev.job_id, prev.submitted
            continue
        todo.append(spec)
    return todo


def run_local(folder: SweepFolder, data: dict, todo: list[JobSpec], jobs: int, res: JobResources) -> None:
    """K jobs at a time through submitit's LocalExecutor; each job gets cores // K threads and, with
    --gpus-per-task G, its own G GPUs."""
    cores = len(os.sched_getaffinity(0))
    threads = max(1, cores // jobs)
    ex = submitit.LocalExecutor(folder=folder.logs, max_num_timeout=res.max_timeouts)
    n_gpus = res.gpus_per_task
    cuda = os.environ.get("CUDA_VISIBLE_DEVICES")  # submitit hides every GPU from a job that asks for none
    free_slots = list(range(jobs))
    pending = list(todo)
    running: dict[str, tuple[JobSpec, submitit.Job, int]] = {}
    log.info(f"local executor: {len(todo)} job(s), {jobs} at a time, {threads} thread(s) each ({cores} cores)")
    try:
        _local_loop(ex, folder, data, pending, running, free_slots, threads, n_gpus, cuda, res)
    except KeyboardInterrupt:
        alive = [f"{spec.key} (pid {job.job_id})" for spec, job, _ in running.values() if local_alive(job.job_id)]
        raise SweepInterrupted(
            (f"{len(alive)} job(s) go on running and will store their results when they finish: {', '.join(alive)} "
             "(`harness sweep status` follows them; `kill PID` stops one)" if alive else "no job was running")
            + f"; {len(pending)} job(s) not started (rerun the same `harness sweep` to start them)") from None
    adopted = [j for j in data["jobs"] if j.job_id and j not in todo and local_alive(j.job_id)]
    if adopted:
        log.info(f"waiting for {len(adopted)} job(s) an earlier `harness sweep` started")
    while any(local_alive(j.job_id) for j in adopted):
        time.sleep(2)


class SweepInterrupted(KeyboardInterrupt):
    """Ctrl-C on a local sweep: the message names the jobs that keep running (their processes are not ours
    to kill: each writes its record atomically when it ends) and the ones never started."""


def _local_loop(ex, folder, data, pending, running, free_slots, threads, n_gpus, cuda, res) -> None:
    while pending or running:
        while pending and free_slots:
            spec, slot = pending.pop(0), free_slots.pop(0)
            ex.update_parameters(timeout_min=res.time, signal_delay_s=res.signal_delay_s, gpus_per_node=n_gpus,
                                 visible_gpus=list(range(slot * n_gpus, (slot + 1) * n_gpus)) if n_gpus else [],
                                 setup=res.setup)
            job = ex.submit(SweepJob(spec.key, spec.argv, data["cwd"], threads=threads, nproc_per_node=res.procs,
                                     env_overrides=None if n_gpus else {"CUDA_VISIBLE_DEVICES": cuda}))
            spec.job_id, spec.submitted = job.job_id, _now()
            folder.save(data)
            log.info(f"started {spec.key} (job {job.job_id}, log {job.paths.stdout})")
            running[job.job_id] = (spec, job, slot)
        time.sleep(0.5)
        for jid in [j for j, (_, job, _) in running.items() if job.done()]:
            spec, job, slot = running.pop(jid)
            free_slots.append(slot)
            try:
                job.result()
                log.info(f"finished {spec.key}")
            except Exception as exc:  # the job's own error is in its result pickle and log
                msg = str(exc).strip().splitlines()
                log.warning(f"failed {spec.key}: {msg[-1] if msg else exc}")


def submit_slurm(folder: SweepFolder, data: dict, todo: list[JobSpec], res: JobResources) -> None:
    """One sbatch array for the jobs, then the leaderboard job with ``--dependency=afterany:<array>``."""
    try:
        ex = submitit.SlurmExecutor(folder=folder.logs, max_num_timeout=res.max_timeouts)
    except RuntimeError as exc:
        raise HarnessError(f"--executor slurm: {exc} (`srun` is not on PATH)") from None
    common = {k: v for k, v in dict(partition=res.partition, account=res.account, qos=res.qos,
                                    constraint=res.constraint, exclude=res.exclude).items() if v}
    extra = {"requeue": True, **({"mem": res.mem} if res.mem else {}), **res.sbatch}
    params = dict(common, time=res.time, nodes=res.nodes, ntasks_per_node=1, signal_delay_s=res.signal_delay_s,
                  array_parallelism=res.array_parallelism, job_name=f"sweep-{data['name']}",
                  additional_parameters=extra, setup=res.setup, srun_args=res.srun_args)
    if res.cpus_per_task:
        params["cpus_per_task"] = res.cpus_per_task
    if res.gpus_per_task:
        params["gpus_per_node"] = res.gpus_per_task
    try:
        ex.update_parameters(**params)
    except ValueError as exc:
        raise ConfigError(f"SLURM options: {str(exc).splitlines()[0]}") from None
    array_ids = []
    if todo:
        try:
            with ex.batch():
                handles = [ex.submit(SweepJob(s.key, s.argv, data["cwd"], nproc_per_node=res.procs)) for s in todo]
        except submitit.core.utils.FailedJobError as exc:
            raise HarnessError(f"sbatch refused the sweep's job array: {_last_line(exc)}; fix the SLURM options "
                               f"(flags or --slurm-config)") from None
        for spec, job in zip(todo, handles):
            spec.job_id, spec.submitted = job.job_id, _now()
        array_ids = sorted({h.job_id.split("_")[0] for h in handles})
        log.info(f"submitted {len(todo)} job(s) to SLURM as {'array ' if len(todo) > 1 else ''}{array_ids[0]}")
    waiting = sorted({j.job_id.split("_")[0] for j in data["jobs"] if j.job_id} | set(array_ids))
    lb = submitit.SlurmExecutor(folder=folder.logs)
    after = {"dependency": "afterany:" + ":".join(waiting)} if waiting else {}
    lb.update_parameters(**common, time=60, nodes=1, ntasks_per_node=1, cpus_per_task=1,
                         job_name=f"leaderboard-{data['name']}", additional_parameters={**res.sbatch, **after},
                         setup=res.setup)
    try:
        lb_job = lb.submit(rebuild_leaderboards, data["results_dir"], data["leaderboard_dir"], data["resamples"])
    except submitit.core.utils.FailedJobError as exc:
        folder.save(data)
        raise HarnessError(f"sbatch refused the leaderboard job: {_last_line(exc)}; the sweep's jobs are queued, "
                           f"run `harness leaderboard` when they end") from None
    data["leaderboard_job_id"] = lb_job.job_id
    folder.save(data)
    log.info(f"leaderboard job {lb_job.job_id} runs after {'every job of ' + ', '.join(waiting) if waiting else 'now'}")


def wait_for(folder: SweepFolder, timeout_s: float | None = None, poll_s: float = 5.0) -> tuple[dict, list]:
    """Poll until no job (and no leaderboard job) is pending or running."""
    t0 = time.time()
    while True:
        data, statuses = sweep_status(folder)
        lb = data.get("leaderboard_job_id")
        lb_busy = bool(lb) and data["_sched"].get(lb, "") in PENDING | RUNNING
        if not active(statuses) and not lb_busy:
            return data, statuses
        if timeout_s is not None and time.time() - t0 > timeout_s:
            raise HarnessError(f"{folder.path}: still running after {timeout_s:.0f} s; `harness sweep status` shows it")
        time.sleep(poll_s)


def run_sweep(folder: SweepFolder, specs: list[JobSpec], executor: str, res: JobResources, jobs: int,
              grid: dict, results_dir: str, leaderboard_dir: str, resamples: int, wait: bool) -> int:
    if executor not in ("local", "slurm"):
        raise ConfigError(f"--executor must be local or slurm, got '{executor}'")
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if executor == "local" and res.nodes > 1:
        raise ConfigError("--nodes > 1 needs --executor slurm (the local executor has one node)")
    results_dir, leaderboard_dir = str(Path(results_dir).resolve()), str(Path(leaderboard_dir).resolve())
    todo = plan(folder, specs, executor, results_dir)
    data = dict(name=folder.path.name, created=_now(), executor=executor, cwd=str(Path.cwd()), results_dir=results_dir,
                leaderboard_dir=leaderboard_dir, resamples=resamples, grid=grid, jobs_parallel=jobs,
                resources=res.__dict__, jobs=specs)
    folder.save(data)
    skipped = sum(1 for s in specs if (s.submitted or "").startswith("skipped"))
    log.info(f"sweep {folder.path}: {len(specs)} job(s), {skipped} finished (skipped), "
             f"{len(specs) - skipped - len(todo)} still queued, {len(todo)} to run")
    if executor == "local":
        run_local(folder, data, todo, jobs, res)
        rebuild_leaderboards(results_dir, leaderboard_dir, resamples)
        data["leaderboard"] = f"built {leaderboard_dir} at {_now()}"
        folder.save(data)
    else:
        submit_slurm(folder, data, todo, res)
        if wait:
            wait_for(folder)
    data, statuses = sweep_status(folder)
    print(status_table(folder, data, statuses))
    if executor == "slurm" and not wait:
        return 0
    return 0 if all(s.state == "done" for s in statuses) else 1
