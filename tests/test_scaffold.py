"""`harness new-method` writes a plugin that installs from outside the repo and reaches the leaderboard."""
import os
import subprocess
import sys

import pytest

from harness.errors import HarnessError
from harness.scaffold import scaffold_method

HARNESS = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())"]


def _sh(cmd, cwd, env):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{cmd}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.mark.slow
def test_scaffolded_plugin_installs_through_its_entry_point_and_reaches_the_leaderboard(tmp_path):
    pkg = scaffold_method("ext_probe", tmp_path)
    site = tmp_path / "site"
    _sh([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site),
         str(pkg)], tmp_path, os.environ.copy())
    env = dict(os.environ, PYTHONPATH=str(site))
    assert "ext_probe (tipr_ext_probe:ExtProbe)" in _sh(HARNESS + ["list"], tmp_path, env)
    _sh([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(pkg / "tests")], tmp_path, env)
    opts = ["dataset.train_ids=8", "dataset.val_ids=2", "dataset.test_ids=4", "dataset.images_per_id=2",
            "dataset.image_size=(32,16)", "cross_domain=[]", "method.encoder.image_size=(32,16)",
            "train.batch_size=8"]
    for seed in (0, 1):
        _sh(HARNESS + ["run", "--method", "ext_probe", "--dataset", "synth", "--epochs", "1", "--seed", str(seed),
                       "--results-dir", "results", "--work-dir", f"wd{seed}", "--cfg-options", *opts], tmp_path, env)
    _sh(HARNESS + ["leaderboard", "--results-dir", "results", "--out", "boards"], tmp_path, env)
    table = (tmp_path / "boards" / "README.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| 1 ") and "ext_probe" in line)
    assert "this harness" in row and row.split("|")[4].strip() == "2" and "±" in row  # both seeds aggregated
    (csv,) = [p for p in (tmp_path / "boards").glob("synth-*.csv") if "_comparisons" not in p.name]
    assert csv.read_text().count("ext_probe") == 1


def test_scaffold_refuses_bad_taken_and_existing_names(tmp_path):
    with pytest.raises(HarnessError, match="lower-case"):
        scaffold_method("Bad-Name", tmp_path)
    with pytest.raises(HarnessError, match="already registered"):
        scaffold_method("fmfa", tmp_path)
    scaffold_method("fresh", tmp_path)
    with pytest.raises(HarnessError, match="already exists"):
        scaffold_method("fresh", tmp_path)
