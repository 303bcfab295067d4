"""FMFA = IRRA (methods/irra) + A-SDM + EFA: the model, the IRR branch, the heads and the precision switch are
IRRA's; this subclass adds the adaptive SDM weight and the explicit fine-grained alignment term.

Test-time scoring uses only the global features (image [CLS], text EOT), as in IRRA and FMFA;
the cross-modal encoder and EFA run in training only.
"""
from __future__ import annotations

from pathlib import Path

from harness.api import ConfigError, Deviation

from ..irra import IRRA
from ..irra.deviations import PRECISION
from ..irra.released import FMFA_LAYOUT
from . import losses as L
from .checks import LOSSES, check_margins, check_values
from .deviations import RELEASED_SETTINGS, fmfa_deviations
from .published import PUBLISHED

# FMFA wraps the backbone in torch.autocast(fp16) on top of convert_weights (model/build_finetune.py:95, 190)
FMFA_PRECISION_OURS = ("fp16-stored weights as released, without the fp16 autocast around the backbone "
                       "(model/build_finetune.py:95): the towers' matmuls run on the fp16 weights directly")


class FMFA(IRRA):
    """Fine-grained alignment (FMFA, arXiv 2509.13754) as a harness plugin: IRRA plus A-SDM and EFA.

    Args (besides IRRA's: num_classes, encoder, temperature, cmt_depth, mlm_contaminates_global, loss_weights,
    clip_fp16):
        losses: terms summed in training, from "itc", "sdm", "asdm", "id", "mlm" (IRR through the cross-modal
            encoder) and "efa"; released: asdm, id, mlm, efa.
        asdm_mode, asdm_alpha: A-SDM weight as in the released code ("code", 0.1) or the paper ("paper", 10).
        asdm_detach_weight: stop the gradient through the A-SDM weight (released: it flows; the paper is silent).
        efa_margins: EFA margins (text<->E, patches<->E); None only without "efa" (``configs/paper.py``).
        efa_row_normalise: L2-normalise the pooled EFA similarity rows (released).
        efa_mask_padding: keep padding text tokens, and the joint embeddings built for them, out of both EFA
            terms (released: they enter them).
    """

    LOSSES = LOSSES
    SDM_LOSSES = ("sdm", "asdm")
    released_settings = RELEASED_SETTINGS
    config_dir = Path(__file__).parent / "configs"  # default.py and <dataset>.py files
    released_layout = FMFA_LAYOUT  # harness eval --released fmfa
    published = PUBLISHED

    def __init__(self, num_classes: int = 0, encoder: dict | None = None, losses=("asdm", "id", "mlm", "efa"),
                 asdm_mode: str = "code", asdm_alpha: float = 0.1, asdm_detach_weight: bool = False,
                 efa_margins=(0.1, 0.9), efa_row_normalise: bool = True, efa_mask_padding: bool = False,
                 **kwargs):
        unknown = set(losses) - set(LOSSES)
        if unknown:
            raise ConfigError(f"method.losses: unknown FMFA loss names {sorted(unknown)}")
        check_margins(efa_margins, losses)
        super().__init__(num_classes=num_classes, encoder=encoder, losses=losses, **kwargs)
        self.asdm_mode, self.asdm_alpha, self.asdm_detach_weight = asdm_mode, asdm_alpha, asdm_detach_weight
        self.efa_margins = tuple(efa_margins) if efa_margins is not None else None
        self.efa_row_normalise = efa_row_normalise
        self.efa_mask_padding = efa_mask_padding

    @staticmethod
    def check_values(cfg: dict) -> None:
        check_values(cfg)

    def describe(self):
        return dict(asdm_mode=self.asdm_mode, asdm_alpha=self.asdm_alpha, asdm_detach_weight=self.asdm_detach_weight,
                    efa_margins=list(self.efa_margins) if self.efa_margins else None,
                    efa_row_normalise=self.efa_row_normalise, mlm_contaminates_global=self.mlm_contaminates_global,
                    losses=list(self.losses), temperature=1.0 / self.logit_scale, encoder=self.encoder.preset,
                    clip_fp16=self.clip_fp16)

    def deviations(self, cfg: dict | None = None) -> list[Deviation]:
        """FMFA's declared list; its fp32 entry is IRRA's precision setting, restated when clip_fp16 is on."""
        out = fmfa_deviations(self, cfg)
        if self.clip_fp16:
            out = [Deviation(PRECISION.id, d.released, FMFA_PRECISION_OURS, PRECISION.switch)
                   if d.id == PRECISION.id else d for d in out]
        return out

    # ------------------------------------------------------------------ training
    def _sdm_term(self, f):
        mode = self.asdm_mode if "asdm" in self.losses else "off"
        return L.sdm_loss(f["i_feat"], f["t_feat"], f["pids"], self.logit_scale, asdm=mode, alpha=self.asdm_alpha,
                          detach_weight=self.asdm_detach_weight)

    def _extra_losses(self, f, out):
        if "efa" not in self.losses:
            return
        txt_tokens, patches = f["txt_tokens"], f["img_tokens"][:, 1:]
        e = L.efa_aggregate(txt_tokens, patches)
        mask = (f["global_ids"] > 0) if self.efa_mask_padding else None  # E has one row per text position
        m_t, m_v = self.efa_margins
        out["efa_loss"] = (L.efa_contrast(txt_tokens, e, m_t, row_normalise=self.efa_row_normalise, x_mask=mask,
                                          e_mask=mask)
                           + L.efa_contrast(patches, e, m_v, row_normalise=self.efa_row_normalise, e_mask=mask))
