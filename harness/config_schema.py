"""Types and ranges of every harness config value, checked before any data is read or model built.

A bad value must stop a run with one line naming the key, never reach torch, PIL or mmengine (where it
would surface as a traceback mid-training). Keys that no code reads are not in the schema, so they are
rejected. Method keys are checked by each method's constructor (``check_*`` helpers below).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .errors import ConfigError, one_line


def _show(v) -> str:
    """A value as one printable line (repr escapes newlines and control characters)."""
    return repr(v)


def check_int(key: str, v, lo: int | None = None, hi: int | None = None):
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{key} must be an integer, got {_show(v)}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise ConfigError(f"{key} must be {rng}, got {v}")
    return v


def check_float(key: str, v, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
                hi_open: bool = False):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{key} must be a finite number, got {_show(v)}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise ConfigError(f"{key} must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise ConfigError(f"{key} must be {'<' if hi_open else '<='} {hi}, got {v}")
    return v


def check_bool(key: str, v):
    if not isinstance(v, bool):
        raise ConfigError(f"{key}={_show(v)}: use True or False")
    return v


def check_str(key: str, v):
    if not isinstance(v, str) or not v:
        raise ConfigError(f"{key} must be a non-empty string, got {_show(v)}")
    return v


def check_choice(key: str, v, choices: Sequence):
    if v not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(map(_show, choices))}; got {_show(v)}")
    return v


def check_keys(section: str, node, allowed) -> None:
    if not isinstance(node, Mapping):
        raise ConfigError(f"{section} must be a dict, got {_show(node)}")
    bad = sorted(set(node) - set(allowed))
    if bad:
        prefix = f"{section}." if section else ""
        raise ConfigError(f"unknown config key(s) {', '.join(prefix + b for b in bad)}; "
                          f"allowed{' in ' + section if section else ''}: {', '.join(sorted(allowed))}")


TOP = {"seed", "deterministic", "work_root", "results_dir", "train", "optim_wrapper", "param_scheduler", "eval",
       "method", "dataset", "cross_domain"}

def check_workers(key: str, v):
    if v == "auto":
        return v
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ConfigError(f"{key}={_show(v)}: use a number of worker processes >= 0, or 'auto'")
    return v


TRAIN = {
    "epochs": lambda k, v: check_int(k, v, 1),
    "batch_size": lambda k, v: check_int(k, v, 1),
    "num_workers": check_workers,
    "pin_memory": check_bool,
    "persistent_workers": check_bool,
    "amp": lambda k, v: check_choice(k, v, ("off", "bf16", "fp16")),
    "tensorboard": check_bool,
    "cache_images": check_bool,
    "eval_interval": lambda k, v: check_int(k, v, 0),
    "checkpoint_interval": lambda k, v: check_int(k, v, 1),
    "max_keep_ckpts": lambda k, v: check_int(k, v, -1),
    "log_interval": lambda k, v: check_int(k, v, 1),
    "selection": lambda k, v: check_choice(k, v, ("last", "val")),
    "val_split": lambda k, v: check_float(k, v, 0.0, 1.0, hi_open=True),
    "sampler": lambda k, v: _check_sampler(k, v),
    "drop_last": check_bool,
}

EVAL = {
    "num_workers": check_workers,
    "batch_size": lambda k, v: check_int(k, v, 1),
    "chunk_size": lambda k, v: check_int(k, v, 1),
    "store_topk": lambda k, v: check_int(k, v, 0, 1000),  # retrieved items kept per query (harness inspect); 0: none
}

OPTIMIZERS_FLOAT = {  # optimizer keywords and their ranges; anything numeric must at least be finite
    "lr": dict(lo=0.0, lo_open=True), "weight_decay": dict(lo=0.0), "eps": dict(lo=0.0, lo_open=True),
    "momentum": dict(lo=0.0, hi=1.0), "dampening": dict(lo=0.0, hi=1.0),
}


def _check_sampler(key: str, v):
    check_keys(key, v, {"type", "num_instances"})
    check_choice(f"{key}.type", v.get("type"), ("random", "identity"))
    if v["type"] == "identity":
        check_int(f"{key}.num_instances", v.get("num_instances", 4), 1)
    elif "num_instances" in v:
        raise ConfigError(f"{key}.num_instances is only read by the 'identity' sampler")
    return v


def _check_optim(ow) -> None:
    # precision is chosen by train.amp only (the record states it); optim_wrapper's own AMP keys would bypass it
    check_keys("optim_wrapper", ow, {"type", "optimizer", "paramwise_cfg", "clip_grad", "accumulative_counts"})
    kind = ow.get("type", "OptimWrapper")
    if kind == "AmpOptimWrapper":
        raise ConfigError("optim_wrapper.type=AmpOptimWrapper: mixed precision is chosen with train.amp='bf16' or "
                          "'fp16' (fp16 needs a CUDA device), so that the record states it")
    check_choice("optim_wrapper.type", kind, ("OptimWrapper",))
    opt = ow.get("optimizer")
    if not isinstance(opt, Mapping) or "type" not in opt:
        raise ConfigError("optim_wrapper.optimizer must be a dict with a 'type' (e.g. Adam, AdamW, SGD)")
    import mmengine.optim  # noqa: F401  (registers torch's optimizers and schedulers)
    from mmengine.registry import OPTIMIZERS

    if OPTIMIZERS.get(opt["type"]) is None:
        raise ConfigError(f"optim_wrapper.optimizer.type: unknown optimizer '{opt['type']}'")
    for name, value in opt.items():
        key = f"optim_wrapper.optimizer.{name}"
        if name in OPTIMIZERS_FLOAT:
            check_float(key, value, **OPTIMIZERS_FLOAT[name])
        elif name == "betas":
            if not isinstance(value, Sequence) or len(value) != 2:
                raise ConfigError(f"{key} must be a pair of numbers in [0, 1), got {_show(value)}")
            for i, b in enumerate(value):
                check_float(f"{key}[{i}]", b, 0.0, 1.0, hi_open=True)
        elif name != "type" and isinstance(value, (int, float)) and not isinstance(value, bool):
            check_float(key, value)
    if "accumulative_counts" in ow:
        check_int("optim_wrapper.accumulative_counts", ow["accumulative_counts"], 1)


def _check_schedulers(scheds, epochs: int = 1) -> None:
    if not isinstance(scheds, Sequence) or isinstance(scheds, str):
        raise ConfigError(f"param_scheduler must be a list of dicts, got {_show(scheds)}")
    import mmengine.optim  # noqa: F401
    from mmengine.registry import PARAM_SCHEDULERS

    from . import schedulers  # noqa: F401  (the harness's own: IRRA's WarmupCosineLR)

    for i, s in enumerate(scheds):
        key = f"param_scheduler[{i}]"
        if not isinstance(s, Mapping) or "type" not in s:
            raise ConfigError(f"{key} must be a dict with a 'type'")
        if PARAM_SCHEDULERS.get(s["type"]) is None:
            raise ConfigError(f"{key}.type: unknown scheduler '{s['type']}'")
        for b in ("begin", "end"):
            if b in s and s[b] != "max_epochs":
                check_int(f"{key}.{b}", s[b], 0)
        if isinstance(s.get("end"), int) and s["end"] <= s.get("begin", 0):
            raise ConfigError(f"{key}: end={s['end']} is not after begin={s.get('begin', 0)}; the scheduler would "
                              "never run (end is exclusive, in epochs)")
        for name, value in s.items():
            if name not in ("type", "begin", "end", "by_epoch", "convert_to_iter_based") and \
                    isinstance(value, (int, float)) and not isinstance(value, bool):
                check_float(f"{key}.{name}", value)
        _dry_build_scheduler(key, s, epochs)


def _dry_build_scheduler(key: str, s: Mapping, epochs: int) -> None:
    """Build the scheduler once on a one-parameter optimizer, as training will (``end='max_epochs'`` ->
    ``epochs``): keywords it does not take and values its constructor refuses fail here, not after the data
    is loaded."""
    import torch
    from mmengine.registry import PARAM_SCHEDULERS

    s = dict(s)
    s.pop("convert_to_iter_based", None)  # the Runner's switch, popped before it builds the scheduler
    if s.get("end", "max_epochs") == "max_epochs":  # a short run clamps the span (or drops it); its keywords
        s["end"] = max(epochs, s.get("begin", 0) + 1)  # are checked all the same
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0, momentum=0.9)
    try:
        PARAM_SCHEDULERS.build(dict(s, optimizer=opt))
    except (ConfigError, TypeError, ValueError, KeyError, AssertionError) as exc:
        raise ConfigError(f"{key} ({s['type']}): {one_line(exc)}") from None


def _check_typed(key: str, node) -> None:
    if not isinstance(node, Mapping) or not isinstance(node.get("type"), str) or not node["type"]:
        raise ConfigError(f"'{key}.type' is required (a registered name, see `harness list`)")


def validate_values(cfg: Mapping) -> None:
    """Type- and range-check every harness-owned value (method values: the method's constructor)."""
    check_keys("", cfg, TOP)
    check_int("seed", cfg.get("seed", 0), 0, 2**32 - 1)
    check_bool("deterministic", cfg.get("deterministic", True))
    for k in ("work_root", "results_dir"):
        if k in cfg:
            check_str(k, cfg[k])
    for section, spec in (("train", TRAIN), ("eval", EVAL)):
        node = cfg.get(section, {})
        check_keys(section, node, spec)
        for name, value in node.items():
            spec[name](f"{section}.{name}", value)
    train = cfg.get("train", {})
    if train.get("val_split") and train.get("selection", "last") != "val" and not train.get("eval_interval"):
        raise ConfigError("train.val_split holds out identities for validation, but nothing validates: set "
                          "train.selection='val' (or train.eval_interval > 0 to log val metrics)")
    sampler = train.get("sampler") if isinstance(train, Mapping) else None
    if isinstance(sampler, Mapping) and sampler.get("type") == "identity":
        k, bs = sampler.get("num_instances", 4), train.get("batch_size", 64)
        if bs % k:
            raise ConfigError(f"train.batch_size={bs} must be a multiple of train.sampler.num_instances={k}: the "
                              "identity sampler fills every batch with batch_size // K identities")
    _check_optim(cfg.get("optim_wrapper", {}))
    epochs = train.get("epochs", 1) if isinstance(train, Mapping) else 1
    _check_schedulers(cfg.get("param_scheduler", []), epochs)
    for key in ("method", "dataset"):
        _check_typed(key, cfg.get(key))
    xs = cfg.get("cross_domain", []) or []
    if not isinstance(xs, Sequence) or isinstance(xs, str):
        raise ConfigError(f"cross_domain must be a list of dataset dicts, got {_show(xs)}")
    for i, x in enumerate(xs):
        _check_typed(f"cross_domain[{i}]", x)


# Upper bounds that keep a typo from allocating tens of GB: (H/16 * W/16) patch tokens and L x L text masks.
MAX_IMAGE_SIDE = 2048
MAX_TOKENS = 1024


def check_pair(key: str, v, lo: int = 1, hi: int | None = None):
    if not isinstance(v, Sequence) or isinstance(v, str) or len(v) != 2:
        raise ConfigError(f"{key} must be a pair of integers (H, W), got {_show(v)}")
    for i, x in enumerate(v):
        check_int(f"{key}[{i}]", x, lo, hi)
    return v


def _encoder_class(obj):
    """A registered encoder is a class or a builder function annotated with the class it returns."""
    import inspect
    import typing

    if inspect.isclass(obj):
        return obj
    return typing.get_type_hints(obj).get("return", obj)


def check_method_encoders(method: Mapping, prefix: str = "method") -> None:
    """Every shared-encoder dict inside a method section (any depth, any key name: FMFA's ``encoder``,
    IVT's ``vision``/``text``) through :func:`check_encoder`, whichever method holds it; an encoder dict is
    one whose ``type`` names a registered encoder."""
    from .registry import ENCODERS, lookup, names

    known = set(names(ENCODERS))
    for name, value in method.items():
        key = f"{prefix}.{name}"
        if isinstance(value, Mapping):
            if isinstance(value.get("type"), str) and value["type"] in known:
                check_encoder(key, value, _encoder_class(lookup(ENCODERS, value["type"])), value["type"])
            else:
                check_method_encoders(value, key)


def encoder_slots(method: Mapping, prefix: str = "method") -> dict[str, str]:
    """{config key: encoder kind} of every shared-encoder dict in a method section as its config files
    write it (before ``--cfg-options``): the places an override must keep an encoder dict of that kind."""
    from .registry import ENCODERS, names

    known, out = set(names(ENCODERS)), {}
    for name, value in method.items():
        key = f"{prefix}.{name}"
        if isinstance(value, Mapping):
            if isinstance(value.get("type"), str) and value["type"] in known:
                out[key] = value["type"]
            else:
                out.update(encoder_slots(value, key))
    return out


def check_encoder_slots(slots: Mapping[str, str], method: Mapping) -> None:
    """An override may change an encoder's settings, never replace its dict by something else
    (``method.encoder=5``) or by another kind (``method.encoder=dict(type='identity')``)."""
    for key, kind in slots.items():
        value: object = {"method": method}
        for part in key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key} must be a dict of {kind} encoder settings "
                              f"(e.g. {key}.preset=...), got {_show(value)}")
        if value.get("type", kind) != kind:
            raise ConfigError(f"{key}.type must be '{kind}', got {_show(value.get('type'))}")


