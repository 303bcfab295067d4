"""train.amp (mixed precision in training and in evaluation encoding), and what a run leaves in its
work dir: the full resolved config, TensorBoard event files on request, no per-parameter init notes."""
import importlib.util
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import AmpOptimWrapper, build_optim_wrapper

from harness.cli import main
from harness.config import load_config, to_plain
from harness.data.loading import TrainPairs, collate_pairs
from harness.data.splits import EvalSet
from harness.engine.evaluate import encode_eval_set
from harness.engine.model import HarnessModel
from harness.engine.precision import resolve_precision
from harness.data.resolve import resolve_dataset as load_dataset
from harness.registry import build_method
from harness.engine.run import run_job
from harness.errors import ConfigError

TINY_DATA = dict(type="synth", train_ids=6, val_ids=2, test_ids=3, images_per_id=2, xdomain_ids=2, image_size=(32, 16))
OPTS = dict(dataset=TINY_DATA, cross_domain=[], method=dict(encoder=dict(image_size=(32, 16), context_length=32)))


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops; avoids multi-threaded ops stalling on a loaded machine
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny():
    splits = load_dataset(TINY_DATA)
    return splits, len({r.pid for r in splits.train})


def test_amp_values_are_checked_against_the_hardware():
    with pytest.raises(ConfigError, match=r"train.amp must be one of 'off', 'bf16', 'fp16'; got 'fp32'"):  # at load
        load_config("fmfa", "synth", options=dict(train=dict(amp="fp32")))
    with pytest.raises(ConfigError, match="train.amp='fp16' needs a CUDA GPU"):
        resolve_precision("fp16", "cpu")
    assert resolve_precision("bf16", "cpu").describe() == dict(amp="bf16", compute_dtype="bfloat16", device="cpu",
                                                               loss_scaling=None)
    assert resolve_precision("off", "cpu").describe()["compute_dtype"] == "float32"
    assert resolve_precision("fp16", "cuda").describe()["loss_scaling"] == "dynamic"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the error is for machines without CUDA")
def test_fp16_without_cuda_fails_before_anything_runs(capsys, tmp_path):
    code = main(["run", "--method", "fmfa", "--dataset", "synth", "--results-dir", str(tmp_path / "res"),
                 "--work-dir", str(tmp_path / "wd"), "--cfg-options", "train.amp=fp16"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "train.amp='fp16' needs a CUDA GPU" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "res").exists() and not (tmp_path / "wd").exists()


def _linear_output_dtypes(module):
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
             for m in module.modules() if isinstance(m, torch.nn.Linear)]
    return seen, hooks


def test_bf16_training_step_runs_under_autocast_through_mmengine(tiny):
    splits, n_classes = tiny
    cfg = load_config("fmfa", "synth", options=dict(OPTS, train=dict(amp="bf16")))
    torch.manual_seed(0)
    model = HarnessModel(build_method(cfg.method, n_classes))
    precision = resolve_precision(cfg.train.amp)
    optim = build_optim_wrapper(model, precision.optim_wrapper(to_plain(cfg.optim_wrapper)))
    assert isinstance(optim, AmpOptimWrapper) and optim.cast_dtype == torch.bfloat16
    assert not optim.loss_scaler.is_enabled()  # bf16 needs no loss scaling
    data = TrainPairs(splits.train, splits.image_root, model.method.image_spec, seed=0)
    batch = collate_pairs([data[i] for i in range(6)])
    seen, hooks = _linear_output_dtypes(model)
    before = model.method.encoder.clip.visual.proj.detach().clone()
    log_vars = model.train_step(batch, optim)
    for h in hooks:
        h.remove()
    assert torch.bfloat16 in seen and all(torch.isfinite(torch.as_tensor(v)).all() for v in log_vars.values())
    assert model.method.encoder.clip.visual.proj.dtype == torch.float32  # master weights stay float32
    assert not torch.equal(before, model.method.encoder.clip.visual.proj.detach())


def test_bf16_evaluation_encoding_is_autocast_and_close_to_float32(tiny):
    splits, n_classes = tiny
    cfg = load_config("fmfa", "synth", options=OPTS)
    torch.manual_seed(0)
    method = build_method(cfg.method, n_classes)
    ev = EvalSet.from_records(splits.test, splits.image_root)
    q32, g32 = encode_eval_set(method, ev, batch_size=8, progress=False)
    seen, hooks = _linear_output_dtypes(method)
    q16, g16 = encode_eval_set(method, ev, batch_size=8, amp="bf16", progress=False)
    for h in hooks:
        h.remove()
    assert torch.bfloat16 in seen and q16.dtype == g16.dtype == torch.float32
    cos = torch.nn.functional.cosine_similarity
    assert cos(q16, q32).min() > 0.98 and cos(g16, g32).min() > 0.98


def test_bf16_run_dumps_the_full_config_and_keeps_init_notes_out_of_the_log(tmp_path):
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    cfg = load_config("fmfa", "synth", options=dict(OPTS, train=dict(epochs=1, batch_size=6, amp="bf16",
                                                                      tensorboard=tensorboard)))
    run_job(cfg, work_dir=str(tmp_path / "wd"), results_dir=str(tmp_path / "res"), progress=False,
            log_level="INFO")
    wd = tmp_path / "wd"
    (dump,) = wd.glob("*.py")
    dumped = Config.fromfile(str(dump)).to_dict()
    assert {k: v for k, v in to_plain(dumped).items() if k in to_plain(cfg)} == to_plain(cfg)
    (log,) = wd.glob("*/*.log")
    text = log.read_text()
    assert "Initialization information" not in text and "The value is the same before and after" not in text
    assert list(wd.glob("*/vis_data/scalars.json"))
    if tensorboard:
        assert list(wd.glob("*/vis_data/events.out.tfevents.*"))


def test_tensorboard_missing_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    code = main(["run", "--method", "fmfa", "--dataset", "synth", "--results-dir", str(tmp_path / "res"),
                 "--work-dir", str(tmp_path / "wd"), "--epochs", "1", "--cfg-options", "train.tensorboard=True",
                 "dataset.train_ids=4", "dataset.test_ids=2", "dataset.val_ids=2", "dataset.images_per_id=2",
                 "dataset.image_size=(32,16)", "method.encoder.image_size=(32,16)", "cross_domain=[]"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.endswith("train.tensorboard=True needs the tensorboard package: pip install tensorboard "
                                      "(or set train.tensorboard=False)")
    assert len(err.splitlines()) == 1 and not (tmp_path / "res").exists() and not (tmp_path / "wd").exists()
