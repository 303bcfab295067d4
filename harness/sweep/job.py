"""What one sweep job executes: ``harness run`` (or torchrun over it) as a child process.

It is a submitit ``Checkpointable`` whose checkpoint is the same call, so a job that SLURM preempts,
that times out, or that an operator requeues runs the same command again, and ``harness run`` resumes
from the last checkpoint in its work_dir (mmengine resume; the run is seeded per epoch and sample,
so it ends with the same metrics as an uninterrupted run).

Signals: SIGUSR2 (SLURM's warning before the time limit or a preemption) is ignored by the child and
handled here by submitit (checkpoint = requeue the same call, then exit). SIGTERM (``scontrol
requeue``, ``scancel``, preemption) stops the child and makes this process exit without a result, so
a requeued job is not reported as failed. The child dies with this process (PR_SET_PDEATHSIG), so it
never keeps running beside its requeued copy."""
from __future__ import annotations

import collections
import contextlib
import ctypes
import hashlib
import os
import signal
import subprocess
import sys

import submitit

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")


class JobFailed(RuntimeError):
    """``harness run`` exited with an error; the message carries its last error line."""


def _child_setup():  # pragma: no cover - runs in the forked child
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    with contextlib.suppress(OSError):  # die with the parent even if it is SIGKILLed (Linux)
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _last_error_line(lines) -> str:
    lines = [ln.strip() for ln in lines if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith("error:") or "Error" in ln.split(":")[0]:
            return ln
    return lines[-1] if lines else "(no output on stderr)"


class SweepJob(submitit.helpers.Checkpointable):
    def __init__(self, key: str, argv: list[str], cwd: str, threads: int | None = None, nproc_per_node: int = 1,
                 env_overrides: dict[str, str | None] | None = None):
        self.key, self.argv, self.cwd = key, list(argv), cwd
        self.threads, self.nproc_per_node = threads, nproc_per_node
        self.env_overrides = dict(env_overrides or {})  # None removes the variable

    def command(self, env: submitit.JobEnvironment | None = None) -> list[str]:
        """``harness run ARGS``, or torchrun over it when the job has several processes or nodes."""
        nodes = env.num_nodes if env is not None else 1
        if self.nproc_per_node <= 1 and nodes <= 1:
            return [sys.executable, "-m", "harness", "run", *self.argv]
        rdzv = ["--standalone"] if nodes <= 1 else [
            f"--nnodes={nodes}", f"--node_rank={env.node}", f"--master_addr={env.hostnames[0]}",
            f"--master_port={29500 + int(hashlib.sha1(str(env.job_id).encode()).hexdigest(), 16) % 20000}"]
        return [sys.executable, "-m", "torch.distributed.run", *rdzv, f"--nproc_per_node={self.nproc_per_node}",
                "-m", "harness", "run", *self.argv, "--launcher", "pytorch"]

    def thread_budget(self) -> int | None:
        total = self.threads or int(os.environ.get("SLURM_CPUS_PER_TASK", "0") or 0)
        return max(1, total // max(1, self.nproc_per_node)) if total else None

    def __call__(self) -> dict:
        env = dict(os.environ)
        for k, v in self.env_overrides.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        threads = self.thread_budget()
        if threads:
            env.update({v: str(threads) for v in THREAD_VARS})
        try:
            job_env = submitit.JobEnvironment()
        except RuntimeError:
            job_env = None
        cmd = self.command(job_env)
        print(f"[sweep] {self.key}: {' '.join(cmd)} (threads per process: {threads or 'default'}, "
              f"restart {os.environ.get('SLURM_RESTART_COUNT', '0')})", flush=True)
        tail: collections.deque[str] = collections.deque(maxlen=50)
        proc = subprocess.Popen(cmd, cwd=self.cwd, env=env, stderr=subprocess.PIPE, text=True, bufsize=1,
                                preexec_fn=_child_setup)
        stopped = []

        def on_term(signum, frame):
            stopped.append(signum)
            if proc.poll() is None:
                proc.terminate()

        previous = signal.signal(signal.SIGTERM, on_term)
        rc, error = None, None
        try:
            for line in proc.stderr:
                sys.stderr.write(line)
                tail.append(line)
            rc = proc.wait()
        except Exception as exc:  # e.g. submitit's own `scontrol requeue` (USR2 path) killed by that very requeue
            error = exc
        finally:
            signal.signal(signal.SIGTERM, previous)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        sys.stderr.flush()
        if stopped:  # SystemExit is not an Exception: submitit writes no result, the job is not "failed"
            print(f"[sweep] {self.key}: stopped by SIGTERM (requeue, preemption or cancel); a rerun resumes "
                  "from the last checkpoint", flush=True)
            sys.exit(128 + signal.SIGTERM)
        if error is not None:
            raise error
        if rc != 0:
            raise JobFailed(f"{self.key}: harness run exited with status {rc}: {_last_error_line(tail)}")
        return dict(key=self.key, returncode=rc)
