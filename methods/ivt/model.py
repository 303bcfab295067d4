"""IVT (Shu et al., ECCV'22 W): one transformer for both modalities with shared attention and
LayerNorms and modality-specific FFNs, trained with multi-level alignment (MLA), token-drop BMM and CMPM.

Built from the harness' shared encoders exactly as the released ``load_param_hybrid`` does: the
vision half (patch embedding, attention, LayerNorms, image FFNs) comes from the CLIP ViT, the text
FFNs and text embeddings from BERT; BERT's attention and post-LN LayerNorms are discarded.
"""
from __future__ import annotations

from pathlib import Path

from collections import OrderedDict

import torch
from torch import nn
from torchvision.ops import stochastic_depth

from harness.api import (CaptionRule, ConfigError, Deviation, HarnessError, ImageSpec, ReleasedSetting,
                         RetrievalMethod, VisionBlockParts, build_encoder, config_value, tokenize_captions)

from .published import PUBLISHED
from .losses import cmpm_loss, drop_tokens
from .views import phrase_view, word_view

LEVELS = ("word", "phrase", "sentence")
AUGMENT = dict(flip=True, pad_crop=10, erasing=0.5)  # datasets/make_dataloader.py:141-151
# released caption rules by dataset: RSTPReid drops captions over 90 words (datasets/rstp_reid.py:82-92), ICFG-PEDES
# cuts them at the 91st word (datasets/icfg_pedes.py:79-92), CUHK-PEDES keeps them (datasets/cuhk_pedes_level.py)
CAPTION_FILTERS = dict(rstp=dict(max_words=90, overflow="drop"), icfg=dict(max_words=90, overflow="truncate"))
RELEASED_RECIPE = dict(  # configs/CUHK_PEDES/vit_base_uvt_bert.yml:36-54, train_cuhkpedes_gpu.py:91-95, train_rstp.py
    optimizer=dict(type="SGD", lr=0.005, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys=dict(bias=dict(lr_mult=2.0, decay_mult=1.0))),
    param_scheduler=[dict(type="IVTCosineLR", by_epoch=True, begin=0, end="max_epochs", warmup_epochs=5,
                          warmup_factor=0.01, min_factor=0.002)],
)


def _dataset(m, c) -> str:
    return config_value(c, "dataset.type", "")


def _rstp(m, c) -> bool:
    return _dataset(m, c) == "rstp"


