"""Registry lookups accept only registered names (mmengine's Registry.get imports any module name it is
given), and the names `harness list` prints (entry-point metadata, the encoders' static table) agree with the
real registrations."""
import subprocess
import sys
import textwrap

import pytest

from harness.cli import main
from harness.errors import UnknownNameError
from harness.registry import (BUILTIN_ENCODERS, DATASETS, ENCODERS, METHODS, dataset_entry_points, lookup, names,
                              plugin_entry_points)

BUILTIN_DATASETS = {"cuhk", "icfg", "rstp", "synth", "synth3c", "ufine3c", "ufine6926"}


def test_static_tables_are_the_real_registrations():
    assert sorted(BUILTIN_ENCODERS) == names(ENCODERS)


def test_datasets_are_the_installed_entry_points_and_the_builtins_are_among_them():
    eps = dataset_entry_points()
    assert set(eps) >= BUILTIN_DATASETS and set(eps) <= set(names(DATASETS))
    for n, value in eps.items():  # each name builds the class its entry point names
        cls = lookup(DATASETS, n)
        assert f"{cls.__module__}:{cls.__qualname__}" == value
    assert all(value.startswith("harness.data.") for n, value in eps.items() if n in BUILTIN_DATASETS)


def test_listed_plugins_are_the_installed_entry_points_and_all_register():
    eps = plugin_entry_points()
    assert {"fmfa", "ivt", "lgur"} <= set(eps)
    registered = set(names(METHODS))  # tests may register extra methods; every entry point must be there
    assert set(eps) <= registered
    for n, value in eps.items():
        cls = METHODS.module_dict[n]
        assert f"{cls.__module__.rsplit('.', 1)[0]}:{cls.__name__}" == value or value.endswith(f":{cls.__name__}")


HOSTILE = ["os", "this", "antigravity", "harness.registry.Registry", "mmengine.model.BaseModel", "tipr.fmfa",
           "os.path", "../../evil", "builtins.eval", "", "FMFA"]


@pytest.mark.parametrize("registry", [METHODS, DATASETS, ENCODERS], ids=["method", "dataset", "encoder"])
def test_unregistered_names_are_refused_and_nothing_is_imported(registry):
    for name in HOSTILE:
        with pytest.raises(UnknownNameError, match="available: "):
            lookup(registry, name)
    with pytest.raises(UnknownNameError):
        lookup(registry, 3)


def test_lookups_import_no_module_named_by_the_caller():
    """In a fresh interpreter: `this` and `antigravity` would print or open a browser when imported. (The
    dataset registry: its entry points are the built-in loaders, so this stays fast; methods are checked above.)"""
    code = textwrap.dedent("""
        import sys
        from harness.errors import UnknownNameError
        from harness.registry import DATASETS, lookup
        for n in ("this", "antigravity", "os.path", "xml.dom.minidom"):
            try:
                lookup(DATASETS, n)
            except UnknownNameError:
                pass
        print(sorted(m for m in ("this", "antigravity", "xml.dom.minidom") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]" and "Zen of Python" not in out.stdout


@pytest.mark.parametrize("argv, word", [(["--dataset", "os", "--method", "fmfa"], "unknown dataset 'os'"),
                                        (["--dataset", "synth", "--method", "this"], "unknown method 'this'")])
def test_cli_names_an_unknown_module_name_in_one_line(tmp_path, capsys, argv, word):
    assert main(["run", *argv, "--results-dir", str(tmp_path / "r"), "--work-dir", str(tmp_path / "w")]) == 2
    captured = capsys.readouterr()
    assert word in captured.err and "Zen of Python" not in captured.out
    assert not (tmp_path / "r").exists()


def test_dataset_entry_points_that_break_the_contract_are_skipped_and_builtins_are_not_replaced(tmp_path,
                                                                                               monkeypatch):
    """A distribution (written here as plain package metadata) registering a function, a missing module and a
    built-in name: the first two are skipped with a warning naming them, the built-in keeps its class."""
    import importlib

    from harness.registry import discover_datasets

    dist = tmp_path / "tipr_rogue-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tipr-rogue\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[tipr.datasets]\nnotaclass = os.path:join\n"
                                           "missing = tipr_rogue_missing:Data\ncuhk = os.path:join\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    builtin = lookup(DATASETS, "cuhk")
    assert dataset_entry_points()["cuhk"] == "harness.data.formats:CUHKPEDES"
    with pytest.warns(UserWarning) as caught:
        discover_datasets(force=True)
    said = "\n".join(str(w.message) for w in caught)
    assert "'notaclass' (os.path:join) is not a harness.api.DatasetPlugin subclass" in said
    assert "'missing' (tipr_rogue_missing:Data) failed to import" in said
    assert lookup(DATASETS, "cuhk") is builtin
    for name in ("notaclass", "missing"):
        with pytest.raises(UnknownNameError):
            lookup(DATASETS, name)
