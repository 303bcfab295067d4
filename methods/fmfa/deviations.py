"""The differences from the released FMFA code (yinhao1102/FMFA@d0a3403) in effect for one FMFA config.

Every entry cites the released file:line. Entries that a config key can switch off are listed only when
the config does not select the released behaviour; the rest hold for every config.
"""
from __future__ import annotations

from harness.plugin import Deviation

RELEASED_LOSSES = ("asdm", "id", "mlm", "efa")  # run.sh:10 --loss_names 'a-sdm+mlm+id+efa'


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
    enc = m.encoder
    if enc.preset != "ViT-B-16":
        out.append(Deviation("encoder-preset", "CLIP ViT-B/16 (utils/options.py:21, model/clip_model.py:589)",
                             f"CLIP preset '{enc.preset}'", "method.encoder.preset"))
    if not enc.weight_provenance():
        out.append(Deviation("random-init", "starts from OpenAI's CLIP ViT-B/16 weights "
                             "(model/clip_model.py:30, 611-612)", "randomly initialised CLIP",
                             "method.encoder.checkpoint"))
    if tuple(enc.image_size) != (384, 128) or enc.context_length != 77:
        out.append(Deviation("input-size", "384x128 images, 77 text tokens (utils/options.py:41, 45)",
                             f"{enc.image_size[0]}x{enc.image_size[1]} images, {enc.context_length} text tokens",
                             "method.encoder.image_size, method.encoder.context_length"))
    if tuple(m.losses) != RELEASED_LOSSES:
        extra = [x for x in m.losses if x not in RELEASED_LOSSES]
        missing = [x for x in RELEASED_LOSSES if x not in m.losses]
        out.append(Deviation("losses", "A-SDM + ID + MLM + EFA, weights 1 (run.sh:10)",
                             f"losses {list(m.losses)}" + (f" (added {extra})" if extra else "")
                             + (f" (without {missing})" if missing else ""), "method.losses"))
    if "asdm" in m.losses:
        if m.asdm_mode == "paper":
            out.append(Deviation("asdm-paper", "A-SDM weight 1 + 0.1 * (cos(top-1) - cos(first positive)) on raw "
                                 "cosine (model/objectives.py:130-166)",
                                 f"paper weight alpha * (max_k p_ik - p_ii) + 1 on probabilities, alpha "
                                 f"{m.asdm_alpha:g}", "method.asdm_mode"))
        elif m.asdm_alpha != 0.1:
            out.append(Deviation("asdm-alpha", "A-SDM cosine-gap coefficient 0.1 (model/objectives.py:149, 164)",
                                 f"coefficient {m.asdm_alpha:g}", "method.asdm_alpha"))
    if "efa" in m.losses:
        if tuple(m.efa_margins) != (0.1, 0.9):
            out.append(Deviation("efa-margins", "EFA margins 0.1 (text-E) and 0.9 (patches-E) "
                                 "(model/objectives.py:291-292)",
                                 f"margins {m.efa_margins[0]:g} / {m.efa_margins[1]:g}", "method.efa_margins"))
        if not m.efa_row_normalise:
            out.append(Deviation("efa-row-normalise", "pooled EFA similarities L2-normalised per row "
                                 "(model/objectives.py:270)", "no row normalisation",
                                 "method.efa_row_normalise"))
        if m.efa_mask_padding:
            out.append(Deviation("efa-mask-padding", "all 77 text positions, padding included, enter EFA "
                                 "(model/build_finetune.py:145, 163)", "padding positions masked out",
                                 "method.efa_mask_padding"))
    if "mlm" in m.losses:
        if not m.mlm_contaminates_global:
            out.append(Deviation("mlm-global-clean", "SDM/ID/EFA see the masked caption: the masking edits the "
                                 "token array in place (datasets/bases.py:164; IRRA issues #13, #29)",
                                 "global branch on the unmasked caption", "method.mlm_contaminates_global"))
        if m.cmt_depth != 4:
            out.append(Deviation("cmt-depth", "4 cross-modal transformer layers (utils/options.py:26)",
                                 f"{m.cmt_depth} layer(s)", "method.cmt_depth"))
    if abs(1.0 / m.logit_scale - 0.02) > 1e-12:
        out.append(Deviation("temperature", "temperature 0.02 (utils/options.py:22)",
                             f"temperature {1.0 / m.logit_scale:g}", "method.temperature"))
    weights = {k: w for k, w in m.loss_weights.items() if w != 1}
    if weights:
        out.append(Deviation("loss-weights", "every loss weight 1 (utils/options.py:35-38; "
                             "processor/processor_finetune.py:64 sums the terms)",
                             f"weights {weights}", "method.loss_weights"))
    return out
