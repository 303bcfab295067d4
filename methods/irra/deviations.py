"""The differences from the released IRRA code (anosorae/IRRA@cfc2378) in effect for one IRRA (or FMFA) config.

Every entry cites the released file:line. Entries that a config key can switch off are listed only when
the config does not select the released behaviour; the rest hold for every config.
"""
from __future__ import annotations

from harness.api import Deviation, ReleasedSetting, config_value, deviations_from

from .checks import RELEASED_LOSSES

PRECISION_RELEASED = ("CLIP and every head stored in fp16 (model/build.py:146-150 convert_weights, "
                      "model/clip_model.py:484-505: Conv/Linear/attention weights and biases, proj, text_projection; "
                      "LayerNorms and embeddings fp32) and trained so by Adam, no loss scaling")
PRECISION_OURS = ("fp32 weights and arithmetic: an Adam step (at most about lr) moves nearly every fp32 weight "
                  "but only the fp16 weights whose half spacing it exceeds (methods/irra/README.md, Precision), "
                  "so fp32, or AMP with fp32 master weights, trains a different set of weights")

PRECISION = ReleasedSetting("fp32", lambda m: m.clip_fp16, True, PRECISION_RELEASED, PRECISION_OURS,
                            "method.clip_fp16")
AMP = ReleasedSetting("amp", lambda m, c: config_value(c, "train.amp", "off"), "off",
                      "no autocast and no loss scaling around the fp16 model (processor/processor.py:41-76)",
                      "train.amp='{v}' (autocast, fp32 master weights unless method.clip_fp16)", "train.amp", run=True)

ENCODER_SETTINGS = (
    ReleasedSetting("encoder-preset", lambda m: m.encoder.preset, "ViT-B-16",
                    "CLIP ViT-B/16 (utils/options.py:17, model/clip_model.py:28)", "CLIP preset '{v}'",
                    "method.encoder.preset, method.encoder.type"),
    ReleasedSetting("random-init", lambda m: bool(m.encoder.weight_provenance()), True,
                    "starts from OpenAI's CLIP ViT-B/16 weights (model/build.py:16, model/clip_model.py:28)",
                    "randomly initialised CLIP", "method.encoder.checkpoint"),
    ReleasedSetting("input-size", lambda m: (tuple(m.encoder.image_size), m.encoder.context_length), ((384, 128), 77),
                    "384x128 images, 77 text tokens (utils/options.py:34, 38)",
                    "{v[0][0]}x{v[0][1]} images, {v[1]} text tokens",
                    "method.encoder.image_size, method.encoder.context_length"),
)


def _released_paramwise() -> dict:
    """The ``paramwise_cfg`` of configs/default.py, which encodes solver/build.py:17-24 (pinned by a test)."""
    from mmengine.config import Config

    from . import IRRA
    return Config.fromfile(str(IRRA.config_dir / "default.py")).optim_wrapper.paramwise_cfg.to_dict()


def _uses(loss):
    return lambda m: loss in m.losses


SETTINGS = (
    ReleasedSetting("mlm-global-clean", lambda m: m.mlm_contaminates_global, True,
                    "SDM/ID see the masked caption: the masking edits the token array in place "
                    "(datasets/bases.py:157; issues #13, #29)",
                    "global branch on the unmasked caption", "method.mlm_contaminates_global", applies=_uses("mlm")),
    ReleasedSetting("cmt-depth", lambda m: m.cmt_depth, 4, "4 cross-modal transformer layers (utils/options.py:22)",
                    "{v} layer(s)", "method.cmt_depth", applies=_uses("mlm")),
    ReleasedSetting("temperature", lambda m: round(1.0 / m.logit_scale, 12), 0.02,
                    "temperature 0.02 (utils/options.py:18)", "temperature {v:g}", "method.temperature"),
    ReleasedSetting("loss-weights", lambda m: {k: w for k, w in m.loss_weights.items() if w != 1}, {},
                    "every loss weight 1 (utils/options.py:30-31)", "weights {v}", "method.loss_weights"),
)


