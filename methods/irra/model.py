"""IRRA (CVPR 2023) on the shared CLIP encoder: SDM + ID + IRR (masked-language modelling through a cross-modal
transformer). FMFA (methods/fmfa) subclasses it and adds A-SDM and EFA.

Test-time scoring uses only the global features (image [CLS], text EOT), as in IRRA (model/build.py:81-88);
the cross-modal transformer and the heads run in training only.
"""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import ClassVar

from torch import nn

from harness.api import (CLIPDualEncoder, ConfigError, Deviation, ImageSpec, QuickGELU, RetrievalMethod, build_encoder,
                         clip_transformer, init_clip_transformer)

from . import checks
from . import losses as L
from .deviations import RELEASED_SETTINGS, irra_deviations
from .precision import convert_weights
from .published import PUBLISHED
from .released import IRRA_LAYOUT


class IRRA(CLIPDualEncoder, RetrievalMethod):
    """Implicit relation reasoning and aligning (IRRA, arXiv 2303.12501) as a harness plugin.

    Args:
        num_classes: training identities, for the ID classifier (needed when "id" is in ``losses``).
        encoder: the shared CLIP encoder's config (``type="clip"``, preset, image_size, context_length, checkpoint).
        losses: terms summed in training, from "sdm", "id", "mlm" (IRR) and "itc"; released: sdm, id, mlm.
        temperature: fixed softmax temperature of ITC/SDM (0.02; the logit scale is its inverse, not learnt).
        cmt_depth: layers of the cross-modal transformer behind IRR (4).
        mlm_contaminates_global: the global text feature is taken from the masked caption (released quirk).
        loss_weights: per-term multipliers keyed by names in ``losses`` (default 1 each).
        clip_fp16: store CLIP and the heads in fp16 and train them so, as released (``precision.py``).
    """

    LOSSES: ClassVar[tuple[str, ...]] = checks.LOSSES
    SDM_LOSSES: ClassVar[tuple[str, ...]] = ("sdm",)  # the names that switch the SDM term on
    released_settings = RELEASED_SETTINGS  # the released-settings table deviations() is generated from
    config_dir = Path(__file__).parent / "configs"  # default.py and <dataset>.py files
    released_layout = IRRA_LAYOUT  # harness eval --released irra
    published = PUBLISHED

    def __init__(self, num_classes: int = 0, encoder: dict | None = None, losses=checks.RELEASED_LOSSES,
                 temperature: float = 0.02, cmt_depth: int = 4, mlm_contaminates_global: bool = True,
                 loss_weights: dict | None = None, clip_fp16: bool = False, **kwargs):
        super().__init__(num_classes=num_classes, **kwargs)
        unknown = set(losses) - set(self.LOSSES)
        if unknown:
            raise ConfigError(f"method.losses: unknown {type(self).__name__} loss names {sorted(unknown)}")
        self.encoder = build_encoder(encoder, "clip")
        d = self.encoder.embed_dim
        self.losses = tuple(losses)
        self.logit_scale = 1.0 / temperature  # fixed, not learnable (model/build.py:19)
        self.mlm_contaminates_global = mlm_contaminates_global
        self.cmt_depth = cmt_depth
        self.clip_fp16 = bool(clip_fp16)
        self.loss_weights = dict(loss_weights or {})
        unweighted = set(self.loss_weights) - set(self.losses)
        if unweighted:
            raise ConfigError(f"method.loss_weights names losses that are not on: {sorted(unweighted)}")
        if "id" in self.losses:
            if num_classes <= 0:
                raise ConfigError("method.losses: the ID loss needs training identities (num_classes > 0)")
            self.classifier = nn.Linear(d, num_classes)  # model/build.py:21-24
            nn.init.normal_(self.classifier.weight, std=0.001)
            nn.init.zeros_(self.classifier.bias)
        if "mlm" in self.losses:
            heads = max(1, d // 64)
            self.cross_attn = nn.MultiheadAttention(d, heads, batch_first=True)
            # QuickGELU as in the released block (model/clip_model.py:236-240); open_clip defaults to nn.GELU
            self.cross_modal_transformer = clip_transformer(width=d, layers=cmt_depth, heads=heads, quick_gelu=True)
            self.ln_pre_t, self.ln_pre_i, self.ln_post = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
            self.mlm_head = nn.Sequential(OrderedDict(
                dense=nn.Linear(d, d), gelu=QuickGELU(), ln=nn.LayerNorm(d), fc=nn.Linear(d, self.encoder.vocab_size)))
            self._init_cross(d, cmt_depth)
        if self.clip_fp16:  # model/build.py:146-150: convert_weights on the whole model
            convert_weights(self)
            self.encoder.cast_inputs_to_weight_dtype()

    def _init_cross(self, d, depth):
        """model/build.py:34-60."""
        scale = d ** -0.5
        proj_std, attn_std, fc_std = scale * (2 * depth) ** -0.5, scale, (2 * d) ** -0.5
        init_clip_transformer(self.cross_modal_transformer, attn_std, proj_std, fc_std)
        nn.init.normal_(self.cross_attn.in_proj_weight, std=attn_std)
        nn.init.normal_(self.cross_attn.out_proj.weight, std=proj_std)
        nn.init.normal_(self.mlm_head.dense.weight, std=fc_std)
        nn.init.normal_(self.mlm_head.fc.weight, std=proj_std)

    @classmethod
    def validate_config(cls, cfg: dict) -> None:
        """Type and range checks of every key, so a bad override fails before any data is loaded."""
        super().validate_config(cfg)
        cls.check_values(cfg)

    @staticmethod
    def check_values(cfg: dict) -> None:
        checks.check_values(cfg)

    # ------------------------------------------------------------------ interface
    @property
    def image_spec(self) -> ImageSpec:
        """IRRA's released pipeline (datasets/build.py:21-44): bilinear Resize at train and test, flip, Pad(10) +
        RandomCrop, CLIP mean/std, RandomErasing(scale=(0.02, 0.4), value=mean)."""
        return ImageSpec(size=self.encoder.image_size, train_interpolation="bilinear", test_interpolation="bilinear",
                         augment=dict(flip=True, pad_crop=10, erasing=0.5), erasing_fill="mean",
                         erasing_area=(0.02, 0.4), erasing_ratio=(0.3, 3.3))

    def describe(self):
        return dict(losses=list(self.losses), temperature=1.0 / self.logit_scale, cmt_depth=self.cmt_depth,
                    mlm_contaminates_global=self.mlm_contaminates_global, clip_fp16=self.clip_fp16,
                    encoder=self.encoder.preset)

    def deviations(self, cfg: dict | None = None) -> list[Deviation]:
        """The differences from the released code in effect for this model and (when given) the run config."""
        return irra_deviations(self, cfg)

    # ------------------------------------------------------------------ training
    def _cross_former(self, q, kv):
        """model/build.py:68-79: cross-attention (no residual), the transformer, ln_post."""
        x = self.cross_attn(self.ln_pre_t(q), self.ln_pre_i(kv), self.ln_pre_i(kv), need_weights=False)[0]
        return self.ln_post(self.cross_modal_transformer(x))

    def _sdm_term(self, f: dict):
        return L.sdm_loss(f["i_feat"], f["t_feat"], f["pids"], self.logit_scale)

    def _extra_losses(self, f: dict, out: dict) -> None:
        """Terms a subclass adds after IRRA's (FMFA: EFA); ``f`` holds the forward pass."""

    def _loss_key(self, name: str) -> str:
        return "sdm_loss" if name in self.SDM_LOSSES else f"{name}_loss"

    def loss(self, batch):
        images, pids = batch["images"], batch["pids"]
        ids = self.tokenize(batch["captions"]).to(images.device)
        out = {}
        mlm_ids = labels = None
        if "mlm" in self.losses:
            mlm_ids, labels = L.mask_tokens(ids.cpu(), self.encoder.mask_token_id, batch.get("generator"))
            mlm_ids, labels = mlm_ids.to(ids.device), labels.to(ids.device)
        # IRRA masks the caption in place, so the global branch sees the masked text (issues #13, #29)
        global_ids = mlm_ids if (mlm_ids is not None and self.mlm_contaminates_global) else ids
        img_tokens = self.encoder.encode_image_tokens(images)
        txt_tokens = self.encoder.encode_text_tokens(global_ids)
        f = dict(pids=pids, global_ids=global_ids, img_tokens=img_tokens, txt_tokens=txt_tokens,
                 i_feat=img_tokens[:, 0].float(), t_feat=self.encoder.eot_features(txt_tokens, global_ids))
        if "itc" in self.losses:
            out["itc_loss"] = L.itc_loss(f["i_feat"], f["t_feat"], self.logit_scale)
        if any(n in self.losses for n in self.SDM_LOSSES):
            out["sdm_loss"] = self._sdm_term(f)
        if "id" in self.losses:
            out["id_loss"] = L.id_loss(self.classifier, f["i_feat"], f["t_feat"], pids)
        if "mlm" in self.losses:
            mlm_tokens = self.encoder.encode_text_tokens(mlm_ids)
            out["mlm_loss"] = L.mlm_loss(self.mlm_head, self._cross_former(mlm_tokens, img_tokens), labels)
        self._extra_losses(f, out)
        for name, w in self.loss_weights.items():
            key = self._loss_key(name)
            out[key] = out[key] * w
        return out
