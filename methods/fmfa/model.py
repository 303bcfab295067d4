"""FMFA on an IRRA-style CLIP: A-SDM + ID + IRR (MLM through a cross-modal encoder) + EFA.

Test-time scoring uses only the global features (image [CLS], text EOT), as in IRRA and FMFA;
the cross-modal encoder and EFA run in training only.
"""
from __future__ import annotations

from collections import OrderedDict

from open_clip.transformer import QuickGELU, Transformer
from torch import nn

from harness.encoders.dual import CLIPDualEncoder
from harness.plugin import Deviation, ImageSpec, RetrievalMethod
from harness.registry import build_encoder

from . import losses as L
from .checks import LOSSES, check_margins, check_values
from .deviations import fmfa_deviations


class FMFA(CLIPDualEncoder, RetrievalMethod):
    """Fine-grained alignment (FMFA, arXiv 2509.13754) as a harness plugin.

    Args:
        num_classes: training identities, for the ID classifier (needed when "id" is in ``losses``).
        encoder: the shared CLIP encoder's config (``type="clip"``, preset, image_size, context_length,
            checkpoint).
        losses: terms summed in training, from "itc", "sdm", "asdm", "id", "mlm" (IRR through the cross-modal
            encoder) and "efa"; released: asdm, id, mlm, efa.
        temperature: fixed softmax temperature of ITC/SDM (0.02; the logit scale is its inverse, not learnt).
        asdm_mode, asdm_alpha: A-SDM weight as in the released code ("code", 0.1) or the paper ("paper", 10).
        asdm_detach_weight: stop the gradient through the A-SDM weight (released: it flows; the paper is silent).
        efa_margins: EFA margins (text<->E, patches<->E); None only without "efa" (``configs/paper.py``).
        efa_row_normalise: L2-normalise the pooled EFA similarity rows (released).
        efa_mask_padding: keep padding tokens out of EFA (released: they enter it).
        cmt_depth: layers of the cross-modal transformer behind IRR (4).
        mlm_contaminates_global: the global text feature is taken from the masked caption (released quirk).
        loss_weights: per-term multipliers keyed by names in ``losses`` (default 1 each).
    """

    def __init__(self, num_classes: int = 0, encoder: dict | None = None, losses=("asdm", "id", "mlm", "efa"),
                 temperature: float = 0.02, asdm_mode: str = "code", asdm_alpha: float = 0.1,
                 asdm_detach_weight: bool = False,
                 efa_margins=(0.1, 0.9), efa_row_normalise: bool = True, efa_mask_padding: bool = False,
                 cmt_depth: int = 4, mlm_contaminates_global: bool = True, loss_weights: dict | None = None,
                 **kwargs):
        super().__init__(num_classes=num_classes, **kwargs)
        unknown = set(losses) - set(LOSSES)
        if unknown:
            raise ValueError(f"unknown FMFA loss names {sorted(unknown)}")
        check_margins(efa_margins, losses)
        self.encoder = build_encoder(encoder, "clip")
        d = self.encoder.embed_dim
        self.losses = tuple(losses)
        self.logit_scale = 1.0 / temperature  # fixed, not learnable (IRRA)
        self.asdm_mode, self.asdm_alpha, self.asdm_detach_weight = asdm_mode, asdm_alpha, asdm_detach_weight
        self.efa_margins = tuple(efa_margins) if efa_margins is not None else None
        self.efa_row_normalise = efa_row_normalise
        self.efa_mask_padding = efa_mask_padding
        self.mlm_contaminates_global = mlm_contaminates_global
        self.cmt_depth = cmt_depth
        self.loss_weights = dict(loss_weights or {})
        unweighted = set(self.loss_weights) - set(self.losses)
        if unweighted:
            raise ValueError(f"loss_weights names losses that are not on: {sorted(unweighted)}")
        if "id" in self.losses:
            if num_classes <= 0:
                raise ValueError("the ID loss needs num_classes > 0")
            self.classifier = nn.Linear(d, num_classes)
            nn.init.normal_(self.classifier.weight, std=0.001)
            nn.init.zeros_(self.classifier.bias)
        if "mlm" in self.losses:
            heads = max(1, d // 64)
            self.cross_attn = nn.MultiheadAttention(d, heads, batch_first=True)
            # QuickGELU as in the released block (FMFA model/clip_model.py:260); open_clip defaults to nn.GELU
            self.cross_modal_transformer = Transformer(width=d, layers=cmt_depth, heads=heads, act_layer=QuickGELU)
            self.ln_pre_t, self.ln_pre_i, self.ln_post = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
            self.mlm_head = nn.Sequential(OrderedDict(
                dense=nn.Linear(d, d), gelu=QuickGELU(), ln=nn.LayerNorm(d), fc=nn.Linear(d, self.encoder.vocab_size)))
            self._init_cross(d, cmt_depth)

    def _init_cross(self, d, depth):
        scale = d ** -0.5
        proj_std, attn_std, fc_std = scale * (2 * depth) ** -0.5, scale, (2 * d) ** -0.5
        for blk in self.cross_modal_transformer.resblocks:
            nn.init.normal_(blk.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(blk.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(blk.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(blk.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.cross_attn.in_proj_weight, std=attn_std)
        nn.init.normal_(self.cross_attn.out_proj.weight, std=proj_std)
        nn.init.normal_(self.mlm_head.dense.weight, std=fc_std)
        nn.init.normal_(self.mlm_head.fc.weight, std=proj_std)

    @classmethod
    def validate_config(cls, cfg: dict) -> None:
        """Type and range checks of every FMFA key, so a bad override fails before any data is loaded."""
        super().validate_config(cfg)
        check_values(cfg)

    # ------------------------------------------------------------------ interface
    @property
    def image_spec(self) -> ImageSpec:
        """FMFA's released pipeline (yinhao1102/FMFA datasets/build.py:21-44, IRRA's): bilinear Resize at train
        and test, flip, Pad(10) + RandomCrop, CLIP mean/std, RandomErasing(scale=(0.02, 0.4), value=mean)."""
        return ImageSpec(size=self.encoder.image_size, train_interpolation="bilinear", test_interpolation="bilinear",
                         augment=dict(flip=True, pad_crop=10, erasing=0.5), erasing_fill="mean",
                         erasing_area=(0.02, 0.4), erasing_ratio=(0.3, 3.3))

    def describe(self):
        return dict(asdm_mode=self.asdm_mode, asdm_alpha=self.asdm_alpha, asdm_detach_weight=self.asdm_detach_weight,
                    efa_margins=list(self.efa_margins) if self.efa_margins else None,
                    efa_row_normalise=self.efa_row_normalise, mlm_contaminates_global=self.mlm_contaminates_global,
                    losses=list(self.losses), temperature=1.0 / self.logit_scale, encoder=self.encoder.preset)

    def deviations(self) -> list[Deviation]:
        return fmfa_deviations(self)

    # ------------------------------------------------------------------ training
    def _cross_former(self, q, kv):
        x = self.cross_attn(self.ln_pre_t(q), self.ln_pre_i(kv), self.ln_pre_i(kv), need_weights=False)[0]
        return self.ln_post(self.cross_modal_transformer(x))

    def loss(self, batch):
        images, pids = batch["images"], batch["pids"]
        ids = self.tokenize(batch["captions"]).to(images.device)
        out = {}
        mlm_ids = labels = None
        if "mlm" in self.losses:
            mlm_ids, labels = L.mask_tokens(ids.cpu(), self.encoder.mask_token_id, batch.get("generator"))
            mlm_ids, labels = mlm_ids.to(ids.device), labels.to(ids.device)
        # IRRA/FMFA mask the caption in place, so the global branch sees the masked text (issues #13, #29)
        global_ids = mlm_ids if (mlm_ids is not None and self.mlm_contaminates_global) else ids
        img_tokens = self.encoder.encode_image_tokens(images)
        txt_tokens = self.encoder.encode_text_tokens(global_ids)
        i_feat = img_tokens[:, 0].float()
        t_feat = self.encoder.eot_features(txt_tokens, global_ids)
        if "itc" in self.losses:
            out["itc_loss"] = L.itc_loss(i_feat, t_feat, self.logit_scale)
        if "sdm" in self.losses or "asdm" in self.losses:
            mode = self.asdm_mode if "asdm" in self.losses else "off"
            out["sdm_loss"] = L.sdm_loss(i_feat, t_feat, pids, self.logit_scale, asdm=mode, alpha=self.asdm_alpha,
                                          detach_weight=self.asdm_detach_weight)
        if "id" in self.losses:
            out["id_loss"] = L.id_loss(self.classifier, i_feat, t_feat, pids)
        if "mlm" in self.losses:
            mlm_tokens = self.encoder.encode_text_tokens(mlm_ids)
            out["mlm_loss"] = L.mlm_loss(self.mlm_head, self._cross_former(mlm_tokens, img_tokens), labels)
        if "efa" in self.losses:
            patches = img_tokens[:, 1:]
            e = L.efa_aggregate(txt_tokens, patches)
            mask = (global_ids > 0) if self.efa_mask_padding else None
            m_t, m_v = self.efa_margins
            out["efa_loss"] = (L.efa_contrast(txt_tokens, e, m_t, row_normalise=self.efa_row_normalise, x_mask=mask)
                               + L.efa_contrast(patches, e, m_v, row_normalise=self.efa_row_normalise))
        for name, w in self.loss_weights.items():
            key = "sdm_loss" if name == "asdm" else f"{name}_loss"
            out[key] = out[key] * w
        return out
