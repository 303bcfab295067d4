"""LGUR (Shao et al., ACM MM'22): dictionary-based granularity alignment (DGA) + prototype-based
granularity unification (PGU), as in the released ``TextImgPersonReidNet_mydecoder_pixelVit_transTXT_3_bert``.

Image tokens come from the harness' shared CLIP ViT (all blocks but the last, no final norm, [CLS]
removed, as LGUR does with DeiT), projected to the model width ``dim``; text tokens come from a frozen
shared BERT followed by a trainable BiLSTM.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.plugin import Deviation, ImageSpec, ReleasedSetting, RetrievalMethod, deviations_from
from harness.registry import build_encoder

from .modules import RANK_TEXT_ANCHORS, BiLSTMHead, CrossAttentionDecoder, semi_hard_ranking_loss

IMAGENET = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
RELEASED_SETTINGS = (  # the switchable differences from ZhiyinShao-H/LGUR@c203cc7
    ReleasedSetting("image-stats", lambda m: (list(m.image_spec.mean), list(m.image_spec.std)),
                    (list(IMAGENET["mean"]), list(IMAGENET["std"])), "ImageNet mean/std (data/dataloader.py:26, 42)",
                    "mean {v[0]}, std {v[1]}", "method.image_mean, method.image_std"),
    ReleasedSetting("rank-text-anchor", lambda m: m.rank_text_anchor, "released",
                    "text-anchor negatives picked on S^T, hinge taken on S[anchor, negative] "
                    "(loss/RankingLoss.py:64-74)",
                    "true text anchors: hinge on S^T[anchor, negative]", "method.rank_text_anchor"),
    ReleasedSetting("margin", lambda m: m.margin, 0.3,
                    "ranking margin 0.3 (train_mydecoder_pixelvit_txtimg_3_bert.py:79)", "margin {v}", "method.margin"),
    ReleasedSetting("text-encoder", lambda m: (m.freeze_text, m.text_dropout_in_train), (True, True),
                    "frozen BERT, dropout active in training (model/text_feature_extract.py:70-79)",
                    "freeze_text={v[0]}, text_dropout_in_train={v[1]}",
                    "method.freeze_text, method.text_dropout_in_train"),
    ReleasedSetting("last-block", lambda m: m.drop_last_block, True,
                    "image tokens after all blocks but the last (vit_pytorch.py:394, local_feature=True)",
                    "image tokens after every block", "method.drop_last_block"),
)


class LGUR(RetrievalMethod):
    """LGUR as released, on the harness' shared encoders.

    Args:
        vision, text: shared encoder configs (CLIP ViT for the image tokens, BERT for the text).
        dim: model width of DGA/PGU (384 as released); image tokens are projected to it.
        dict_size, num_prototypes, part_dim: dictionary atoms (400), prototypes (6), per-part width (512).
        recon, proto: decoder shapes of theta_r (DGA) and theta_p (PGU).
        margin: ranking margin (0.3).
        rank_text_anchor: "released" (the released indexing, see ``modules.ranking_loss``) or "corrected".
        drop_last_block: run all ViT blocks but the last (released ``local_feature=True``).
        freeze_text, text_dropout_in_train: frozen BERT whose dropout stays on in training (released).
        image_mean, image_std: input normalisation (released: ImageNet's; CLIP's by default, see deviations).
        augment: train-time image augmentation (``ImageSpec`` keys flip, pad_crop, erasing).
        num_classes: training identities, for the per-prototype ID heads (given by the harness).
    """

    @classmethod
    def validate_config(cls, cfg: dict) -> None:
        """Types and ranges of LGUR's own values, before any data is read (harness.config_schema)."""
        super().validate_config(cfg)
        from harness.config_schema import (check_bools, check_choice, check_encoder, check_floats, check_ints,
                                            check_rgb)
        from harness.encoders.bert import BertEncoder
        from harness.encoders.clip import CLIPEncoder

        check_encoder("method.vision", cfg.get("vision"), CLIPEncoder, "clip")
        check_encoder("method.text", cfg.get("text"), BertEncoder, "bert")
        check_ints("method", cfg, dim=1, dict_size=1, num_prototypes=1, part_dim=1)
        check_floats("method", cfg, margin=dict(lo=0.0))
        if "rank_text_anchor" in cfg:
            check_choice("method.rank_text_anchor", cfg["rank_text_anchor"], RANK_TEXT_ANCHORS)
        check_bools("method", cfg, "drop_last_block", "freeze_text", "text_dropout_in_train")
        check_rgb("method", cfg, "image_mean", "image_std")

    def __init__(self, num_classes: int = 0, vision: dict | None = None, text: dict | None = None, dim: int = 384,
                 dict_size: int = 400, num_prototypes: int = 6, part_dim: int = 512,
                 recon: dict | None = None, proto: dict | None = None, margin: float = 0.3,
                 rank_text_anchor: str = "released",
                 drop_last_block: bool = True, freeze_text: bool = True, text_dropout_in_train: bool = True,
                 image_mean=(0.48145466, 0.4578275, 0.40821073), image_std=(0.26862954, 0.26130258, 0.27577711),
                 augment: dict | None = None, **kwargs):
        super().__init__(num_classes=num_classes, **kwargs)
        if num_classes <= 0:
            raise ValueError("LGUR's per-prototype ID heads need num_classes > 0")
        if rank_text_anchor not in RANK_TEXT_ANCHORS:
            raise ValueError(f"rank_text_anchor must be one of {RANK_TEXT_ANCHORS}, got {rank_text_anchor!r}")
        clip = build_encoder(vision, "clip")
        # the vision tower's parts only (the CLIP text tower is not used)
        tower = clip.vision_tower()
        self.patch_embed, self.cls_token = tower.patch_embed, tower.class_token
        self.pos_embed, self.ln_pre, self.blocks = tower.positions, tower.pre_norm, tower.blocks
        self.image_size, self.drop_last_block = clip.image_size, drop_last_block
        width = tower.width
        self.visual_proj = nn.Linear(width, dim) if width != dim else nn.Identity()
        self.text_encoder = build_encoder(text, "bert")
        self.freeze_text, self.text_dropout_in_train = freeze_text, text_dropout_in_train
        if freeze_text:
            self.text_encoder.requires_grad_(False)
        self.text_lstm = BiLSTMHead(self.text_encoder.hidden_size, dim)
        recon = dict(dict(depth=1, heads=6, dim_head=64, mlp_dim=768), **(recon or {}))
        proto = dict(dict(depth=2, heads=6, dim_head=512, mlp_dim=512), **(proto or {}))
        self.recon = CrossAttentionDecoder(dim, **recon)  # theta_r (DGA)
        self.proto_decoder = CrossAttentionDecoder(dim, **proto)  # theta_p (PGU)
        self.dictionary = nn.Parameter(torch.randn(dict_size, dim))  # multi-modality shared dictionary
        self.prototypes = nn.Parameter(torch.randn(num_prototypes, dim))  # shared by both modalities
        self.foreground = nn.Linear(dim, 1)
        self.part_proj = nn.ModuleList(nn.Linear(dim, part_dim, bias=False) for _ in range(num_prototypes))
        for p in self.part_proj:
            nn.init.kaiming_normal_(p.weight, mode="fan_out")
        self.classifiers = nn.ModuleList(nn.Linear(part_dim, num_classes) for _ in range(num_prototypes))
        for c in self.classifiers:
            nn.init.normal_(c.weight, std=0.001)
            nn.init.zeros_(c.bias)
        self.margin, self.rank_text_anchor = margin, rank_text_anchor
        self.presets = dict(vision=clip.preset, text=self.text_encoder.preset)
        # the released pipeline (ZhiyinShao-H/LGUR data/dataloader.py:21-42): bicubic Resize at train and test,
        # no random erasing; size, mean/std and augment from the arguments
        self._spec = ImageSpec(size=self.image_size, mean=tuple(image_mean), std=tuple(image_std),
                               augment=dict(augment or dict(flip=True, pad_crop=10, erasing=0.0)),
                               train_interpolation="bicubic", test_interpolation="bicubic")

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_text and not self.text_dropout_in_train:
            self.text_encoder.eval()
        return self

    # ------------------------------------------------------------------ tokens
    @property
    def image_spec(self) -> ImageSpec:
        """LGUR's released pipeline, built once in the constructor."""
        return self._spec

    def tokenize(self, captions):
        return self.text_encoder.tokenize(captions)

    def image_tokens(self, images: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(images).flatten(2).transpose(1, 2)
        cls = self.cls_token.to(x.dtype).expand(x.shape[0], 1, -1)
        x = self.ln_pre(torch.cat([cls, x], dim=1) + self.pos_embed.to(x.dtype))
        blocks = self.blocks
        for blk in (blocks[:-1] if self.drop_last_block and len(blocks) > 1 else blocks):
            x = blk(x)
        return self.visual_proj(x[:, 1:])

    def text_tokens(self, tok: dict) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = tok["input_ids"], tok["attention_mask"]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_text):
            h = self.text_encoder(ids, mask)
        return self.text_lstm(h, mask), mask

    # ------------------------------------------------------------------ DGA / PGU
    def _expand(self, p: torch.Tensor, n: int) -> torch.Tensor:
        return p.unsqueeze(0).expand(n, -1, -1)

    def reconstruct(self, x, memory=None, kv_mask=None):
        """DGA: residual cross-attention read-out from the dictionary (or from ``memory``)."""
        memory = self._expand(self.dictionary, x.shape[0]) if memory is None else memory
        return self.recon(x, memory, kv_mask)

    def unify(self, tokens, kv_mask=None) -> torch.Tensor:
        """PGU: the shared prototypes read the tokens; each part gets its own 512-d projection -> [B, K, P]."""
        parts = self.proto_decoder(self._expand(self.prototypes, tokens.shape[0]), tokens, kv_mask)
        return torch.stack([proj(parts[:, k]) for k, proj in enumerate(self.part_proj)], dim=1)

    def encode_image(self, images):
        v = self.image_tokens(images)
        gate = torch.sigmoid(self.foreground(v))
        return self.unify(self.reconstruct(v) * gate).flatten(1).float()

    def encode_text(self, tok):
        t, mask = self.text_tokens(tok)
        return self.unify(self.reconstruct(t), mask).flatten(1).float()

    def describe(self):
        return dict(dict_size=self.dictionary.shape[0], prototypes=self.prototypes.shape[0],
                    embed_dim=self.prototypes.shape[0] * self.part_proj[0].out_features, margin=self.margin,
                    rank_text_anchor=self.rank_text_anchor, freeze_text=self.freeze_text,
                    text_dropout_in_train=self.text_dropout_in_train,
                    **{f"encoder_{k}": v for k, v in self.presets.items()})

    def deviations(self) -> list[Deviation]:
        """What still differs from ZhiyinShao-H/LGUR@c203cc7 with this configuration."""
        out = [Deviation("clip-vit", "DeiT-Small distilled, width 384, drop-path 0.1 "
                                     "(model/model.py:156-162, local_feature=True)",
                         f"CLIP ViT '{self.presets['vision']}' + Linear to {self.prototypes.shape[1]}, CLIP's ln_pre, "
                         "no drop-path")]
        return out + deviations_from(self, RELEASED_SETTINGS)

    # ------------------------------------------------------------------ training
    def id_loss(self, a, b, pids):
        return torch.stack([F.cross_entropy(c(a[:, k]), pids) + F.cross_entropy(c(b[:, k]), pids)
                            for k, c in enumerate(self.classifiers)]).mean()

    def loss(self, batch):
        images, pids, g = batch["images"], batch["pids"], batch.get("generator")
        tok = {k: v.to(images.device) for k, v in self.tokenize(batch["captions"]).items()}
        v = self.image_tokens(images)
        t, mask = self.text_tokens(tok)
        gate = torch.sigmoid(self.foreground(v))
        v_dict = self.reconstruct(v) * gate
        v_text = self.reconstruct(v, memory=t, kv_mask=mask) * gate  # cross-modality guidance (training only)
        f_v, f_v_dict = self.unify(v_text), self.unify(v_dict)
        f_t, f_t_dict = self.unify(t, mask), self.unify(self.reconstruct(t), mask)
        rank = lambda a, b: semi_hard_ranking_loss(a, b, pids, self.margin, g, self.rank_text_anchor)  # noqa: E731
        return dict(
            id_loss=self.id_loss(f_v, f_t, pids) + self.id_loss(f_v_dict, f_t_dict, pids),
            rank_loss=rank(f_v, f_t) + rank(f_v_dict, f_t_dict),
            rank_recon_loss=rank(f_t, f_t_dict),
            rank_guidance_loss=rank(f_v, f_v_dict),
        )
