"""Plugin provenance: a record names each plugin's distribution, version and a sha256 over its source files,
for an editable install (this checkout's tipr_methods) and a wheel-style install (pip --target) alike,
and the hash moves when the plugin's code does while the config hash stays."""
import importlib
import re
import subprocess
import sys

import pytest

from harness.config import REPO_ROOT
from harness.provenance import LIBRARIES, combined_sha256, library_versions, plugin_entry, source_sha256
from harness.scaffold import scaffold_method


def _py_files(root):
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def test_editable_builtin_plugin_is_named_with_its_distribution_and_source_hash():
    e = plugin_entry("tipr_methods.fmfa.model", "method")
    assert (e["distribution"], e["version"], e["package"]) == ("tipr-harness", "0.1.0", "tipr_methods")
    root = REPO_ROOT / "methods"  # the editable install imports the checkout's folder
    assert e["source_sha256"] == source_sha256(root, _py_files(root)) and e["source_files"] == len(_py_files(root))
    versions = library_versions()
    assert set(versions) == set(LIBRARIES) and versions["torch"] == importlib.import_module("torch").__version__


@pytest.mark.slow
def test_installed_plugin_hash_follows_its_code_not_its_location(tmp_path, monkeypatch):
    pkg = scaffold_method("prov_probe", tmp_path / "src")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target",
                    str(site), str(pkg)], check=True, capture_output=True, timeout=300)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    e = plugin_entry("tipr_prov_probe.model", "method")
    # through its tipr.methods entry point; the name as metadata spells it (setuptools >= 69 normalises "_" to "-")
    assert (re.sub(r"[-_.]+", "-", e["distribution"]), e["version"]) == ("tipr-prov-probe", "0.1.0")
    installed = site / "tipr_prov_probe"
    assert str(importlib.import_module("tipr_prov_probe").__file__).startswith(str(installed))
    source = pkg / "tipr_prov_probe"
    assert e["source_sha256"] == source_sha256(source, _py_files(source))  # same code, other folder: same hash
    model = installed / "model.py"
    model.write_text(model.read_text().replace("loss", "loss ", 1))  # the plugin's code changes, nothing else
    changed = plugin_entry("tipr_prov_probe.model", "method")
    assert changed["source_sha256"] != e["source_sha256"]
    assert combined_sha256([changed]) == changed["source_sha256"]
    assert combined_sha256([e, dict(changed, package="other")]) not in (e["source_sha256"], changed["source_sha256"])
    sys.modules.pop("tipr_prov_probe", None)
    sys.modules.pop("tipr_prov_probe.model", None)
