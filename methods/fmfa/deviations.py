"""The differences from the released FMFA code (yinhao1102/FMFA@d0a3403) in effect for one FMFA config.

Every entry cites the released file:line. ``RELEASED_SETTINGS`` is the one table: model switches, encoder
presets and the run recipe (optimizer, schedule, epochs, batch, sampler, precision, selection) with their
released values; entries that a config key can switch off are listed only when the config does not select the
released behaviour, ``Deviation`` entries hold for every config.
"""
from __future__ import annotations

from harness.api import Deviation, ReleasedSetting, config_value, deviations_from

RELEASED_LOSSES = ("asdm", "id", "mlm", "efa")  # run.sh:10 --loss_names 'a-sdm+mlm+id+efa'


ENCODER_SETTINGS = (
    ReleasedSetting("encoder-preset", lambda m: m.encoder.preset, "ViT-B-16",
                    "CLIP ViT-B/16 (utils/options.py:21, model/clip_model.py:589)", "CLIP preset '{v}'",
                    "method.encoder.preset, method.encoder.type"),
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


def _losses_ours(v, m) -> str:
    extra = [x for x in v if x not in RELEASED_LOSSES]
    missing = [x for x in RELEASED_LOSSES if x not in v]
    return f"losses {list(v)}" + (f" (added {extra})" if extra else "") + (f" (without {missing})" if missing else "")


ALWAYS = (
    ReleasedSetting("fp32", lambda m, c: (bool(getattr(m, "clip_fp16", False)), config_value(c, "train.amp", "off")),
                    None,  # no config reproduces fp16-stored weights *and* the backbone-only fp16 autocast
                    "fp16 weights (model/build_finetune.py:190 convert_weights) and fp16 autocast on the backbone "
                    "(:95); ID logits from half-precision features (:114-115)",
                    "clip_fp16={v[0]}, train.amp='{v[1]}' (autocast, if any, around the whole model)",
                    "method.clip_fp16, train.amp", run=True),
    Deviation("id-classes", "ID classifier with one class per (image, caption) pair: num_classes = "
              "len(train) (datasets/build.py:251)",
              "one class per training identity (IRRA and the paper)"),
    Deviation("efa-minmax-eps", "min-max normalisation of the token-patch scores without epsilon "
              "(model/build_finetune.py:151): a constant row gives NaN",
              "denominator clamped at 1e-12"),
    ReleasedSetting("checkpoint-selection", lambda m, c: (config_value(c, "train.selection", "last"),
                                                          config_value(c, "train.val_split", 0.0)), None,
                    "keeps the epoch with the best R1 on each test set (processor/processor_finetune.py:48-50, "
                    "109-114)", "selection '{v[0]}' (val_split {v[1]}); never the test split",
                    "train.selection, train.val_split, train.eval_interval", run=True),
)

LOSSES_SETTING = (
    ReleasedSetting("losses", lambda m: tuple(m.losses), RELEASED_LOSSES,
                    "A-SDM + ID + MLM + EFA, weights 1 (run.sh:10)", _losses_ours, "method.losses"),
)

RUN_SETTINGS = (  # utils/options.py and run.sh as released
    ReleasedSetting("optimizer", lambda m, c: config_value(c, "optim_wrapper.optimizer"),
                    dict(type="Adam", lr=5e-6, betas=[0.9, 0.999], eps=1e-3, weight_decay=4e-5),
                    "Adam lr 5e-6, betas (0.9, 0.999), eps 1e-3, weight decay 4e-5 on every parameter "
                    "(utils/options.py:49-56, solver/build.py:14-15, 37-43)", "optimizer {v}",
                    "optim_wrapper.optimizer, optim_wrapper.type", run=True),
    ReleasedSetting("lr-groups", lambda m, c: config_value(c, "optim_wrapper.paramwise_cfg", {}), {},
                    "one lr for every parameter (solver/build.py:17-31: the multipliers are commented out)",
                    "paramwise_cfg {v}", "optim_wrapper.paramwise_cfg", run=True),
    ReleasedSetting("grad-steps", lambda m, c: (config_value(c, "optim_wrapper.clip_grad"),
                                                config_value(c, "optim_wrapper.accumulative_counts", 1)), (None, 1),
                    "one unclipped step per batch (processor/processor_finetune.py:64-70)",
                    "clip_grad {v[0]}, accumulating {v[1]}",
                    "optim_wrapper.clip_grad, optim_wrapper.accumulative_counts", run=True),
    ReleasedSetting("schedule", lambda m, c: config_value(c, "param_scheduler"),
                    [dict(type="WarmupCosineLR", warmup_epochs=5, warmup_factor=0.1, eta_min=0.0, by_epoch=True,
                          begin=0, end="max_epochs")],
                    "5-epoch linear warm-up from 0.1, then cosine to 0, per epoch (utils/options.py:62-66, "
                    "solver/lr_scheduler.py)", "param_scheduler {v}", "param_scheduler", run=True),
    ReleasedSetting("epochs", lambda m, c: config_value(c, "train.epochs"), 60, "60 epochs (run.sh:12)",
                    "{v} epochs", "train.epochs", run=True),
    ReleasedSetting("batch-size", lambda m, c: config_value(c, "train.batch_size"), 64, "batch 64 (run.sh:7)",
                    "batch {v}", "train.batch_size", run=True),
    ReleasedSetting("sampler", lambda m, c: (config_value(c, "train.sampler", {}).get("type", "random"),
                                             config_value(c, "train.drop_last")), ("random", False),
                    "shuffled batches, the last partial batch kept (utils/options.py:71, datasets/build.py:124-131)",
                    "sampler '{v[0]}', drop_last {v[1]}", "train.sampler, train.drop_last", run=True),
    Deviation("tie-rule", "torch.argsort (not stable) orders equal scores (utils/metrics.py:11)",
              "a stable sort: equal scores keep gallery order (only duplicate scores differ)"),
)

RELEASED_SETTINGS = ALWAYS + ENCODER_SETTINGS + LOSSES_SETTING + LOSS_SETTINGS + RUN_SETTINGS


def fmfa_deviations(m, cfg: dict | None = None) -> list[Deviation]:
    """``m`` is an ``FMFA`` instance, ``cfg`` the run config (None: the model's settings alone)."""
    return deviations_from(m, RELEASED_SETTINGS, cfg)
