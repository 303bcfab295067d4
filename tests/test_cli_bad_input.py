"""Bad input is one stderr line and exit 2, checked before any data is read or model built; nothing is
written to the results store. Includes a property-based test over config overrides."""
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main

RUN = ["run", "--method", "fmfa", "--dataset", "synth"]


@pytest.mark.parametrize("options,message", [
    (["train.batch_size=abc"], "train.batch_size must be an integer, got 'abc'"),
    (["train.batch_size=0"], "train.batch_size must be >= 1, got 0"),
    (["train.num_workers=-1"], "train.num_workers=-1: use a number of worker processes >= 0"),
    (["eval.chunk_size=0"], "eval.chunk_size must be >= 1, got 0"),
    (["optim_wrapper.optimizer.lr=nan"], "optim_wrapper.optimizer.lr must be a finite number, got 'nan'"),
    (["optim_wrapper.optimizer.lr=-1e-3"], "optim_wrapper.optimizer.lr must be > 0.0"),
    (["optim_wrapper.type=AmpOptimWrapper"], "mixed precision is chosen with train.amp"),
    (["optim_wrapper.dtype=float16"], "unknown config key(s) optim_wrapper.dtype"),
    (["train.epochs=0"], "train.epochs must be >= 1, got 0"),
    (["train.selection=best"], "train.selection must be one of 'last', 'val'; got 'best'"),
    (["train.val_split=1.5"], "train.val_split must be < 1.0"),
    (["train.val_split=0.1"], "nothing validates"),
    (["eval.split=val"], "unknown config key(s) eval.split"),
    (["dataset.bogus=1"], "unknown config key(s) dataset.bogus for dataset 'synth'"),
    (["train.sampler={'type': 'random', 'num_instances': 4}"], "only read by the 'identity' sampler"),
    (["param_scheduler=[dict(type='Nope')]"], "param_scheduler"),
    (["method.mode=paper"], "unknown config key(s) method.mode"),  # a label nothing read; removed
    (["method.args=1"], "unknown config key(s) method.args"),  # not a keyword of a constructor-less mixin
    (["method.loss_weights.id_loss=0.5"], "method.loss_weights.id_loss: no such loss"),
])
def test_bad_config_values_are_refused_up_front(options, message, capsys, tmp_path):
    assert main(RUN + ["--results-dir", str(tmp_path / "res"), "--work-dir", str(tmp_path / "wd"),
                       "--cfg-options", *options]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "res").exists() and not (tmp_path / "wd").exists()


@pytest.mark.parametrize("argv,message", [
    (["run", "--method", "fmfa", "--dataset", "synth", "--epochs", "0"], "train.epochs must be >= 1"),
    (["run", "--method", "fmfa", "--dataset", "synth", "--epochs", "-1"], "train.epochs must be >= 1"),
    (["leaderboard", "--results-dir", "/nonexistent/results"], "results folder /nonexistent/results does not exist"),
    (["new-method", "Bad-Name"], "must be lower-case letters"),
    (["eval", "--checkpoint", "/nonexistent.pth", "--dataset", "synth"], "checkpoint not found"),
])
def test_every_command_fails_in_one_line(argv, message, capsys, tmp_path):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_verbose_shows_the_traceback():
    proc = subprocess.run([sys.executable, "-m", "harness", "-v", *RUN, "--epochs", "0"], capture_output=True,
                          text=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "ConfigError" in proc.stderr


KEYS = ["train.epochs", "train.batch_size", "train.num_workers", "train.eval_interval", "train.checkpoint_interval",
        "train.log_interval", "train.selection", "train.val_split", "train.cache_images", "eval.batch_size",
        "eval.chunk_size", "optim_wrapper.optimizer.lr", "optim_wrapper.optimizer.weight_decay", "seed",
        "deterministic", "method.temperature", "method.asdm_mode", "method.asdm_alpha", "method.cmt_depth",
        "method.losses", "method.efa_margins", "dataset.train_ids", "dataset.image_size"]
BAD_VALUES = st.one_of(
    st.sampled_from(["abc", "nan", "inf", "-inf", "None", "[]", "{}", "''", "-1", "0", "-0.5", "1e400", "(1,)",
                     "'x'", "[1, 2, 3, 4]", "True", "1.5.2", "=", "\\x00"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=8),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(KEYS), value=BAD_VALUES)
def test_property_any_override_is_accepted_or_refused_in_one_line(key, value, tmp_path_factory, capsys):
    """Every override either passes validation (then the config is usable) or is refused in one line, exit 2,
    with nothing written: validation never lets a value through to crash later, and never crashes itself."""
    from harness.config import load_config, parse_options
    from harness.errors import ConfigError

    try:
        cfg = load_config("fmfa", "synth", options=parse_options([f"{key}={value}"]))
    except ConfigError as exc:
        assert "\n" not in str(exc).strip()
        tmp = tmp_path_factory.mktemp("p")
        assert main(RUN + ["--results-dir", str(tmp / "r"), "--cfg-options", f"{key}={value}"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert not (tmp / "r").exists()
        return
    # accepted: then it must be a value the harness can build the method from (no deferred crash)
    from harness.registry import build_method

    build_method(cfg.method, 4)