# The one table of PersonRetrieval-IVT@f205788's settings: every model switch and every recipe key of a run
# config that can change results is here with its released value; always-on differences are Deviations.
RELEASED_SETTINGS = (
    Deviation("no-vlp", "fine-tuning starts from the authors' VLP checkpoint (train_cuhkpedes_gpu.py:168-170; "
                        "the download has expired)", "no VLP stage: starts from the shared encoders' weights"),
    ReleasedSetting("clip-vit", lambda m: (m.encoder_presets["vision"], list(m.image_size)), None,
                    "timm ImageNet ViT-B/16 (GELU FFNs, no pre-norm, patch-embedding bias; vit_vl.py:1050-1102), "
                    "384x128 images (configs/*/vit_base_uvt_bert.yml:23-24)",
                    "CLIP ViT '{v[0]}' at {v[1][0]}x{v[1][1]} (QuickGELU image FFNs, CLIP's ln_pre, no "
                    "patch-embedding bias)", "method.vision"),
    ReleasedSetting("encoder-preset", lambda m: (m.encoder_presets["vision"], len(m.blocks), m.width,
                                                 list(m.image_size)), ("ViT-B-16", 12, 768, [384, 128]),
                    "ViT-B/16 with bert-base-uncased's 12 x 768 text FFNs and embeddings at 384x128 (vit_vl.py:1050, "
                    "configs/*/vit_base_uvt_bert.yml:23)",
                    "vision '{v[0]}', text '{m.encoder_presets[text]}', {v[1]} x {v[2]}, "
                    "{v[3][0]}x{v[3][1]} images",
                    "method.vision, method.text"),
    ReleasedSetting("random-init", lambda m, c: (config_value(c, "method.vision.checkpoint") is not None,
                                                 config_value(c, "method.text.path") is not None), (True, True),
                    "ImageNet ViT-B/16 and bert-base-uncased weights (vit_vl.py:1050-1102 load_param_hybrid)",
                    "pretrained vision weights: {v[0]}, pretrained text weights: {v[1]}",
                    "method.vision.checkpoint, method.text.path", run=True),
    ReleasedSetting("stride", lambda m, c: m.stride, lambda m, c: 16 if _rstp(m, c) else 12,
                    "patch stride 12 on CUHK-PEDES/ICFG-PEDES (train_cuhkpedes_gpu.py:95, train_icfg_gpu.py), 16 on "
                    "RSTPReid (configs/RSTPReID/vit_base_uvt_bert.yml:11)", "stride {v}", "method.stride", run=True),
    ReleasedSetting("image-stats", lambda m: (list(m.image_spec.mean), list(m.image_spec.std)),
                    ([0.5] * 3, [0.5] * 3), "normalisation mean = std = 0.5 (configs/*/vit_base_uvt_bert.yml:28-29)",
                    "mean {v[0]}, std {v[1]}", "method.image_mean, method.image_std"),
    ReleasedSetting("augment", lambda m: dict(m.image_spec.augment), AUGMENT,
                    "Pad 10 + RandomCrop, flip p=0.5, pixel-noise erasing p=0.5 (datasets/make_dataloader.py:141-151)",
                    "augment {v}", "method.augment"),
    ReleasedSetting("word-view", lambda m, c: _dataset(m, c) == "cuhk", False,
                    "CUHK-PEDES: random attribute phrases from cuhk_pedes_att.json (datasets/bases.py:188-193; not "
                    "public any more)", "the ICFG/RSTPReid comma-chunk rule (bases.py:239-247) on CUHK-PEDES",
                    "method.levels", applies=lambda m, c: "word" in m.levels, run=True),
    ReleasedSetting("caption-filter", lambda m, c: m.caption_filter, lambda m, c: CAPTION_FILTERS.get(_dataset(m, c)),
                    "captions over 90 words dropped on RSTPReid (datasets/rstp_reid.py:82-92), cut at the 91st "
                    "word on ICFG-PEDES (icfg_pedes.py:79-92), kept on CUHK-PEDES; in training and test (the "
                    "harness never edits a test split)", "training caption filter {v}", "method.caption_filter",
                    run=True),
    ReleasedSetting("levels", lambda m: list(m.levels), list(LEVELS),
                    "word, phrase and sentence texts against 3 image views (processor.py:114-123)",
                    "levels {v}", "method.levels"),
    ReleasedSetting("bmm-ratio", lambda m: m.bmm_ratio, 0.2,
                    "BMM drops up to 20% of the tokens (vit_vl.py:995-1003, percent=0.2)", "bmm_ratio {v}",
                    "method.bmm_ratio"),
    ReleasedSetting("cmpm-target", lambda m: m.cmpm_target_norm, "l2",
                    "CMPM targets y / ||y||_2 (loss/cmps_loss.py:48)", "targets normalised by {v}",
                    "method.cmpm_target_norm"),
    ReleasedSetting("drop-path", lambda m: m.drop_path, 0.1,
                    "stochastic depth rising to 0.1 (config/defaults.py:61, vit_vl.py:945)", "rising to {v}",
                    "method.drop_path"),
    ReleasedSetting("optimizer", lambda m, c: config_value(c, "optim_wrapper.optimizer"),
                    RELEASED_RECIPE["optimizer"], "SGD lr 0.005, momentum 0.9, weight decay 1e-4 "
                    "(configs/*/vit_base_uvt_bert.yml:42-53, solver/make_optimizer.py)", "optimizer {v}",
                    "optim_wrapper.optimizer, optim_wrapper.type", run=True),
    ReleasedSetting("lr-groups", lambda m, c: config_value(c, "optim_wrapper.paramwise_cfg", {}),
                    RELEASED_RECIPE["paramwise_cfg"], "every parameter whose name contains 'bias' at lr x2, same "
                    "decay (solver/make_optimizer.py:41-43, BIAS_LR_FACTOR 2)", "paramwise_cfg {v}",
                    "optim_wrapper.paramwise_cfg", run=True),
    ReleasedSetting("grad-steps", lambda m, c: (config_value(c, "optim_wrapper.clip_grad"),
                                                config_value(c, "optim_wrapper.accumulative_counts", 1)), (None, 1),
                    "one unclipped step per batch (processor.py:130-137)", "clip_grad {v[0]}, accumulating {v[1]}",
                    "optim_wrapper.clip_grad, optim_wrapper.accumulative_counts", run=True),
    ReleasedSetting("schedule", lambda m, c: config_value(c, "param_scheduler"), RELEASED_RECIPE["param_scheduler"],
                    "timm cosine, 5-epoch warm-up from 0.01x, floor 0.002x, stepped before each epoch "
                    "(solver/scheduler_factory.py, processor.py:109)", "param_scheduler {v}", "param_scheduler",
                    run=True),
    ReleasedSetting("epochs", lambda m, c: config_value(c, "train.epochs"), 120,
                    "120 epochs (configs/*/vit_base_uvt_bert.yml:44)", "{v} epochs", "train.epochs", run=True),
    ReleasedSetting("batch-size", lambda m, c: config_value(c, "train.batch_size"),
                    lambda m, c: 48 if _rstp(m, c) else 28,
                    "28 per process on CUHK-PEDES/ICFG-PEDES (train_cuhkpedes_gpu.py:94), 48 on RSTPReid "
                    "(train_rstp.py)", "batch {v}", "train.batch_size", run=True),
    ReleasedSetting("sampler", lambda m, c: (config_value(c, "train.sampler", {}), config_value(c, "train.drop_last")),
                    (dict(type="identity", num_instances=4), False),
                    "P x K identity sampler, K = 4, P distinct identities per batch (datasets/sampler.py:104-130, "
                    "make_dataloader.py:179-182), no drop_last", "sampler {v[0]}, drop_last {v[1]}",
                    "train.sampler, train.drop_last", run=True),
    ReleasedSetting("precision", lambda m, c: config_value(c, "train.amp", "off"), "fp16",
                    "fp16 autocast with GradScaler (processor.py:101, 130)", "train.amp={v}", "train.amp", run=True),
    ReleasedSetting("checkpoint-selection", lambda m, c: (config_value(c, "train.selection", "last"),
                                                          config_value(c, "train.val_split", 0.0)), None,
                    "evaluates on the test split every epoch and keeps the best 0.5 (R1 + mAP) "
                    "(processor.py:178, 197)", "selection '{v[0]}' (val_split {v[1]}); never the test split",
                    "train.selection, train.val_split, train.eval_interval", run=True),
    Deviation("tie-rule", "np.argsort (quicksort, not stable) orders equal scores (utils/metrics.py:90)",
              "a stable sort: equal scores keep gallery order (only duplicate scores differ)"),
)


