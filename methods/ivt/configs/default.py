# IVT fine-tuning as released (PersonRetrieval-IVT train_cuhkpedes_gpu.py / train_icfg_gpu.py): CUHK-PEDES, ICFG-PEDES.
# Real weights: --cfg-options method.vision.checkpoint=/path/ViT-B-16.pt method.text.path=/path/bert-base-uncased
# No _base_: the harness gives this chain the runtime and dataset defaults as its root (harness/config_chain.py).

method = dict(
    type="ivt",
    vision=dict(type="clip", preset="ViT-B-16", image_size=(384, 128), checkpoint=None),
    text=dict(type="bert", path=None, preset="base"),  # IVT tokenises [CLS] X with no cut (see IVT.tokenize)
    stride=12,  # overlapping patches: 31 x 10 = 310 tokens at 384x128
    levels=["word", "phrase", "sentence"],  # three image augmentations, one per text level
    bmm_ratio=0.2,
    cmpm_target_norm="l2",  # released code; "l1" is the CMPM paper's distribution
    drop_path=0.1,
)

train = dict(epochs=120, batch_size=28, sampler=dict(type="identity", num_instances=4))
# SGD; every parameter whose name contains "bias" gets lr x2 (released solver/make_optimizer.py:41-43;
# mmengine's bias_lr_mult would skip LayerNorm and attention in-projection biases)
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type="SGD", lr=0.005, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(custom_keys={"bias": dict(lr_mult=2.0, decay_mult=1.0)}),
)
# timm cosine with a 5-epoch linear warm-up from 0.01x to 0.002x, stepped before each epoch as released
# (methods/ivt/schedule.py): 1.04e-3, 2.03e-3, 3.02e-3, 4.01e-3, then cosine over epoch/120
param_scheduler = [dict(type="IVTCosineLR", by_epoch=True, begin=0, end="max_epochs",
                        warmup_epochs=5, warmup_factor=0.01, min_factor=0.002)]
