# LGUR on the built-in synthetic dataset: tiny CLIP ViT + tiny BERT, narrower decoders, CPU-sized.
_base_ = ["./default.py"]  # the harness merges datasets/synth.py underneath

method = dict(vision=dict(preset="tiny", image_size=(64, 32)), text=dict(preset="tiny", context_length=48),
              dim=128, dict_size=100, part_dim=128,
              recon=dict(heads=4, dim_head=32, mlp_dim=256), proto=dict(heads=4, dim_head=64, mlp_dim=128))
train = dict(epochs=5, batch_size=64, cache_images=True, log_interval=25)
optim_wrapper = dict(optimizer=dict(lr=5e-4))  # random initialisation: larger LR than fine-tuning
param_scheduler = [dict(type="MultiStepLR", by_epoch=True, milestones=[3], gamma=0.1)]
