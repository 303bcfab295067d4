"""Start-up time of the light CLI commands against `python -c "import torch"`, in the same run.

    python benchmarks/bench_cli_start.py                  # 7 rounds after one warm-up
    python benchmarks/bench_cli_start.py --rounds 15 --record results/<id> --data-root DIR   # adds inspect

The commands run in turn within each round (torch, list, leaderboard --help, sweep status[, inspect]), so
a machine whose load drifts slows all of them alike; the table gives each command's median and min/max
wall seconds and the median of its per-round ratio to `import torch`. The target is `harness list`
under 2 s on an idle machine; on a shared machine quote the ratio with the raw figures.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate


def _sweep(folder: Path) -> Path:
    """A one-job local sweep folder, as `harness sweep` writes it, for `sweep status` to read."""
    s = folder / "sweeps" / "bench"
    s.mkdir(parents=True)
    job = dict(key="fmfa-synth-s0-x", method="fmfa", dataset="synth", seed=0, config_hash="x", train_dataset="synth",
               eval_datasets=["synth"], argv=[], job_id=None, submitted=None)
    (s / "sweep.json").write_text(json.dumps(dict(executor="local", jobs=[job], results_dir=str(folder / "r"))))
    return folder / "sweeps"


def _time(cmd: list[str]) -> float:
    t = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr.strip()[-500:]}")
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--record", help="a record folder: also time `harness inspect` on it")
    ap.add_argument("--data-root", help="with --record: its data root")
    ap.add_argument("--json")
    a = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as d:
        sweeps = _sweep(Path(d))
        cmds = {"python -c 'import torch'": [py, "-c", "import torch"],
                "harness list": [py, "-m", "harness", "list"],
                "harness leaderboard --help": [py, "-m", "harness", "leaderboard", "--help"],
                "harness sweep status": [py, "-m", "harness", "sweep", "status", "--sweeps-dir", str(sweeps)]}
        if a.record:
            cmds["harness inspect"] = [py, "-m", "harness", "inspect", a.record, "--data-root", a.data_root,
                                       "--out", str(Path(d) / "page"), "--resamples", "99"]
        times: dict[str, list[float]] = {k: [] for k in cmds}
        for r in range(a.warmup + a.rounds):
            for name, cmd in cmds.items():
                dt = _time(cmd)
                if r >= a.warmup:
                    times[name].append(dt)
    base = times["python -c 'import torch'"]
    rows, out = [], {}
    for name, ts in times.items():
        ratio = statistics.median(t / b for t, b in zip(ts, base))
        rows.append([name, f"{statistics.median(ts):.2f}", f"{min(ts):.2f}", f"{max(ts):.2f}", f"{ratio:.2f}"])
        out[name] = dict(median_s=statistics.median(ts), min_s=min(ts), max_s=max(ts), ratio_to_import_torch=ratio)
    print(tabulate(rows, ["command", "median s", "min s", "max s", "x import torch (median of per-round ratios)"],
                   tablefmt="github"))
    print(f"{a.rounds} rounds after {a.warmup} warm-up; python {sys.version.split()[0]}")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