class SharedBlock(nn.Module):
    """Pre-LN block: shared MSA + LN1/LN2, FFN picked by modality (VLMo-style, no VL expert)."""

    def __init__(self, vision: VisionBlockParts, text_ffn: tuple[nn.Linear, nn.Linear], drop_path: float):
        super().__init__()
        self.ln_1, self.attn, self.ln_2, self.mlp_vis = vision.norm1, vision.attn, vision.norm2, vision.mlp
        self.mlp_txt = nn.Sequential(OrderedDict(fc1=text_ffn[0], act=nn.GELU(), fc2=text_ffn[1]))
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor, modality: str, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.ln_1(x)
        a = self.attn(h, h, h, key_padding_mask=pad_mask, need_weights=False)[0]
        x = x + stochastic_depth(a, self.drop_path, "row", self.training)
        mlp = self.mlp_vis if modality == "image" else self.mlp_txt
        return x + stochastic_depth(mlp(self.ln_2(x)), self.drop_path, "row", self.training)


class IVT(RetrievalMethod):
    """IVT without its VLP stage (the released VLP checkpoint is no longer downloadable).

    Args:
        vision, text: shared encoder configs (a CLIP ViT and a BERT of the same depth and width).
        stride: patch stride (12 on CUHK-PEDES / ICFG-PEDES, 16 on RSTPReid); None = the patch size.
        levels: text levels trained against as many image augmentations (word, phrase, sentence).
        bmm_ratio: BMM drops up to this fraction of the tokens per step (0 disables it).
        cmpm_target_norm: "l2" as released, "l1" for the CMPM paper's distribution.
        drop_path: stochastic depth of the last block (rising linearly from 0).
        image_mean, image_std: input normalisation (released: 0.5 / 0.5; CLIP's by default, see deviations).
        augment: train-time image augmentation (``ImageSpec`` keys flip, pad_crop, erasing).
        caption_filter: the released training-caption rule, dict(max_words=90, overflow='drop'|'truncate') or
            None (keep every caption); the per-dataset configs set the released one (``CAPTION_FILTERS``).
        num_classes: given to every method by the harness; IVT has no ID head.
    """

    released_settings = RELEASED_SETTINGS
    config_dir = Path(__file__).parent / "configs"  # default.py and <dataset>.py files
    published = PUBLISHED

    @classmethod
    def validate_config(cls, cfg: dict) -> None:
        """Types and ranges of IVT's own values, before any data is read (the check helpers of harness.api)."""
        super().validate_config(cfg)
        from harness.api import (BertEncoder, CLIPEncoder, check_choice, check_encoder, check_floats, check_int,
                                 check_rgb)

        check_encoder("method.vision", cfg.get("vision"), CLIPEncoder, "clip")
        check_encoder("method.text", cfg.get("text"), BertEncoder, "bert")
        if cfg.get("stride") is not None:
            check_int("method.stride", cfg["stride"], 1, 16)
        levels = cfg.get("levels", LEVELS)
        if isinstance(levels, str) or not levels or any(lv not in LEVELS for lv in levels):
            raise ConfigError(f"method.levels must be a non-empty list drawn from {list(LEVELS)}, got {levels!r}")
        check_floats("method", cfg, bmm_ratio=dict(lo=0.0, hi=1.0, hi_open=True), drop_path=dict(lo=0.0, hi=1.0,
                                                                                                 hi_open=True))
        if "cmpm_target_norm" in cfg:
            check_choice("method.cmpm_target_norm", cfg["cmpm_target_norm"], ("l1", "l2"))
        check_rgb("method", cfg, "image_mean", "image_std")
        rule = cfg.get("caption_filter")
        if rule is not None:
            if not isinstance(rule, dict) or set(rule) - {"max_words", "overflow"}:
                raise ConfigError(f"method.caption_filter must be None or dict(max_words=N, overflow='drop' or "
                                  f"'truncate'), got {rule!r}")
            try:
                CaptionRule(**rule)
            except (ConfigError, TypeError) as exc:
                raise ConfigError(f"method.caption_filter: {exc}") from None

    def __init__(self, num_classes: int = 0, vision: dict | None = None, text: dict | None = None,
                 stride: int | None = 12, levels=LEVELS, bmm_ratio: float = 0.2, cmpm_target_norm: str = "l2",
                 drop_path: float = 0.1, image_mean=(0.48145466, 0.4578275, 0.40821073),
                 image_std=(0.26862954, 0.26130258, 0.27577711), augment: dict | None = None,
                 caption_filter: dict | None = None, **kwargs):
        super().__init__(num_classes=num_classes, **kwargs)
        bad = set(levels) - set(LEVELS)
        if bad or not levels:
            raise ConfigError(f"method.levels must be a non-empty subset of {LEVELS}, got {list(levels)}")
        clip = build_encoder(vision, "clip")
        bert = build_encoder(text, "bert")
        tower = clip.vision_tower()
        width, depth = tower.width, len(tower.blocks)
        if depth != bert.num_layers or width != bert.hidden_size:
            raise HarnessError(f"IVT needs a ViT and a BERT of the same depth and width; got ViT {depth}x{width}, "
                               f"BERT {bert.num_layers}x{bert.hidden_size}")
        self.width, self.levels, self.bmm_ratio = width, tuple(levels), bmm_ratio
        self.cmpm_target_norm = cmpm_target_norm
        self.caption_filter = dict(caption_filter) if caption_filter else None
        if self.caption_filter:
            CaptionRule(**self.caption_filter)
        self.encoder_presets = dict(vision=clip.preset, text=bert.preset)
        # image embedding: overlapping patches (IVT uses stride 12 on CUHK/ICFG), one position per token
        conv = tower.patch_embed
        patch = conv.kernel_size[0]
        self.stride = stride or patch
        self.image_size = clip.image_size
        self.patch_embed = nn.Conv2d(3, width, kernel_size=patch, stride=self.stride, bias=False)
        self.patch_embed.weight.data.copy_(conv.weight.data)
        self.grid = tuple((s - patch) // self.stride + 1 for s in self.image_size)
        self.cls_token = tower.class_token
        # released load_param_hybrid: the pretrained 14x14 table resized once to the stride grid (vit_vl.py:1083-1088)
        self.pos_embed = nn.Parameter(clip.vision_position_table(self.grid))
        # released vit_vl.py:938,959: one learnable type vector per image token, trunc-normal(0.02)
        self.type_embed = nn.Parameter(torch.empty(1 + self.grid[0] * self.grid[1], width))
        nn.init.trunc_normal_(self.type_embed, std=0.02)
        self.ln_pre = tower.pre_norm  # CLIP's pre-norm (timm's ViT in the released code has none)
        # text embedding: BERT word + position + token-type, LN, dropout
        self.tokenizer, self.max_text_length = bert.tokenizer, bert.max_positions
        self.text_embed = bert.text_embeddings()
        self.drop_path = drop_path
        rates = torch.linspace(0, drop_path, depth).tolist()
        self.blocks = nn.ModuleList(SharedBlock(b, f, r)
                                    for b, f, r in zip(clip.vision_block_parts(), bert.ffn_linears(), rates))
        self.norm = tower.post_norm  # shared final LayerNorm; the feature is [CLS] after it, no projection
        # the released pipeline (PersonRetrieval-IVT datasets/make_dataloader.py:141-155): bicubic train Resize, Pad +
        # RandomCrop before the flip,
        # bilinear test Resize, timm RandomErasing(mode='pixel', max_count=1): per-pixel N(0, 1) noise on up to
        # 1/3 of the image; size, mean/std, views and augment from the arguments
        self._spec = ImageSpec(size=self.image_size, mean=tuple(image_mean), std=tuple(image_std),
                               train_views=len(self.levels),
                               augment=dict(AUGMENT if augment is None else augment),
                               train_interpolation="bicubic", test_interpolation="bilinear", erasing_fill="pixel",
                               erasing_area=(0.02, 1 / 3), erasing_ratio=(0.3, 1 / 0.3), crop_then_flip=True)

    # ------------------------------------------------------------------ interface
    @property
    def image_spec(self) -> ImageSpec:
        """IVT's released pipeline, built once in the constructor."""
        return self._spec

    def tokenize(self, captions):
        """``[CLS] X`` with no ``[SEP]`` and no truncation, padded to the longest (released ``processor.py:125``
        with ALBEF's tokenizer, ``tokenization_bert.py:261-262``); only ids beyond BERT's position table
        (512 for bert-base, where the released code would fail) are cut."""
        return tokenize_captions(self.tokenizer, captions, self.max_text_length, add_sep=False)

    def _run(self, x, modality, keep_mask=None, g=None):
        if self.training and self.bmm_ratio > 0:
            x, keep_mask = drop_tokens(x, keep_mask, self.bmm_ratio, g)
        pad = (keep_mask == 0) if keep_mask is not None else None
        for blk in self.blocks:
            x = blk(x, modality, pad)
        return self.norm(x)[:, 0]

    def _image(self, images, g=None):
        x = self.patch_embed(images).flatten(2).transpose(1, 2)
        cls = self.cls_token.to(x.dtype).expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos_embed.to(x.dtype) + self.type_embed
        return self._run(self.ln_pre(x), "image", None, g)

    def _text(self, tok, g=None):
        ids, mask = tok["input_ids"], tok["attention_mask"]
        return self._run(self.text_embed(ids), "text", mask, g)

    def encode_image(self, images):
        return self._image(images).float()

    def encode_text(self, tok):
        return self._text(tok).float()

    def describe(self):
        return dict(levels=list(self.levels), stride=self.stride, grid=list(self.grid), bmm_ratio=self.bmm_ratio,
                    cmpm_target_norm=self.cmpm_target_norm, vlp=False, word_view="comma-chunk fallback",
                    caption_filter=self.caption_filter,
                    **{f"encoder_{k}": v for k, v in self.encoder_presets.items()})

    @property
    def caption_rule(self) -> CaptionRule | None:
        """The released per-dataset caption filter chosen by ``caption_filter`` (see ``CAPTION_FILTERS``)."""
        return CaptionRule(**self.caption_filter) if self.caption_filter else None

    # ------------------------------------------------------------------ training
    def level_texts(self, captions: list[str], g: torch.Generator | None = None) -> list[str]:
        """The texts of one batch, level-major as released: word(B) + phrase(B) + sentence(B)."""
        views = {"word": word_view, "phrase": phrase_view, "sentence": lambda c, g=None: c}
        return [views[level](c, g) for level in self.levels for c in captions]

    def loss(self, batch):
        images, captions, pids, g = batch["images"], batch["captions"], batch["pids"], batch.get("generator")
        if images.dim() == 4:
            images = images[:, None]
        if images.shape[1] != len(self.levels):
            raise ValueError(f"IVT expects {len(self.levels)} image views per sample, got {images.shape[1]}")
        tok = {k: v.to(images.device) for k, v in self.tokenize(self.level_texts(captions, g)).items()}
        f_v = self._image(images.transpose(0, 1).flatten(0, 1), g)  # view-major: [v1(B); v2(B); v3(B)]
        f_t = self._text(tok, g)
        all_pids = pids.repeat(len(self.levels))
        return dict(cmpm_loss=cmpm_loss(f_v.float(), f_t.float(), all_pids, self.cmpm_target_norm))
