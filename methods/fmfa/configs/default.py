# FMFA as released (yinhao1102/FMFA@d0a3403 defaults; see methods/fmfa/README.md).
# No _base_: the harness gives this chain the runtime and dataset defaults as its root (harness/config_chain.py).

method = dict(
    type="fmfa",
    encoder=dict(type="clip", preset="ViT-B-16", image_size=(384, 128), context_length=77, checkpoint=None),
    losses=["asdm", "id", "mlm", "efa"],
    temperature=0.02,
    asdm_mode="code",
    asdm_alpha=0.1,
    efa_margins=(0.1, 0.9),
    efa_row_normalise=True,
    cmt_depth=4,
    mlm_contaminates_global=True,
)

train = dict(epochs=60, batch_size=64)
optim_wrapper = dict(optimizer=dict(lr=5e-6))  # FMFA code: 5e-6 (paper: 1e-5), no LR multipliers
