"""Mixed precision: ``train.amp = "off" | "bf16" | "fp16"`` for training (mmengine's AmpOptimWrapper)
and evaluation (autocast while encoding), resolved once against the hardware that is present.

fp16 needs a CUDA GPU and trains with dynamic loss scaling; bf16 has float32's exponent range, so it
runs without loss scaling, on a GPU or under CPU autocast.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS

from ..errors import ConfigError

AMP_DTYPES = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """The resolved ``train.amp`` setting on the device that runs it."""

    amp: str  # "off" | "bf16" | "fp16"
    device_type: str  # "cuda" | "cpu"

    @property
    def dtype(self) -> torch.dtype | None:
        return AMP_DTYPES[self.amp]

    @property
    def loss_scaling(self) -> bool:
        return self.amp == "fp16"

    def autocast(self, device: torch.device | str | None = None):
        """Autocast for inference on ``device`` (default: this precision's device); a no-op when off."""
        if self.amp == "off":
            return contextlib.nullcontext()
        return torch.autocast(torch.device(device).type if device is not None else self.device_type, dtype=self.dtype)

    def describe(self) -> dict:
        """What a results record should state: the setting as carried out."""
        return dict(amp=self.amp, compute_dtype="float32" if self.dtype is None else str(self.dtype).split(".")[1],
                    device=self.device_type, loss_scaling="dynamic" if self.loss_scaling else None)

    def optim_wrapper(self, optim_cfg: dict) -> dict:
        """The mmengine ``optim_wrapper`` config that trains at this precision."""
        cfg = dict(optim_cfg)
        if self.amp == "off":
            return cfg
        if cfg.get("type", "OptimWrapper") not in ("OptimWrapper", OptimWrapper):
            raise ConfigError(f"optim_wrapper.type={cfg['type']!r} cannot be combined with train.amp={self.amp!r}; "
                              "leave optim_wrapper.type unset and choose the precision with train.amp")
        return dict(cfg, type="HarnessAmpOptimWrapper", dtype=str(self.dtype).split(".")[1])


def resolve_precision(amp, device_type: str | None = None) -> Precision:
    """``train.amp`` (one of ``AMP_DTYPES``, validated by the config schema) on this hardware: a one-line
    ConfigError for a device that cannot run it."""
    device_type = device_type or ("cuda" if torch.cuda.is_available() else "cpu")
    if amp == "fp16" and device_type != "cuda":
        raise ConfigError("train.amp='fp16' needs a CUDA GPU and none is visible; use train.amp='bf16' (CPU autocast) "
                          "or 'off'")
    return Precision(amp, device_type)


@OPTIM_WRAPPERS.register_module()
class HarnessAmpOptimWrapper(AmpOptimWrapper):
    """mmengine's AmpOptimWrapper (autocast in ``optim_context``, scaled ``backward``/``step``, the
    scaler in checkpoints) built so that it also runs on a CPU: mmengine's constructor asserts a GPU
    and uses the deprecated ``torch.cuda.amp.GradScaler``. fp16 gets dynamic loss scaling; bf16 a
    disabled scaler (it needs none)."""

    def __init__(self, dtype: str = "bfloat16", **kwargs):
        OptimWrapper.__init__(self, **kwargs)
        if dtype not in ("bfloat16", "float16"):
            raise ConfigError(f"optim_wrapper dtype {dtype!r}: use train.amp='bf16' or 'fp16'")
        self.cast_dtype = getattr(torch, dtype)
        self._scale_update_param = None  # dynamic scale
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.loss_scaler = torch.amp.GradScaler(device, enabled=dtype == "float16")
