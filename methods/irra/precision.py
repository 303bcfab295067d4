"""IRRA's released precision: CLIP (and every head) stored in fp16 and trained so, without loss scaling.

``convert_weights`` follows IRRA model/clip_model.py:484-505 (called on the whole model, model/build.py:146-150):
Conv/Linear weights and biases, MultiheadAttention projections, ``proj`` and ``text_projection`` become fp16;
LayerNorms, embeddings and position tables stay fp32. LayerNorms then compute in fp32 and cast back
(clip_model.py:216-222), and the towers cast their inputs to the weights' dtype (clip_model.py:287-306, 410-425).
"""
from __future__ import annotations

import torch
from open_clip.transformer import LayerNormFp32
from torch import nn


def convert_weights(model: nn.Module) -> None:
    """Cast the parameters IRRA's ``convert_weights`` casts to fp16, in place."""

    def cast(m):
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)):
            m.weight.data = m.weight.data.half()
            if m.bias is not None:
                m.bias.data = m.bias.data.half()
        if isinstance(m, nn.MultiheadAttention):
            for attr in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias",
                         "bias_k", "bias_v"):
                t = getattr(m, attr, None)
                if t is not None:
                    t.data = t.data.half()
        for name in ("text_projection", "proj"):
            t = getattr(m, name, None)
            if isinstance(t, torch.Tensor):
                t.data = t.data.half()

    model.apply(cast)
    for m in model.modules():  # fp32 arithmetic inside every LayerNorm, output in the input's dtype
        if type(m) is not LayerNormFp32 and isinstance(m, nn.LayerNorm):
            m.__class__ = LayerNormFp32


def _cast_first_input(dtype_of):
    def hook(module, args, kwargs):
        return (args[0].to(dtype_of()), *args[1:]), kwargs
    return hook


def cast_tower_inputs(clip: nn.Module) -> None:
    """Feed each tower's fp16 layers fp16 inputs: the image before the patch embedding, the embedded text before
    the text transformer (the released CLIP's ``image.type(self.dtype)`` and ``token_embedding(text).type(dtype)``)."""
    conv = clip.visual.conv1
    conv.register_forward_pre_hook(_cast_first_input(lambda: conv.weight.dtype), with_kwargs=True)
    text = clip.transformer if hasattr(clip, "transformer") else clip.text.transformer
    text.register_forward_pre_hook(_cast_first_input(lambda: clip.text_projection.dtype), with_kwargs=True)
