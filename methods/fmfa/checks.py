"""Up-front checks of FMFA's ``method`` config section (types and ranges), run by ``FMFA.validate_config``
before any data is loaded, so a bad override is refused in one line naming the key."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.config_schema import check_bool, check_choice, check_float, check_int
from harness.errors import ConfigError

LOSSES = ("sdm", "asdm", "id", "mlm", "efa", "itc")


def check_margins(margins, losses) -> None:
    """configs/paper.py leaves the margins to the dataset (Table 1): refuse EFA without them."""
    if margins is None and "efa" in losses:
        raise ConfigError("method.efa_margins is not set: the paper's EFA margins depend on the dataset; run "
                          "methods/fmfa/configs/paper_cuhk.py, paper_icfg.py or paper_rstp.py, or set "
                          "method.efa_margins=(text, vision)")
    if margins is not None:
        if isinstance(margins, (str, bytes)) or not isinstance(margins, Sequence) or len(margins) != 2:
            raise ConfigError(f"method.efa_margins must be a pair (text, vision) of numbers, got {margins!r}")
        for i, m in enumerate(margins):
            check_float(f"method.efa_margins[{i}]", m)


def check_values(cfg: Mapping) -> None:
    losses = cfg.get("losses", LOSSES[1:5])
    if isinstance(losses, (str, bytes)) or not isinstance(losses, Sequence) or not losses:
        raise ConfigError(f"method.losses must be a non-empty list of loss names, got {losses!r}")
    for i, name in enumerate(losses):
        check_choice(f"method.losses[{i}]", name, LOSSES)
    check_margins(cfg.get("efa_margins", (0.1, 0.9)), losses)
    if "temperature" in cfg:
        check_float("method.temperature", cfg["temperature"], 0.0, lo_open=True)
    if "asdm_mode" in cfg:
        check_choice("method.asdm_mode", cfg["asdm_mode"], ("code", "paper"))
    if "asdm_alpha" in cfg:
        check_float("method.asdm_alpha", cfg["asdm_alpha"], 0.0)
    if "cmt_depth" in cfg:
        check_int("method.cmt_depth", cfg["cmt_depth"], 1)
    for key in ("asdm_detach_weight", "efa_row_normalise", "efa_mask_padding", "mlm_contaminates_global"):
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
