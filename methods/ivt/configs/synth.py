# IVT on the built-in synthetic dataset: tiny CLIP vision half + tiny BERT (same depth/width), CPU-sized.
_base_ = ["./default.py"]  # the harness merges datasets/synth.py underneath

method = dict(vision=dict(preset="tiny", image_size=(64, 32)), text=dict(preset="tiny"),
              stride=6, drop_path=0.0)
train = dict(epochs=5, batch_size=24, cache_images=True, log_interval=25)
# From random initialisation SGD at fine-tuning rates does not leave the uniform-prediction point of CMPM
# within a CPU budget; AdamW 1e-3 does (see methods/ivt/README.md).
optim_wrapper = dict(optimizer=dict(_delete_=True, type="AdamW", lr=1e-3, weight_decay=1e-4),
                     paramwise_cfg=dict(_delete_=True))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=True, begin=0, end=1, convert_to_iter_based=False),
    dict(type="CosineAnnealingLR", by_epoch=True, begin=1, end="max_epochs", eta_min=1e-5),
]
