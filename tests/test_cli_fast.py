"""`harness list`, `leaderboard --help`, `sweep status` and `inspect` start without torch or any plugin:
each runs in a fresh interpreter that then reports which heavy modules it loaded."""
import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "torchvision", "open_clip", "transformers", "tipr_methods", "timm")

PROBE = f"""
import sys
from harness.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as exc:
    rc = exc.code
print("LOADED", sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r}))
sys.exit(rc)
"""


def _probe(*argv, cwd=None):
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=300, cwd=cwd)
    loaded = [ln for ln in out.stdout.splitlines() if ln.startswith("LOADED")]
    assert loaded, out.stdout + out.stderr
    return out, loaded[-1]


def test_list_names_every_plugin_without_importing_one():
    out, loaded = _probe("list")
    assert out.returncode == 0, out.stderr
    assert loaded == "LOADED []"
    assert "fmfa (tipr_methods.fmfa:FMFA)" in out.stdout and "synth3c" in out.stdout and "clip" in out.stdout


def test_leaderboard_help_imports_nothing_heavy():
    out, loaded = _probe("leaderboard", "--help")
    assert out.returncode == 0 and "--results-dir" in out.stdout and loaded == "LOADED []"


def test_sweep_status_imports_nothing_heavy(tmp_path):
    sweep = tmp_path / "sweeps" / "s"
    sweep.mkdir(parents=True)
    job = dict(key="fmfa-synth-s0-abc", method="fmfa", dataset="synth", seed=0, config_hash="abc",
               train_dataset="synth", eval_datasets=["synth"], argv=["--method", "fmfa"], job_id=None, submitted=None)
    (sweep / "sweep.json").write_text(json.dumps(dict(executor="local", jobs=[job],
                                                      results_dir=str(tmp_path / "results"))))
    out, loaded = _probe("sweep", "status", "--sweeps-dir", str(tmp_path / "sweeps"))
    assert out.returncode == 0, out.stderr
    assert "not submitted" in out.stdout and loaded == "LOADED []"


def test_inspect_imports_nothing_heavy(tmp_path):
    from test_inspector import write_record

    folder, root, _, _ = write_record(tmp_path)
    out, loaded = _probe("inspect", str(folder), "--data-root", str(root), "--out", str(tmp_path / "page"))
    assert out.returncode == 0, out.stderr
    assert loaded == "LOADED []" and (tmp_path / "page" / "index.html").is_file()


@pytest.mark.parametrize("argv", [["inspect", "nowhere", "--data-root", "."], ["list", "--bogus"]])
def test_fast_commands_still_give_one_line_errors(argv):
    out, loaded = _probe(*argv)
    assert out.returncode == 2 and loaded == "LOADED []"
