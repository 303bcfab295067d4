# IRRA on the built-in synthetic dataset with the tiny CLIP preset: finishes in minutes on 2 CPU cores.
_base_ = ["./default.py"]  # the harness merges datasets/synth.py underneath

# No pretrained CLIP exists offline, and SDM is a fine-tuning objective that barely moves a randomly
# initialised model, so the synth config adds CLIP's InfoNCE (itc) as a stand-in for CLIP pre-training.
method = dict(encoder=dict(preset="tiny", image_size=(64, 32), context_length=48), cmt_depth=1,
              losses=["itc", "sdm", "id", "mlm"])
train = dict(epochs=6, batch_size=64, cache_images=True, eval_interval=0, log_interval=25)
optim_wrapper = dict(optimizer=dict(lr=5e-4, eps=1e-8, weight_decay=4e-5))  # from scratch: larger LR, standard Adam eps
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=True, begin=0, end=2, convert_to_iter_based=False),
    dict(type="CosineAnnealingLR", by_epoch=True, begin=2, end="max_epochs", eta_min=0.0),
]