def check_optional_path(key: str, v):
    if v is not None and (not isinstance(v, str) or not v):
        raise ConfigError(f"{key} must be a file path, 'random' or None, got {_show(v)}")
    return v


def check_encoder(key: str, cfg, encoder_cls, kind: str) -> None:
    """A shared-encoder section of a method config: keys the encoder takes, values of the right type."""
    import inspect

    if cfg is None:
        return
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{key} must be a dict of {kind} encoder settings, got {_show(cfg)}")
    params = [n for n in inspect.signature(encoder_cls.__init__).parameters if n != "self"]
    check_keys(key, {k: v for k, v in cfg.items() if k != "type"}, params)
    if cfg.get("type", kind) != kind:
        raise ConfigError(f"{key}.type must be '{kind}', got {_show(cfg.get('type'))}")
    presets = encoder_cls.PRESETS
    for name, value in cfg.items():
        k = f"{key}.{name}"
        if name == "preset":
            check_choice(k, value, tuple(presets)) if presets else check_str(k, value)
        elif name == "image_size":
            check_pair(k, value, 16, MAX_IMAGE_SIDE)
        elif name == "context_length":
            check_int(k, value, 3, MAX_TOKENS)
        elif name in ("checkpoint", "path", "vocab_file"):
            check_optional_path(k, value)


def check_floats(section: str, cfg: Mapping, **ranges) -> None:
    """``name=dict(lo=.., hi=.., lo_open=..)`` for each float-valued key present in ``cfg``."""
    for name, rng in ranges.items():
        if name in cfg:
            check_float(f"{section}.{name}", cfg[name], **rng)


def check_ints(section: str, cfg: Mapping, **lows) -> None:
    for name, lo in lows.items():
        if name in cfg:
            check_int(f"{section}.{name}", cfg[name], lo)


def check_rgb(section: str, cfg: Mapping, *names) -> None:
    """Per-channel statistics (e.g. ``image_mean``, ``image_std``): three numbers, R, G, B."""
    for name in names:
        if name in cfg and (not isinstance(cfg[name], (list, tuple)) or len(cfg[name]) != 3):
            raise ConfigError(f"{section}.{name} must be three numbers (R, G, B), got {cfg[name]!r}")


def check_bools(section: str, cfg: Mapping, *names) -> None:
    for name in names:
        if name in cfg:
            check_bool(f"{section}.{name}", cfg[name])
