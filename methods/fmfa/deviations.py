"""The differences from the released FMFA code (yinhao1102/FMFA@d0a3403) in effect for one FMFA config.

Every entry cites the released file:line. Entries that a config key can switch off are listed only when
the config does not select the released behaviour; the rest hold for every config.
"""
from __future__ import annotations

from harness.plugin import Deviation, ReleasedSetting, deviations_from

RELEASED_LOSSES = ("asdm", "id", "mlm", "efa")  # run.sh:10 --loss_names 'a-sdm+mlm+id+efa'


ENCODER_SETTINGS = (
    ReleasedSetting("encoder-preset", lambda m: m.encoder.preset, "ViT-B-16",
                    "CLIP ViT-B/16 (utils/options.py:21, model/clip_model.py:589)", "CLIP preset '{v}'",
                    "method.encoder.preset"),
    ReleasedSetting("random-init", lambda m: bool(m.encoder.weight_provenance()), True,
                    "starts from OpenAI's CLIP ViT-B/16 weights (model/clip_model.py:30, 611-612)",
                    "randomly initialised CLIP", "method.encoder.checkpoint"),
    ReleasedSetting("input-size", lambda m: (tuple(m.encoder.image_size), m.encoder.context_length), ((384, 128), 77),
                    "384x128 images, 77 text tokens (utils/options.py:41, 45)",
                    "{v[0][0]}x{v[0][1]} images, {v[1]} text tokens",
                    "method.encoder.image_size, method.encoder.context_length"),
)


def _uses(loss):
    return lambda m: loss in m.losses


LOSS_SETTINGS = (  # each applies only while its loss is on
    ReleasedSetting("asdm-paper", lambda m: m.asdm_mode, "code",
                    "A-SDM weight 1 + 0.1 * (cos(top-1) - cos(first positive)) on raw cosine "
                    "(model/objectives.py:130-166)",
                    "paper weight alpha * (max_k p_ik - p_ii) + 1 on probabilities, alpha {m.asdm_alpha:g}",
                    "method.asdm_mode", applies=_uses("asdm")),
    ReleasedSetting("asdm-alpha", lambda m: m.asdm_alpha, 0.1,
                    "A-SDM cosine-gap coefficient 0.1 (model/objectives.py:149, 164)", "coefficient {v:g}",
                    "method.asdm_alpha", applies=lambda m: "asdm" in m.losses and m.asdm_mode == "code"),
    ReleasedSetting("asdm-detach", lambda m: m.asdm_detach_weight, False,
                    "gradients flow through the A-SDM weight (model/objectives.py:130-166, not detached)",
                    "A-SDM weight detached (no gradient through it)", "method.asdm_detach_weight",
                    applies=_uses("asdm")),
    ReleasedSetting("efa-margins", lambda m: tuple(m.efa_margins), (0.1, 0.9),
                    "EFA margins 0.1 (text-E) and 0.9 (patches-E) (model/objectives.py:291-292)",
                    "margins {v[0]:g} / {v[1]:g}", "method.efa_margins", applies=_uses("efa")),
    ReleasedSetting("efa-row-normalise", lambda m: m.efa_row_normalise, True,
                    "pooled EFA similarities L2-normalised per row (model/objectives.py:270)",
                    "no row normalisation", "method.efa_row_normalise", applies=_uses("efa")),
    ReleasedSetting("efa-mask-padding", lambda m: m.efa_mask_padding, False,
                    "all 77 text positions, padding included, enter EFA (model/build_finetune.py:145, 163)",
                    "padding positions masked out", "method.efa_mask_padding", applies=_uses("efa")),
    ReleasedSetting("mlm-global-clean", lambda m: m.mlm_contaminates_global, True,
                    "SDM/ID/EFA see the masked caption: the masking edits the token array in place "
                    "(datasets/bases.py:164; IRRA issues #13, #29)",
                    "global branch on the unmasked caption", "method.mlm_contaminates_global", applies=_uses("mlm")),
    ReleasedSetting("cmt-depth", lambda m: m.cmt_depth, 4, "4 cross-modal transformer layers (utils/options.py:26)",
                    "{v} layer(s)", "method.cmt_depth", applies=_uses("mlm")),
    ReleasedSetting("temperature", lambda m: round(1.0 / m.logit_scale, 12), 0.02,
                    "temperature 0.02 (utils/options.py:22)", "temperature {v:g}", "method.temperature"),
    ReleasedSetting("loss-weights", lambda m: {k: w for k, w in m.loss_weights.items() if w != 1}, {},
                    "every loss weight 1 (utils/options.py:35-38; processor/processor_finetune.py:64 sums the terms)",
                    "weights {v}", "method.loss_weights"),
)


def fmfa_deviations(m) -> list[Deviation]:
    """``m`` is an ``FMFA`` instance; the list follows its constructor arguments."""
    out = [
        Deviation("fp32", "fp16 weights (model/build_finetune.py:190 convert_weights) and fp16 autocast on the "
                  "backbone (:95); ID logits from half-precision features (:114-115)",
                  "fp32 weights and arithmetic, no autocast"),
        Deviation("id-classes", "ID classifier with one class per (image, caption) pair: num_classes = "
                  "len(train) (datasets/build.py:251)",
                  "one class per training identity (IRRA and the paper)"),
        Deviation("efa-minmax-eps", "min-max normalisation of the token-patch scores without epsilon "
                  "(model/build_finetune.py:151): a constant row gives NaN",
                  "denominator clamped at 1e-12"),
        Deviation("checkpoint-selection", "keeps the epoch with the best R1 on each test set "
                  "(processor/processor_finetune.py:48-50, 109-114)",
                  "the last epoch, or the best on a val split (train.selection); never the test split"),
    ]
    out += deviations_from(m, ENCODER_SETTINGS)
    if tuple(m.losses) != RELEASED_LOSSES:
        extra = [x for x in m.losses if x not in RELEASED_LOSSES]
        missing = [x for x in RELEASED_LOSSES if x not in m.losses]
        out.append(Deviation("losses", "A-SDM + ID + MLM + EFA, weights 1 (run.sh:10)",
                             f"losses {list(m.losses)}" + (f" (added {extra})" if extra else "")
                             + (f" (without {missing})" if missing else ""), "method.losses"))
    return out + deviations_from(m, LOSS_SETTINGS)
