"""IVT (Shu et al., ECCV'22 W): one transformer for both modalities with shared attention and
LayerNorms and modality-specific FFNs, trained with multi-level alignment (MLA), token-drop BMM and CMPM.

Built from the harness' shared encoders exactly as the released ``load_param_hybrid`` does: the
vision half (patch embedding, attention, LayerNorms, image FFNs) comes from the CLIP ViT, the text
FFNs and text embeddings from BERT; BERT's attention and post-LN LayerNorms are discarded.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import stochastic_depth

from harness.encoders.bert import tokenize_captions
from harness.errors import HarnessError
from harness.plugin import ImageSpec, RetrievalMethod
from harness.registry import build_encoder

from .losses import cmpm_loss, drop_tokens
from .views import phrase_view, word_view

LEVELS = ("word", "phrase", "sentence")


class SharedBlock(nn.Module):
    """Pre-LN block: shared MSA + LN1/LN2, FFN picked by modality (VLMo-style, no VL expert)."""

    def __init__(self, vision_block: nn.Module, bert_layer: nn.Module, drop_path: float):
        super().__init__()
        self.ln_1, self.attn, self.ln_2 = vision_block.ln_1, vision_block.attn, vision_block.ln_2
        self.mlp_vis = vision_block.mlp
        self.mlp_txt = nn.Sequential(OrderedDict(
            fc1=bert_layer.intermediate.dense, act=nn.GELU(), fc2=bert_layer.output.dense))
        self.drop_path = drop_path

    def forward(self, x: torch.Tensor, modality: str, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.ln_1(x)
        a = self.attn(h, h, h, key_padding_mask=pad_mask, need_weights=False)[0]
        x = x + stochastic_depth(a, self.drop_path, "row", self.training)
        mlp = self.mlp_vis if modality == "image" else self.mlp_txt
        return x + stochastic_depth(mlp(self.ln_2(x)), self.drop_path, "row", self.training)


def _resize_grid(pos: torch.Tensor, old: tuple[int, int], new: tuple[int, int]) -> torch.Tensor:
    """[1+h*w, C] position table -> the new grid, bilinear (CLS row kept)."""
    if tuple(old) == tuple(new):
        return pos
    cls, grid = pos[:1], pos[1:].reshape(1, old[0], old[1], -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=new, mode="bilinear", align_corners=False)
    return torch.cat([cls, grid.permute(0, 2, 3, 1).reshape(new[0] * new[1], -1)])


class IVT(RetrievalMethod):
    """IVT without its VLP stage (the released VLP checkpoint is no longer downloadable)."""

    def __init__(self, num_classes: int = 0, vision: dict | None = None, text: dict | None = None,
                 stride: int | None = 12, levels=LEVELS, bmm_ratio: float = 0.2, cmpm_target_norm: str = "l2",
                 drop_path: float = 0.1, image_mean=(0.48145466, 0.4578275, 0.40821073),
                 image_std=(0.26862954, 0.26130258, 0.27577711), augment: dict | None = None, **kwargs):
        super().__init__(num_classes=num_classes, **kwargs)
        bad = set(levels) - set(LEVELS)
        if bad or not levels:
            raise ValueError(f"levels must be a non-empty subset of {LEVELS}, got {list(levels)}")
        clip = build_encoder(vision, "clip")
        bert = build_encoder(text, "bert")
        v = clip.clip.visual
        blocks, layers = v.transformer.resblocks, bert.bert.encoder.layer
        width = v.conv1.out_channels
        if len(blocks) != len(layers) or width != bert.hidden_size:
            raise HarnessError(f"IVT needs a ViT and a BERT of the same depth and width; got ViT {len(blocks)}x{width}, "
                               f"BERT {len(layers)}x{bert.hidden_size}")
        self.width, self.levels, self.bmm_ratio, self.cmpm_target_norm = width, tuple(levels), bmm_ratio, cmpm_target_norm
        self.encoder_presets = dict(vision=clip.preset, text=bert.preset)
        # image embedding: overlapping patches (IVT uses stride 12 on CUHK/ICFG), resized positions
        patch = v.conv1.kernel_size[0]
        self.stride = stride or patch
        self.image_size = clip.image_size
        self.patch_embed = nn.Conv2d(3, width, kernel_size=patch, stride=self.stride, bias=False)
        self.patch_embed.weight.data.copy_(v.conv1.weight.data)
        grid = tuple((s - patch) // self.stride + 1 for s in self.image_size)
        self.grid = grid
        self.cls_token = v.class_embedding
        self.pos_embed = nn.Parameter(_resize_grid(v.positional_embedding.data, v.grid_size, grid))
        self.type_embed = nn.Parameter(torch.empty(1, 1, width))
        nn.init.trunc_normal_(self.type_embed, std=0.02)
        self.ln_pre = v.ln_pre  # CLIP's pre-norm (timm's ViT in the released code has none)
        # text embedding: BERT word + position + token-type, LN, dropout
        self.tokenizer, self.max_length = bert.tokenizer, bert.max_length
        self.text_embed = bert.bert.embeddings
        rates = torch.linspace(0, drop_path, len(blocks)).tolist()
        self.blocks = nn.ModuleList(SharedBlock(b, l, r) for b, l, r in zip(blocks, layers, rates))
        self.norm = v.ln_post  # shared final LayerNorm; the feature is [CLS] after it, no projection
        self._spec = ImageSpec(size=self.image_size, mean=tuple(image_mean), std=tuple(image_std),
                               train_views=len(self.levels),
                               augment=dict(augment or dict(flip=True, pad_crop=10, erasing=0.5)))

    # ------------------------------------------------------------------ interface
    @property
    def image_spec(self) -> ImageSpec:
        """IVT's released pipeline (PersonRetrieval-IVT datasets/make_dataloader.py:141-155): bicubic train Resize,
        bilinear test Resize, timm RandomErasing(mode='pixel', max_count=1): per-pixel N(0, 1) noise on up to
        1/3 of the image. Size, mean/std, views and ``augment`` come from the constructor (``self._spec``)."""
        return self._spec.replace(train_interpolation="bicubic", test_interpolation="bilinear",
                                  erasing_fill="pixel", erasing_area=(0.02, 1 / 3), erasing_ratio=(0.3, 1 / 0.3))

    def tokenize(self, captions):
        return tokenize_captions(self.tokenizer, captions, self.max_length)

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
        return self._run(self.text_embed(input_ids=ids), "text", mask, g)

    def encode_image(self, images):
        return self._image(images).float()

    def encode_text(self, tok):
        return self._text(tok).float()

    def describe(self):
        return dict(levels=list(self.levels), stride=self.stride, grid=list(self.grid), bmm_ratio=self.bmm_ratio,
                    cmpm_target_norm=self.cmpm_target_norm, vlp=False, word_view="comma-chunk fallback",
                    **{f"encoder_{k}": v for k, v in self.encoder_presets.items()})

    # ------------------------------------------------------------------ training
    def loss(self, batch):
        images, captions, pids, g = batch["images"], batch["captions"], batch["pids"], batch.get("generator")
        if images.dim() == 4:
            images = images[:, None]
        if images.shape[1] != len(self.levels):
            raise ValueError(f"IVT expects {len(self.levels)} image views per sample, got {images.shape[1]}")
        views = {"word": word_view, "phrase": phrase_view, "sentence": lambda c, g=None: c}
        texts = [views[level](c, g) for level in self.levels for c in captions]
        tok = {k: v.to(images.device) for k, v in self.tokenize(texts).items()}
        f_v = self._image(images.transpose(0, 1).flatten(0, 1), g)  # view-major: [v1(B); v2(B); v3(B)]
        f_t = self._text(tok, g)
        all_pids = pids.repeat(len(self.levels))
        return dict(cmpm_loss=cmpm_loss(f_v.float(), f_t.float(), all_pids, self.cmpm_target_norm))
