"""Up-front checks of IRRA's ``method`` config section (types and ranges), run by ``IRRA.validate_config``
before any data is loaded, so a bad override is refused in one line naming the key. FMFA adds its own keys."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.api import ConfigError, check_bool, check_choice, check_float, check_int

LOSSES = ("sdm", "id", "mlm", "itc")
RELEASED_LOSSES = ("sdm", "id", "mlm")  # run_irra.sh:11 --loss_names 'sdm+mlm+id'


def check_losses(cfg: Mapping, allowed: Sequence[str], default: Sequence[str]) -> Sequence[str]:
    losses = cfg.get("losses", default)
    if isinstance(losses, (str, bytes)) or not isinstance(losses, Sequence) or not losses:
        raise ConfigError(f"method.losses must be a non-empty list of loss names, got {losses!r}")
    for i, name in enumerate(losses):
        check_choice(f"method.losses[{i}]", name, allowed)
    return losses


def check_common(cfg: Mapping, losses: Sequence[str]) -> None:
    """The keys IRRA and FMFA share."""
    if "temperature" in cfg:
        check_float("method.temperature", cfg["temperature"], 0.0, lo_open=True)
    if "cmt_depth" in cfg:
        check_int("method.cmt_depth", cfg["cmt_depth"], 1)
    for key in ("mlm_contaminates_global", "clip_fp16"):
        if key in cfg:
            check_bool(f"method.{key}", cfg[key])
    weights = cfg.get("loss_weights")
    if weights is not None:
        if not isinstance(weights, Mapping):
            raise ConfigError(f"method.loss_weights must be a dict of loss name to weight, got {weights!r}")
        for k, w in weights.items():
            if k not in losses:
                raise ConfigError(f"method.loss_weights.{k}: no such loss in method.losses {list(losses)}")
            check_float(f"method.loss_weights.{k}", w, 0.0)


def check_values(cfg: Mapping) -> None:
    check_common(cfg, check_losses(cfg, LOSSES, RELEASED_LOSSES))
