"""LGUR (Shao et al., ACM MM'22): dictionary-based granularity alignment (DGA) + prototype-based
granularity unification (PGU), as in the released ``TextImgPersonReidNet_mydecoder_pixelVit_transTXT_3_bert``.

Image tokens come from the harness' shared CLIP ViT (all blocks but the last, no final norm, [CLS]
removed, as LGUR does with DeiT), projected to the model width ``dim``; text tokens come from a frozen
shared BERT followed by a trainable BiLSTM.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from harness.api import ConfigError, Deviation, ImageSpec, ReleasedSetting, RetrievalMethod, build_encoder, config_value

from .published import PUBLISHED
from .modules import RANK_TEXT_ANCHORS, BiLSTMHead, CrossAttentionDecoder, semi_hard_ranking_loss

IMAGENET = dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
AUGMENT = dict(flip=True, pad_crop=10, erasing=0.0)  # data/dataloader.py:20-27: Pad 10, RandomCrop, flip, no erasing
RECON = dict(depth=1, heads=6, dim_head=64, mlp_dim=768)  # model/DETR_model.py:144-145 (TXTDecoder_2, theta_r)
PROTO = dict(depth=2, heads=6, dim_head=512, mlp_dim=512)  # model/DETR_model.py:141-142 (TXTDecoder, theta_p)
RECIPE = "train_mydecoder_pixelvit_txtimg_3_bert.py"

# The one table of ZhiyinShao-H/LGUR@c203cc7's settings: every model switch and every recipe key of a run config
# that can change results is here with its released value; always-on differences are Deviations.
RELEASED_SETTINGS = (
    ReleasedSetting("clip-vit", lambda m: (m.presets["vision"], list(m.image_size), m.prototypes.shape[1]), None,
                    "DeiT-Small distilled, width 384, drop-path 0.1, 384x128 images (model/model.py:156-162, "
                    "local_feature=True)",
                    "CLIP ViT '{v[0]}' at {v[1][0]}x{v[1][1]} + Linear to {v[2]}, CLIP's ln_pre, no drop-path",
                    "method.vision"),
    ReleasedSetting("text-preset", lambda m: (m.text_encoder.num_layers, m.text_encoder.hidden_size,
                                              m.text_encoder.context_length), (12, 768, 100),
                    "bert-base-uncased (12 x 768; model/text_feature_extract.py:68-69), token ids cut at 100 "
                    "(data/dataset.py:69-76, option/options.py:49 caption_length_max)",
                    "BERT " + "'{m.presets[text]}' ({v[0]} x {v[1]}), {v[2]} tokens", "method.text"),
    ReleasedSetting("random-init", lambda m, c: (config_value(c, "method.vision.checkpoint") is not None,
                                                 config_value(c, "method.text.path") is not None), (True, True),
                    "ImageNet DeiT-S and bert-base-uncased weights (model/model.py:156-162, "
                    "text_feature_extract.py:70)", "pretrained vision weights: {v[0]}, pretrained text weights: {v[1]}",
                    "method.vision.checkpoint, method.text.path", run=True),
    ReleasedSetting("image-stats", lambda m: (list(m.image_spec.mean), list(m.image_spec.std)),
                    (list(IMAGENET["mean"]), list(IMAGENET["std"])), "ImageNet mean/std (data/dataloader.py:26, 42)",
                    "mean {v[0]}, std {v[1]}", "method.image_mean, method.image_std"),
    ReleasedSetting("augment", lambda m: dict(m.image_spec.augment), AUGMENT,
                    "Pad 10 + RandomCrop, then flip p=0.5, no erasing (data/dataloader.py:20-27)", "augment {v}",
                    "method.augment"),
    ReleasedSetting("widths", lambda m: (m.prototypes.shape[1], m.dictionary.shape[0], m.prototypes.shape[0],
                                         m.part_proj[0].out_features), (384, 400, 6, 512),
                    "width 384, 400 dictionary atoms, 6 prototypes, 512-d parts (model/DETR_model.py:152-157, "
                    "option/options.py:45 feature_length)",
                    "width {v[0]}, {v[1]} atoms, {v[2]} prototypes, {v[3]}-d parts",
                    "method.dim, method.dict_size, method.num_prototypes, method.part_dim"),
    ReleasedSetting("decoders", lambda m: (m.recon_cfg, m.proto_cfg), (RECON, PROTO),
                    "theta_r depth 1, 6 heads of 64, MLP 768; theta_p depth 2, 6 heads of 512, MLP 512 "
                    "(model/DETR_model.py:141-145)", "recon {v[0]}, proto {v[1]}", "method.recon, method.proto"),
    ReleasedSetting("rank-text-anchor", lambda m: m.rank_text_anchor, "released",
                    "text-anchor negatives picked on S^T, hinge taken on S[anchor, negative] "
                    "(loss/RankingLoss.py:64-74)",
                    "true text anchors: hinge on S^T[anchor, negative]", "method.rank_text_anchor"),
    ReleasedSetting("margin", lambda m: m.margin, 0.3,
                    f"ranking margin 0.3 ({RECIPE}:79)", "margin {v}", "method.margin"),
    ReleasedSetting("text-encoder", lambda m: (m.freeze_text, m.text_dropout_in_train), (True, True),
                    "frozen BERT, dropout active in training (model/text_feature_extract.py:70-79)",
                    "freeze_text={v[0]}, text_dropout_in_train={v[1]}",
                    "method.freeze_text, method.text_dropout_in_train"),
    ReleasedSetting("last-block", lambda m: m.drop_last_block, True,
                    "image tokens after all blocks but the last (vit_pytorch.py:394, local_feature=True)",
                    "image tokens after every block", "method.drop_last_block"),
    ReleasedSetting("optimizer", lambda m, c: config_value(c, "optim_wrapper.optimizer"),
                    dict(type="Adam", lr=1e-4, betas=[0.9, 0.999], eps=1e-8, weight_decay=0.0),
                    f"Adam betas (0.9, 0.999), no weight decay, base lr 1e-4 ({RECIPE}:78, 105, 149-159)",
                    "optimizer {v}", "optim_wrapper.optimizer, optim_wrapper.type", run=True),
    ReleasedSetting("lr-groups", lambda m, c: config_value(c, "optim_wrapper.paramwise_cfg", {}),
                    dict(custom_keys={k: dict(lr_mult=10.0) for k in ("text_lstm", "part_proj", "classifiers")}),
                    f"BiLSTM, part projections and ID heads at 1e-3, the rest 1e-4 ({RECIPE}:149-156)",
                    "paramwise_cfg {v}", "optim_wrapper.paramwise_cfg", run=True),
    ReleasedSetting("grad-steps", lambda m, c: (config_value(c, "optim_wrapper.clip_grad"),
                                                config_value(c, "optim_wrapper.accumulative_counts", 1)), (None, 1),
                    f"one unclipped step per batch ({RECIPE}:179-240)", "clip_grad {v[0]}, accumulating {v[1]}",
                    "optim_wrapper.clip_grad, optim_wrapper.accumulative_counts", run=True),
    ReleasedSetting("schedule", lambda m, c: config_value(c, "param_scheduler"),
                    [dict(type="MultiStepLR", by_epoch=True, milestones=[19, 39, 49], gamma=0.1)],
                    f"MultiStepLR [20, 40, 50] x0.1 stepped at the start of each epoch ({RECIPE}:121, 177-180), "
                    "i.e. decays after epochs 19, 39, 49", "param_scheduler {v}", "param_scheduler", run=True),
    ReleasedSetting("epochs", lambda m, c: config_value(c, "train.epochs"), 60, f"60 epochs ({RECIPE}:120)",
                    "{v} epochs", "train.epochs", run=True),
    ReleasedSetting("batch-size", lambda m, c: config_value(c, "train.batch_size"), 64, f"batch 64 ({RECIPE}:123)",
                    "batch {v}", "train.batch_size", run=True),
    ReleasedSetting("sampler", lambda m, c: (config_value(c, "train.sampler", {}).get("type", "random"),
                                             config_value(c, "train.drop_last")), ("random", True),
                    "shuffled batches, the last partial batch dropped (data/dataloader.py:32-33)",
                    "sampler '{v[0]}', drop_last {v[1]}", "train.sampler, train.drop_last", run=True),
    ReleasedSetting("precision", lambda m, c: config_value(c, "train.amp", "off"), "off",
                    f"fp32 ({RECIPE}: no autocast)", "train.amp={v}", "train.amp", run=True),
    ReleasedSetting("checkpoint-selection", lambda m, c: (config_value(c, "train.selection", "last"),
                                                          config_value(c, "train.val_split", 0.0)), None,
                    f"evaluates on the test split every epoch and keeps the best R1 ({RECIPE}:252-263)",
                    "selection '{v[0]}' (val_split {v[1]}); never the test split",
                    "train.selection, train.val_split, train.eval_interval", run=True),
    ReleasedSetting("id-classes", lambda m, c: m.num_classes, 11000,
                    "CUHK-PEDES: 11,000 ID classes, identities 1369, 4116, 6116 (one image each) dropped "
                    "(processed_data_singledata_CUHK.py:120)", "{v} classes: every training identity kept",
                    "", applies=lambda m, c: config_value(c, "dataset.type") == "cuhk", run=True),
    Deviation("tie-rule", "np.argsort(similarity)[::-1] (quicksort, not stable) orders equal scores "
              "(test_during_train.py:50)", "a stable sort: equal scores keep gallery order (only duplicate scores "
              "differ)"),
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
        freeze_text, text_dropout_in_train: frozen BERT whose dropout stays on in training (released); either
            switch works alone (``text_dropout_in_train=False`` turns BERT's dropout off, trained or frozen).
        image_mean, image_std: input normalisation (released: ImageNet's; CLIP's by default, see deviations).
        augment: train-time image augmentation (``ImageSpec`` keys flip, pad_crop, erasing).
        num_classes: training identities, for the per-prototype ID heads (given by the harness).
    """

    released_settings = RELEASED_SETTINGS
    config_dir = Path(__file__).parent / "configs"  # default.py and <dataset>.py files
    published = PUBLISHED

    @classmethod
    def validate_config(cls, cfg: dict) -> None:
        """Types and ranges of LGUR's own values, before any data is read (the check helpers of harness.api)."""
        super().validate_config(cfg)
        from harness.api import (BertEncoder, CLIPEncoder, check_bools, check_choice, check_encoder, check_floats,
                                 check_ints, check_rgb)

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
            raise ConfigError("LGUR's per-prototype ID heads need training identities (num_classes > 0)")
        if rank_text_anchor not in RANK_TEXT_ANCHORS:
            raise ConfigError(f"method.rank_text_anchor must be one of {RANK_TEXT_ANCHORS}, got {rank_text_anchor!r}")
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
        recon = dict(RECON, **(recon or {}))
        proto = dict(PROTO, **(proto or {}))
        self.recon_cfg, self.proto_cfg = recon, proto
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
        # the released pipeline (ZhiyinShao-H/LGUR data/dataloader.py:21-42): bicubic Resize at train and test, Pad +
        # RandomCrop before the flip,
        # no random erasing; size, mean/std and augment from the arguments
        self._spec = ImageSpec(size=self.image_size, mean=tuple(image_mean), std=tuple(image_std),
                               augment=dict(AUGMENT if augment is None else augment),
                               train_interpolation="bicubic", test_interpolation="bicubic", crop_then_flip=True)

    def train(self, mode: bool = True):
        """``text_dropout_in_train=False`` keeps the BERT in eval mode (no dropout) in training, frozen or not."""
        super().train(mode)
        if not self.text_dropout_in_train:
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
