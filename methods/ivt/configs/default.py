# IVT fine-tuning as released (PersonRetrieval-IVT train_cuhkpedes_gpu.py / train_icfg_gpu.py): CUHK-PEDES, ICFG-PEDES.
# Real weights: --cfg-options method.vision.checkpoint=/path/ViT-B-16.pt method.text.path=/path/bert-base-uncased
_base_ = ["../../../harness/configs/runtime.py"]

method = dict(
    type="ivt",
    vision=dict(type="clip", preset="ViT-B-16", image_size=(384, 128), checkpoint=None),
    text=dict(type="bert", path=None, preset="base", max_length=100),
    stride=12,  # overlapping patches: 31 x 10 = 310 tokens at 384x128
    levels=["word", "phrase", "sentence"],  # three image augmentations, one per text level
    bmm_ratio=0.2,
    cmpm_target_norm="l2",  # released code; "l1" is the CMPM paper's distribution
    drop_path=0.1,
)

train = dict(epochs=120, batch_size=28, sampler=dict(type="identity", num_instances=4))
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type="SGD", lr=0.005, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(bias_lr_mult=2.0, bias_decay_mult=1.0),
)
# 5-epoch linear warm-up from 0.01x, cosine to 1e-5 at the last epoch, stepped per epoch
param_scheduler = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=True, begin=0, end=5, convert_to_iter_based=False),
    dict(type="CosineAnnealingLR", by_epoch=True, begin=5, end="max_epochs", eta_min=1e-5),
]
