"""The committed leaderboards are what the current code builds from the committed records, byte for byte.

`leaderboards/records/` holds the results records `./run_all.sh` wrote, `leaderboards/` the tables built
from them; `benchmarks/results/ablation_{fmfa,lgur}/` likewise hold the ablations of the model cards. A
refactor that changes a table, a method default that renames a row, or a table edited by hand fails here.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.leaderboard.tables import build_leaderboards
from harness.leaderboard.output import MANIFEST

REPO = Path(__file__).resolve().parents[1]
BOARDS = {  # tables folder -> the records folder they are built from
    "leaderboards": "leaderboards/records",
    "benchmarks/results/ablation_fmfa/board": "benchmarks/results/ablation_fmfa/records",
    "benchmarks/results/ablation_lgur/board": "benchmarks/results/ablation_lgur/records",
}


@pytest.mark.parametrize("tables,records", BOARDS.items(), ids=list(BOARDS))
def test_committed_tables_rebuild_byte_identical_from_the_committed_records(tables, records, tmp_path, monkeypatch):
    rebuild = f"harness leaderboard --results-dir {records} --out {tables}"
    monkeypatch.chdir(REPO)  # the tables name the records folder as the command that rebuilds them gives it
    built = {Path(p).name for p in build_leaderboards(records, tmp_path)}
    committed = {p.name for p in (REPO / tables).iterdir() if p.is_file()}
    assert built == committed, f"files differ: {sorted(built ^ committed)}; run `{rebuild}`"
    for name in sorted(committed):
        if name == MANIFEST:  # it names its stores relative to its own folder: compare the files it lists
            assert json.loads((tmp_path / name).read_text())["files"] == \
                json.loads((REPO / tables / name).read_text())["files"]
            continue
        assert (tmp_path / name).read_bytes() == (REPO / tables / name).read_bytes(), (
            f"{tables}/{name} is not what the code builds from {records}: run `{rebuild}`, or re-run the "
            "records when a method's default config changed")
