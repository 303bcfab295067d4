"""Bad input and faulty environments through the CLI, checked before any data is read or model built:
one stderr line naming the key/file/folder, exit 2, nothing written (issue 27). Fast: nothing trains here
(training-time faults are in tests/test_faults.py)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main

RUN = ["run", "--method", "fmfa", "--dataset", "synth"]


def _refused(capsys, argv, message, *untouched):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "internal error" not in err, err
    for p in untouched:
        assert not Path(p).exists(), p
    return err


@pytest.mark.parametrize("extra,options,message", [
    (["--epochs", "1"], ["train=5"], "'train' is already set to 5"),
    ([], ["train=5"], "train must be a dict, got 5"),
    ([], ["method.encoder.image_size=big"], "method.encoder.image_size must be a pair of integers"),
    ([], ["method.encoder.context_length=-5"], "method.encoder.context_length must be in [3, 1024], got -5"),
    ([], ["method.encoder.context_length=100000"], "method.encoder.context_length must be in [3, 1024]"),
    ([], ["method.encoder.image_size=[100000,100000]"], "method.encoder.image_size[0] must be in [16, 2048]"),
    ([], ["method.encoder=dict(type='clip',bogus=1)"], "unknown config key(s) method.encoder.bogus"),
    ([], ["param_scheduler.0.warmup_factor=2.0"], "param_scheduler[0] (LinearLR): "),
    ([], ["param_scheduler=[dict(type='WarmupCosineLR',warmup_factor=2.0,end='max_epochs')]"],
     "warmup_factor in [0, 1]"),
    ([], ["param_scheduler=[dict(type='LinearLR',begin=5,end=2)]"], "end=2 is not after begin=5"),
    ([], ["param_scheduler.0=5"], "--cfg-options cannot be merged"),
    ([], ["=5"], "--cfg-options '=5': the key has an empty part"),
    ([], ["train..epochs=5"], "the key has an empty part"),
    ([], ["train.sampler=dict(type='identity',num_instances=0)"], "train.sampler.num_instances must be >= 1"),
])
def test_config_values_are_refused_before_any_data(extra, options, message, capsys, tmp_path):
    _refused(capsys, RUN + extra + ["--results-dir", str(tmp_path / "r"), "--work-dir", str(tmp_path / "w"),
                                    "--cfg-options", *options], message, tmp_path / "r", tmp_path / "w")


@pytest.mark.parametrize("method,key", [("ivt", "method.vision"), ("lgur", "method.vision")])
def test_every_methods_encoders_go_through_the_same_checks(method, key, capsys, tmp_path):
    _refused(capsys, ["run", "--method", method, "--dataset", "synth", "--results-dir", str(tmp_path / "r"),
                      "--cfg-options", f"{key}.image_size=[100000,100000]"], f"{key}.image_size[0] must be in",
             tmp_path / "r")


def test_readme_dict_notation_is_read_as_a_dict():
    from harness.config import load_config, parse_options

    opts = parse_options(["train.sampler=dict(type='identity',num_instances=64)", "x=__import__('os')"])
    assert opts["train"]["sampler"] == dict(type="identity", num_instances=64)
    assert opts["x"] == "__import__('os')"  # data, never code: left as text
    del opts["x"]
    assert load_config("fmfa", "synth", options=opts).train.sampler.num_instances == 64


def test_val_split_holding_out_every_identity_is_refused_before_training(dataset_factory, capsys, tmp_path):
    from conftest import make_records

    root = dataset_factory("icfg", make_records("icfg", n_ids=(3, 0, 2)))
    _refused(capsys, ["run", "--method", "fmfa", "--dataset", "icfg", "--data-root", str(root), "--results-dir",
                      str(tmp_path / "r"), "--work-dir", str(tmp_path / "w"), "--cfg-options", "train.val_split=0.99",
                      "train.selection=val"], "would hold out 3 of the 3 training identities",
             tmp_path / "r", tmp_path / "w")


def test_nan_similarity_is_a_harness_error():
    import torch

    from harness.errors import HarnessError
    from harness.evaluation.ranking import evaluate_features

    q = torch.randn(3, 4)
    q[1] = float("nan")
    with pytest.raises(HarnessError, match="contains NaN"):
        evaluate_features(q, torch.randn(3, 4), [0, 1, 1], [0, 1, 1])


# ------------------------------------------------------------------ output locations, before the work
def test_output_paths_that_are_files(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    _refused(capsys, RUN + ["--results-dir", str(f)], f"--results-dir {f} is a file")
    _refused(capsys, RUN + ["--results-dir", str(tmp_path / "r"), "--work-dir", str(f / "sub")],
             f"{f} is a file, so the folder cannot be created", tmp_path / "r")
    (tmp_path / "res").mkdir()
    _refused(capsys, ["leaderboard", "--results-dir", str(tmp_path / "res"), "--out", str(f)], "--out")
    _refused(capsys, ["new-method", "my_method", "--dest", str(f)], "--dest")
    assert f.read_text() == "x"


@pytest.fixture
def mount(tmp_path):
    """A fresh tmpfs of the given size (and options) under tmp_path; skips where mounting is not allowed."""
    mounted = []

    def make(size: str, ro: bool = False) -> Path:
        d = tmp_path / f"mnt{len(mounted)}"
        d.mkdir()
        opts = f"size={size}" + (",ro" if ro else "")
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(d)], capture_output=True, text=True)
        if proc.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode}): needs root or "
                        "CAP_SYS_ADMIN")
        mounted.append(d)
        return d

    yield make
    for d in reversed(mounted):
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def test_read_only_results_dir_and_full_work_dir_are_refused_up_front(mount, capsys, tmp_path):
    ro = mount("1m", ro=True)
    _refused(capsys, RUN + ["--results-dir", str(ro / "results")], "Read-only file system")
    full = mount("64k")
    err = _refused(capsys, RUN + ["--results-dir", str(tmp_path / "r"), "--work-dir", str(full / "wd"),
                                  "--cfg-options", "method.encoder.preset=tiny"],
                   "but a checkpoint needs about", tmp_path / "r")
    assert "MiB free" in err and not any(full.iterdir())


def test_read_only_cache_names_the_path(mount, capsys, tmp_path, monkeypatch):
    ro = mount("1m", ro=True)
    monkeypatch.setenv("TIPR_CACHE", str(ro / "cache"))
    err = _refused(capsys, ["data", "verify", "--dataset", "synth"], str(ro))
    assert "read-only" in err.lower()


def test_enospc_while_writing_names_the_path(mount):
    """write() reports ENOSPC without a file name: the message names the checked output folders and their room."""
    from harness.outputs import check_writable_dir, describe_os_error

    full = mount("16k")
    check_writable_dir(full / "results", "--results-dir")
    with pytest.raises(OSError) as e:
        (full / "big").write_bytes(b"\0" * (1 << 20))
    msg = describe_os_error(e.value)
    assert f"--results-dir {full / 'results'}: 0 MiB free" in msg and "free some space" in msg, msg


def test_record_write_on_a_full_disk_leaves_nothing_half_written(mount):
    """The store's last step on a full file system: ENOSPC inside ResultsStore.write removes its temporary
    folder, leaves no record a leaderboard could read, and the message names the store and its room."""
    import numpy as np

    from harness.outputs import check_writable_dir, describe_os_error
    from harness.results import ResultsStore

    full = mount("64k")
    check_writable_dir(full / "results", "--results-dir")
    rng = np.random.default_rng(0)
    pq = dict(first_rank=rng.integers(1, 10**6, 200_000), ap=rng.random(200_000))  # ~2 MB: never fits
    rec = dict(method="fmfa", train_dataset="synth", eval_dataset="synth", seed=0)
    with pytest.raises(OSError) as e:
        ResultsStore(full / "results").write(rec, pq)
    assert list((full / "results").iterdir()) == []  # no record, no .tmp- folder
    assert f"--results-dir {full / 'results'}" in describe_os_error(e.value)


# ------------------------------------------------------------------ new-method names
@pytest.mark.parametrize("name,message", [
    ("f", "would shadow 'F'"), ("path", "would shadow 'Path'"), ("image_spec", "would shadow 'ImageSpec'"),
    ("methods", "would shadow 'methods'"), ("harness", "would shadow 'harness'"), ("os", "module 'os'"),
    ("torch", "would shadow 'torch'"), ("a" * 300, "has 300 characters"),
])
def test_new_method_refuses_shadowing_names(name, message, capsys, tmp_path):
    _refused(capsys, ["new-method", name, "--dest", str(tmp_path / "d")], message, tmp_path / "d")


def test_new_method_refuses_an_unwritable_dest(mount, capsys):
    ro = mount("1m", ro=True)
    _refused(capsys, ["new-method", "my_method", "--dest", str(ro)], "--dest")


# ------------------------------------------------------------------ annotation files
def _verify(root, dataset):
    return ["data", "verify", "--dataset", dataset, "--root", str(root), "--no-decode"]


@pytest.mark.parametrize("layout,value,message", [
    ("cuhk", "Test", "did you mean 'test'?"), ("cuhk", "dev", "unknown split value 'dev'"),
    ("ufine6926", "val", "unknown split value 'val'; expected one of ['test', 'train']"),
])
def test_unknown_or_case_variant_split_values_are_refused(layout, value, message, dataset_factory, capsys):
    from conftest import make_records

    recs = make_records(layout)
    recs[-1]["split"] = value
    err = _refused(capsys, _verify(dataset_factory(layout, recs), layout), message)
    assert f"[record {len(recs) - 1}] field 'split'" in err


def test_huge_id_is_refused_while_reading(dataset_factory, capsys):
    from conftest import make_records

    recs = make_records("cuhk")
    recs[-1]["id"] = 10 ** 30
    _refused(capsys, _verify(dataset_factory("cuhk", recs), "cuhk"), "is out of range (ids must fit in 64 bits)")


def test_invisible_captions_are_empty_and_an_all_empty_test_split_says_so(dataset_factory, capsys, tmp_path):
    from conftest import make_records

    recs = make_records("cuhk")
    for r in recs:
        if r["split"] == "test":
            r["captions"] = ["\u200b\u200d\ufeff", " \u2060 "]
    root = dataset_factory("cuhk", recs)
    _refused(capsys, ["run", "--method", "fmfa", "--dataset", "cuhk", "--data-root", str(root), "--results-dir",
                      str(tmp_path / "r"), "--work-dir", str(tmp_path / "w"), "--cfg-options",
                      "method.encoder.checkpoint=random"],
             "has 0 identities with captions (4 record(s) of the split were dropped", tmp_path / "r", tmp_path / "w")


# ------------------------------------------------------------------ signals
def test_sigterm_ends_with_one_line(tmp_path):
    """`harness run` stopped by SIGTERM (a scheduler's cancel) prints one line and exits 143."""
    import signal
    import time

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-c", "import sys, time, harness.cli as c\n"
                             "c.COMMANDS['list'] = (c.COMMANDS['list'][0], lambda a: (print('ready', flush=True), "
                             "time.sleep(60)))\nsys.exit(c.main(['list']))"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and len(err.strip().splitlines()) == 1 and "stopped by SIGTERM" in err, err


# ------------------------------------------------------------------ property: mutated configs, one rule
MUTATIONS = st.sampled_from(["5", "-1", "0", "[]", "{}", "None", "'x'", "1e400", "nan", "[100000, 100000]",
                             "dict(type='identity')", "(1,)", "True", "dict(a=1)", "[dict(type='LinearLR')]"])
KEYS = st.sampled_from(["train", "method.encoder", "method.encoder.image_size", "method.encoder.context_length",
                        "method.encoder.preset", "param_scheduler", "param_scheduler.0", "param_scheduler.0.end",
                        "param_scheduler.0.begin", "param_scheduler.0.start_factor", "train.sampler", "eval",
                        "optim_wrapper.optimizer", "cross_domain", "dataset.image_size", "seed", ""])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.tuples(KEYS, MUTATIONS), min_size=1, max_size=3))
