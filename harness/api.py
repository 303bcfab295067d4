"""The harness's public API: the one module a method or dataset plugin imports.

A plugin (``methods/*`` installed as ``tipr_methods``, a ``harness new-method`` package, a dataset package
registered under ``tipr.datasets``) imports only ``harness.api``; the rest of the harness may change
shape without breaking it. ``tests/test_plugin_boundary.py`` parses every registered plugin and refuses any
other harness import, and any reach into a third-party model's internals (the shared encoders below wrap
open_clip and transformers, so a library change is absorbed in one place).

The encoder classes load open_clip / transformers, so they are imported on first use (``__getattr__``):
``import harness.api`` stays as light as the method base class.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .config_schema import (check_bool, check_bools, check_choice, check_encoder, check_float, check_floats,
                            check_int, check_ints, check_keys, check_pair, check_rgb, check_str)
from .data.formats import AnnotationDataset
from .errors import AnnotationError, CheckpointError, ConfigError, DataError, HarnessError
from .plugin import (CaptionRule, DatasetPlugin, Deviation, ImageSpec, PublishedResult, ReleasedSetting,
                     RetrievalMethod, config_value, deviations_from)
from .registry import build_encoder
from .released import ReleasedLayout

if TYPE_CHECKING:  # imported on first use, see _LAZY
    from .encoders.bert import BertEncoder, tokenize_captions
    from .encoders.clip import (CLIPEncoder, QuickGELU, VisionBlockParts, VisionTower, clip_transformer,
                                init_clip_transformer, layernorms_in_fp32)
    from .encoders.dual import CLIPDualEncoder

__all__ = [
    # methods
    "RetrievalMethod", "ImageSpec", "CaptionRule", "Deviation", "ReleasedSetting", "ReleasedLayout", "PublishedResult",
    "deviations_from", "config_value",
    # shared encoders
    "build_encoder", "CLIPDualEncoder", "CLIPEncoder", "BertEncoder", "VisionBlockParts", "VisionTower",
    "tokenize_captions", "QuickGELU", "clip_transformer", "init_clip_transformer", "layernorms_in_fp32",
    # config checks for ``validate_config``
    "check_bool", "check_bools", "check_choice", "check_encoder", "check_float", "check_floats", "check_int",
    "check_ints", "check_keys", "check_pair", "check_rgb", "check_str",
    # datasets
    "AnnotationDataset", "DatasetPlugin",
    # errors
    "HarnessError", "ConfigError", "DataError", "AnnotationError", "CheckpointError",
]

# name -> module holding it, imported on first access (open_clip / transformers are heavy)
_LAZY = {
    "CLIPDualEncoder": "harness.encoders.dual",
    "CLIPEncoder": "harness.encoders.clip",
    "VisionBlockParts": "harness.encoders.clip",
    "VisionTower": "harness.encoders.clip",
    "QuickGELU": "harness.encoders.clip",
    "clip_transformer": "harness.encoders.clip",
    "init_clip_transformer": "harness.encoders.clip",
    "layernorms_in_fp32": "harness.encoders.clip",
    "BertEncoder": "harness.encoders.bert",
    "tokenize_captions": "harness.encoders.bert",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'harness.api' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
