"""The committed leaderboards are what the current code builds from the committed records, byte for byte.

`leaderboards/records/` holds the results records `./run_all.sh` wrote; `leaderboards/` the tables built
from them. A refactor that changes a table, a method default that renames a row, or a table edited by hand
fails here.
"""
from __future__ import annotations

from pathlib import Path

from harness.leaderboard.build import build_leaderboards

REPO = Path(__file__).resolve().parents[1]
REBUILD = "harness leaderboard --results-dir leaderboards/records --out leaderboards"


def test_committed_leaderboards_rebuild_byte_identical_from_the_committed_records(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the tables name the records folder as the command that rebuilds them gives it
    built = {Path(p).name for p in build_leaderboards("leaderboards/records", tmp_path)}
    committed = {p.name for p in (REPO / "leaderboards").iterdir() if p.is_file()}
    assert built == committed, f"files differ: {sorted(built ^ committed)}; run `{REBUILD}`"
    for name in sorted(committed):
        assert (tmp_path / name).read_bytes() == (REPO / "leaderboards" / name).read_bytes(), (
            f"leaderboards/{name} is not what the code builds from leaderboards/records: run `{REBUILD}`, or "
            "./run_all.sh when a method's default config changed")
