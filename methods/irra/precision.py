"""IRRA's released precision: CLIP (and every head) stored in fp16 and trained so, without loss scaling.

``convert_weights`` follows IRRA model/clip_model.py:484-505 (called on the whole model, model/build.py:146-150):
Conv/Linear weights and biases, MultiheadAttention projections, ``proj`` and ``text_projection`` become fp16;
LayerNorms, embeddings and position tables stay fp32. LayerNorms then compute in fp32 and cast back
(clip_model.py:216-222), and the towers cast their inputs to the weights' dtype (clip_model.py:408-418; the
shared encoder's ``cast_inputs_to_weight_dtype``).
"""
from __future__ import annotations

import torch
from torch import nn

from harness.api import layernorms_in_fp32


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
    layernorms_in_fp32(model)  # fp32 arithmetic inside every LayerNorm, output in the input's dtype

