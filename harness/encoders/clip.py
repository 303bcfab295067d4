"""open_clip CLIP with IRRA's changes: non-square 384x128 input, token-level outputs for both towers.

Both towers return the projected features of *every* token (``ln_post``/``ln_final`` then the
projection), which IRRA-style methods need for cross-modal and fine-grained losses; the global
features are the image [CLS] token and the text EOT token.
"""
from __future__ import annotations

import json
import logging
import math
import warnings
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from open_clip.model import CLIP, resize_text_pos_embed
from open_clip.tokenizer import SimpleTokenizer
from open_clip.transformer import LayerNormFp32, QuickGELU, Transformer
from torch import nn

from ..errors import ConfigError, HarnessError
from ..hashing import sha256_file
from ..plugin import SharedEncoder
from ..registry import ENCODERS

PRESETS = {
    # OpenAI ViT-B/16 shape (QuickGELU), as used by IRRA/FMFA
    "ViT-B-16": dict(embed_dim=512, quick_gelu=True,
                     vision=dict(layers=12, width=768, patch_size=16, head_width=64),
                     text=dict(layers=12, width=512, heads=8, vocab_size=49408)),
    # a few-million-parameter CLIP that trains on two CPU cores in minutes
    "tiny": dict(embed_dim=128, quick_gelu=True,
                 vision=dict(layers=2, width=128, patch_size=8, head_width=32),
                 text=dict(layers=2, width=128, heads=4, vocab_size=49408)),
}


class VisionBlockParts(NamedTuple):
    """One pre-LN vision block: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``; ``attn`` is a batch-first
    ``nn.MultiheadAttention``, ``mlp`` maps [.., width] -> [.., width]."""

    norm1: nn.Module
    attn: nn.MultiheadAttention
    norm2: nn.Module
    mlp: nn.Module


class VisionTower(NamedTuple):
    """The parts of CLIP's vision tower that methods rebuilding it (IVT, LGUR) reuse. They take them from here
    rather than from open_clip's attributes, so an open_clip change is absorbed in this one place.

    patch_embed: Conv2d with kernel = stride = patch size, no bias.
    class_token: the learnable [CLS] embedding, shape [width].
    positions: the position table at ``grid``, shape [1 + rows * columns, width] ([CLS] row first).
    pre_norm: CLIP's LayerNorm on the embedded tokens, before the first block.
    blocks: the transformer blocks; each maps batch-first tokens [B, N, width] -> [B, N, width].
    post_norm: the LayerNorm after the last block (before the projection).
    grid: (rows, columns) of patches at the encoder's ``image_size``.
    """

    patch_embed: nn.Conv2d
    class_token: nn.Parameter
    positions: nn.Parameter
    pre_norm: nn.Module
    blocks: nn.ModuleList
    post_norm: nn.Module
    grid: tuple[int, int]

    @property
    def width(self) -> int:
        return self.patch_embed.out_channels


