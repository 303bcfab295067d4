"""The sweep folder ``sweeps/<name>/``: ``sweep.json`` (grid, resources, every job with its submitit
job id) and ``logs/`` (submitit's folder: per-job stdout/stderr, submission scripts, result pickles)."""
from __future__ import annotations

import json
import re
from pathlib import Path

from .. import atomic
from ..errors import HarnessError
from .grid import JobSpec


def default_name(methods: list[str], datasets: list[str]) -> str:
    """Same grid -> same folder, so rerunning a sweep finds its jobs (and skips the finished ones)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"{'-'.join(methods)}__{'-'.join(datasets)}")[:100]


class SweepFolder:
    def __init__(self, path: str | Path):
        self.path = Path(path).resolve()

    @property
    def file(self) -> Path:
        return self.path / "sweep.json"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def exists(self) -> bool:
        return self.file.is_file()

    def load(self) -> dict:
        if not self.exists():
            raise HarnessError(f"{self.file}: no sweep here; give --sweep with a folder `harness sweep` made")
        try:
            data = json.loads(self.file.read_text())
        except json.JSONDecodeError as exc:
            raise HarnessError(f"{self.file}: unreadable ({exc}); rerun `harness sweep` to rewrite it") from None
        data["jobs"] = [JobSpec.from_dict(j) for j in data.get("jobs", [])]
        return data

    def save(self, data: dict) -> None:
        """Atomic: a concurrent `harness sweep status` never reads half a file."""
        self.path.mkdir(parents=True, exist_ok=True)
        body = dict(data, jobs=[j.to_dict() if isinstance(j, JobSpec) else j for j in data.get("jobs", [])])
        atomic.write_json(self.file, body)


def latest_sweep(root: str | Path = "sweeps") -> SweepFolder:
    files = sorted(Path(root).glob("*/sweep.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise HarnessError(f"{root}: no sweep found; run `harness sweep ...` first or give --sweep DIR")
    return SweepFolder(files[-1].parent)
