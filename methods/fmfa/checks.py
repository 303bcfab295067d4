"""Up-front checks of FMFA's ``method`` config section (types and ranges), run by ``FMFA.validate_config``
before any data is loaded, so a bad override is refused in one line naming the key. The keys FMFA shares with
IRRA are checked by IRRA's checks (methods/irra/checks.py)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.api import ConfigError, check_bool, check_choice, check_float

from ..irra.checks import check_common, check_losses

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
    losses = check_losses(cfg, LOSSES, LOSSES[1:5])
    check_margins(cfg.get("efa_margins", (0.1, 0.9)), losses)
    if "asdm_mode" in cfg:
        check_choice("method.asdm_mode", cfg["asdm_mode"], ("code", "paper"))
    if "asdm_alpha" in cfg:
        check_float("method.asdm_alpha", cfg["asdm_alpha"], 0.0)
    for key in ("asdm_detach_weight", "efa_row_normalise", "efa_mask_padding"):
        if key in cfg:
            check_bool(f"method.{key}", cfg[key])
    check_common(cfg, losses)
