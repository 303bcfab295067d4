# LGUR as released (train_mydecoder_pixelvit_txtimg_3_bert.py): CUHK-PEDES and ICFG-PEDES.
# Real weights: --cfg-options method.vision.checkpoint=/path/ViT-B-16.pt method.text.path=/path/bert-base-uncased
# No _base_: the harness gives this chain the runtime and dataset defaults as its root (harness/config_chain.py).

method = dict(
    type="lgur",
    vision=dict(type="clip", preset="ViT-B-16", image_size=(384, 128), checkpoint=None),
    text=dict(type="bert", path=None, preset="base", context_length=100),
    dim=384,
    dict_size=400,
    num_prototypes=6,
    part_dim=512,
    recon=dict(depth=1, heads=6, dim_head=64, mlp_dim=768),
    proto=dict(depth=2, heads=6, dim_head=512, mlp_dim=512),
    margin=0.3,
    drop_last_block=True,
    freeze_text=True,
    text_dropout_in_train=True,  # frozen BERT still runs in train mode in the released code
)

train = dict(epochs=60, batch_size=64, drop_last=True)  # data/dataloader.py:32-33: shuffled, last partial batch dropped
# Adam, no weight decay; image backbone and the rest 1e-4, BiLSTM / part projections / ID heads 1e-3
optim_wrapper = dict(
    optimizer=dict(type="Adam", lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    paramwise_cfg=dict(custom_keys={"text_lstm": dict(lr_mult=10.0), "part_proj": dict(lr_mult=10.0),
                                    "classifiers": dict(lr_mult=10.0)}),
)
# MultiStepLR [20, 40, 50] x0.1, stepped at the start of each epoch in the released code, so every decay
# lands one epoch early: [19, 39, 49] here reproduces that.
param_scheduler = [dict(type="MultiStepLR", by_epoch=True, milestones=[19, 39, 49], gamma=0.1)]
