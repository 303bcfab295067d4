"""Device correctness without a GPU: a device-checking double stands in for the accelerator.

Tensors moved to the stand-in device (``.to(FAKE)``, ``device=FAKE``, a module's ``.to(FAKE)``) report
``device.type == "meta"`` and carry real CPU data inside, so every op really runs. Each op is
checked as CUDA would check it: an op mixing stand-in tensors with CPU tensors that are not 0-d
scalars raises ``DeviceMismatch`` naming the op -- the error a GPU run would hit, possibly after
days of training. The harness paths (training step through HarnessModel and the optimiser wrapper,
evaluation encoding and ranking) run on it for every method and the scaffold template.
"""
from __future__ import annotations

import functools
import importlib
import math
import sys

import pytest

import torch
from mmengine.optim import build_optim_wrapper
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode, return_and_correct_aliasing

from harness.config import load_config, to_plain
from harness.data.loading import TrainPairs, collate_pairs
from harness.data.splits import EvalSet
from harness.engine.evaluate import encode_eval_set, evaluate_method
from harness.engine.model import HarnessModel
from harness.data.resolve import resolve_dataset as load_dataset
from harness.registry import build_method
from harness.evaluation import summarise
from harness.scaffold import scaffold_method

FAKE = torch.device("meta")
aten = torch.ops.aten
# ops CUDA accepts with CPU operands: copies between devices, indexing with CPU index tensors, and
# packed sequences, whose lengths / batch sizes CUDA requires on the CPU
PACKING = {aten._pack_padded_sequence.default, aten._pad_packed_sequence.default, aten.lstm.data,
           aten._pack_padded_sequence_backward.default}
CROSS_DEVICE_OK = {aten._to_copy.default, aten.copy_.default, aten.index.Tensor, aten.index_put_.default,
                   aten.index_put.default, aten._index_put_impl_.default} | PACKING
CPU_OUTPUT = {aten._pack_padded_sequence.default: 1, aten._pad_packed_sequence.default: 1}  # batch sizes, lengths


class DeviceMismatch(AssertionError):
    pass


class OnDevice(torch.Tensor):
    """A tensor on the stand-in device: ``.device`` is FAKE, the data is a CPU tensor inside."""

    @staticmethod
    def __new__(cls, inner: torch.Tensor):
        r = torch.Tensor._make_wrapper_subclass(cls, inner.shape, strides=inner.stride(),
                                                storage_offset=inner.storage_offset(), dtype=inner.dtype,
                                                layout=inner.layout, device=FAKE, requires_grad=inner.requires_grad)
        r.inner = inner
        return r

    __torch_function__ = torch._C._disabled_torch_function_impl

    def __repr__(self):
        return f"OnDevice({self.inner!r})"

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return _run(func, args, kwargs or {})


def _map(fn, obj):
    """``fn`` on every tensor in (nested) lists, tuples and dicts: the shapes op arguments take."""
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map(fn, o) for o in obj)
    if isinstance(obj, dict):
        return {k: _map(fn, v) for k, v in obj.items()}
    return obj


def _tensors(obj, out: list) -> list:
    _map(out.append, obj)
    return out


@functools.cache
def _aliases(func) -> bool:
    """Does the op return a view or its (mutated) input? Then the wrapper must alias it too."""
    return any(r.alias_info is not None for r in func._schema.returns)


def _run(func, args, kwargs):
    flat = _tensors((args, kwargs), [])
    if any(t.is_meta and not isinstance(t, OnDevice) for t in flat):
        raise AssertionError(f"{func}: a tensor without data reached an op; the double missed where it was made")
    on_dev = [t for t in flat if isinstance(t, OnDevice)]
    on_cpu = [t for t in flat if not isinstance(t, OnDevice) and t.dim() > 0]
    if on_dev and on_cpu and func not in CROSS_DEVICE_OK:
        raise DeviceMismatch(f"{func}: operands on the method's device mixed with CPU tensors of shape "
                             f"{[tuple(t.shape) for t in on_cpu]}")
    wrap = bool(on_dev)
    if kwargs.get("device") is not None:  # factories and .to(device)
        wrap = torch.device(kwargs["device"]) == FAKE
        if wrap:
            if kwargs.get("generator") is not None:
                raise DeviceMismatch(f"{func}: a CPU generator cannot draw on the method's device")
            kwargs = dict(kwargs, device=torch.device("cpu"))
    unwrap = lambda t: t.inner if isinstance(t, OnDevice) else t  # noqa: E731
    out = func(*_map(unwrap, args), **_map(unwrap, kwargs))
    if not wrap or func is aten._local_scalar_dense.default:
        return out
    stay = CPU_OUTPUT.get(func)
    out = _map(OnDevice, out)
    if stay is not None:
        out = tuple(o.inner if i == stay else o for i, o in enumerate(out))
    return return_and_correct_aliasing(func, args, kwargs, out) if _aliases(func) else out