RUN_SETTINGS = (  # run_irra.sh and utils/options.py as released
    ReleasedSetting("optimizer", lambda m, c: config_value(c, "optim_wrapper.optimizer"),
                    dict(type="Adam", lr=1e-5, betas=[0.9, 0.999], eps=1e-3, weight_decay=4e-5),
                    "Adam lr 1e-5, betas (0.9, 0.999), eps 1e-3, weight decay 4e-5 (utils/options.py:42-49, "
                    "solver/build.py:32-38)", "optimizer {v}", "optim_wrapper.optimizer, optim_wrapper.type", run=True),
    ReleasedSetting("lr-groups", lambda m, c: config_value(c, "optim_wrapper.paramwise_cfg", {}),
                    lambda m, c: config_value(dict(p=_released_paramwise()), "p"),
                    "x5 for 'cross'/'classifier'/'mlm_head' parameters, biases x2 with weight decay 0 "
                    "(solver/build.py:17-24)", "paramwise_cfg {v}", "optim_wrapper.paramwise_cfg", run=True),
    ReleasedSetting("schedule", lambda m, c: config_value(c, "param_scheduler"),
                    [dict(type="WarmupCosineLR", warmup_epochs=5, warmup_factor=0.1, eta_min=0.0, by_epoch=True,
                          begin=0, end="max_epochs")],
                    "5-epoch linear warm-up from 0.1, then cosine to 0, per epoch (utils/options.py:52-60, "
                    "solver/lr_scheduler.py:48-86)", "param_scheduler {v}", "param_scheduler", run=True),
    ReleasedSetting("epochs", lambda m, c: config_value(c, "train.epochs"), 60, "60 epochs (run_irra.sh:12)",
                    "{v} epochs", "train.epochs", run=True),
    ReleasedSetting("batch-size", lambda m, c: config_value(c, "train.batch_size"), 64, "batch 64 (run_irra.sh:8)",
                    "batch {v}", "train.batch_size", run=True),
    ReleasedSetting("grad-steps", lambda m, c: (config_value(c, "optim_wrapper.clip_grad"),
                                                config_value(c, "optim_wrapper.accumulative_counts", 1)), (None, 1),
                    "one unclipped step per batch (processor/processor.py:65-66)",
                    "clip_grad {v[0]}, accumulating {v[1]}",
                    "optim_wrapper.clip_grad, optim_wrapper.accumulative_counts", run=True),
    ReleasedSetting("sampler", lambda m, c: (config_value(c, "train.sampler", {}).get("type", "random"),
                                             config_value(c, "train.drop_last")), ("random", False),
                    "shuffled batches, the last partial batch kept (utils/options.py:64, datasets/build.py:116-121)",
                    "sampler '{v[0]}', drop_last {v[1]}", "train.sampler, train.drop_last", run=True),
)

SELECTION_OURS = "the last epoch, or the best on a val split (train.selection); never the test split"
SELECTION = ReleasedSetting("checkpoint-selection", lambda m, c: (config_value(c, "train.selection", "last"),
                                                                  config_value(c, "train.val_split", 0.0)), None,
                            "keeps the epoch with the best R1 on the test split (utils/options.py:12 "
                            "val_dataset='test'; processor/processor.py:93-105)",
                            "selection '{v[0]}' (val_split {v[1]}); never the test split",
                            "train.selection, train.val_split, train.eval_interval", run=True)


def _losses_ours(v, m) -> str:
    extra = [x for x in v if x not in RELEASED_LOSSES]
    missing = [x for x in RELEASED_LOSSES if x not in v]
    return f"losses {list(v)}" + (f" (added {extra})" if extra else "") + (f" (without {missing})" if missing else "")


LOSSES = ReleasedSetting("losses", lambda m: tuple(m.losses), RELEASED_LOSSES,
                         "SDM + ID + MLM, weights 1 (run_irra.sh:11)", _losses_ours, "method.losses")
# the one table (tests/test_deviations.py checks it covers every config key that can change results)
RELEASED_SETTINGS = (PRECISION, AMP, SELECTION) + ENCODER_SETTINGS + (LOSSES,) + SETTINGS + RUN_SETTINGS


def irra_deviations(m, cfg: dict | None = None) -> list[Deviation]:
    """``m`` is an ``IRRA`` instance, ``cfg`` the run config (None: the model's settings alone)."""
    out = deviations_from(m, (PRECISION, AMP), cfg)
    out += deviations_from(m, (SELECTION,), cfg) if cfg is not None else [
        Deviation(SELECTION.id, SELECTION.released, SELECTION_OURS)]
    out += deviations_from(m, ENCODER_SETTINGS)
    out += deviations_from(m, (LOSSES,))
    return out + deviations_from(m, SETTINGS) + deviations_from(m, RUN_SETTINGS, cfg)