def test_property_mutated_configs_are_usable_or_refused_in_one_line(items, tmp_path_factory, capsys):
    """Either the mutated config validates and the method can be built from it, or `harness run` refuses it in
    one line with exit 2 and nothing written; never an internal error."""
    from harness.config import load_config, parse_options
    from harness.errors import HarnessError

    opts = [f"{k}={v}" for k, v in items]
    try:
        cfg = load_config("fmfa", "synth", options=parse_options(opts))
    except HarnessError:
        tmp = tmp_path_factory.mktemp("p")
        assert main(RUN + ["--results-dir", str(tmp / "r"), "--work-dir", str(tmp / "w"), "--cfg-options", *opts]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "internal error" not in err, err
        assert not (tmp / "r").exists() and not (tmp / "w").exists()
        return
    from harness.registry import build_method

    build_method(cfg.method, 4)


@pytest.mark.parametrize("override", ["method.encoder=5", "method.encoder='x'", "method.encoder=dict(type='identity')",
                                      "method.encoder=None"])
def test_an_encoder_dict_replaced_by_another_value_is_refused_up_front(override):
    """Found by the property above: an override that replaces FMFA's encoder dict passed validation and failed
    only when the model was built (after the data was read). It is refused when the config is loaded."""
    from harness.config import load_config, parse_options
    from harness.errors import ConfigError

    with pytest.raises(ConfigError, match=r"method\.encoder"):
        load_config("fmfa", "synth", options=parse_options([override]))


ANNOTATION_MUTATIONS = st.sampled_from([
    ("split", "Test"), ("split", "VAL"), ("split", ""), ("split", None), ("id", 10 ** 30), ("id", -(10 ** 19)),
    ("id", "12345678901234567890"), ("id", 1.5), ("captions", ["\u200b"]), ("captions", []), ("captions", "\ufeff"),
    ("captions", [None]), ("file_path", "../x.png"), ("file_path", "/etc/passwd"), ("file_path", ""),
    ("file_path", "a\x00b.png"), (None, None)])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(muts=st.lists(st.tuples(st.integers(0, 13), ANNOTATION_MUTATIONS), min_size=1, max_size=3))
def test_property_mutated_annotation_files_verify_or_are_refused_in_one_line(muts, tmp_path_factory, capsys):
    """`data verify` on a CUHK-format file with a few fields replaced: a report (exit 0/1) or one line (exit 2)."""
    from conftest import make_records, write_dataset

    recs = make_records("cuhk")
    for i, (field, value) in muts:
        if field is None:
            recs[i % len(recs)].pop("id", None)
        else:
            recs[i % len(recs)][field] = value
    root = write_dataset(tmp_path_factory.mktemp("a"), "cuhk", json.loads(json.dumps(recs)), images=False)
    before = sorted(p.name for p in root.rglob("*"))
    rc = main(_verify(root, "cuhk"))
    out = capsys.readouterr()
    assert rc in (0, 1, 2) and "internal error" not in out.err, out.err
    if rc == 2:
        assert len(out.err.strip().splitlines()) == 1
    assert sorted(p.name for p in root.rglob("*")) == before


# ------------------------------------------------------------------ images
def _cuhk_image(root: Path, recs) -> Path:
    return root / "imgs" / recs[-1]["file_path"]


@pytest.mark.parametrize("kind,message", [
    ("directory", "is a directory, not an image file"), ("fifo", "is a FIFO (named pipe), not an image file"),
    ("dev_zero", "is a device (through a symlink), not an image file"),
    ("dangling", "is a symlink to a missing file, not an image file"),
    ("truncated", "unreadable image(s)"),
])
def test_what_stands_where_an_image_should_be_is_named_before_training(kind, message, dataset_factory, capsys,
                                                                      tmp_path):
    from conftest import make_records

    recs = make_records("cuhk")
    root = dataset_factory("cuhk", recs)
    img = _cuhk_image(root, recs)
    data = img.read_bytes()
    img.unlink()
    if kind == "directory":
        img.mkdir()
    elif kind == "fifo":
        os.mkfifo(img)
    elif kind == "dev_zero":
        img.symlink_to("/dev/zero")
    elif kind == "dangling":
        img.symlink_to(tmp_path / "nowhere.png")
    else:
        img.write_bytes(data[: len(data) // 2])  # the header reads; only a full decode finds it
    err = _refused(capsys, ["run", "--method", "fmfa", "--dataset", "cuhk", "--data-root", str(root), "--results-dir",
                            str(tmp_path / "r"), "--work-dir", str(tmp_path / "w"), "--cfg-options",
                            "method.encoder.checkpoint=random"], message, tmp_path / "r", tmp_path / "w")
    assert "missing" not in err or kind == "dangling"


def test_the_decode_pass_is_cached_and_redone_for_changed_files(dataset_factory, tmp_path):
    from conftest import make_records

    from harness.data.loading import _decoded_cache, require_images
    from harness.data.splits import ImageRecord
    from harness.errors import ImageError

    recs = make_records("cuhk")
    root = dataset_factory("cuhk", recs)
    images = [ImageRecord(pid=r["id"], path=r["file_path"], captions=r["captions"]) for r in recs]
    require_images(images, root / "imgs", "cuhk")
    cached = json.loads(_decoded_cache(root / "imgs").read_text())
    assert sorted(cached) == sorted(r["file_path"] for r in recs)
    img = _cuhk_image(root, recs)
    img.write_bytes(img.read_bytes()[:60])  # changed size: decoded again, and refused
    with pytest.raises(ImageError, match="unreadable"):
        require_images(images, root / "imgs", "cuhk")


def test_16_bit_and_float_images_convert_in_bounded_memory():
    """A 4000 x 4000 16-bit or float image: the scaling's traced peak is the uint8 result plus a fixed 48 MiB of
    8 MB float64 chunk buffers, whatever the size (measured 52 MiB), where the whole-image float64 copy it replaces
    took 122 MiB plus temporaries. PIL's own array export, before it, is not the harness's to change."""
    import tracemalloc

    import numpy as np
    from PIL import Image

    from harness.data.loading import _scale_to_8bit, to_rgb8

    a = np.random.default_rng(0).integers(0, 65535, (4000, 4000), dtype=np.uint16)
    for arr, full in ((a, 65535.0), ((a / 65535.0).astype(np.float32), 1.0)):
        tracemalloc.start()
        out = _scale_to_8bit(arr, full, False)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert out.dtype == np.uint8 and peak < arr.size + 48 * 2**20, peak / 2**20  # result + fixed chunk buffers
        rgb = to_rgb8(Image.fromarray(arr))
        assert rgb.mode == "RGB" and np.array_equal(np.asarray(rgb)[..., 0], out)