@ENCODERS.register_module(name="clip")
class CLIPEncoder(SharedEncoder, nn.Module):
    """Wraps an open_clip ``CLIP`` and exposes token-level encoders plus its tokenizer.

    Args:
        preset: "ViT-B-16" (OpenAI's shape) or "tiny" (for tests and the built-in data).
        image_size: (height, width) of the input images; the position table follows it.
        context_length: text tokens, EOT included (77 as released).
        checkpoint: a local OpenAI/open_clip state dict; None for random weights, "random" to ask for them
            explicitly where a real dataset would otherwise refuse them.
        quick_gelu: override the preset's activation (False for GELU checkpoints such as LAION's).
    """

    WEIGHTS_KEY = "checkpoint"  # the keyword naming its pretrained file (the weights ledger names it)
    PRESETS = PRESETS

    def __init__(self, preset: str = "tiny", image_size=(384, 128), context_length: int = 77,
                 checkpoint: str | None = None, quick_gelu: bool | None = None):
        super().__init__()
        if preset not in PRESETS:
            raise HarnessError(f"unknown CLIP preset '{preset}'; available: {', '.join(PRESETS)}")
        p = PRESETS[preset]
        vision_cfg = dict(image_size=tuple(image_size), **p["vision"])
        text_cfg = dict(context_length=context_length, **p["text"])
        # the preset's activation unless the config overrides it (for GELU checkpoints such as LAION's)
        self.quick_gelu = p["quick_gelu"] if quick_gelu is None else bool(quick_gelu)
        self.clip = CLIP(p["embed_dim"], vision_cfg, text_cfg, quick_gelu=self.quick_gelu)
        self._provenance: list[dict] = []
        self.preset, self.image_size, self.context_length = preset, tuple(image_size), context_length
        self.embed_dim = p["embed_dim"]
        self.vocab_size = p["text"]["vocab_size"]
        self.tokenizer = SimpleTokenizer(context_length=context_length)
        self.sot_token_id = self.tokenizer.sot_token_id
        self.eot_token_id = self.tokenizer.eot_token_id
        # IRRA pops the last BPE merge and uses its id (49405) for <|mask|>, keeping the vocab at 49408.
        self.mask_token_id = self.vocab_size - 3
        if checkpoint and checkpoint != "random":  # "random": random initialisation asked for on purpose
            self.load_checkpoint(checkpoint)

    # ---------------------------------------------------------------- weights
    def weight_provenance(self) -> list[dict]:
        """The pretrained files loaded into this encoder, in load order, as ``{path, sha256, format}``
        (format: ``openai-torchscript``, ``openai-state-dict`` or ``open_clip-state-dict``) plus the
        source position grid; an empty list means the weights are a random initialisation."""
        return [dict(e) for e in self._provenance]

    def load_checkpoint(self, path: str | Path) -> None:
        """Load OpenAI JIT archives or open_clip/plain state dicts from a local path.

        The checkpoint's position grid (14x14 for a 224px ViT-B/16, or any other shape: see ``source_grid``) is
        resized bilinearly, once and in fp32, to the (H/16, W/16) grid.
        A checkpoint whose MLP activation is known (a JIT archive's module names, OpenAI's state-dict
        keys, an ``open_clip_config.json`` beside the file) must match the encoder's, or loading stops.
        """
        path = Path(path).expanduser()
        if not path.is_file():
            raise HarnessError(f"CLIP checkpoint not found: {path}")
        activation, fmt = None, "openai-torchscript"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                jit = torch.jit.load(str(path), map_location="cpu")
            sd = jit.state_dict()
            activation = _jit_activation(jit)
        except Exception:
            fmt = None
            try:
                obj = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:
                raise HarnessError(f"cannot read CLIP checkpoint {path}: {exc}") from None
            sd = obj.get("state_dict", obj) if isinstance(obj, dict) else None
            if not isinstance(sd, dict):
                raise HarnessError(f"{path}: expected a state dict or a JIT archive") from None
        sd = {k.removeprefix("module."): v for k, v in sd.items()}
        if fmt is None:
            fmt = "openai-state-dict" if {"input_resolution", "context_length", "vocab_size"} <= set(sd) \
                else "open_clip-state-dict"
        activation = activation or _state_dict_activation(sd, path)
        self._check_activation(activation, path)
        for k in ("input_resolution", "context_length", "vocab_size", "attn_mask"):  # attn_mask: a traced buffer
            sd.pop(k, None)
        grid = self._remember_source_positions(sd, path)  # resized once, in fp32, from the file's own grid
        if grid is not None and tuple(grid) != tuple(self.clip.visual.grid_size):
            sd["visual.positional_embedding"] = resize_positions(sd["visual.positional_embedding"].float(), grid,
                                                                 self.clip.visual.grid_size)
        resize_text_pos_embed(sd, self.clip)
        missing, unexpected = self.clip.load_state_dict(sd, strict=False)
        missing = [k for k in missing if k not in ("logit_scale",)]
        if missing or unexpected:
            raise HarnessError(f"{path}: checkpoint does not match preset '{self.preset}' "
                               f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
        self._provenance.append(dict(path=str(path.resolve()), sha256=sha256_file(path), format=fmt,
                                     **({"position_grid": list(grid)} if grid else {})))

    def _check_activation(self, activation: str | None, path: Path) -> None:
        mine = "quick_gelu" if self.quick_gelu else "gelu"
        if activation is None:
            logging.getLogger("harness").warning(
                f"{path}: cannot tell whether this CLIP checkpoint was trained with GELU or QuickGELU; the encoder "
                f"uses {mine} (set method.encoder.quick_gelu if that is wrong)")
        elif activation != mine:
            raise ConfigError(f"{path}: checkpoint was trained with {activation} but preset '{self.preset}' builds "
                              f"{mine}; set method.encoder.quick_gelu={activation == 'quick_gelu'} or load a "
                              f"{mine} checkpoint")

    # ---------------------------------------------------------------- text
    def tokenize(self, captions) -> torch.Tensor:
        """[SOT] BPE [EOT], zero-padded; over-long captions are cut and end in EOT (IRRA rule)."""
        return self.tokenizer(list(captions), context_length=self.context_length)

    def truncation_rate(self, captions) -> float:
        n = sum(len(self.tokenizer.encode(c)) + 2 > self.context_length for c in captions)
        return n / max(1, len(captions))

    def encode_text_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        t = self.clip.transformer if hasattr(self.clip, "transformer") else self.clip.text.transformer
        x = self.clip.token_embedding(ids)
        x = x + self.clip.positional_embedding[: ids.shape[1]].to(x.dtype)
        x = t(x, attn_mask=self.clip.attn_mask[: ids.shape[1], : ids.shape[1]])
        x = self.clip.ln_final(x)
        return x @ self.clip.text_projection

    @staticmethod
    def eot_index(ids: torch.Tensor) -> torch.Tensor:
        return ids.argmax(dim=-1)  # EOT has the largest id

    @classmethod
    def eot_features(cls, tokens: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The global text feature: the EOT token of each caption, as float32."""
        return tokens[torch.arange(len(ids), device=tokens.device), cls.eot_index(ids)].float()

    def text_features(self, ids: torch.Tensor) -> torch.Tensor:
        return self.eot_features(self.encode_text_tokens(ids), ids)

    # ---------------------------------------------------------------- image
    def encode_image_tokens(self, images: torch.Tensor) -> torch.Tensor:
        v = self.clip.visual
        x = v._embeds(images)
        x = v.transformer(x)
        x = v.ln_post(x)
        return x @ v.proj

    def image_features(self, images: torch.Tensor) -> torch.Tensor:
        """The global image feature: the projected [CLS] token, as float32."""
        return self.encode_image_tokens(images)[:, 0].float()

    # ---------------------------------------------------------------- public accessors for method plugins
    def vision_tower(self) -> VisionTower:
        """The vision tower's parts (shared modules and parameters, not copies)."""
        v = self.clip.visual
        return VisionTower(v.conv1, v.class_embedding, v.positional_embedding, v.ln_pre, v.transformer.resblocks,
                           v.ln_post, tuple(v.grid_size))

    def vision_block_parts(self) -> list[VisionBlockParts]:
        """The parts of each vision block, for methods that re-wire them (e.g. IVT shares attention across
        modalities). Blocks with layer scale are refused: the parts would not reproduce the block."""
        parts = []
        for blk in self.vision_tower().blocks:
            if not (isinstance(blk.ls_1, nn.Identity) and isinstance(blk.ls_2, nn.Identity)):
                raise HarnessError(f"CLIP preset '{self.preset}' uses layer scale; its blocks cannot be split")
            parts.append(VisionBlockParts(blk.ln_1, blk.attn, blk.ln_2, blk.mlp))
        return parts

    def cast_inputs_to_weight_dtype(self) -> None:
        """Feed each tower's first layers inputs in their weights' dtype (the released CLIP's
        ``image.type(self.dtype)`` and ``token_embedding(text).type(dtype)``), for methods that store the
        towers in fp16 (IRRA's ``convert_weights``): the image before the patch embedding, the embedded text
        before the text transformer."""
        conv = self.clip.visual.conv1
        conv.register_forward_pre_hook(_cast_first_input(lambda: conv.weight.dtype), with_kwargs=True)
        text = self.clip.transformer if hasattr(self.clip, "transformer") else self.clip.text.transformer
        text.register_forward_pre_hook(_cast_first_input(lambda: self.clip.text_projection.dtype), with_kwargs=True)

    def _remember_source_positions(self, sd: dict, path: Path) -> tuple[int, int] | None:
        """Keep the checkpoint's own position table and grid so that ``vision_position_table`` resizes
        it once; returns that grid (None when the file has no vision position table)."""
        pos = sd.get("visual.positional_embedding")
        if pos is None:
            return None
        grid = source_grid(pos.shape[0] - 1, tuple(self.clip.visual.grid_size), path)
        self._source_positions = (pos.detach().float().clone(), grid)
        return grid

    def vision_position_table(self, grid) -> torch.Tensor:
        """A new [1 + h * w, width] position table for another patch grid (h, w), resized bilinearly
        *once* from the grid the weights were trained at (the checkpoint's, e.g. 14 x 14 for a 224-pixel
        ViT-B/16; the preset's own table when no checkpoint was loaded). The [CLS] row is kept."""
        tower = self.vision_tower()
        table, old = getattr(self, "_source_positions", None) or (tower.positions.detach().float(), tower.grid)
        grid = tuple(int(g) for g in grid)
        return resize_positions(table, old, grid).clone().to(tower.positions.dtype)


def _cast_first_input(dtype_of):
    def hook(module, args, kwargs):
        return (args[0].to(dtype_of()), *args[1:]), kwargs
    return hook


def clip_transformer(width: int, layers: int, heads: int, quick_gelu: bool = True) -> nn.Module:
    """A batch-first residual transformer of CLIP's own blocks ([B, N, width] -> [B, N, width]), e.g. IRRA's
    cross-modal encoder; QuickGELU as in OpenAI's CLIP unless ``quick_gelu=False`` (nn.GELU)."""
    return Transformer(width=width, layers=layers, heads=heads, act_layer=QuickGELU if quick_gelu else nn.GELU)


def layernorms_in_fp32(model: nn.Module) -> None:
    """Every ``nn.LayerNorm`` in ``model`` computes in fp32 and returns its input's dtype (open_clip's
    ``LayerNormFp32``, the released CLIP's LayerNorm), for methods whose weights are stored in fp16."""
    for m in model.modules():
        if type(m) is not LayerNormFp32 and isinstance(m, nn.LayerNorm):
            m.__class__ = LayerNormFp32


def init_clip_transformer(transformer: nn.Module, attn_std: float, proj_std: float, fc_std: float) -> None:
    """Normal initialisation of a ``clip_transformer``'s blocks as CLIP's ``initialize_parameters`` does, block
    by block: attention in-projection (``attn_std``), attention out-projection (``proj_std``), MLP input
    (``fc_std``), MLP output (``proj_std``); biases untouched."""
    for blk in transformer.resblocks:
        nn.init.normal_(blk.attn.in_proj_weight, std=attn_std)
        nn.init.normal_(blk.attn.out_proj.weight, std=proj_std)
        nn.init.normal_(blk.mlp.c_fc.weight, std=fc_std)
        nn.init.normal_(blk.mlp.c_proj.weight, std=proj_std)


def resize_positions(table: torch.Tensor, old, new) -> torch.Tensor:
    """A [1 + h * w, width] position table ([CLS] row first) resized bilinearly from grid ``old`` to ``new``
    (align_corners=False, no antialiasing, in float32 whatever the stored dtype, as open_clip's
    ``resize_pos_embed`` for square grids); returned in the table's dtype."""
    old, new = tuple(int(g) for g in old), tuple(int(g) for g in new)
    if old == new:
        return table
    body = table[1:].float().reshape(1, old[0], old[1], -1).permute(0, 3, 1, 2)
    body = F.interpolate(body, size=new, mode="bilinear", align_corners=False, antialias=False)
    body = body.permute(0, 2, 3, 1).reshape(new[0] * new[1], -1).to(table.dtype)
    return torch.cat([table[:1], body])


def source_grid(n: int, target: tuple[int, int], path: Path) -> tuple[int, int]:
    """The (rows, columns) of a checkpoint's ``n``-patch position table: the target grid when the size
    matches it, square when ``n`` is a square (OpenAI's and open_clip's pretrained 14 x 14, ...), the
    ``image_size`` / ``patch_size`` of an ``open_clip_config.json`` beside the file, or else the factor pair
    closest in aspect ratio to the target grid (e.g. 24 x 8 for a 384 x 128 ViT-B/16 state dict)."""
    if n == target[0] * target[1]:
        return tuple(target)
    side = round(n ** 0.5)
    if side * side == n:
        return side, side
    side_cfg = path.parent / "open_clip_config.json"
    if side_cfg.is_file():
        try:
            v = json.loads(side_cfg.read_text())["model_cfg"]["vision_cfg"]
            size, patch = v["image_size"], v["patch_size"]
            size = (size, size) if isinstance(size, int) else tuple(size)
            patch = (patch, patch) if isinstance(patch, int) else tuple(patch)
            grid = (size[0] // patch[0], size[1] // patch[1])
            if grid[0] * grid[1] == n:
                return grid
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, ZeroDivisionError):
            pass
    aim = target[0] / target[1]
    pairs = [(h, n // h) for h in range(1, n + 1) if n % h == 0]
    return min(pairs, key=lambda hw: (abs(math.log(hw[0] / hw[1] / aim)), -hw[0]))


def _jit_activation(jit) -> str | None:
    """A TorchScript CLIP keeps its modules' class names: QuickGELU (OpenAI) or GELU."""
    for name, mod in jit.named_modules():
        if name.endswith("mlp.gelu"):
            kind = getattr(mod, "original_name", "")
            return {"QuickGELU": "quick_gelu", "GELU": "gelu"}.get(kind)
    return None


def _state_dict_activation(sd: dict, path: Path) -> str | None:
    """OpenAI's checkpoints (QuickGELU) carry ``input_resolution``/``context_length``/``vocab_size``
    entries; open_clip's hub folders put ``model_cfg.quick_gelu`` in ``open_clip_config.json``."""
    if {"input_resolution", "context_length", "vocab_size"} <= set(sd):
        return "quick_gelu"
    side = path.parent / "open_clip_config.json"
    if side.is_file():
        try:
            cfg = json.loads(side.read_text()).get("model_cfg", {})
        except (json.JSONDecodeError, AttributeError):
            return None
        return "quick_gelu" if cfg.get("quick_gelu", False) else "gelu"
    return None