class _FakeDispatch(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return _run(func, args, kwargs or {})


class _FakeTensorFactories(TorchFunctionMode):
    """``torch.tensor(data, device=...)`` and ``torch.as_tensor`` do not copy their data through an aten op
    on a meta device (they return an empty meta tensor), so they are routed through ``.to`` here, as the
    copy to a GPU would go."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        device = kwargs.get("device")
        if func in (torch.tensor, torch.as_tensor) and device is not None and torch.device(device) == FAKE:
            return func(*args, **dict(kwargs, device="cpu")).to(FAKE)
        return func(*args, **kwargs)


class FakeDevice:
    """Both halves of the double: tensor factories that take data, and every aten op."""

    def __enter__(self):
        self._modes = [_FakeTensorFactories(), _FakeDispatch()]
        for m in self._modes:
            m.__enter__()
        return self

    def __exit__(self, *exc):
        for m in reversed(self._modes):
            m.__exit__(*exc)


def _cpu_copy(t):
    return (t.inner if isinstance(t, OnDevice) else t).detach().clone()


# ---------------------------------------------------------------------------------------- the double
def test_the_double_catches_a_tensor_left_on_the_cpu():
    with FakeDevice():
        lin = torch.nn.Linear(4, 3).to(FAKE)
        x = torch.randn(2, 4)
        assert lin(x.to(FAKE)).device == FAKE
        with pytest.raises(DeviceMismatch, match="addmm"):
            lin(x)
        assert (torch.arange(3, device=FAKE) + lin.bias).device == FAKE
        assert (lin.bias + torch.tensor(2.0)).device == FAKE  # CPU scalars are fine, as on CUDA
        with pytest.raises(DeviceMismatch, match="CPU generator"):
            torch.rand(3, device=FAKE, generator=torch.Generator())
        made = torch.tensor([1, 2, 3], device=FAKE)  # data copied, as to a GPU (not an empty meta tensor)
        assert made.device == FAKE and made.inner.tolist() == [1, 2, 3]
        assert torch.as_tensor([4.0], device=FAKE).inner.tolist() == [4.0]


# ------------------------------------------------------------------------------------------- methods
TINY_DATA = dict(type="synth", train_ids=6, val_ids=2, test_ids=3, images_per_id=2, xdomain_ids=2, image_size=(32, 16))
METHOD_OPTS = {
    "fmfa": dict(encoder=dict(image_size=(32, 16))),
    "irra": dict(encoder=dict(image_size=(32, 16))),
    "ivt": dict(vision=dict(image_size=(32, 16))),
    # short captions: under the double the BiLSTM runs as one op per time step
    "lgur": dict(vision=dict(image_size=(32, 16)), text=dict(context_length=8), dim=64, dict_size=20, part_dim=32,
                 recon=dict(heads=2, dim_head=16, mlp_dim=64), proto=dict(heads=2, dim_head=32, mlp_dim=64)),
}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny ops gain nothing from threads, and on a loaded shared machine each multi-threaded op can
    wait a scheduler slice for its second thread (50 ms matmuls of 64 x 64 were measured)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny_splits():
    return load_dataset(TINY_DATA)


def _check_on_device(method, cfg, splits):
    """A training step through mmengine (data preprocessor, HarnessModel, optimiser wrapper), then
    evaluation encoding and ranking, all on the stand-in device."""
    data = TrainPairs(splits.train, splits.image_root, method.image_spec, seed=0)
    batch = collate_pairs([data[i] for i in range(6)])
    with FakeDevice():
        model = HarnessModel(method, seed=0).to(FAKE)
        assert all(p.device == FAKE for p in model.parameters())
        optim = build_optim_wrapper(model, to_plain(cfg.optim_wrapper))
        before = {n: _cpu_copy(p) for n, p in model.named_parameters() if p.requires_grad}
        log_vars = model.train_step(batch, optim)
        assert all(math.isfinite(float(torch.as_tensor(v).detach())) for v in log_vars.values())
        changed = [n for n, p in model.named_parameters()
                   if p.requires_grad and not torch.equal(_cpu_copy(p), before[n])]
        assert changed, "the optimiser step changed no parameter"
        ev = EvalSet.from_records(splits.test, splits.image_root)
        qf, gf = encode_eval_set(method, ev, batch_size=4, progress=False)
        assert qf.device == FAKE and gf.device == FAKE
        assert qf.shape[0] == len(ev.query_captions) and gf.shape[0] == len(ev.gallery_paths)
        metrics = summarise(evaluate_method(method, ev, batch_size=4, chunk_size=5, progress=False))
    assert 0 <= metrics["R1"] <= metrics["R10"] <= 100


@pytest.mark.parametrize("name", sorted(METHOD_OPTS))
def test_method_trains_and_evaluates_on_the_device(name, tiny_splits):
    cfg = load_config(name, "synth", options=dict(dataset=TINY_DATA, cross_domain=[], method=METHOD_OPTS[name]))
    torch.manual_seed(0)
    method = build_method(cfg.method, len({r.pid for r in tiny_splits.train}))
    _check_on_device(method, cfg, tiny_splits)


@pytest.mark.parametrize("name", ["ivt", "lgur"])
def test_dict_tokens_left_on_the_cpu_are_caught(name, tiny_splits):
    """The failure issue 15 predicted: BERT tokenizer output (a dict) not moved with the images."""
    cfg = load_config(name, "synth", options=dict(dataset=TINY_DATA, cross_domain=[], method=METHOD_OPTS[name]))
    method = build_method(cfg.method, len({r.pid for r in tiny_splits.train})).eval()
    with FakeDevice(), torch.no_grad():
        method.to(FAKE)
        with pytest.raises(DeviceMismatch):
            method.encode_text(method.tokenize(["a man in a red coat"]))


def test_scaffold_template_trains_and_evaluates_on_the_device(tmp_path, tiny_splits, monkeypatch):
    scaffold_method("devprobe", tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path / "tipr-devprobe"))
    module = importlib.import_module("tipr_devprobe.model")
    try:
        torch.manual_seed(0)
        method = module.Devprobe(encoder=dict(type="clip", preset="tiny", image_size=(32, 16), context_length=32))
        cfg = load_config("fmfa", "synth", options=dict(dataset=TINY_DATA, cross_domain=[]))  # the runtime optimiser
        _check_on_device(method, cfg, tiny_splits)
    finally:
        for mod in [m for m in sys.modules if m.startswith("tipr_devprobe")]:
            del sys.modules[mod]
