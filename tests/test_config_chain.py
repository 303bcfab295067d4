"""One config mechanism (harness/config_chain.py): mmengine's ``_base_`` chain read from a temporary copy whose
root files inherit the runtime and dataset defaults. Merging is exactly mmengine's, errors name the files as
written, and a variant file anywhere may inherit a method's configs by path."""
import pytest

from harness.config import REPO_ROOT, load_config, to_plain
from harness.config_chain import RUNTIME_CONFIG, declared_bases, read_chain
from harness.errors import ConfigError, HarnessError

DATASET = REPO_ROOT / "datasets" / "cuhk.py"


def test_a_delete_in_a_child_is_exact_against_the_runtime_defaults(tmp_path):
    """A root replaces the runtime's optimizer (``_delete_``); its child replaces it again. Merging the resolved
    chain onto the defaults afterwards would bring the runtime's Adam keys back into SGD; the chain does not."""
    (tmp_path / "default.py").write_text('optim_wrapper = dict(optimizer=dict(_delete_=True, type="AdamW", lr=1e-3))\n')
    (tmp_path / "child.py").write_text('_base_ = ["./default.py"]\n'
                                       'optim_wrapper = dict(optimizer=dict(_delete_=True, type="SGD", lr=0.1))\n')
    cfg = read_chain(tmp_path / "child.py", [RUNTIME_CONFIG, DATASET]).to_dict()
    assert cfg["optim_wrapper"]["optimizer"] == dict(type="SGD", lr=0.1)
    assert cfg["seed"] == 0 and cfg["dataset"]["type"] == "cuhk"  # both defaults at the root


def test_a_variant_elsewhere_inherits_a_method_config_by_relative_path(tmp_path):
    import os

    base = REPO_ROOT / "methods" / "fmfa" / "configs" / "default.py"
    folder = tmp_path / "my" / "variants"
    folder.mkdir(parents=True)
    (folder / "v.py").write_text(f"_base_ = [{os.path.relpath(base, folder)!r}]\n"
                                 "method = dict(asdm_alpha=0.5)\ndataset = dict(type='icfg')\n")
    cfg = load_config(config=str(folder / "v.py"))
    plain, ref = to_plain(cfg), to_plain(load_config("fmfa", "icfg"))
    assert plain["method"]["asdm_alpha"] == 0.5 and plain["dataset"] == ref["dataset"]  # icfg's defaults underneath
    assert {k: v for k, v in plain.items() if k != "method"} == {k: v for k, v in ref.items() if k != "method"}
    assert to_plain(load_config(config=str(folder / "v.py"), dataset="rstp"))["dataset"]["type"] == "rstp"


def test_errors_name_the_files_as_written(tmp_path):
    (tmp_path / "root.py").write_text("train = dict(epochs=\n")
    (tmp_path / "child.py").write_text('_base_ = "root.py"\n')
    with pytest.raises(ConfigError, match=f"{tmp_path / 'root.py'}: cannot parse config") as err:
        load_config(config=str(tmp_path / "child.py"))
    assert "tipr-config-" not in str(err.value)
    (tmp_path / "lost.py").write_text('_base_ = ["gone.py"]\n')
    with pytest.raises(HarnessError, match=f"config file not found: {tmp_path / 'gone.py'} \\(a _base_ of "):
        load_config(config=str(tmp_path / "lost.py"))
    (tmp_path / "scoped.py").write_text('_base_ = ["mmdet::configs/x.py"]\n')
    with pytest.raises(ConfigError, match="package-scoped bases"):
        load_config(config=str(tmp_path / "scoped.py"))
    (tmp_path / "odd.py").write_text("_base_ = 3\n")
    with pytest.raises(ConfigError, match="odd.py:1: _base_ must be a file name or a list of file names"):
        declared_bases(tmp_path / "odd.py")


def test_no_method_config_names_the_runtime_defaults():
    """The runtime and dataset defaults are the chain's root, placed by the harness; a method config naming
    them itself would inherit them twice (mmengine refuses duplicate keys among bases)."""
    for f in (REPO_ROOT / "methods").glob("*/configs/*.py"):
        assert not any("runtime.py" in b or "datasets" in b for b in declared_bases(f)[0]), f


def test_a_dataset_name_never_reaches_a_file_outside_the_config_folders(tmp_path):
    """The dataset name comes from the command line or a config value and names two files (the method x dataset
    config and ``datasets/<name>.py``): a path-like name is an unknown dataset, and no Python file runs."""
    import os

    from harness.config import dataset_config_dir, dataset_defaults, method_config_dir
    from harness.errors import UnknownNameError

    marker = tmp_path / "EXECUTED"
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\nseed = 0\n")
    via_method = os.path.relpath(tmp_path / "evil", method_config_dir("fmfa"))
    via_datasets = os.path.relpath(tmp_path / "evil", dataset_config_dir())
    for name in (via_method, via_datasets):
        with pytest.raises(UnknownNameError, match="unknown dataset"):
            load_config("fmfa", name)
        with pytest.raises(UnknownNameError, match="unknown dataset"):
            dataset_defaults(name)
    variant = tmp_path / "v.py"  # the name as a config value: the dataset.type of a --config file
    variant.write_text(f"_base_ = [{str(REPO_ROOT / 'methods' / 'fmfa' / 'configs' / 'default.py')!r}]\n"
                       f"dataset = dict(type={via_datasets!r})\n")
    with pytest.raises(UnknownNameError, match="unknown dataset"):
        load_config(config=str(variant))
    assert not marker.exists()
