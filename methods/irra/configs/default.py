# IRRA as released (anosorae/IRRA@cfc2378 run_irra.sh + utils/options.py; see methods/irra/README.md).
# No _base_: the harness gives this chain the runtime and dataset defaults as its root (harness/config_chain.py).

method = dict(
    type="irra",
    encoder=dict(type="clip", preset="ViT-B-16", image_size=(384, 128), context_length=77, checkpoint=None),
    losses=["sdm", "id", "mlm"],  # run_irra.sh:11
    temperature=0.02,  # utils/options.py:18
    cmt_depth=4,  # utils/options.py:22
    mlm_contaminates_global=True,
    clip_fp16=False,  # released: True (fp16-stored weights); see the model card's Precision section
)

train = dict(epochs=60, batch_size=64)  # run_irra.sh:8, 12
# Adam lr 1e-5, wd 4e-5, eps 1e-3 (solver/build.py:32-38, utils/options.py:43-49) come from the runtime config.
# LR multipliers of solver/build.py:17-24, applied in that order per parameter name: "cross" x5; "bias" x2 with
# wd 0 (overrides "cross"); "classifier"/"mlm_head" x5 (their biases keep wd 0). mmengine takes the longest
# matching key, so the bias suffixes that also occur inside the cross-modal modules are spelled out.
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    "classifier.bias": dict(lr_mult=5.0, decay_mult=0.0), "mlm_head.dense.bias": dict(lr_mult=5.0, decay_mult=0.0),
    "mlm_head.ln.bias": dict(lr_mult=5.0, decay_mult=0.0), "mlm_head.fc.bias": dict(lr_mult=5.0, decay_mult=0.0),
    "classifier": dict(lr_mult=5.0), "mlm_head": dict(lr_mult=5.0),
    "in_proj_bias": dict(lr_mult=2.0, decay_mult=0.0), "out_proj.bias": dict(lr_mult=2.0, decay_mult=0.0),
    "c_proj.bias": dict(lr_mult=2.0, decay_mult=0.0), "c_fc.bias": dict(lr_mult=2.0, decay_mult=0.0),
    "ln_1.bias": dict(lr_mult=2.0, decay_mult=0.0), "ln_2.bias": dict(lr_mult=2.0, decay_mult=0.0),
    "cross": dict(lr_mult=5.0), "bias": dict(lr_mult=2.0, decay_mult=0.0)}))
