"""The layout of checkpoints written by the released IRRA code (anosorae/IRRA@cfc2378), which FMFA's
(yinhao1102/FMFA@d0a3403) shares, for ``harness eval --released irra|fmfa``.

- utils/checkpoint.py:28-45 ``Checkpointer.save``: ``torch.save({"model": model.state_dict(), "optimizer": ...,
  "scheduler": ..., **arguments})``; processor/processor.py:18-20, 104-105 add ``num_epoch``, ``iteration``, ``epoch``
  and name the file ``best.pth`` (FMFA processor/processor_finetune.py:111-132: ``best0.pth``, ``best1.pth``,
  ``best2.pth``, one per test set).
- keys start with ``module.`` when the model was wrapped (FMFA train.py:73 ``nn.DataParallel``; IRRA train.py:57-64
  only under DDP); the released loader strips it only when every key has it (utils/checkpoint.py:129-144).
- model/build.py:16 ``base_model`` (the CLIP of model/clip_model.py:309-362: ``visual.conv1``, ``visual.
  class_embedding``, ``visual.positional_embedding``, ``visual.ln_pre``, ``visual.transformer.resblocks.*``,
  ``visual.ln_post``, ``visual.proj``, ``transformer.resblocks.*``, ``token_embedding``, ``positional_embedding``,
  ``ln_final``, ``text_projection``; no ``logit_scale``, :363 commented out) -> our ``encoder.clip``
  (open_clip's CLIP: the same names, plus its own ``logit_scale``, which no loss or evaluation reads).
- model/build.py:22 ``classifier``, :27 ``cross_attn``, :30 ``cross_modal_transformer``, :36-38 ``ln_pre_t``,
  ``ln_pre_i``, ``ln_post``, :53 ``mlm_head``: training heads, set aside (evaluation scores the [CLS] and EOT
  features only, model/build.py:81-88).
- model/build.py:146-150 ``convert_weights``: Conv/Linear/attention tensors, ``proj`` and ``text_projection`` are
  fp16 in the file, LayerNorms and embeddings fp32.
"""
from __future__ import annotations

from harness.api import ReleasedLayout

KEY_TABLE = (("base_model.", "encoder.clip."),)
HEADS = ("classifier", "cross_attn", "cross_modal_transformer", "ln_pre_t", "ln_pre_i", "ln_post", "mlm_head")

IRRA_LAYOUT = ReleasedLayout(
    source="anosorae/IRRA@cfc2378", files="best.pth (utils/checkpoint.py Checkpointer)", rename=KEY_TABLE,
    set_aside=HEADS, ours_only=("encoder.clip.logit_scale",), config="default.py",
    training=dict(script="run_irra.sh: --img_aug --batch_size 64 --MLM --loss_names 'sdm+mlm+id' --num_epoch 60",
                  epochs=60, batch_size=64, lr=1e-5, precision="fp16-stored weights (convert_weights)",
                  selection="the epoch with the best test-split R1 (utils/options.py:12, "
                            "processor/processor.py:102-105)"),
)

FMFA_LAYOUT = ReleasedLayout(
    source="yinhao1102/FMFA@d0a3403", files="best0.pth / best1.pth / best2.pth (utils/checkpoint.py Checkpointer)",
    rename=KEY_TABLE, set_aside=HEADS, ours_only=("encoder.clip.logit_scale",), config="default.py",
    training=dict(script="run.sh: --img_aug --batch_size 64 --MLM --loss_names 'a-sdm+mlm+id+efa' --num_epoch 60",
                  epochs=60, batch_size=64, lr=5e-6,
                  precision="fp16-stored weights (convert_weights) and fp16 autocast on the backbone",
                  selection="bestK.pth: the epoch with the best R1 on test set K (0 CUHK-PEDES, 1 ICFG-PEDES, "
                            "2 RSTPReid; processor/processor_finetune.py:109-132)",
                  id_classes="one per (image, caption) pair (datasets/build.py:251)"),
)
