"""Checkpoints and run folders as untrusted input, and a disk that fills while checkpoints are written (issue 27):
a sha256 beside each checkpoint, checked before eval and resume; resume from the newest intact checkpoint;
``max_keep_ckpts`` prunes only once the new checkpoint is complete. One tiny real run (CLI, mmengine, open_clip)
feeds every test."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.engine.checkpoint_files import check_digest, resume_point
from harness.errors import CheckpointError

pytestmark = pytest.mark.slow

TINY = ["dataset=dict(type='synth',train_ids=8,val_ids=2,test_ids=4,images_per_id=2,xdomain_ids=4,image_size=(32,16))",
        "cross_domain=[]", "method.encoder.preset=tiny", "method.encoder.image_size=(32,16)",
        "method.encoder.context_length=40", "method.cmt_depth=1", "train.batch_size=8", "train.max_keep_ckpts=1"]


def _run(wd, results, epochs=2, extra=()):
    return main(["run", "--method", "fmfa", "--dataset", "synth", "--epochs", str(epochs), "--work-dir", str(wd),
                 "--results-dir", str(results), "--cfg-options", *TINY, *extra])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    assert _run(root / "wd", root / "r") == 0
    return root / "wd"


def _copy(run_dir: Path, dest: Path, link_checkpoint=True) -> Path:
    """The run folder; the 160 MB checkpoint linked, not copied, unless a test changes its bytes."""
    dest.mkdir()
    for f in run_dir.iterdir():
        if f.is_file():
            if f.suffix == ".pth" and link_checkpoint:
                (dest / f.name).symlink_to(f)
            else:
                shutil.copy(f, dest / f.name)
    return dest


def test_checkpoints_carry_a_digest_and_pruning_waits_for_the_new_one(run_dir):
    assert sorted(p.name for p in run_dir.glob("epoch_*")) == ["epoch_2.pth", "epoch_2.pth.sha256"]
    assert check_digest(run_dir / "epoch_2.pth") is True
    assert Path((run_dir / "last_checkpoint").read_text()).name == "epoch_2.pth"


def _flip(p: Path):
    b = bytearray(p.read_bytes())
    for i in range(64):
        b[len(b) // 2 + i] ^= 0xFF
    p.write_bytes(bytes(b))


def _meta(d: Path, change):
    m = json.loads((d / "harness_config.json").read_text())
    change(m)
    (d / "harness_config.json").write_text(json.dumps(m))


DAMAGE = {
    "64 bytes flipped": (False, _flip, "sha256 differs from epoch_2.pth.sha256"),
    "truncated": (False, lambda p: p.write_bytes(p.read_bytes()[:4096]), "not a readable torch checkpoint"),
    "zero bytes": (False, lambda p: p.write_bytes(b""), "the checkpoint is empty"),
    "random bytes": (False, lambda p: p.write_bytes(os.urandom(5000)), "not a readable torch checkpoint"),
    "text": (False, lambda p: p.write_text("hello\n"), "not a readable torch checkpoint"),
    "config corrupt": (True, lambda p: (p.parent / "harness_config.json").write_text("{bad"), "not valid JSON"),
    "config empty": (True, lambda p: (p.parent / "harness_config.json").write_text(""), "not valid JSON"),
    "config a list": (True, lambda p: (p.parent / "harness_config.json").write_text("[1]"), "expected a JSON object"),
    "other architecture": (True, lambda p: _meta(p.parent, lambda m: m["config"]["method"]["encoder"].update(
        context_length=50)), "weights do not fit the method of its run folder"),
    "other class count": (True, lambda p: _meta(p.parent, lambda m: m.update(num_classes=101)),
                          "size mismatch for classifier.weight"),
    # the stored config is validated as a loaded one is: the file and the key are named
    "config value edited": (True, lambda p: _meta(p.parent, lambda m: m["config"]["train"].update(amp="fp32")),
                            "harness_config.json: train.amp must be one of"),
    "config key of an older harness": (True, lambda p: _meta(p.parent, lambda m: m["config"]["train"].update(
        old_key=1)), "harness_config.json: unknown config key"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_checkpoint_or_run_folder_is_one_line_for_eval(kind, run_dir, tmp_path, capsys):
    link, damage, message = DAMAGE[kind]
    d = _copy(run_dir, tmp_path / "wd", link_checkpoint=link)
    damage(d / "epoch_2.pth")
    if kind != "64 bytes flipped" and not link:
        (d / "epoch_2.pth.sha256").unlink()  # a file never written by the harness has no digest
    rc = main(["eval", "--checkpoint", str(d / "epoch_2.pth"), "--dataset", "synth", "--results-dir",
               str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert "weights_only=False" not in err and not (tmp_path / "r").exists()


def test_resume_falls_back_to_the_newest_intact_checkpoint(run_dir, tmp_path, capsys):
    d = _copy(run_dir, tmp_path / "wd")
    (d / "epoch_3.pth").write_bytes(b"PK\x03\x04 half a checkpoint")  # a kill while epoch 3 was written
    (d / "last_checkpoint").write_text(str(d / "epoch_3.pth"))
    assert resume_point(d) == d / "epoch_2.pth"
    assert (d / "last_checkpoint").read_text() == str(d / "epoch_2.pth")
    (d / "last_checkpoint").write_text(str(d / "epoch_3.pth"))
    assert _run(d, tmp_path / "r", epochs=3) == 0  # resumes at epoch 2 and trains the third
    assert check_digest(d / "epoch_3.pth") is True and not (d / "epoch_2.pth").exists()
    log = json.loads((d / "code_history.json").read_text())
    assert log[-1]["resumed_from"].endswith("epoch_2.pth")


def test_resume_with_no_intact_checkpoint_is_one_line(run_dir, tmp_path, capsys):
    d = _copy(run_dir, tmp_path / "wd", link_checkpoint=False)
    _flip(d / "epoch_2.pth")
    with pytest.raises(CheckpointError, match="no intact checkpoint to resume from .*sha256 differs"):
        resume_point(d)
    assert _run(d, tmp_path / "r", epochs=3) == 2
    err = capsys.readouterr().err
    assert "--no-resume" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_an_empty_last_checkpoint_with_no_checkpoint_starts_afresh(tmp_path):
    (tmp_path / "last_checkpoint").write_text("")
    assert resume_point(tmp_path) is None and not (tmp_path / "last_checkpoint").exists()


def test_a_save_interrupted_before_its_digest_and_pointer_is_ignored(tmp_path):
    """A kill while epoch_1.pth was written (mmengine writes last_checkpoint after it, the digest follows):
    nothing complete was lost, so the run starts afresh rather than asking for --no-resume."""
    (tmp_path / "epoch_1.pth").write_bytes(b"PK\x03\x04 the first kilobytes")
    assert resume_point(tmp_path) is None


MUTATIONS = st.one_of(
    st.tuples(st.just("config"), st.sampled_from(["", "{", "[]", "null", "{}", '{"config": []}', '{"config": {}}',
                                                   '{"config": {"method": {"type": "fmfa"}, "dataset": {}}}'])),
    st.tuples(st.just("num_classes"), st.sampled_from([None, -1, "8", 1.5, True, 9])),
    st.tuples(st.just("truncate"), st.integers(0, 200_000)),
    st.tuples(st.just("flip"), st.integers(0, 10 ** 9)),
)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=MUTATIONS)
def test_property_mutated_run_folders_are_evaluated_or_refused_in_one_line(mutation, run_dir, tmp_path_factory,
                                                                         capsys):
    """`harness eval` on a run folder with its config or checkpoint mutated: exit 2 with one line and nothing
    stored (every mutation here damages the folder); never an internal error."""
    kind, value = mutation
    tmp = tmp_path_factory.mktemp("m")
    d = _copy(run_dir, tmp / "wd", link_checkpoint=kind not in ("truncate", "flip"))
    ckpt = d / "epoch_2.pth"
    if kind == "config":
        (d / "harness_config.json").write_text(value)
    elif kind == "num_classes":
        _meta(d, lambda m: m.update(num_classes=value))
    elif kind == "truncate":
        ckpt.write_bytes(ckpt.read_bytes()[:value])
    else:
        b = bytearray(ckpt.read_bytes())
        b[value % len(b)] ^= 0x01
        ckpt.write_bytes(bytes(b))
    rc = main(["eval", "--checkpoint", str(ckpt), "--dataset", "synth", "--results-dir", str(tmp / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and "internal error" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp / "r").exists()


def test_a_disk_that_fills_during_checkpoint_writes_keeps_the_last_good_one(run_dir, tmp_path, capsys):
    """A tmpfs with room for one checkpoint and a half: epoch 1 is saved, epoch 2 cannot be. One line naming the
    file, the partial file removed, epoch 1 still there (max_keep_ckpts=1 prunes only after a complete save)
    and named by last_checkpoint, so a rerun elsewhere resumes from it."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    size = int((run_dir / "epoch_2.pth").stat().st_size * 1.5)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True,
                          text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or proc.returncode}): needs root or "
                    "CAP_SYS_ADMIN")
    try:
        wd = mnt / "wd"
        assert _run(wd, tmp_path / "r") == 2
        err = capsys.readouterr().err
        last = err.strip().splitlines()[-1]  # above it: the epochs' progress bars
        assert last.startswith(f"error: {wd / 'epoch_2.pth'}: cannot write the checkpoint") and "No space" in last, err
        assert "internal error" not in err and sum(line.startswith("error") for line in err.splitlines()) == 1
        assert not (wd / "epoch_2.pth").exists() and check_digest(wd / "epoch_1.pth") is True
        assert resume_point(wd) == wd / "epoch_1.pth" and not (tmp_path / "r").exists()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_diverging_run_ends_in_one_line_with_nothing_stored(tmp_path, capsys):
    """lr=1e6: the loss or the similarities turn non-finite; one error line, exit 2, no record."""
    assert _run(tmp_path / "wd", tmp_path / "r", epochs=1, extra=["optim_wrapper.optimizer.lr=1e6"]) == 2
    err = capsys.readouterr().err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error")]  # the rest: progress bars
    assert "nan" in line.lower() or "infinite" in line, err
    assert "internal error" not in err and not (tmp_path / "r").exists()
