"""The plugin-interface side of a method built on the shared CLIP encoder as a dual encoder.

FMFA and the ``harness new-method`` template both score with CLIP's own image and text towers; this
mixin is the one copy of that adapter. The method sets ``self.encoder`` (a ``CLIPEncoder``)."""
from __future__ import annotations


class CLIPDualEncoder:
    """``tokenize``/``encode_image``/``encode_text``/``truncation_rate`` through ``self.encoder``."""

    # ``self.encoder`` is set by the method's constructor (build_encoder(cfg, "clip")); no class attribute
    # here, or it would shadow the submodule nn.Module keeps in _modules

    def tokenize(self, captions):
        return self.encoder.tokenize(captions)

    def encode_image(self, images):
        return self.encoder.image_features(images)

    def encode_text(self, ids):
        return self.encoder.text_features(ids)

    def truncation_rate(self, captions):
        return self.encoder.truncation_rate(captions)
