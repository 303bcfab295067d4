"""Tiny pretrained files in the exact layouts the harness reads from upstream (no downloads):

- an OpenAI CLIP TorchScript archive: a model written to OpenAI's ``clip/model.py`` structure and names (not
  open_clip's), QuickGELU, a square 14 x 14 position grid as ViT-B/16's at 224 px, ``input_resolution`` /
  ``context_length`` / ``vocab_size`` entries, every tensor fp16, compiled with ``torch.jit`` and saved;
- an open_clip hub folder: ``open_clip_pytorch_model.bin`` (``torch.save`` of ``CLIP.state_dict()``) with
  ``open_clip_config.json`` beside it, here with a non-square grid;
- a Hugging Face BERT folder written by ``BertModel.save_pretrained`` + ``tokenizer.save_pretrained``.
All use the harness's ``tiny`` shapes (width 128, 2 layers) so that IVT's ViT and BERT match.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

WIDTH, LAYERS, HEADS, PATCH, EMBED, VOCAB, CONTEXT = 128, 2, 4, 8, 128, 49408, 77


class QuickGELU(nn.Module):  # OpenAI clip/model.py: the class name is what a TorchScript archive keeps
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class LayerNorm(nn.LayerNorm):  # OpenAI's subclass: computes in fp32, returns the input's dtype
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(),
                            self.eps).type(x.dtype)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d: int, heads: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads)
        self.ln_1 = LayerNorm(d)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(d, d * 4)), ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(d * 4, d))]))
        self.ln_2 = LayerNorm(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class VisionTransformer(nn.Module):
    def __init__(self, resolution: int, patch: int, width: int, layers: int, heads: int, output_dim: int):
        super().__init__()
        scale = width ** -0.5
        self.conv1 = nn.Conv2d(3, width, kernel_size=patch, stride=patch, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((resolution // patch) ** 2 + 1, width))
        self.ln_pre = LayerNorm(width)
        self.transformer = Transformer(width, layers, heads)
        self.ln_post = LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x).flatten(2).permute(0, 2, 1)
        cls = self.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding.to(x.dtype)
        x = self.transformer(self.ln_pre(x).permute(1, 0, 2)).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :]) @ self.proj


class OpenAICLIP(nn.Module):
    """OpenAI's ``CLIP`` module tree (``visual``, ``transformer``, ``token_embedding``, ...)."""

    def __init__(self, grid: int = 14):
        super().__init__()
        self.visual = VisionTransformer(grid * PATCH, PATCH, WIDTH, LAYERS, HEADS, EMBED)
        self.transformer = Transformer(WIDTH, LAYERS, HEADS)
        self.token_embedding = nn.Embedding(VOCAB, WIDTH)
        self.positional_embedding = nn.Parameter(torch.randn(CONTEXT, WIDTH) * 0.01)
        self.ln_final = LayerNorm(WIDTH)
        self.text_projection = nn.Parameter(torch.randn(WIDTH, EMBED) * WIDTH ** -0.5)
        self.logit_scale = nn.Parameter(torch.ones([]) * 2.6592)
        # the three entries an OpenAI archive's state dict carries besides the weights
        self.register_buffer("input_resolution", torch.tensor(grid * PATCH))
        self.register_buffer("context_length", torch.tensor(CONTEXT))
        self.register_buffer("vocab_size", torch.tensor(VOCAB))

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        img = self.visual(image)
        x = self.token_embedding(text) + self.positional_embedding
        x = self.ln_final(self.transformer(x.permute(1, 0, 2)).permute(1, 0, 2))
        txt = x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ self.text_projection
        return img @ txt.t()


def write_openai_torchscript(path: Path, seed: int = 0, grid: int = 14) -> Path:
    """An OpenAI-layout ``ViT-B-16.pt``-style archive (tiny widths), fp16, QuickGELU, ``grid`` x ``grid``."""
    torch.manual_seed(seed)
    model = OpenAICLIP(grid).eval().half()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(torch.jit.script(model), str(path))
    return path


def write_open_clip_folder(folder: Path, image_size=(64, 32), seed: int = 1) -> Path:
    """An open_clip hub folder: ``open_clip_pytorch_model.bin`` + ``open_clip_config.json`` (QuickGELU)."""
    from open_clip.model import CLIP

    torch.manual_seed(seed)
    vision = dict(image_size=list(image_size), layers=LAYERS, width=WIDTH, patch_size=PATCH, head_width=WIDTH // HEADS)
    text = dict(context_length=CONTEXT, vocab_size=VOCAB, layers=LAYERS, width=WIDTH, heads=HEADS)
    model = CLIP(EMBED, vision, text, quick_gelu=True)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    (folder / "open_clip_config.json").write_text(json.dumps(dict(
        model_cfg=dict(embed_dim=EMBED, quick_gelu=True, vision_cfg=vision, text_cfg=text),
        preprocess_cfg=dict(mean=[0.48145466, 0.4578275, 0.40821073], std=[0.26862954, 0.26130258, 0.27577711]))))
    return folder / "open_clip_pytorch_model.bin"


def write_bert_folder(folder: Path, seed: int = 2) -> Path:
    """``BertModel.save_pretrained`` + ``BertTokenizerFast.save_pretrained`` of a tiny BERT (width 128)."""
    from transformers import BertConfig, BertModel

    from harness.encoders.bert import tiny_vocab_file, wordpiece_tokenizer

    torch.manual_seed(seed)
    tok = wordpiece_tokenizer(tiny_vocab_file())
    model = BertModel(BertConfig(vocab_size=tok.vocab_size, hidden_size=WIDTH, num_hidden_layers=LAYERS,
                                 num_attention_heads=HEADS, intermediate_size=2 * WIDTH))
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
