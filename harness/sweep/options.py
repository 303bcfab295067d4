"""Resources of each sweep job (SLURM flags, time limit, GPUs and processes per node), from a config
file and/or command-line flags (flags win), validated here so a typo fails before anything is queued."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path

from ..errors import ConfigError

DEFAULT_TIME_MIN = 24 * 60


@dataclass
class JobResources:
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: int = DEFAULT_TIME_MIN            # minutes; the job gets USR2 signal_delay_s before it and requeues itself
    cpus_per_task: int | None = None        # one task per node; its harness/torchrun processes share these cores
    gpus_per_task: int = 0                  # GPUs of each job on each node
    nodes: int = 1                          # >1: multi-node DDP, torchrun on every node (rendezvous on the first)
    nproc_per_node: int | None = None       # DDP processes per node; default: gpus_per_task, or 1 without GPUs
    mem: str | None = None                  # sbatch --mem, e.g. "64G"
    array_parallelism: int = 256            # at most this many array tasks run at once
    constraint: str | None = None
    exclude: str | None = None
    signal_delay_s: int = 120               # seconds before the time limit at which SLURM sends USR2
    max_timeouts: int = 3                   # how often a job may time out and requeue itself
    setup: list[str] = field(default_factory=list)   # shell lines run before each job (module load ..., etc.)
    sbatch: dict = field(default_factory=dict)       # any other sbatch flag: {"mail-type": "END", "reservation": "x"}
    srun_args: list[str] = field(default_factory=list)

    @property
    def procs(self) -> int:
        return self.nproc_per_node or max(1, self.gpus_per_task)


_INT = {"time", "cpus_per_task", "gpus_per_task", "nodes", "nproc_per_node", "array_parallelism", "signal_delay_s",
        "max_timeouts"}
_LIST = {"setup", "srun_args"}


def parse_time(value, where: str) -> int:
    """Minutes from 90, "90", "1:30:00", "2-00:00:00" (SLURM's formats)."""
    if isinstance(value, int) and not isinstance(value, bool):
        minutes = value
    else:
        m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", str(value).strip())
        if not m:
            raise ConfigError(f"{where}: time '{value}' is not minutes, HH:MM:SS or D-HH:MM:SS")
        d, a, b, c = (int(x) if x else None for x in m.groups())
        if b is None:          # "MM" or "D-HH"
            minutes = (d or 0) * 1440 + (a * 60 if d is not None else a)
        elif c is None:        # "MM:SS" or "D-HH:MM"
            minutes = (d or 0) * 1440 + (a * 60 + b if d is not None else a + (b > 0))
        else:                  # "HH:MM:SS"
            minutes = (d or 0) * 1440 + a * 60 + b + (c > 0)
    if minutes <= 0:
        raise ConfigError(f"{where}: time must be positive, got '{value}'")
    return minutes


def _check(key: str, value, where: str):
    names = {f.name for f in fields(JobResources)}
    if key not in names:
        raise ConfigError(f"{where}: unknown key '{key}'; allowed: {', '.join(sorted(names))}")
    if key == "time":
        return parse_time(value, where)
    if key in _INT:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where}: '{key}' must be a non-negative integer, got {value!r}")
        if key in ("nodes", "array_parallelism", "nproc_per_node") and value < 1:
            raise ConfigError(f"{where}: '{key}' must be at least 1, got {value}")
        return value
    if key in _LIST:
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: '{key}' must be a list of strings, got {value!r}")
        return list(value)
    if key == "sbatch":
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: 'sbatch' must be a dict of sbatch flag -> value, got {value!r}")
        return {str(k).lstrip("-"): v for k, v in value.items()}
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}: '{key}' must be a string, got {value!r}")
    return value


def read_resources_file(path: str | Path) -> dict:
    """A mmengine config file (.py, .json, .yaml) whose ``slurm = dict(...)`` (or top level) holds the keys."""
    from mmengine.config import Config

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: SLURM config file not found")
    try:
        cfg = Config.fromfile(str(path)).to_dict()
    except Exception as exc:
        raise ConfigError(f"{path}: cannot parse SLURM config: {exc}") from None
    body = cfg.get("slurm", cfg)
    return {k: _check(k, v, f"{path}") for k, v in body.items()}


def build_resources(config_file: str | None, flags: dict) -> JobResources:
    """File values, then every flag that was given (not None)."""
    values = read_resources_file(config_file) if config_file else {}
    for key, value in flags.items():
        if value is None:
            continue
        if key == "sbatch":
            values["sbatch"] = {**values.get("sbatch", {}), **_check("sbatch", value, "--sbatch")}
        else:
            values[key] = _check(key, value, f"--{key.replace('_', '-')}")
    return JobResources(**values)


def parse_sbatch_flags(items: list[str] | None) -> dict | None:
    """``--sbatch mail-type=END exclusive`` -> {"mail-type": "END", "exclusive": True}."""
    if not items:
        return None
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key.lstrip("-")] = value if _ else True
    return out
