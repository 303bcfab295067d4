"""A dataset added from outside the repository (README "Adding a dataset"): a package with one class subclassing
``harness.api.AnnotationDataset``, registered under the ``tipr.datasets`` entry-point group, pip-installed into a
folder of its own; the harness lists it, verifies a folder in its layout and trains and scores a method on it,
with no file of the harness edited. The package's modules pass the plugin-boundary check too."""
import json
import os
import subprocess
import sys

import pytest

from harness.results import ResultsStore

from conftest import write_image
from test_plugin_boundary import package_violations

HARNESS = [sys.executable, "-c", "import sys; from harness.cli import main; sys.exit(main())"]

PYPROJECT = '''[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "tipr-toyset"
version = "0.1.0"
dependencies = ["tipr-harness"]

[project.entry-points."tipr.datasets"]
toyset = "tipr_toyset:ToySet"

[tool.setuptools]
packages = ["tipr_toyset"]
'''

MODULE = '''"""ToySet: one JSON list ``toy_annotations.json`` of {id, split, captions, image} records, images under
``pictures/``; its splits are called "fit" and "eval"."""
from harness.api import AnnotationDataset


class ToySet(AnnotationDataset):
    name = "toyset"
    annotation_names = ("toy_annotations.json",)
    path_field = "image"
    image_dir = "pictures"
    split_map = {"fit": "train", "eval": "test"}
    published_counts = {"train": (6, 12, 24), "test": (3, 6, 12)}  # what _write_toy_data writes

    def notes(self):
        return ["ToySet has no validation split."]
'''


def _sh(cmd, cwd, env, rc=0):
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == rc, f"{cmd}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout + r.stderr


def _write_toy_data(root, n_train=6, n_test=3):
    records, k = [], 0
    for split, n, first in (("fit", n_train, 0), ("eval", n_test, 100)):
        for pid in range(first, first + n):
            for view in range(2):
                k += 1
                records.append({"id": pid, "split": split, "image": f"p{pid:03d}_{view}.png",
                                "captions": [f"person {pid} seen from view {view} in a {c} coat"
                                             for c in ("red", "blue")]})
                write_image(root / "pictures" / records[-1]["image"], seed=k)
    (root / "toy_annotations.json").write_text(json.dumps(records))
    return records


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    src = tmp_path_factory.mktemp("toyset_src")
    (src / "tipr_toyset").mkdir()
    (src / "pyproject.toml").write_text(PYPROJECT)
    (src / "tipr_toyset" / "__init__.py").write_text(MODULE)
    site = tmp_path_factory.mktemp("site")
    _sh([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site),
         str(src)], src, os.environ.copy())
    return src, dict(os.environ, PYTHONPATH=str(site))


def test_the_dataset_package_stays_behind_the_public_api(installed):
    src, _ = installed
    assert package_violations(src / "tipr_toyset", "tipr_toyset") == []


@pytest.mark.slow
def test_an_installed_dataset_package_is_listed_and_verified(installed, tmp_path):
    _, env = installed
    out = _sh(HARNESS + ["list"], tmp_path, env)
    assert "toyset" in next(line for line in out.splitlines() if line.startswith("datasets:"))
    data = tmp_path / "toy"
    records = _write_toy_data(data)
    report = _sh(HARNESS + ["data", "verify", "--dataset", "toyset", "--data-root", str(data)], tmp_path, env)
    assert "toyset" in report and "ToySet has no validation split." in report
    assert "6/12/24" in report.replace(" ", "") and "differs from the published counts" not in report
    # its own bad input is the harness's one line: an unknown split value names the record and field
    records[3]["split"] = "Eval"
    (data / "toy_annotations.json").write_text(json.dumps(records))
    bad = _sh(HARNESS + ["data", "verify", "--dataset", "toyset", "--data-root", str(data)], tmp_path, env, rc=2)
    assert "toy_annotations.json" in bad and "split" in bad and "Traceback" not in bad


@pytest.mark.slow
def test_a_method_trains_and_is_scored_on_an_installed_dataset(installed, tmp_path):
    _, env = installed
    data = tmp_path / "toy"
    _write_toy_data(data)
    opts = ["method.encoder.preset=tiny", "method.encoder.image_size=(32,16)", "method.encoder.context_length=24",
            "method.encoder.checkpoint=random", "method.cmt_depth=1", "train.batch_size=4", "train.num_workers=0",
            "cross_domain=[]"]
    _sh(HARNESS + ["run", "--method", "irra", "--dataset", "toyset", "--data-root", str(data), "--epochs", "1",
                   "--work-dir", "wd", "--results-dir", "results", "--cfg-options", *opts], tmp_path, env)
    (rec,) = ResultsStore(tmp_path / "results").records()
    assert rec["train_dataset"] == "toyset" and rec["eval_dataset"] == "toyset"
    assert rec["data_notes"] == ["ToySet has no validation split."] and rec["split"] == "test"
    assert rec["display"]["published_counts"] is True  # the class's own published_counts, matched
